"""Several models measured together on one server (spec.profileModelsConcurrently): the rounds that keep their
windows the same (adapters/perf_analyzer.measure_together, with a stand-in for each perf_analyzer run), the
engine's pass over the shared points, the best combination, and what is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from modelanalysis import job_commands
from modelanalysis.adapters.perf_analyzer import PerfAnalyzerError, measure_together
from modelanalysis.core.html_report import render_html
from modelanalysis.core.load import Load
from modelanalysis.core.objectives import best_together
from modelanalysis.core.perf import PerfMeasurement, PerfRun, PerfWindow, PointMeasurementError
from modelanalysis.core.report import INFERENCE_CSV, csv_files
from modelanalysis.core.results import (
    AnalysisResult,
    BestTogether,
    ModelStatus,
    PointResult,
    PointStatus,
    expected_point_count,
)
from modelanalysis.core.spec import AtMost, Constraints, MeasurementSettings, Objective, SweepSpec
from modelanalysis.core.sweep import Point
from modelanalysis.kube import objects
from modelanalysis.kube.conditions import together_status
from modelanalysis.kube.resource import MAX_MODELS_TOGETHER, ModelAnalysisSpec
from modelanalysis.kube.settings import OperatorSettings
from tests.fakes import Recorder, StandInTriton, engine, numbers, spec

SETTINGS = OperatorSettings(load_generator_image="ghcr.io/modelanalysis/modelanalysis:0.1.0")

SUMMARY = PerfMeasurement(throughput_infer_per_sec=100, latency_p50_ms=1, latency_p90_ms=2, latency_p95_ms=3,
                          latency_p99_ms=4)  # fmt: skip


class Members:
    """Each call is one perf_analyzer run of one member: steady windows for `steady`, noisy for the others."""

    def __init__(self, steady: str, fails: str = "") -> None:
        self.steady, self.fails, self.runs, self.now = steady, fails, [], 0.0

    def clock(self) -> float:
        return self.now

    def __call__(self, point: Point, settings: MeasurementSettings, *_: object) -> PerfRun:
        self.runs.append(point.model)
        self.now += 1.0
        if point.model == self.fails:
            raise PerfAnalyzerError(f"perf_analyzer failed (exit 99): {point.model} errored")
        windows = [100.0, 100.5, 99.5] if point.model == self.steady else [50.0, 80.0, 65.0]
        return PerfRun(SUMMARY, [PerfWindow(w, 4.0) for w in windows], 100)


def together(members: Members, **settings: object) -> list[PerfMeasurement | PerfAnalyzerError]:
    points = [Point(model=m, batch_size=1, load=Load.concurrency(2)) for m in ("a", "b")]
    s = MeasurementSettings.model_validate({"maxWindows": 9, **settings})
    return measure_together(points, s, "h:8001", "h:8000", Path("perf_analyzer"), members.clock, members,
                            child_cpu=lambda: 0.0)  # fmt: skip


def test_members_are_measured_in_the_same_rounds_until_every_one_is_done() -> None:
    members = Members(steady="a")
    a, b = together(members)
    assert members.runs == ["a", "b"] * 3  # a converged after one run, and kept its load on while b went on
    assert isinstance(a, PerfMeasurement) and isinstance(b, PerfMeasurement)
    assert a.windows == b.windows and a.converged is True and b.converged is False
    assert a.load_seconds == b.load_seconds


def test_a_member_whose_first_run_fails_is_that_members_failure_only() -> None:
    members = Members(steady="a", fails="b")
    a, b = together(members)
    assert isinstance(a, PerfMeasurement) and isinstance(b, PerfAnalyzerError) and "b errored" in str(b)


def measured_together(
    models: list[str], s: SweepSpec, result: AnalysisResult | None = None, faster: str = ""
) -> tuple[AnalysisResult, StandInTriton, list[list[str]]]:
    """`faster`: the variant a stand-in perf_analyzer finds twice as fast (and its company no slower)."""
    triton = StandInTriton(max_batch_size={m: 8 for m in models})
    groups: list[list[str]] = []

    def run_together(points: object, settings: MeasurementSettings) -> list[PerfMeasurement | PointMeasurementError]:
        group = list(points)  # type: ignore[call-overload]
        groups.append([p.key for p in group])
        return [scaled(numbers(p), 2.0 if p.variant_name == faster else 1.0) for p in group]

    result = engine(s, triton, Recorder(), run_together=run_together).run(result or AnalysisResult(triton_version=""))
    return result, triton, groups


def scaled(perf: PerfMeasurement, by: float) -> PerfMeasurement:
    return perf.model_copy(update={k: getattr(perf, k) * by for k in
                                   ("throughput_infer_per_sec", "throughput_ci_low", "throughput_ci_high")})


def test_the_engine_loads_every_model_then_measures_each_point_for_all_at_once() -> None:
    s = spec(["a", "b"], [1, 4], [1, 2])
    s.profile_models_concurrently = True
    result, triton, groups = measured_together(["a", "b"], s)
    assert triton.calls[:2] == ["load a", "load b"] and triton.calls[-2:] == ["unload a", "unload b"]
    assert groups == [[f"a/b{b}/c{c}+b", f"b/b{b}/c{c}+a"] for b in (1, 4) for c in (1, 2)]
    assert all(p.measured_with == (["b"] if p.model == "a" else ["a"]) for p in result.points)
    assert [m.status for m in result.models] == [ModelStatus.PROFILED, ModelStatus.PROFILED]
    assert sum("a, b were loaded together" in n for n in result.notes) == 1
    header = csv_files(result)[INFERENCE_CSV].splitlines()[0]
    assert header.endswith("Measured With,Triton Version")
    assert result.best is not None and result.best.together is not None


def test_with_a_config_search_every_combination_of_one_variant_per_model_is_measured_in_its_company() -> None:
    s = SweepSpec.model_validate({
        "models": [{"name": "a", "configSearch": {"instanceCounts": [1, 2]}}, {"name": "b"}],
        "batchSizes": [1], "concurrency": [2], "profileModelsConcurrently": True,
        "measurement": {"baselineDurationMs": 0, "metricsIntervalMs": 100},
    })  # fmt: skip
    result, triton, groups = measured_together(["a", "b"], s, faster="a_config_1")
    assert groups == [["a_config_default/b1/c2+b", "b/b1/c2+a_config_default"],
                      ["a_config_0/b1/c2+b", "b/b1/c2+a_config_0"],
                      ["a_config_1/b1/c2+b", "b/b1/c2+a_config_1"]]  # fmt: skip
    # b is loaded once; a is reloaded with each variant's config in place (its own config read first).
    assert triton.calls.count("load b") == 1 and "load a with 2 instances" in triton.calls
    assert [(m.name, m.status) for m in result.models] == [
        (name, ModelStatus.PROFILED) for name in ("a_config_default", "b", "a_config_0", "a_config_1")
    ]
    assert len(result.points) == 6 == expected_point_count(s, result)
    assert result.best is not None and result.best.together is not None
    best = result.best.together
    assert best.variants == ["a_config_1", "b"] and best.where == "a_config_1 + b at batch 1 concurrency 2"
    assert "Best together: a_config_1 + b at batch 1 concurrency 2" in render_html(result)
    again, triton, groups = measured_together(["a", "b"], s, result=result)  # resumed: nothing left to measure
    assert groups == [] and len(again.points) == 6


def test_too_many_combinations_together_are_refused_in_one_sentence_naming_each_models_share() -> None:
    search = {"instanceCounts": [1, 2, 3], "maxBatchSizes": [1, 2, 4]}
    with pytest.raises(ValidationError, match="10 a's x 10 b's variants make 100; list fewer config values"):
        SweepSpec.model_validate({"models": [{"name": "a", "configSearch": search},
                                             {"name": "b", "configSearch": search}],
                                  "concurrency": [1], "profileModelsConcurrently": True})  # fmt: skip


def point(model: str, load: int, throughput: float, p99: float, with_: str) -> PointResult:
    where = Point(model=model, batch_size=1, load=Load.concurrency(load), measured_with=[with_])
    perf = numbers(where).model_copy(
        update={
            "throughput_infer_per_sec": throughput,
            "throughput_ci_low": throughput * 0.98,
            "throughput_ci_high": throughput * 1.02,
            "latency_p99_ms": p99,
            "latency_p99_ci_low_ms": p99 - 0.1,
            "latency_p99_ci_high_ms": p99 + 0.1,
        }
    )
    return PointResult(**where.identity(), status=PointStatus.MEASURED, perf=perf)


def test_the_best_combination_has_every_model_within_the_constraints() -> None:
    points = [point("a", 1, 100, 2, "b"), point("b", 1, 50, 3, "a"),
              point("a", 4, 300, 4, "b"), point("b", 4, 120, 12, "a")]  # fmt: skip
    found = best_together(points, Objective.MAXIMIZE_THROUGHPUT, Constraints(p99_latency_ms=AtMost(max=10)))
    assert found is not None and found.load.value == 1 and found.satisfies_constraints  # at c4 b breaks 10 ms
    assert found.members == ["a/b1/c1+b", "b/b1/c1+a"] and "a 100.0 infer/sec" in found.why
    unbounded = best_together(points, Objective.MAXIMIZE_THROUGHPUT, Constraints())
    assert unbounded is not None and unbounded.load.value == 4 and "tied" not in unbounded.why
    close = [point("a", 1, 100, 2, "b"), point("b", 1, 50, 3, "a"),
             point("a", 2, 104, 2, "b"), point("b", 2, 50, 3, "a")]  # fmt: skip
    found = best_together(close, Objective.MAXIMIZE_THROUGHPUT, Constraints())
    assert found is not None and found.load.value == 2  # 154 against 150, intervals of +-2% each: not apart
    assert "statistically tied with 1 other combination" in found.why and "a + b at batch 1 concurrency 1" in found.why
    assert best_together([point("a", 1, 1, 1, "b").model_copy(update={"measured_with": None})],
                         Objective.MAXIMIZE_THROUGHPUT, Constraints()) is None  # fmt: skip


def test_what_cannot_be_measured_together_yet_is_refused_in_one_sentence() -> None:
    with pytest.raises(ValidationError, match="give two or more models"):
        SweepSpec(models=[{"name": "a"}], profile_models_concurrently=True)
    with pytest.raises(ValidationError, match="not a search"):
        SweepSpec(models=[{"name": "a"}, {"name": "b"}], concurrency_search={}, profile_models_concurrently=True)


def test_the_operators_job_for_models_together_runs_the_real_perf_point_with_every_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One Job for the group; its arguments, parsed by the real `model-analyzer perf-point`, give every member
    back (each with its own inputs), and its termination message gives each member's numbers or error."""
    s = ModelAnalysisSpec.model_validate({
        "models": [{"name": "add_sub"}, {"name": "text_encoder", "inputs": {"shapes": ["INPUT_IDS:16"]}}],
        "profileModelsConcurrently": True, "modelRepository": {"pvc": {"claimName": "models"}},
    })  # fmt: skip
    points = [Point(model=m, batch_size=1, load=Load.concurrency(2)) for m in s.model_names]
    job = objects.load_generator_group_job("example", "ns", 1, s, points, "10.0.0.5", SETTINGS, server_node="n1")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert not any(a.startswith("--model=") for a in c["args"])
    log = tmp_path / "termination-log"
    args = [f"--termination-log={log}" if a.startswith("--termination-log=") else a for a in c["args"]]
    seen: dict[str, Any] = {}

    def fake_together(members: list[Point], settings: MeasurementSettings, *_: object, **kw: Any) -> list[object]:
        seen["members"] = [(p.model, kw["input_args_of"](p.model)) for p in members]
        return [numbers(members[0]), PerfAnalyzerError("text_encoder errored")]

    monkeypatch.setattr(job_commands, "measure_together", fake_together)
    assert job_commands.run(c["command"][1], args) == 0
    assert seen["members"] == [("add_sub", []), ("text_encoder", ["--shape", "INPUT_IDS:16"])]
    first, second = json.loads(log.read_text())
    assert PerfMeasurement.model_validate(first).throughput_infer_per_sec == 200.0 and second == {
        "error": "text_encoder errored"
    }
    too_many = [{"name": f"m{i}"} for i in range(MAX_MODELS_TOGETHER + 1)]
    with pytest.raises(ValidationError, match="at most 4 models together"):
        ModelAnalysisSpec.model_validate({"models": too_many, "profileModelsConcurrently": True,
                                          "modelRepository": {"pvc": {"claimName": "models"}}})  # fmt: skip


def test_a_pipelines_config_search_is_not_made_in_company_and_says_why() -> None:
    """A stand-in ensemble `p` (of x): measured together in its own config; its searched variant refused."""
    s = SweepSpec.model_validate({
        "models": [{"name": "p", "configSearch": {"instanceCounts": [2]}}, {"name": "b"}],
        "batchSizes": [1], "concurrency": [2], "profileModelsConcurrently": True,
        "measurement": {"baselineDurationMs": 0, "metricsIntervalMs": 100},
    })  # fmt: skip
    triton = StandInTriton(max_batch_size={"p": 8, "x": 8, "b": 8})
    triton.overrides["p"] = {"name": "p", "platform": "ensemble", "max_batch_size": 8,
                             "ensemble_scheduling": {"step": [{"model_name": "x"}]}}  # fmt: skip
    groups: list[list[str]] = []

    def run_together(points: object, settings: MeasurementSettings) -> list[PerfMeasurement | PointMeasurementError]:
        group = list(points)  # type: ignore[call-overload]
        groups.append([p.key for p in group])
        return [numbers(p) for p in group]

    result = engine(s, triton, Recorder(), run_together=run_together).run(AnalysisResult(triton_version=""))
    assert groups == [["p_config_default/b1/c2+b", "b/b1/c2+p_config_default"]]
    refused = result.outcome("p_config_0")
    assert refused is not None and refused.status == ModelStatus.REFUSED
    assert refused.error is not None and "p is a pipeline" in refused.error and "without --concurrent" in refused.error
    assert [m.status for m in result.models if m.name != "p_config_0"] == [ModelStatus.PROFILED] * 2


def test_status_carries_the_best_combination() -> None:
    found = BestTogether(batch_size=1, load=Load.concurrency(2), members=["a_config_1/b1/c2+b", "b/b1/c2+a_config_1"],
                         satisfies_constraints=True, why="most throughput", variants=["a_config_1", "b"])  # fmt: skip
    status = together_status(found).model_dump(by_alias=True, exclude_none=True)
    assert status == {"batch": 1, "concurrency": 2, "variants": ["a_config_1", "b"],
                      "members": ["a_config_1/b1/c2+b", "b/b1/c2+a_config_1"], "satisfiesConstraints": True,
                      "summary": "best together: a_config_1 + b at batch 1 concurrency 2: most throughput"}  # fmt: skip
