"""Faults mid-run on the real control plane: each test ends in a complete analysis, or a Failed condition that
says why, with no point lost, none measured twice and nothing left running.

Sweeps are 1 to 3 points. Where a fault must land inside a point, the points use longer windows and a precision
they cannot reach, so each one takes its six windows (a few seconds) and the fault has a point to interrupt.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.controlplane import Cluster
from tests.e2e.conftest import (
    FINISHED,
    OPERATOR_NAMESPACE,
    RESULTS_CLAIM,
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
SLOW_POINTS = {"measurementIntervalMs": 1000, "maxWindows": 6, "convergencePct": 0.01, "baselineDurationMs": 300}


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
    manifest = slow_analysis("relentless", concurrency=[1, 2, 4])
    # A point's Job goes on while no operator runs, so the points are made long enough (six 3 s windows each)
    # for five restarts to land inside the sweep.
    manifest["spec"]["measurement"].update({"measurementIntervalMs": 3000, "maxPointSeconds": 60})
    analyses.apply(manifest)
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


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` as a read-only mount (EROFS for every writer, root included), as a volume that went read-only."""
    if os.geteuid() != 0:
        pytest.skip("making a folder a read-only mount needs root")
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_results_volume_fails_the_analysis_saying_what_to_fix_and_keeps_the_results(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str
) -> None:
    """The results claim is written once, at the end: read-only then, the analysis fails with reason
    ResultsWriteFailed and a condition that says what to fix, and nothing measured is lost (status and the
    ConfigMap <name>-results keep it all)."""
    manifest = analysis_manifest("readonly", models=["add_sub"], batch_sizes=[1], concurrency=[1])
    with read_only(volumes.results):
        analyses.apply(manifest)
        obj = analyses.wait_finished("readonly")
        assert list(volumes.results.iterdir()) == []

    status = obj["status"]
    assert status["phase"] == "Failed", status
    ready = conditions(obj)["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "ResultsWriteFailed", ready
    for words in (f"claim {RESULTS_CLAIM}", "Read-only file system", "mounted writable", "ConfigMap readonly-results"):
        assert words in ready["message"], ready
    assert status["message"] == ready["message"]
    assert point_keys(status) == [("add_sub", 1, 1)]
    assert_measured(status)
    assert status["results"] == "configmap/readonly-results"
    inference = csv_rows(kubectl.get("configmap", "readonly-results", "-n", namespace)["data"][INFERENCE_CSV])
    assert [(r["Model"], r["Batch"], r["Concurrency"]) for r in inference] == [("add_sub", "1", "1")]
    assert inference[0]["Status"] == "Measured"
    events = analyses.wait_events("readonly", {"ResultsWriteFailed"})
    assert all(e["type"] == "Warning" for e in events if e["reason"] == "ResultsWriteFailed")
    analyses.wait_children_gone("readonly", kinds="pods,jobs")
