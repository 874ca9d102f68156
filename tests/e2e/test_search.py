"""Search in the cluster: a ModelAnalysis with config variants and a concurrency search, run by the operator
installed with the chart, on the real control plane with a real Triton pod and a perf_analyzer Job per point."""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

import pytest

from tests.cluster.controlplane import Cluster
from tests.e2e.conftest import MODEL_ANALYZER, Analyses, Json, Kubectl, Volumes, analysis_manifest, conditions

pytestmark = pytest.mark.cluster

VARIANTS = ["add_sub_config_default", "add_sub_config_0", "add_sub_config_1"]


def search_manifest(name: str) -> Json:
    manifest = analysis_manifest(name, models=("add_sub",), batch_sizes=(1,))
    spec = manifest["spec"]
    spec["models"] = [{"name": "add_sub", "configSearch": {"instanceCounts": [1, 2]}}]
    del spec["concurrency"]
    spec["concurrencySearch"] = {"maxConcurrency": 8}
    return manifest


def test_config_variants_and_a_concurrency_search_end_with_the_best_configuration_in_status(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str, cluster: Cluster, tmp_path: Path
) -> None:
    analyses.apply(search_manifest("search"))
    obj = analyses.wait_finished("search")
    status = obj["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    assert conditions(obj)["Ready"]["reason"] == "Succeeded"

    # Each variant was loaded into the one Triton pod through the config override, and profiled.
    models = {m["name"]: m for m in status["models"]}
    assert list(models) == VARIANTS
    assert all(m["status"] == "Profiled" and m["model"] == "add_sub" for m in models.values()), models
    assert [models[v]["instanceGroup"] for v in VARIANTS] == ["1:CPU", "1:CPU", "2:CPU"]
    assert models["add_sub_config_1"]["changes"] == "2 instances"

    # instanceCounts [1, 2]: 1 instance is what add_sub's own config has, so that variant is not measured again.
    assert models["add_sub_config_0"]["changes"].endswith("the model's own config, measured as add_sub_config_default")
    assert not [p for p in status["points"] if p.get("variant") == "add_sub_config_0"]
    # The search climbed 1, 2, 4, 8 in each variant it measured, measured each concurrency at most once, and
    # recorded the steps it left out with why.
    for variant in ("add_sub_config_default", "add_sub_config_1"):
        measured = [p["concurrency"] for p in status["points"] if p.get("variant") == variant]
        assert measured and measured[0] == 1 and len(measured) == len(set(measured)), (variant, measured)
        skipped = {s["concurrency"]: s["reason"] for s in models[variant].get("skipped") or []}
        assert sorted(set(measured) | set(skipped)) == [1, 2, 4, 8], (variant, measured, skipped)
        assert all(skipped.values()), skipped
    assert status["pointsDone"] == status["pointsTotal"] == len(status["points"])

    # The answer names the variant it won in.
    best = status["best"]
    assert best["model"] == "add_sub" and best["variant"] in ("add_sub_config_default", "add_sub_config_1")
    assert best["summary"].startswith(f"{best['variant']}/b1/c{best['concurrency']} ")
    assert [b["model"] for b in status["bestPerModel"]] == ["add_sub"]
    # With its whole config, built from the model's own as Triton read it, to deploy: written out by the CLI.
    instances = 2 if best["variant"] == "add_sub_config_1" else 1
    assert best["config"]["name"] == "add_sub" and best["config"]["instance_group"][0]["count"] == instances
    assert status["modelConfigs"]["add_sub"]["instance_group"][0]["count"] == 1
    out = tmp_path / "output_model_repository"
    cli = subprocess.run(
        [str(MODEL_ANALYZER), "results", "search", "-n", namespace, "--output-model-repository", str(out)],
        env=cluster.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    pbtxt = (out / "add_sub" / "config.pbtxt").read_text()
    assert 'name: "add_sub"' in pbtxt and f"count: {instances}" in pbtxt, pbtxt

    # The CSV files name each point's variant in Model Config Path, as Model Analyzer does.
    data = kubectl.get("configmap", "search-results", "-n", namespace)["data"]
    rows = list(csv.DictReader(io.StringIO(data["metrics-model-inference.csv"])))
    assert {r["Model Config Path"] for r in rows} == {"add_sub_config_default", "add_sub_config_1"}
    assert {r["Model"] for r in rows} == {"add_sub"}
    analyses.wait_children_gone("search", kinds="pods,jobs")
