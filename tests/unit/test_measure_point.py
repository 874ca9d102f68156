"""One point measured to convergence: the loop over perf_analyzer runs, with a stand-in for the run itself
that replays windows real perf_analyzer runs printed (tests/data/perf_analyzer/), and a stand-in clock.
The real perf_analyzer runs this loop in tests/integration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelanalysis.adapters.perf_analyzer import PerfAnalyzerError, measure_point
from modelanalysis.core.budget import p99_budget
from modelanalysis.core.load import Load
from modelanalysis.core.perf import PerfRun, PerfWindow, parse_perf_analyzer_csv, parse_perf_analyzer_windows
from modelanalysis.core.spec import MeasurementSettings
from modelanalysis.core.sweep import Point

DATA = Path(__file__).resolve().parents[1] / "data"
BUSY = [w.throughput_infer_per_sec for w in parse_perf_analyzer_windows(
    (DATA / "perf_analyzer" / "add_sub-b1-c1-24-windows-busy.txt").read_text())]  # fmt: skip
SUMMARY = parse_perf_analyzer_csv((DATA / "perf-analyzer-2.50-add_sub.csv").read_text(), Load.concurrency(1))
POINT = Point(model="add_sub", batch_size=1, concurrency=1)
NO_REQUESTS = (
    "perf_analyzer failed (exit 3): Pass [1] cb::Error: No valid requests recorded within time interval. "
    "Please use a larger time window."
)


class Replay:
    """Each call is one perf_analyzer run: the next 3 windows of `series`, or the next error; each run takes
    `seconds` of the stand-in clock."""

    def __init__(self, series: list[float], errors: list[str | None] | None = None, seconds: float = 2.0) -> None:
        self.series, self.errors, self.seconds = list(series), list(errors or []), seconds
        self.now = 0.0
        self.windows_ms: list[int] = []

    def clock(self) -> float:
        return self.now

    def __call__(self, point: Point, settings: MeasurementSettings, *_: object) -> PerfRun:
        self.now += self.seconds
        self.windows_ms.append(settings.measurement_interval_ms)
        error = self.errors.pop(0) if self.errors else None
        if error:
            raise PerfAnalyzerError(error)
        windows, self.series = self.series[:3], self.series[3:]
        return PerfRun(SUMMARY, [PerfWindow(w, 1.0) for w in windows], 300)


def measure(replay: Replay, **settings: object) -> object:
    s = MeasurementSettings.model_validate({"measurementIntervalMs": 500, **settings})
    return measure_point(POINT, s, "h:8001", "h:8000", Path("perf_analyzer"), replay.clock, replay)


def test_a_steady_point_ends_after_one_run() -> None:
    replay = Replay([1000.0, 1004.0, 998.0, 1000.0, 1000.0, 1000.0])
    m = measure(replay)
    assert len(replay.windows_ms) == 1
    assert m.converged is True and m.windows == 3  # type: ignore[attr-defined]


def test_a_noisy_point_runs_until_its_window_cap_and_keeps_its_estimate() -> None:
    replay = Replay(BUSY)
    m = measure(replay, maxWindows=12, convergencePct=5)
    assert len(replay.windows_ms) == 4  # 4 runs x 3 windows
    assert m.converged is False and "--max-trials 12" in m.convergence  # type: ignore[attr-defined]
    assert m.throughput_ci_low < m.throughput_infer_per_sec < m.throughput_ci_high  # type: ignore[attr-defined]


def test_a_noisy_point_stops_at_its_time_cap() -> None:
    replay = Replay(BUSY, seconds=4.0)
    m = measure(replay, maxPointSeconds=10, convergencePct=5)
    assert len(replay.windows_ms) == 2  # a third run would end past 10 s
    assert m.converged is False and "10 s" in m.convergence  # type: ignore[attr-defined]


def test_windows_too_short_for_a_request_are_doubled_not_failed() -> None:
    replay = Replay([50.0, 50.5, 49.8], errors=[NO_REQUESTS, NO_REQUESTS, None])
    m = measure(replay, measurementIntervalMs=300)
    assert replay.windows_ms == [300, 600, 1200]
    assert m.converged is True and "windows of 1200 ms" in m.convergence  # type: ignore[attr-defined]
    # The retried runs sent load too: Triton counted their inferences, so their time counts as load time.
    assert m.load_seconds == pytest.approx(6.0)  # type: ignore[attr-defined]


def test_windows_are_not_doubled_past_the_time_cap() -> None:
    replay = Replay([], errors=[NO_REQUESTS] * 10)
    with pytest.raises(PerfAnalyzerError, match="No valid requests"):
        measure(replay, measurementIntervalMs=4000, maxPointSeconds=20)
    assert replay.windows_ms == [4000]  # 3 windows of 8 s do not fit in 20 s


def test_a_streaming_point_whose_requests_outlast_every_window_says_how_to_bound_them() -> None:
    replay = Replay([], errors=[NO_REQUESTS] * 10)
    s = MeasurementSettings.model_validate({"measurementIntervalMs": 4000, "maxPointSeconds": 20})
    streaming = POINT.model_copy(update={"streaming": True})
    with pytest.raises(PerfAnalyzerError, match=r"give the output length in real data \(--input-data"):
        measure_point(streaming, s, "h:8001", "h:8000", Path("perf_analyzer"), replay.clock, replay)


def test_a_real_failure_of_the_first_run_fails_the_point() -> None:
    replay = Replay([], errors=["perf_analyzer failed (exit 99): Failed to retrieve results from inference request."])
    with pytest.raises(PerfAnalyzerError, match="exit 99"):
        measure(replay)


def test_a_later_run_that_fails_ends_the_point_with_what_was_measured() -> None:
    replay = Replay(BUSY, errors=[None, "perf_analyzer failed (exit 99): server is gone"])
    m = measure(replay)
    assert m.windows == 3 and m.converged is False  # type: ignore[attr-defined]
    assert "a later perf_analyzer run failed" in m.convergence  # type: ignore[attr-defined]


class P99Replay(Replay):
    """Runs whose report says p99 `p99_ms` and whose windows' p99 values come from `p99_windows`, 3 a run."""

    def __init__(self, p99_ms: float, p99_windows: list[float]) -> None:
        super().__init__([1000.0] * len(p99_windows))
        self.summary = SUMMARY.model_copy(update={"latency_p99_ms": p99_ms})
        self.p99_windows = list(p99_windows)

    def __call__(self, point: Point, settings: MeasurementSettings, *_: object) -> PerfRun:
        self.now += self.seconds
        self.windows_ms.append(settings.measurement_interval_ms)
        windows, self.p99_windows = self.p99_windows[:3], self.p99_windows[3:]
        return PerfRun(self.summary, [PerfWindow(1000.0, w) for w in windows], 1500)


def measure_against(replay: Replay, budget: float | None, **settings: object) -> Any:
    s = MeasurementSettings.model_validate({"measurementIntervalMs": 500, **settings})
    return measure_point(POINT, s, "h:8001", "h:8000", Path("perf_analyzer"), replay.clock, replay,
                         budgets=p99_budget(budget))  # fmt: skip


def test_a_search_point_whose_p99_interval_straddles_the_budget_takes_more_windows_until_it_decides() -> None:
    """Issue 21: the first run's p99 interval (1.5 to 6.5 ms) straddles the 5 ms budget; the second narrows it
    to surely under. Without a budget to decide against, the steady throughput ends the point after one run."""
    windows = [3.0, 5.0, 4.0, 3.8, 4.2, 4.0, 4.1, 3.9, 4.0]
    alone = P99Replay(4.0, windows)
    assert measure_against(alone, None).windows == 3 and len(alone.windows_ms) == 1
    searched = P99Replay(4.0, windows)
    m = measure_against(searched, 5.0)
    assert len(searched.windows_ms) == 2 and m.converged is True
    assert m.latency_p99_ci_high_ms < 5.0 and m.convergence.startswith("converged")


def test_a_point_that_stays_undecided_stops_at_its_cap_and_says_so() -> None:
    replay = P99Replay(5.0, [4.6, 5.4, 5.0] * 4)
    m = measure_against(replay, 5.0, maxWindows=12)
    assert len(replay.windows_ms) == 4  # to the window cap, not for ever
    assert m.converged is True  # throughput reached its precision: only the budget decision is open
    assert "--max-trials 12" in m.convergence and "straddles the 5 ms budget" in m.convergence
