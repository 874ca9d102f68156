"""Faults mid-run on the real control plane: each test ends in a complete analysis, or a Failed condition that
says why, with no point lost, none measured twice and nothing left running.

Sweeps are 1 to 3 points. Where a fault must land inside a point, the points use longer windows and a precision
they cannot reach, so each one takes its six windows (a few seconds) and the fault has a point to interrupt.
"""

from __future__ import annotations

import random
import time

import pytest

from tests.cluster.controlplane import Cluster
from tests.e2e.conftest import (
    FINISHED,
    OPERATOR_NAMESPACE,
    Analyses,
    Json,
    Kubectl,
    Operator,
    Volumes,
    analysis_manifest,
    conditions,
    point_keys,
)
from tests.e2e.test_operator import INFERENCE_CSV, assert_measured, csv_rows, result_files

pytestmark = pytest.mark.cluster

LOAD_GENERATOR = "app.kubernetes.io/component=load-generator"
# Six windows of a second each, every point: a precision of 0.01% is never reached, so no point ends early.
SLOW_POINTS = {"measurementIntervalMs": 1000, "maxTrials": 6, "convergencePct": 0.01, "baselineDurationMs": 300}


def slow_analysis(name: str, concurrency: list[int]) -> Json:
    manifest = analysis_manifest(name, models=["add_sub"], batch_sizes=[1], concurrency=concurrency)
    manifest["spec"]["measurement"] = dict(SLOW_POINTS)
    return manifest


def assert_complete(analyses: Analyses, volumes: Volumes, name: str, plan: list[tuple[str, int, int]]) -> Json:
    """Succeeded, every planned point once in status and in the CSV on the volume, nothing left running."""
    obj = analyses.wait_finished(name)
    status = obj["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    assert conditions(obj)["Ready"]["status"] == "True", conditions(obj)["Ready"]
    keys = point_keys(status)
    assert sorted(keys) == sorted(plan), keys  # every planned point, each exactly once
    assert_measured(status)
    assert status["pointsDone"] == status["pointsTotal"] == len(plan)
    inference = csv_rows(result_files(volumes.results / name)[INFERENCE_CSV])
    assert sorted((r["Model"], int(r["Batch"]), int(r["Concurrency"])) for r in inference) == sorted(plan)
    analyses.wait_children_gone(name, kinds="pods,jobs")
    return obj


def running_load_generator(kubectl: Kubectl, namespace: str) -> str | None:
    """The name of a load-generator pod whose container runs (a point is being measured), if there is one."""
    pods = kubectl.get("pods", "-n", namespace, "-l", LOAD_GENERATOR)["items"]
    for pod in pods:
        if pod["status"].get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp"):
            return str(pod["metadata"]["name"])
    return None


def test_a_load_generator_pod_deleted_mid_point_is_measured_again_and_the_analysis_completes(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str
) -> None:
    """Decided (README): a point whose perf_analyzer pod is deleted (by a person, a drain, an eviction) is run
    once more: nothing was wrong with the point, and the user asked for it. An Event says so."""
    analyses.apply(slow_analysis("interrupted", concurrency=[1, 2]))

    deadline = time.monotonic() + 180
    while (victim := running_load_generator(kubectl, namespace)) is None:
        assert time.monotonic() < deadline, "no load-generator pod ran"
        time.sleep(0.2)
    kubectl("delete", "pod", victim, "-n", namespace, "--wait=false")

    obj = assert_complete(analyses, volumes, "interrupted", [("add_sub", 1, 1), ("add_sub", 1, 2)])
    for point in obj["status"]["points"]:
        assert point["status"] == "Measured", point  # the interrupted point too, on its second run
    events = analyses.wait_events("interrupted", {"PointInterrupted", "Succeeded"})
    (interrupted,) = [e for e in events if e["reason"] == "PointInterrupted"]
    assert interrupted["type"] == "Warning" and victim in interrupted["message"], interrupted
    assert "measuring the point again" in interrupted["message"], interrupted
    assert not [e for e in events if e["reason"] == "PointFailed"], events


def test_an_operator_killed_at_five_random_moments_still_measures_every_point_once(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, operator: Operator
) -> None:
    """Each kill lands a random 0 to 3 s after the previous operator became ready: while Triton starts, mid-point,
    between points or while results are written. The seed is fixed so that a failure can be replayed."""
    plan = [("add_sub", 1, 1), ("add_sub", 1, 2), ("add_sub", 1, 4)]
    analyses.apply(slow_analysis("relentless", concurrency=[1, 2, 4]))
    moments = random.Random(20251).sample(range(0, 3000, 100), 5)

    killed: set[str] = set()
    for delay_ms in moments:
        pod = operator.wait_ready(exclude=killed)
        time.sleep(delay_ms / 1000)
        obj = analyses.get("relentless")
        assert obj is not None
        assert (obj.get("status") or {}).get("phase") not in FINISHED, f"finished after {len(killed)} kills"
        kubectl("delete", "pod", pod, "-n", OPERATOR_NAMESPACE, "--grace-period=0", "--force")
        killed.add(pod)
    operator.wait_ready(exclude=killed)

    assert_complete(analyses, volumes, "relentless", plan)


def test_an_api_server_restarted_mid_run_does_not_lose_or_repeat_a_point(
    cluster: Cluster, analyses: Analyses, volumes: Volumes
) -> None:
    """kube-apiserver killed mid-point and started again (etcd keeps the state): the operator's calls fail
    meanwhile, it retries, and the analysis completes."""
    plan = [("add_sub", 1, 1), ("add_sub", 1, 2)]
    analyses.apply(slow_analysis("unplugged", concurrency=[1, 2]))
    analyses.wait_points("unplugged", 1)

    cluster.restart_apiserver()

    assert_complete(analyses, volumes, "unplugged", plan)
