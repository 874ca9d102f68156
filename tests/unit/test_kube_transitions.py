"""What the operator says for each step the engine reports: status messages and Events, without a cluster."""

from __future__ import annotations

import pytest

from modelanalysis.core.perf import PerfMeasurement
from modelanalysis.core.results import PointResult, PointStatus
from modelanalysis.core.sweep import Point
from modelanalysis.engine import EngineEvent, EventKind
from modelanalysis.kube.resource import Phase, Reason, TrialStatus
from modelanalysis.kube.transitions import (
    EVENT_MESSAGE,
    KubeEvent,
    Standing,
    analysis_standing,
    event_for,
    progress_message,
    trials_verdict,
)

POINT = Point(model="add_sub", batch_size=4, concurrency=2)


def measured(converged: bool | None) -> PointResult:
    perf = PerfMeasurement(
        throughput_infer_per_sec=1000, latency_p50_ms=1, latency_p90_ms=2, latency_p95_ms=3, latency_p99_ms=4,
        converged=converged, convergence="not converged: +-9.1% after 30 windows (the most allowed)",
    )  # fmt: skip
    return PointResult(model="add_sub", batch_size=4, concurrency=2, status=PointStatus.MEASURED, perf=perf)


def event(kind: EventKind, message: str = "", result: PointResult | None = None) -> EngineEvent:
    return EngineEvent(kind, 1, 9, "add_sub", POINT if "point" in kind.value else None, message, result)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            EventKind.BASELINE_MEASURED,
            KubeEvent("Normal", Reason.BASELINE_MEASURED, "Measured the server with no model loaded"),
        ),
        (EventKind.LOADED, KubeEvent("Normal", Reason.MODEL_LOADED, "Loaded add_sub")),
        (EventKind.PROFILED, KubeEvent("Normal", Reason.MODEL_PROFILED, "Profiled add_sub: 9 points")),
        (EventKind.BASELINE, None),
        (EventKind.LOADING, None),
        (EventKind.POINT, None),
        (EventKind.UNLOADED, None),
    ],
)  # fmt: skip
def test_events_for_the_steps_of_a_sweep(kind: EventKind, expected: KubeEvent | None) -> None:
    assert event_for(event(kind, "9 points")) == expected


def test_a_model_that_fails_to_load_is_a_warning_with_tritons_words_capped() -> None:
    posted = event_for(event(EventKind.LOAD_FAILED, "failed to load 'add_sub': " + "x" * 2000))
    assert posted is not None and posted.type == "Warning" and posted.reason == Reason.MODEL_LOAD_FAILED
    assert posted.message.startswith("add_sub failed to load: failed to load 'add_sub'")
    assert len(posted.message) < EVENT_MESSAGE + 40


def test_a_failed_point_is_a_warning_that_names_it() -> None:
    posted = event_for(event(EventKind.POINT_FAILED, "perf_analyzer failed (exit 99)"))
    assert posted == KubeEvent("Warning", Reason.POINT_FAILED, "add_sub/b4/c2: perf_analyzer failed (exit 99)")


def test_a_converged_point_is_quiet_and_one_that_hit_its_cap_says_so() -> None:
    assert event_for(event(EventKind.POINT_MEASURED, result=measured(True))) is None
    posted = event_for(event(EventKind.POINT_MEASURED, result=measured(False)))
    assert posted is not None and posted.type == "Normal" and posted.reason == Reason.POINT_NOT_CONVERGED
    assert posted.message.startswith("add_sub/b4/c2 measured, not converged: +-9.1%")


def test_progress_messages_name_the_point_or_model() -> None:
    assert progress_message(event(EventKind.POINT)) == "measuring add_sub/b4/c2"
    assert progress_message(event(EventKind.POINT_MEASURED, result=measured(True))) == "measured add_sub/b4/c2"
    assert progress_message(event(EventKind.LOADING)) == "loading add_sub"
    assert progress_message(event(EventKind.UNLOADED)) is None


def test_every_reason_is_a_distinct_camel_case_word() -> None:
    values = [r.value for r in Reason]
    assert len(values) == len(set(values))
    assert all(v[0].isupper() and v.isalnum() for v in values)


def test_the_analysis_phase_is_derived_from_its_trials() -> None:
    queued = TrialStatus(name="t", phase=Phase.QUEUED.value, message="queued: 2nd for a Triton pod, 1 of 1 in use")
    assert analysis_standing([queued], 1) == Standing(Phase.QUEUED, "queued: 2nd for a Triton pod, 1 of 1 in use",
                                                      None)  # fmt: skip
    one = TrialStatus(name="t", phase=Phase.PROFILING.value, message="measuring add_sub/b1/c2", pod="e-g1-triton")
    assert analysis_standing([one], 1) == Standing(Phase.PROFILING, "measuring add_sub/b1/c2", "e-g1-triton")
    other = TrialStatus(name="u", phase=Phase.QUEUED.value, message="queued", pod=None)
    several = analysis_standing([one, other], 2)
    assert several == Standing(Phase.PROFILING, "2 trials, at most 2 at once", "e-g1-triton")
    done = TrialStatus(name="t", phase=Phase.SUCCEEDED.value, message="4 points measured")
    assert analysis_standing([done], 1) is None  # the run's end speaks then


def test_a_sole_trial_that_fails_fails_the_analysis_in_its_own_words() -> None:
    failed = TrialStatus(name="t", phase=Phase.FAILED.value, reason="ImagePullFailed", message="image x: not found")
    assert trials_verdict([failed]).all_failed == ("ImagePullFailed", "image x: not found")
    other = failed.model_copy(update={"name": "u"})
    both = trials_verdict([failed, other]).all_failed
    assert both is not None and both[1].startswith("every trial failed. t: image x: not found; u:")
