"""Two operator replicas at once (the chart's replicaCount=2): only the holder of the leader Lease runs
analyses; when it is killed mid-sweep the other takes the Lease over and finishes the sweep, no point twice."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import (
    CHART,
    OPERATOR_NAMESPACE,
    RELEASE,
    Analyses,
    Json,
    Kubectl,
    Operator,
    Volumes,
    _helm,
    analysis_manifest,
    point_keys,
)

pytestmark = pytest.mark.cluster

LEASE = "model-analyzer-leader"
PLAN = sorted(
    [("add_sub", 1, 1), ("add_sub", 1, 2), ("add_sub", 4, 1), ("add_sub", 4, 2), ("matmul", 1, 1), ("matmul", 1, 2)]
)


def ready_pods(operator: Operator) -> list[str]:
    return sorted(
        pod["metadata"]["name"]
        for pod in operator.pods()
        if not pod["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))
    )


def lease_holder(kubectl: Kubectl) -> str | None:
    found = kubectl.run("get", "lease", LEASE, "-n", OPERATOR_NAMESPACE, "-o", "json", check=False)
    if found.returncode != 0:
        return None
    lease: Json = json.loads(found.stdout)
    return lease.get("spec", {}).get("holderIdentity")


def wait_until(what: str, probe: object, timeout: float = 180) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()  # type: ignore[operator]
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:.0f} s"
        time.sleep(0.5)


def test_with_two_replicas_one_leads_and_the_other_takes_over_without_measuring_a_point_twice(
    operator: Operator, kubectl: Kubectl, analyses: Analyses, volumes: Volumes
) -> None:
    upgraded = _helm(operator.cluster, "upgrade", RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE,
                     "--reuse-values", "--set", "replicaCount=2", "--wait", "--timeout", "180s")  # fmt: skip
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    pods = wait_until("two Ready operator pods", lambda: len(ready_pods(operator)) == 2 and ready_pods(operator))
    leader = wait_until("a leader in the Lease", lambda: lease_holder(kubectl) in pods and lease_holder(kubectl))
    assert isinstance(pods, list) and isinstance(leader, str)

    analyses.apply(analysis_manifest("ha"))
    obj = analyses.wait_points("ha", 1)
    assert obj["status"]["pointsDone"] < 6, "the sweep finished before the leader could be killed"
    kubectl("delete", "pod", leader, "-n", OPERATOR_NAMESPACE, "--grace-period=0", "--force")
    (follower,) = [p for p in pods if p != leader]
    wait_until("the other replica to take the Lease", lambda: lease_holder(kubectl) == follower, timeout=120)

    obj = analyses.wait_finished("ha")
    status = obj["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    assert sorted(point_keys(status)) == PLAN, point_keys(status)  # every point, each exactly once
    assert all(p["status"] == "Measured" for p in status["points"]), status["points"]
    analyses.wait_children_gone("ha", kinds="pods,jobs")
