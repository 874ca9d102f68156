"""An ensemble end to end on the real local Triton (its ensemble scheduler on the CPU): examples/models/pipeline,
preprocess (1 ms an execution) feeding classify (4 ms), profiled through the CLI. Every point says where its time
went, step by step, and names classify, the step that sleeps longest, as the bottleneck."""

from __future__ import annotations

import csv
from pathlib import Path

from modelanalysis.adapters.local_triton import LocalTriton
from modelanalysis.core.results import AnalysisResult
from tests.integration.conftest import REPO_ROOT, RunCli, copy_models


def test_an_ensembles_points_are_broken_down_by_step_and_the_slowest_step_named(
    run_cli: RunCli, tmp_path: Path, fast_flags: list[str], local_triton: LocalTriton
) -> None:
    models = copy_models(REPO_ROOT, tmp_path / "models", ("pipeline", "preprocess", "classify"))
    export = tmp_path / "out"
    proc = run_cli("profile", "--model-folder", models, "-m", "pipeline", "--concurrency", "1,4", *fast_flags,
                   "--export", "--export-path", export)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "pipeline is an ensemble of preprocess, classify" in proc.stdout + proc.stderr
    assert "Steps: pipeline batch 1 concurrency 4: bottleneck classify" in proc.stdout
    with (export / "metrics-model-steps.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["Concurrency"], r["Step"], r["Bottleneck"]) for r in rows] == [
        ("1", "preprocess", "No"), ("1", "classify", "Yes"), ("4", "preprocess", "No"), ("4", "classify", "Yes"),
    ]  # fmt: skip
    by_step = {(r["Concurrency"], r["Step"]): r for r in rows}
    # classify computes ~4 ms a request, preprocess ~1 ms; at concurrency 4 requests queue at classify, not before.
    assert float(by_step["1", "classify"]["Avg Compute Infer (ms)"]) > 3 * float(
        by_step["1", "preprocess"]["Avg Compute Infer (ms)"]
    )
    assert (
        float(by_step["4", "classify"]["Avg Queue (ms)"]) > 5 * float(by_step["4", "preprocess"]["Avg Queue (ms)"]) + 1
    )
    result = AnalysisResult.model_validate_json((export / "analysis.json").read_text())
    assert all(p.steps and len(p.steps) == 2 for p in result.points)


def test_a_bls_model_is_broken_down_by_the_composing_models_it_is_given(
    run_cli: RunCli, tmp_path: Path, fast_flags: list[str], local_triton: LocalTriton
) -> None:
    models = copy_models(REPO_ROOT, tmp_path / "models", ("pipeline_bls", "preprocess", "classify"))
    export = tmp_path / "out"
    proc = run_cli("profile", "--model-folder", models, "-m", "pipeline_bls", "--bls-composing-models",
                   "preprocess,classify", "--concurrency", "2", *fast_flags,
                   "--export", "--export-path", export)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with (export / "metrics-model-steps.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["Step"], r["Bottleneck"]) for r in rows] == [("preprocess", "No"), ("classify", "Yes")]
    assert float(rows[1]["Avg Compute Infer (ms)"]) > 3 * float(rows[0]["Avg Compute Infer (ms)"])
    missing = run_cli("profile", "--model-folder", models, "-m", "pipeline_bls", "--bls-composing-models", "nothere")
    assert missing.returncode == 1 and "BLS composing model 'nothere' is not in" in missing.stderr
