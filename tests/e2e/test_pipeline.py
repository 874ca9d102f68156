"""An ensemble through the operator: examples/models/pipeline (preprocess feeding classify, CPU Python models) in
the Triton pod, its steps broken down from the pod's own metrics, in status and in the results ConfigMap."""

from __future__ import annotations

import csv
import io

import pytest

from tests.e2e.conftest import Analyses, Kubectl, Volumes, analysis_manifest

pytestmark = pytest.mark.cluster


def test_an_ensemble_is_broken_down_by_step_in_status_and_results(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str
) -> None:
    analyses.apply(analysis_manifest("pipeline", models=["pipeline"], batch_sizes=[1], concurrency=[4]))
    obj = analyses.wait_finished("pipeline")
    status = obj["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    (point,) = status["points"]
    steps = {s["model"]: s for s in point["steps"]}
    assert set(steps) == {"preprocess", "classify"}
    assert steps["classify"].get("bottleneck") is True and not steps["preprocess"].get("bottleneck")
    assert steps["classify"]["queueMs"] > steps["preprocess"]["queueMs"]
    files = kubectl.get("configmap", "pipeline-results", "-n", namespace)["data"]
    rows = list(csv.DictReader(io.StringIO(files["metrics-model-steps.csv"])))
    assert [(r["Step"], r["Bottleneck"]) for r in rows] == [("preprocess", "No"), ("classify", "Yes")]


def test_an_ensembles_config_search_walks_its_composing_models_through_the_operator(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str
) -> None:
    manifest = analysis_manifest("pipeline-search", models=["pipeline"], batch_sizes=[1], concurrency=[4])
    manifest["spec"]["models"] = [{"name": "pipeline", "configSearch": {"instanceCounts": [1, 2]}}]
    analyses.apply(manifest)
    status = analyses.wait_finished("pipeline-search")["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    entries = {m["name"]: m for m in status["models"]}
    first = entries["pipeline_config_0"]
    assert first["changes"] == "classify: 2 instances"
    assert first["reason"].startswith("classify is the slowest step")
    assert {c["model"]: c.get("instanceCount") for c in first["composing"]} == {"preprocess": None, "classify": 2}
    points = {p["variant"]: p for p in status["points"]}
    default, more = points["pipeline_config_default"], points["pipeline_config_0"]
    assert more["throughputCI"][0] > default["throughputCI"][1]  # the second instance pays, outside the intervals
    best = status["best"]
    assert best["variant"] != "pipeline_config_default"
    assert best["composingConfigs"]["classify"]["instance_group"][0]["count"] == 2
