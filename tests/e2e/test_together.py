"""Two models measured together through the operator (spec.profileModelsConcurrently): one Triton pod holds
both, and one load-generator Job per point runs a perf_analyzer for each over the same windows; with a config
search, each combination of one variant per model in turn."""

from __future__ import annotations

import csv
import io

import pytest

from tests.e2e.conftest import Analyses, Kubectl, Volumes, analysis_manifest

pytestmark = pytest.mark.cluster


def test_two_models_are_measured_together_by_one_job_a_point_in_each_combination_of_their_variants(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str
) -> None:
    manifest = analysis_manifest("together", models=["add_sub", "matmul"], batch_sizes=[1], concurrency=[2])
    manifest["spec"]["models"][0]["configSearch"] = {"instanceCounts": [2]}  # add_sub's own config, then 2
    manifest["spec"]["profileModelsConcurrently"] = True
    manifest["spec"]["parallelism"] = {"maxTrials": 2}  # never split: they share one server
    analyses.apply(manifest)
    obj = analyses.wait_finished("together")
    status = obj["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    points = sorted((p.get("variant") or p["model"], p["measuredWith"], p["status"]) for p in status["points"])
    assert points == [
        ("add_sub_config_0", ["matmul"], "Measured"),
        ("add_sub_config_default", ["matmul"], "Measured"),
        ("matmul", ["add_sub_config_0"], "Measured"),
        ("matmul", ["add_sub_config_default"], "Measured"),
    ]
    together = status["bestTogether"]
    assert sorted(together["variants"]) in (["add_sub_config_0", "matmul"], ["add_sub_config_default", "matmul"])
    files = kubectl.get("configmap", "together-results", "-n", namespace)["data"]
    rows = list(csv.DictReader(io.StringIO(files["metrics-model-inference.csv"])))
    assert sorted(r["Measured With"] for r in rows) == ["add_sub_config_0", "add_sub_config_default", "matmul",
                                                        "matmul"]  # fmt: skip
    assert len({r["Server Node"] for r in rows}) == 1
