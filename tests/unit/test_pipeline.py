"""Ensembles seen inside (core/pipeline.py): each composing model's share of a point from Triton's own counters,
on two real scrapes of Triton 2.51 around a perf_analyzer run of examples/models/pipeline (tests/data/README.md)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from modelanalysis.core.load import Load
from modelanalysis.core.ma_config import read_ma_config
from modelanalysis.core.pipeline import bottleneck, ensemble_steps, step_breakdown
from modelanalysis.core.report import INFERENCE_CSV, STEPS_CSV, csv_files
from modelanalysis.core.results import AnalysisResult, PointResult, PointStatus
from modelanalysis.core.server_metrics import parse_triton_metrics
from modelanalysis.core.sweep import Point
from modelanalysis.kube.conditions import compact_point, expand_point
from tests.fakes import Recorder, StandInTriton, engine, numbers, spec

DATA = Path(__file__).resolve().parents[1] / "data"
BEFORE = parse_triton_metrics((DATA / "triton-2.51-cpu-metrics-pipeline-before.txt").read_text(), 100.0)
AFTER = parse_triton_metrics((DATA / "triton-2.51-cpu-metrics-pipeline-after.txt").read_text(), 104.0)
ENSEMBLE = {
    "name": "pipeline", "platform": "ensemble", "max_batch_size": 8,
    "ensemble_scheduling": {"step": [{"model_name": "preprocess"}, {"model_name": "classify"}]},
}  # fmt: skip


def test_an_ensembles_steps_are_its_composing_models_in_order() -> None:
    assert ensemble_steps(ENSEMBLE) == ("preprocess", "classify")
    assert ensemble_steps({"name": "add_sub", "backend": "python"}) == ()


def test_the_real_counters_name_the_step_that_queues_as_the_bottleneck() -> None:
    steps = step_breakdown([AFTER, BEFORE], ("preprocess", "classify"))  # in any order: sorted by time
    preprocess, classify = steps
    # perf_analyzer's own composing-model report for the same run: classify queue 11793 us, infer 4247 us;
    # preprocess queue 47 us, infer 1248 us (tests/data/README.md).
    assert classify.queue_ms == pytest.approx(11.8, abs=0.3) and classify.compute_infer_ms == pytest.approx(
        4.25, abs=0.1
    )
    assert preprocess.queue_ms is not None and preprocess.queue_ms < 0.2
    assert preprocess.compute_infer_ms == pytest.approx(1.25, abs=0.1)
    assert bottleneck(steps) is classify and not preprocess.bottleneck
    assert classify.requests == preprocess.requests == classify.executions  # no dynamic batching: one a request
    assert classify.sentence().startswith("classify (queue 11.79 ms, compute 4.42 ms a request")


def test_a_step_with_no_request_in_the_window_is_left_out() -> None:
    assert step_breakdown([BEFORE, BEFORE], ("preprocess", "classify")) == []
    assert step_breakdown([AFTER], ("classify",)) == []  # one sample: no change to read


def test_the_engine_breaks_down_only_ensembles_and_says_so_once() -> None:
    triton = StandInTriton(max_batch_size={"pipeline": 8, "add_sub": 8})
    triton.overrides["pipeline"] = ENSEMBLE
    seen: list[Point] = []

    def run(point: Point, settings: object) -> object:
        seen.append(point)
        return numbers(point)

    result = engine(spec(["pipeline", "add_sub"], [1], [1]), triton, Recorder(), run=run).run(
        AnalysisResult(triton_version="")
    )
    assert [(p.model, p.composing) for p in seen] == [("pipeline", ("preprocess", "classify")), ("add_sub", ())]
    assert sum("pipeline is an ensemble of preprocess, classify" in n for n in result.notes) == 1


def ensemble_point(steps: bool = True) -> PointResult:
    point = Point(model="pipeline", batch_size=1, load=Load.concurrency(4))
    found = step_breakdown([BEFORE, AFTER], ("preprocess", "classify")) if steps else None
    return PointResult(**point.identity(), status=PointStatus.MEASURED, perf=numbers(point), steps=found)


def test_the_steps_csv_is_written_only_where_an_ensemble_was_measured() -> None:
    files = csv_files(AnalysisResult(triton_version="24.08-py3", points=[ensemble_point()]))
    rows = list(csv.DictReader(io.StringIO(files[STEPS_CSV])))
    assert [(r["Step"], r["Bottleneck"]) for r in rows] == [("preprocess", "No"), ("classify", "Yes")]
    assert rows[1]["Concurrency"] == "4" and float(rows[1]["Avg Queue (ms)"]) > 10
    plain = csv_files(AnalysisResult(triton_version="", points=[ensemble_point(steps=False)]))
    assert STEPS_CSV not in plain and INFERENCE_CSV in plain
    assert "steps" not in ensemble_point(steps=False).model_dump()


def test_status_keeps_the_steps_and_gives_them_back() -> None:
    original = ensemble_point()
    back = expand_point(compact_point(original))
    assert back.steps is not None and original.steps is not None
    assert [(s.model, s.bottleneck) for s in back.steps] == [("preprocess", False), ("classify", True)]
    assert back.steps[1].queue_ms == pytest.approx(original.steps[1].queue_ms, abs=0.001)


def test_a_bls_models_composing_models_are_loaded_before_it_broken_down_and_unloaded_after() -> None:
    triton = StandInTriton(max_batch_size={"pipeline_bls": 8, "preprocess": 8, "classify": 8})
    s = spec(["pipeline_bls"], [1], [1])
    s.models[0].bls_composing_models = ["preprocess", "classify"]
    seen: list[Point] = []

    def run(point: Point, settings: object) -> object:
        seen.append(point)
        return numbers(point)

    result = engine(s, triton, Recorder(), run=run).run(AnalysisResult(triton_version=""))
    assert triton.calls == ["load preprocess", "load classify", "load pipeline_bls", "unload pipeline_bls",
                            "unload preprocess", "unload classify"]  # fmt: skip
    assert seen[0].composing == ("preprocess", "classify")
    assert any("pipeline_bls is a BLS model calling preprocess, classify" in n for n in result.notes)


def test_a_bls_composing_model_that_does_not_load_fails_its_model_in_one_sentence() -> None:
    triton = StandInTriton(max_batch_size={"pipeline_bls": 8, "add_sub": 8}, fails_to_load={"classify"})
    s = spec(["pipeline_bls", "add_sub"], [1], [1])
    s.models[0].bls_composing_models = ["classify"]
    result = engine(s, triton, Recorder()).run(AnalysisResult(triton_version=""))
    failed, measured = result.models
    assert failed.status.value == "LoadFailed"
    assert (failed.error or "").startswith("pipeline_bls's BLS composing model classify did not load")
    assert measured.status.value == "Profiled" and [p.model for p in result.points] == ["add_sub"]


def test_model_analyzers_bls_composing_models_key_becomes_the_flag() -> None:
    config = read_ma_config({"profile_models": "pipeline_bls", "bls_composing_models": ["preprocess", "classify"]})
    assert config.argv[config.argv.index("--bls-composing-models") + 1] == "preprocess,classify"
