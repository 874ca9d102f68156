"""What becomes of analyses when the chart is uninstalled (issue 13), as a user meets it on the real control
plane: the operator puts no finalizer on a ModelAnalysis, so after `helm uninstall` deleting an analysis, its
namespace or the CRD completes on its own and the garbage collector removes what the analysis owned; and an
analysis left mid-sweep by an uninstall resumes, with no point measured twice, once the chart is installed again.

Each test installs the chart itself (into a namespace of its own), since it uninstalls it. Every wait has a
generous timeout; no test asserts a duration.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.controlplane import Cluster, wait_for_default_service_account
from tests.e2e.conftest import (
    CHART,
    MODELS_CLAIM,
    RELEASE,
    Analyses,
    Json,
    Kubectl,
    Operator,
    Volumes,
    analysis_manifest,
    conditions,
    point_keys,
)
from tests.e2e.test_operator import EXAMPLE_PLAN, assert_measured

pytestmark = pytest.mark.cluster

CRD = "modelanalyses.modelanalyzer.dev"
DELETE_TIMEOUT = "120s"  # `kubectl delete --timeout`: what hung for ever before; generous, never a measurement


class Release:
    """The chart, installed and uninstalled as the chart README says, in an operator namespace of its own."""

    def __init__(self, cluster: Cluster, kubectl: Kubectl, namespace: str) -> None:
        self.cluster, self.kubectl = cluster, kubectl
        self.operator = Operator(cluster, kubectl, namespace)

    def helm(self, *args: str) -> None:
        result = subprocess.run(
            ["helm", *args, "--namespace", self.operator.namespace, "--wait", "--timeout", "180s"],
            env=self.cluster.env, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert result.returncode == 0, f"helm {args[0]}: {result.stdout}{result.stderr}"

    def install(self) -> None:
        self.helm("install", RELEASE, str(CHART))
        self.operator.wait_ready()

    def uninstall(self) -> None:
        self.helm("uninstall", RELEASE)
        # Until the operator's pod has gone: a reinstall must not overlap the old operator's last moments.
        deadline = time.monotonic() + 120
        while pods := self.operator.pods():
            assert time.monotonic() < deadline, f"the operator pod outlived the uninstall: {pods}"
            time.sleep(0.5)


@pytest.fixture
def release(cluster: Cluster, kubectl: Kubectl) -> Iterator[Release]:
    namespace = f"ma-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    api = cluster.api_client()
    try:
        wait_for_default_service_account(api, namespace)
    finally:
        api.close()  # type: ignore[no-untyped-call]
    release = Release(cluster, kubectl, namespace)
    try:
        release.install()
        yield release
    finally:
        subprocess.run(["helm", "uninstall", RELEASE, "--namespace", namespace, "--wait", "--timeout", "60s"],
                       env=cluster.env, capture_output=True, timeout=90)  # fmt: skip
        kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture
def operator(release: Release) -> Operator:
    """For the e2e report hook: a failed test's report gets this operator's log and the namespace's objects."""
    return release.operator


def waiting_for_a_gpu(name: str) -> Json:
    """An analysis that stays unfinished without using the machine: its Triton pod asks for two GPUs (the node
    has one), so it is Pending and the analysis waits in phase Starting for as long as the ready timeout."""
    manifest = analysis_manifest(name, models=["add_sub"], batch_sizes=[1], concurrency=[1])
    manifest["spec"]["triton"].update({"resources": {"limits": {"nvidia.com/gpu": "2"}}, "readyTimeoutSeconds": 3600})
    del manifest["spec"]["results"]  # the ConfigMap only
    return manifest


def wait_unschedulable(analyses: Analyses, name: str) -> Json:
    return analyses.wait(
        name,
        lambda o: conditions(o).get("ServerReady", {}).get("reason") == "Unschedulable",
        "ServerReady=False/Unschedulable",
    )


def other_namespace(cluster: Cluster, kubectl: Kubectl) -> str:
    """A second namespace with only a model-repository claim (never bound: the pod waits anyway)."""
    name = f"uninstall-other-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    api = cluster.api_client()
    try:
        wait_for_default_service_account(api, name)
    finally:
        api.close()  # type: ignore[no-untyped-call]
    claim: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": MODELS_CLAIM},
        "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "manual",
                 "resources": {"requests": {"storage": "1Gi"}}},
    }  # fmt: skip
    kubectl.apply(claim, name)
    return name


def assert_no_finalizers(kubectl: Kubectl) -> None:
    analyses = kubectl.get("modelanalyses", "--all-namespaces")["items"]
    held = {f"{a['metadata']['namespace']}/{a['metadata']['name']}": a["metadata"].get("finalizers") for a in analyses}
    assert not any(held.values()), held


def test_after_uninstall_an_analysis_its_namespace_and_the_crd_each_delete_on_their_own(
    cluster: Cluster, kubectl: Kubectl, release: Release, namespace: str, volumes: Volumes
) -> None:
    analyses = Analyses(kubectl, namespace)
    # Mid-sweep: a Triton pod, perf_analyzer Jobs. And one waiting for a GPU here, one in another namespace.
    analyses.apply(analysis_manifest("running", models=["add_sub"]))
    analyses.apply(waiting_for_a_gpu("waiting"))
    other = other_namespace(cluster, kubectl)
    elsewhere = Analyses(kubectl, other)
    elsewhere.apply(waiting_for_a_gpu("elsewhere"))
    running = analyses.wait_points("running", 1)
    assert running["status"]["pointsDone"] < running["status"]["pointsTotal"], "finished before the uninstall"
    waiting = wait_unschedulable(analyses, "waiting")
    wait_unschedulable(elsewhere, "elsewhere")
    owned = {name: analyses.children(name, obj["metadata"]["uid"]) for name, obj in
             [("running", running), ("waiting", waiting)]}  # fmt: skip
    assert f"Pod/{running['status']['tritonPod']}" in owned["running"], owned
    assert f"Pod/{waiting['status']['tritonPod']}" in owned["waiting"], owned
    assert_no_finalizers(kubectl)  # while the operator runs, and so whenever it is killed

    release.uninstall()
    assert_no_finalizers(kubectl)

    # 1. An analysis: gone at once, and what it owned is garbage-collected.
    kubectl("delete", "modelanalysis", "running", "-n", namespace, f"--timeout={DELETE_TIMEOUT}")
    assert analyses.get("running") is None
    analyses.wait_children_gone("running", running["metadata"]["uid"])

    # 2. A namespace with an unfinished analysis in it.
    kubectl("delete", "namespace", other, f"--timeout={DELETE_TIMEOUT}", timeout=180)
    assert kubectl.run("get", "namespace", other, check=False).returncode != 0

    # 3. The CRD ("Remove completely" in the chart README), with an unfinished analysis left.
    kubectl("delete", "crd", CRD, f"--timeout={DELETE_TIMEOUT}", timeout=180)
    assert kubectl.run("get", "crd", CRD, check=False).returncode != 0
    analyses.wait_children_gone("waiting", waiting["metadata"]["uid"])
    assert kubectl("get", "pods,jobs", "-n", namespace, "-o", "name").split() == []


def test_an_analysis_left_mid_sweep_by_an_uninstall_resumes_after_a_reinstall_without_a_point_twice(
    kubectl: Kubectl, release: Release, namespace: str, volumes: Volumes
) -> None:
    analyses = Analyses(kubectl, namespace)
    analyses.apply(analysis_manifest("paused"))
    obj = analyses.wait_points("paused", 1)
    assert obj["status"]["pointsDone"] < 6, "the sweep finished before the uninstall"

    release.uninstall()
    # Without an operator the analysis stays as it was: unfinished, its Triton pod still there.
    obj = analyses.get("paused")
    assert obj is not None and obj["status"]["phase"] not in ("Succeeded", "Failed"), obj and obj["status"]
    assert f"Pod/{obj['status']['tritonPod']}" in analyses.children("paused", obj["metadata"]["uid"], "pods")
    assert_no_finalizers(kubectl)

    release.install()
    obj = analyses.wait_finished("paused")
    status = obj["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    keys = point_keys(status)
    assert sorted(keys) == EXAMPLE_PLAN, keys  # every planned point, each exactly once
    assert_measured(status)
    assert status["pointsDone"] == status["pointsTotal"] == 6
    analyses.wait_children_gone("paused", kinds="pods,jobs")

    uid = obj["metadata"]["uid"]
    kubectl("delete", "modelanalysis", "paused", "-n", namespace, f"--timeout={DELETE_TIMEOUT}")
    analyses.wait_children_gone("paused", uid)
