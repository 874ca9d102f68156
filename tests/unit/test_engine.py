"""The sweep engine with stand-ins for what it drives: a Triton control that answers from a dict, a point
runner that returns numbers, and a journal that keeps every event. No server, no perf_analyzer: these test
the loop's decisions (order, resume, failures, stops). The real server and cluster tests run the same engine.
"""

from __future__ import annotations

import pytest

from modelanalysis.core.perf import InputsRefused, MeasureAgain, PerfMeasurement, PointMeasurementError
from modelanalysis.core.results import AnalysisResult, ModelOutcome, ModelStatus, PointResult, PointStatus
from modelanalysis.core.server_metrics import ResourceMetrics
from modelanalysis.core.spec import Constraints, MeasurementSettings, SweepSpec
from modelanalysis.core.sweep import Point
from modelanalysis.engine import STABILITY_PERCENTAGE_NOTE, EngineEvent, EventKind, SweepEngine
from tests.fakes import NO_METRICS, Recorder, StandInTriton, engine, numbers, spec


def test_baseline_then_each_model_point_by_point_then_unload() -> None:
    triton, journal = StandInTriton({"a": 8, "b": 0}), Recorder()
    result = engine(spec(["a", "b"], [1, 4], [1, 2]), triton, journal).run(AnalysisResult(triton_version="x"))
    assert [p.point.key for p in result.points] == ["a/b1/c1", "a/b1/c2", "a/b4/c1", "a/b4/c2", "b/b1/c1", "b/b1/c2"]
    assert all(p.status == PointStatus.MEASURED for p in result.points)
    assert triton.calls == ["load a", "unload a", "load b", "unload b"]
    assert result.baseline is not None and result.server_version == "2.51.0"
    assert [m.status for m in result.models] == [ModelStatus.PROFILED, ModelStatus.PROFILED]
    # b takes no batching: its batch-4 points are skipped with the reason, and the total shrinks to match.
    assert [s.point.key for s in result.models[1].skipped] == ["b/b4/c1", "b/b4/c2"]
    assert journal.events[0].kind == EventKind.BASELINE
    assert journal.events[-1].kind == EventKind.UNLOADED
    last = journal.kinds(EventKind.POINT_MEASURED)[-1]
    assert (last.done, last.total) == (6, 6)


def test_a_model_that_fails_to_load_is_recorded_and_the_others_still_run() -> None:
    triton, journal = StandInTriton({"a": 8, "b": 8}, fails_to_load={"a"}), Recorder()
    result = engine(spec(["a", "b"], [1], [1, 2]), triton, journal).run(AnalysisResult(triton_version="x"))
    assert result.models[0] == ModelOutcome(
        name="a", status=ModelStatus.LOAD_FAILED, error="failed to load 'a': ModuleNotFoundError"
    )
    assert [p.point.key for p in result.points] == ["b/b1/c1", "b/b1/c2"]
    failed = journal.kinds(EventKind.LOAD_FAILED)
    assert len(failed) == 1 and "ModuleNotFoundError" in failed[0].message
    assert failed[0].total == 2  # a's points no longer count


def test_a_point_that_cannot_be_measured_is_failed_with_its_reason_and_the_sweep_goes_on() -> None:
    def run(point: Point, settings: MeasurementSettings) -> PerfMeasurement:
        if point.load.value == 2:
            raise PointMeasurementError("perf_analyzer failed (exit 99): Failed to retrieve results from inference")
        return numbers(point)

    triton, journal = StandInTriton({"a": 8}), Recorder()
    result = engine(spec(["a"], [1, 4], [1, 2]), triton, journal, run).run(AnalysisResult(triton_version="x"))
    assert [p.status for p in result.points] == [PointStatus.MEASURED, PointStatus.FAILED] * 2
    assert "exit 99" in (result.points[1].error or "")
    assert result.points[1].perf is None
    assert len(journal.kinds(EventKind.POINT_FAILED)) == 2
    assert triton.calls == ["load a", "unload a"]


def test_inputs_the_load_generator_refuses_refuse_the_model_not_each_point_and_the_others_run() -> None:
    """The operator's Job reads the input-data file first; one that does not parse refuses the model."""

    def run(point: Point, settings: MeasurementSettings) -> PerfMeasurement:
        if point.model == "a":
            raise InputsRefused("a: input data inputs/a.json is not JSON (Expecting value at line 1, column 1)")
        return numbers(point)

    triton, journal = StandInTriton({"a": 8, "b": 8}), Recorder()
    result = engine(spec(["a", "b"], [1, 4], [1, 2]), triton, journal, run).run(AnalysisResult(triton_version="x"))
    outcome = result.outcome("a")
    assert outcome is not None and outcome.status == ModelStatus.REFUSED
    assert outcome.error is not None and "is not JSON" in outcome.error
    assert [p.point.key for p in result.points] == ["b/b1/c1", "b/b1/c2", "b/b4/c1", "b/b4/c2"]  # none of a's
    assert len(journal.kinds(EventKind.REFUSED)) == 1 and triton.calls[:2] == ["load a", "unload a"]


def test_a_point_cut_off_from_outside_is_measured_again_in_a_fresh_window() -> None:
    """The operator's runner raises MeasureAgain when a point's load-generator pod was deleted: the engine
    starts the point over (new metrics window), and records it once."""
    tries: list[str] = []

    def run(point: Point, settings: MeasurementSettings) -> PerfMeasurement:
        tries.append(point.key)
        if tries.count(point.key) == 1 and point.load.value == 2:
            raise MeasureAgain("its pod lg-1 was deleted")
        return numbers(point)

    triton, journal = StandInTriton({"a": 8}), Recorder()
    result = engine(spec(["a"], [1], [1, 2]), triton, journal, run).run(AnalysisResult(triton_version="x"))
    assert tries == ["a/b1/c1", "a/b1/c2", "a/b1/c2"]
    assert [(p.point.key, p.status) for p in result.points] == [
        ("a/b1/c1", PointStatus.MEASURED), ("a/b1/c2", PointStatus.MEASURED)
    ]  # fmt: skip
    assert len(journal.kinds(EventKind.POINT_MEASURED)) == 2 and not journal.kinds(EventKind.POINT_FAILED)


def test_a_resumed_run_measures_only_what_the_result_lacks() -> None:
    """The operator rebuilds the result from status after a restart: nothing in it is measured again."""
    s = spec(["a", "b"], [1], [1, 2])
    before = AnalysisResult(
        triton_version="x",
        baseline=ResourceMetrics(),
        models=[
            ModelOutcome(name="a", status=ModelStatus.PROFILED, max_batch_size=8),
            ModelOutcome(name="b", status=ModelStatus.INTERRUPTED, max_batch_size=8),
        ],
        points=[
            PointResult(model=m, batch_size=1, concurrency=c, status=PointStatus.MEASURED)
            for m, c in (("a", 1), ("a", 2), ("b", 1))
        ],
    )
    ran: list[str] = []

    def run(point: Point, settings: MeasurementSettings) -> PerfMeasurement:
        ran.append(point.key)
        return numbers(point)

    triton, journal = StandInTriton({"a": 8, "b": 8}), Recorder()
    result = engine(s, triton, journal, run).run(before)
    assert ran == ["b/b1/c2"]
    assert triton.calls == ["load b", "unload b"]  # a was done; the baseline was kept
    assert not journal.kinds(EventKind.BASELINE)
    assert [m.status for m in result.models] == [ModelStatus.PROFILED, ModelStatus.PROFILED]
    assert len(result.models) == 2 and len(result.points) == 4


class Stop(Exception):
    pass


def test_a_stop_leaves_the_server_as_it_was_and_keeps_what_was_measured() -> None:
    s = spec(["a"], [1], [1, 2, 4])
    triton, journal = StandInTriton({"a": 8}), Recorder()
    checks = 0

    def checkpoint() -> None:
        nonlocal checks
        checks += 1
        if checks == 3:  # before the model, before point 1, then stop before point 2
            raise Stop()

    result = AnalysisResult(triton_version="x")
    with pytest.raises(Stop):
        engine(s, triton, journal, checkpoint=checkpoint).run(result)
    assert [p.point.key for p in result.points] == ["a/b1/c1"]
    assert triton.calls == ["load a", "unload a"] and not triton.loaded
    assert result.models[0].status == ModelStatus.INTERRUPTED


def test_a_stopped_operator_run_leaves_the_model_loaded_for_the_run_that_resumes_on_the_same_pod() -> None:
    """An operator killed mid-sweep must not unload the model while the next operator measures on it."""
    triton, journal = StandInTriton({"a": 8}), Recorder()

    def checkpoint() -> None:
        if triton.calls == ["load a"]:
            raise Stop()

    with pytest.raises(Stop):
        engine(spec(["a"], [1], [1]), triton, journal, checkpoint=checkpoint, tidy_on_stop=False).run(
            AnalysisResult(triton_version="x")
        )
    assert triton.calls == ["load a"] and triton.loaded == {"a"}


def test_a_model_the_user_had_loaded_stays_loaded_on_their_server() -> None:
    triton, journal = StandInTriton({"a": 8}, preloaded={"a"}), Recorder()
    engine(spec(["a"], [1], [1]), triton, journal, owns_server=False).run(AnalysisResult(triton_version="x"))
    assert triton.calls == []
    assert triton.is_model_ready("a")


def test_the_old_stability_flag_is_noted_once_not_refused() -> None:
    triton, journal = StandInTriton({"a": 8}), Recorder()
    s = spec(["a"], [1], [1, 2], stabilityPercentage=25)
    result = engine(s, triton, journal).run(AnalysisResult(triton_version="x"))
    assert result.notes.count(STABILITY_PERCENTAGE_NOTE) == 1
    assert all(p.status == PointStatus.MEASURED for p in result.points)


def test_the_baseline_wait_is_the_engines_wait_so_a_stop_can_interrupt_it() -> None:
    waited: list[float] = []

    def wait(seconds: float) -> None:
        waited.append(seconds)
        raise Stop()

    triton, journal = StandInTriton({"a": 8}), Recorder()
    result = AnalysisResult(triton_version="x")
    with pytest.raises(Stop):
        engine(spec(["a"], [1], [1], baselineDurationMs=5000), triton, journal, wait=wait).run(result)
    assert waited == [5.0] and result.baseline is None and not triton.calls


def test_each_point_records_where_it_ran_and_a_busy_load_generator_is_noted() -> None:
    from modelanalysis.core.results import Placement
    from modelanalysis.engine import LOAD_GENERATOR_BOTTLENECK_NOTE

    nodes = iter(["node-a", "node-b"])

    def where() -> Placement:
        return Placement(server_node="gpu", load_generator_node=next(nodes), load_generator_placement="Anywhere")

    def busy_at_c2(point: Point, settings: MeasurementSettings) -> PerfMeasurement:
        return numbers(point).model_copy(update={"load_generator_bottleneck": point.load.value == 2})

    result = engine(spec(["a"], [1], [1, 2]), StandInTriton({"a": 8}), Recorder(), busy_at_c2, where_ran=where).run(
        AnalysisResult(triton_version="x")
    )
    assert [p.placement.load_generator_node for p in result.points] == ["node-a", "node-b"]
    assert {p.placement.server_node for p in result.points} == {"gpu"}
    assert result.notes.count(LOAD_GENERATOR_BOTTLENECK_NOTE) == 1


def test_the_result_carries_the_best_point_by_the_specs_objective_within_its_constraints() -> None:
    # numbers(): throughput 100 x batch x concurrency; give p99 = concurrency ms so a budget cuts the climb.
    def run(point: Point, settings: MeasurementSettings) -> PerfMeasurement:
        return numbers(point).model_copy(update={"latency_p99_ms": float(point.load.value)})

    s = spec(["a", "b"], [1], [1, 2, 4, 8]).model_copy(
        update={"constraints": Constraints.model_validate({"p99LatencyMs": {"max": 4}})}
    )
    snapshots: list[tuple[EventKind, str | None]] = []

    def journal(event: EngineEvent, result: AnalysisResult) -> None:
        best = result.best.overall if result.best else None
        snapshots.append((event.kind, best.key if best else None))

    triton = StandInTriton({"a": 8, "b": 8})
    result = SweepEngine(s, triton, NO_METRICS, run, journal).run(AnalysisResult(triton_version="x"))
    assert result.best is not None and result.best.overall is not None
    assert result.best.overall.key == "a/b1/c4"  # c8 breaks the 4 ms budget; a comes first among equals
    assert result.best.overall.satisfies_constraints
    assert [b.key for b in result.best.per_model] == ["a/b1/c4", "b/b1/c4"]
    assert result.constraints == s.constraints and result.objective == s.objective
    # The journal always sees the best so far: after a's first point it is that point.
    assert ("point-measured", "a/b1/c1") in [(k.value, key) for k, key in snapshots]


def test_when_no_point_satisfies_the_result_says_so_and_names_the_closest() -> None:
    s = spec(["a"], [1], [1, 2]).model_copy(
        update={"constraints": Constraints.model_validate({"throughputInferPerSec": {"min": 1000}})}
    )
    result = engine(s, StandInTriton({"a": 8}), Recorder()).run(AnalysisResult(triton_version="x"))
    assert result.best is not None and result.best.overall is not None
    assert result.best.overall.key == "a/b1/c2" and not result.best.overall.satisfies_constraints
    closest = "no point satisfies the constraints; closest: throughput 200 < 1,000 (by 80%)"
    assert result.best.overall.why.startswith(closest)


def saturating(point: Point) -> PerfMeasurement:
    """Throughput that rises to concurrency 4 and stays flat after; p99 that grows with the load."""
    thr = 1000.0 * min(point.load.value, 4)
    return PerfMeasurement(
        throughput_infer_per_sec=thr, latency_p50_ms=1, latency_p90_ms=1, latency_p95_ms=1,
        latency_p99_ms=float(point.load.value), throughput_ci_low=thr * 0.98, throughput_ci_high=thr * 1.02,
    )  # fmt: skip


def test_a_concurrency_search_measures_until_saturation_and_records_the_rest_as_skipped() -> None:
    s = SweepSpec.model_validate(
        {"models": [{"name": "a"}], "batchSizes": [1, 2], "concurrencySearch": {"maxConcurrency": 64},
         "measurement": {"baselineDurationMs": 0, "metricsIntervalMs": 100}}
    )  # fmt: skip
    journal = Recorder()
    run = engine(s, StandInTriton({"a": 8}), journal, lambda p, _: saturating(p))
    result = run.run(AnalysisResult(triton_version=""))
    assert [p.load.value for p in result.points if p.batch_size == 1] == [1, 2, 4, 8, 16]
    skipped = result.models[0].skipped
    assert [k.point.load.value for k in skipped if k.point.batch_size == 1] == [32, 64]
    assert all("saturated" in k.reason for k in skipped)
    last = journal.kinds(EventKind.PROFILED)[-1]
    assert (last.done, last.total) == (10, 10)  # the total shrank to what the search measured
    # Resumed from its own result, the search asks for nothing more.
    again = engine(s, StandInTriton({"a": 8}), Recorder()).run(result)
    assert len(again.points) == 10 and len(again.models[0].skipped) == 4


def test_a_latency_budget_search_bisects_and_the_best_stays_under_the_budget() -> None:
    s = SweepSpec.model_validate(
        {"models": [{"name": "a"}], "concurrencySearch": {}, "constraints": {"p99LatencyMs": {"max": 3}},
         "measurement": {"baselineDurationMs": 0, "metricsIntervalMs": 100}}
    )  # fmt: skip
    result = engine(s, StandInTriton({"a": 8}), Recorder(), lambda p, _: saturating(p)).run(
        AnalysisResult(triton_version="")
    )
    assert [p.load.value for p in result.points] == [1, 2, 4, 3]
    assert result.best is not None and result.best.overall is not None
    assert result.best.overall.load.value == 3


def test_each_config_variant_is_loaded_through_its_override_and_measured_as_its_own_model() -> None:
    s = SweepSpec.model_validate(
        {"models": [{"name": "a", "configSearch": {"instanceCounts": [1, 2], "maxBatchSizes": [4, 128]}}],
         "batchSizes": [1, 8], "measurement": {"baselineDurationMs": 0, "metricsIntervalMs": 100}}
    )  # fmt: skip
    triton = StandInTriton({"a": 8})
    result = engine(s, triton, Recorder()).run(AnalysisResult(triton_version=""))
    names = [m.name for m in result.models]
    assert names == ["a_config_default", "a_config_0", "a_config_1", "a_config_2", "a_config_3"]
    assert triton.calls[:4] == ["load a", "unload a", "load a with 1 instances", "unload a"]
    assert [m.status for m in result.models] == [ModelStatus.PROFILED] * 2 + [ModelStatus.LOAD_FAILED] + [
        ModelStatus.PROFILED, ModelStatus.LOAD_FAILED]  # fmt: skip
    assert result.models[1].changes == "1 instance, max batch 4" and result.models[3].instance_group == "2:CPU"
    # max batch 4: batch 8 cannot be sent to that variant, so it is skipped there.
    assert [k.point.key for k in result.models[1].skipped] == ["a_config_0/b8/c1"]
    assert [p.point.key for p in result.points] == [
        "a_config_default/b1/c1", "a_config_default/b8/c1", "a_config_0/b1/c1", "a_config_2/b1/c1"]  # fmt: skip
    assert all(p.model == "a" for p in result.points)  # perf_analyzer is pointed at the model Triton serves
    assert result.best is not None and [b.model for b in result.best.per_model] == ["a"]  # one answer per model
    # Resumed, nothing is measured or loaded again.
    again = StandInTriton({"a": 8})
    engine(s, again, Recorder()).run(result)
    assert again.calls == []


def test_a_combination_that_sets_what_the_models_own_config_has_is_not_measured_again() -> None:
    s = SweepSpec.model_validate(
        {"models": [{"name": "a", "configSearch": {"instanceCounts": [1, 2], "dynamicBatching": [False]}}],
         "measurement": {"baselineDurationMs": 0, "metricsIntervalMs": 100}}
    )  # fmt: skip
    triton, journal = StandInTriton({"a": 8}), Recorder()
    result = engine(s, triton, journal).run(AnalysisResult(triton_version=""))
    same, other = result.models[1], result.models[2]
    assert (same.name, same.status) == ("a_config_0", ModelStatus.PROFILED)
    assert same.changes == "1 instance, no dynamic batching: the model's own config, measured as a_config_default"
    assert [p.variant for p in result.points] == ["a_config_default", "a_config_1"]
    assert triton.calls == ["load a", "unload a", "load a with 2 instances", "unload a"]
    assert other.instance_group == "2:CPU"
    last = journal.kinds(EventKind.PROFILED)[-1]
    assert (last.done, last.total) == (2, 2)
