"""Resuming a stopped CLI run (core/resume.py): which saved results can be continued as the analysis asked now."""

from __future__ import annotations

from modelanalysis.core.perf import PerfMeasurement
from modelanalysis.core.results import AnalysisResult, ModelStatus
from modelanalysis.core.resume import first_difference, resume_refusal, spec_record
from modelanalysis.core.spec import MeasurementSettings
from modelanalysis.core.sweep import Point
from tests.fakes import Recorder, StandInTriton, engine, numbers, spec


def saved(**kw: object) -> AnalysisResult:
    return AnalysisResult(triton_version="24.08-py3", spec=spec_record(spec(["add_sub"], [1, 4], [1, 2])), **kw)  # type: ignore[arg-type]


def test_an_unfinished_run_of_the_same_analysis_can_be_resumed() -> None:
    assert resume_refusal(saved(), spec(["add_sub"], [1, 4], [1, 2]), "24.08-py3") is None
    assert (
        resume_refusal(saved(interrupted=True, finished_at=5.0), spec(["add_sub"], [1, 4], [1, 2]), "24.08-py3") is None
    )


def test_another_analysis_is_refused_naming_what_differs() -> None:
    refusal = resume_refusal(saved(), spec(["add_sub"], [1, 8], [1, 2]), "24.08-py3")
    assert (
        refusal == "it is another analysis (batchSizes[1] was 4, now 8): give the same flags, or run without --resume"
    )
    assert "Triton 24.08-py3, not 25.01-py3" in (
        resume_refusal(saved(), spec(["add_sub"], [1, 4], [1, 2]), "25.01-py3") or ""
    )
    finished = resume_refusal(saved(finished_at=5.0), spec(["add_sub"], [1, 4], [1, 2]), "24.08-py3")
    assert finished is not None and "finished" in finished
    old = AnalysisResult(triton_version="24.08-py3")
    assert "older version" in (resume_refusal(old, spec(["add_sub"], [1, 4], [1, 2]), "24.08-py3") or "")


def test_first_difference_names_the_path() -> None:
    assert first_difference({"a": {"b": [1, 2]}}, {"a": {"b": [1, 3]}}) == "a.b[1] was 2, now 3"
    assert first_difference({"a": 1}, {"a": 1, "c": "x"}) == "c was not set, now 'x'"
    assert first_difference({"a": [1]}, {"a": [1, 2]}) == "a was [1], now [1, 2]"
    assert first_difference({"a": 1}, {"a": 1}) is None


def test_a_resumed_engine_measures_only_what_the_stopped_run_lacks() -> None:
    s = spec(["add_sub"], [1], [1, 2, 4])
    triton = StandInTriton(max_batch_size={"add_sub": 8})
    complete = engine(s, triton, Recorder()).run(AnalysisResult(triton_version=""))
    stopped = complete.model_copy(deep=True)
    stopped.points = stopped.points[:1]
    stopped.models[0].status = ModelStatus.INTERRUPTED
    stopped.finished_at = None
    measured: list[str] = []

    def run(point: Point, settings: MeasurementSettings) -> PerfMeasurement:
        measured.append(point.key)
        return numbers(point)

    resumed = engine(s, StandInTriton(max_batch_size={"add_sub": 8}), Recorder(), run=run).run(stopped)
    assert measured == ["add_sub/b1/c2", "add_sub/b1/c4"]
    assert [p.key for p in resumed.points] == [p.key for p in complete.points]
    assert resumed.points[0].started_at == complete.points[0].started_at  # kept, not measured again
