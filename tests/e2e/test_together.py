"""Two models measured together through the operator (spec.profileModelsConcurrently): one Triton pod holds
both, and one load-generator Job per point runs a perf_analyzer for each over the same windows."""

from __future__ import annotations

import csv
import io

import pytest

from tests.e2e.conftest import Analyses, Kubectl, Volumes, analysis_manifest

pytestmark = pytest.mark.cluster


def test_two_models_are_measured_together_by_one_job_a_point(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str
) -> None:
    manifest = analysis_manifest("together", models=["add_sub", "matmul"], batch_sizes=[1], concurrency=[2])
    manifest["spec"]["profileModelsConcurrently"] = True
    manifest["spec"]["parallelism"] = {"maxTrials": 2}  # never split: they share one server
    analyses.apply(manifest)
    obj = analyses.wait_finished("together")
    status = obj["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    points = sorted((p["model"], p["status"]) for p in status["points"])
    assert points == [("add_sub", "Measured"), ("matmul", "Measured")]
    files = kubectl.get("configmap", "together-results", "-n", namespace)["data"]
    rows = list(csv.DictReader(io.StringIO(files["metrics-model-inference.csv"])))
    assert sorted((r["Model"], r["Measured With"]) for r in rows) == [("add_sub", "matmul"), ("matmul", "add_sub")]
    assert len({r["Server Node"] for r in rows}) == 1
