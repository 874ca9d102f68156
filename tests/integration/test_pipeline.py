"""An ensemble end to end on the real local Triton (its ensemble scheduler on the CPU): examples/models/pipeline,
preprocess (1 ms an execution) feeding classify (4 ms), profiled through the CLI. Every point says where its time
went, step by step, and names classify, the step that sleeps longest, as the bottleneck."""

from __future__ import annotations

import csv
from pathlib import Path

from modelanalysis.adapters.local_triton import LocalTriton
from modelanalysis.core.results import AnalysisResult, PointResult
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
    # The BLS model is a step of its own (its one instance runs the calls, so requests queue there at
    # concurrency 2), its compute without the time spent in the models it calls.
    assert [r["Step"] for r in rows] == ["pipeline_bls", "preprocess", "classify"]
    assert float(rows[2]["Avg Compute Infer (ms)"]) > 3 * float(rows[1]["Avg Compute Infer (ms)"])
    assert float(rows[0]["Avg Compute Infer (ms)"]) < float(rows[2]["Avg Compute Infer (ms)"])
    missing = run_cli("profile", "--model-folder", models, "-m", "pipeline_bls", "--bls-composing-models", "nothere")
    assert missing.returncode == 1 and "BLS composing model 'nothere' is not in" in missing.stderr


def _by_variant(result: AnalysisResult) -> dict[str, PointResult]:
    return {p.variant: p for p in result.points if p.perf is not None}


def test_an_ensembles_config_search_gives_its_slowest_step_the_extra_instance_and_beats_its_own_config(
    run_cli: RunCli, tmp_path: Path, fast_flags: list[str], local_triton: LocalTriton
) -> None:
    models = copy_models(REPO_ROOT, tmp_path / "models", ("pipeline", "preprocess", "classify"))
    export = tmp_path / "out"
    proc = run_cli("profile", "--model-folder", models, "-m", "pipeline", "--instance-counts", "1,2",
                   "--concurrency", "4", *fast_flags, "--export", "--export-path", export)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Walk: pipeline_config_0 (classify: 2 instances): classify is the slowest step" in proc.stdout
    result = AnalysisResult.model_validate_json((export / "analysis.json").read_text())
    first = result.outcome("pipeline_config_0")
    assert first is not None and first.composing is not None
    assert [(c.model, c.instance_count) for c in first.composing] == [("preprocess", None), ("classify", 2)]
    points = _by_variant(result)
    default, more = points["pipeline_config_default"].perf, points["pipeline_config_0"].perf
    assert default is not None and more is not None
    assert default.throughput_ci_high is not None and more.throughput_ci_low is not None
    assert more.throughput_ci_low > default.throughput_ci_high  # classify's second instance pays, outside intervals
    assert result.best is not None and result.best.overall is not None
    winner = result.outcome(result.best.overall.variant)
    assert winner is not None and winner.composing is not None
    assert dict((c.model, c.instance_count) for c in winner.composing)["classify"] == 2
    # The user's repository is untouched; every step's winning config is written to deploy.
    assert "count: 1" in (models / "classify" / "config.pbtxt").read_text()
    written = export / "output_model_repository"
    assert "count: 2" in (written / "classify" / "config.pbtxt").read_text()
    assert (written / "pipeline" / "config.pbtxt").exists() and (written / "preprocess" / "config.pbtxt").exists()


def test_a_bls_models_config_search_walks_the_model_itself_and_its_composing_models(
    run_cli: RunCli, tmp_path: Path, fast_flags: list[str], local_triton: LocalTriton
) -> None:
    models = copy_models(REPO_ROOT, tmp_path / "models", ("pipeline_bls", "preprocess", "classify"))
    export = tmp_path / "out"
    proc = run_cli("profile", "--model-folder", models, "-m", "pipeline_bls", "--bls-composing-models",
                   "preprocess,classify", "--instance-counts", "1,2", "--concurrency", "4", *fast_flags,
                   "--export", "--export-path", export)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = AnalysisResult.model_validate_json((export / "analysis.json").read_text())
    # Its one instance runs every call in turn, so requests queue there first; then at classify, the slowest call.
    assert "Walk: pipeline_bls_config_0 (pipeline_bls: 2 instances): pipeline_bls is the slowest step" in proc.stdout
    assert "Walk: pipeline_bls_config_1 (pipeline_bls: 2 instances; classify: 2 instances)" in proc.stdout
    points = _by_variant(result)
    perf = [points[v].perf for v in ("pipeline_bls_config_default", "pipeline_bls_config_0", "pipeline_bls_config_1")]
    assert all(p is not None and p.throughput_ci_low is not None and p.throughput_ci_high is not None for p in perf)
    assert perf[1].throughput_ci_low > perf[0].throughput_ci_high  # type: ignore[union-attr,operator]
    assert result.best is not None and result.best.overall is not None
    assert result.best.overall.variant != "pipeline_bls_config_default"
