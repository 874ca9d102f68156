"""When a point has converged: the stopping rule and the interval, on windows real perf_analyzer runs printed.

tests/data/perf_analyzer/*.txt are verbose outputs (`-v --percentile 99`) of perf_analyzer 2.50 against the
real Triton 2.51 serving examples/models/add_sub on this 2-core machine while it compiled Kubernetes (load
average 6-8): the noise a busy machine really has.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest

from modelanalysis.core.convergence import (
    MIN_WINDOWS,
    Verdict,
    judge,
    longer_window_ms,
    mean_interval,
    t_quantile_975,
    warmup_windows,
)
from modelanalysis.core.load import Load
from modelanalysis.core.perf import (
    PerfRun,
    PerfWindow,
    combine_runs,
    parse_perf_analyzer_csv,
    parse_perf_analyzer_windows,
    parse_request_count,
)

DATA = Path(__file__).resolve().parents[1] / "data"
BUSY_24 = DATA / "perf_analyzer" / "add_sub-b1-c1-24-windows-busy.txt"
ONE_RUN = DATA / "perf_analyzer" / "add_sub-b4-c2-verbose-busy.txt"
INTERRUPTED = DATA / "perf_analyzer" / "add_sub-b1-c2-verbose-sigint.txt"
REPORT = DATA / "perf-analyzer-2.50-add_sub.csv"


def busy_throughputs() -> list[float]:
    return [w.throughput_infer_per_sec for w in parse_perf_analyzer_windows(BUSY_24.read_text())]


# -- Student's t ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("df", "expected"), [(1, 12.706), (2, 4.303), (10, 2.228), (30, 2.042), (40, 2.021), (120, 1.980), (10**6, 1.960)]
)
def test_t_quantiles_match_the_tables(df: int, expected: float) -> None:
    assert t_quantile_975(df) == pytest.approx(expected, abs=1e-3)


def test_a_t_interval_needs_two_values() -> None:
    with pytest.raises(ValueError):
        t_quantile_975(0)


# -- the interval -----------------------------------------------------------------------------------------
def test_interval_of_three_windows() -> None:
    interval = mean_interval([1.0, 2.0, 3.0])
    assert interval is not None
    assert interval.mean == 2.0
    assert interval.half_width == pytest.approx(4.303 * 1.0 / math.sqrt(3), rel=1e-3)
    assert (interval.low, interval.high) == pytest.approx((2.0 - interval.half_width, 2.0 + interval.half_width))
    assert interval.relative_half_width_pct == pytest.approx(100 * interval.half_width / 2.0)


def test_fewer_windows_than_the_minimum_give_no_interval() -> None:
    assert mean_interval([5.0] * (MIN_WINDOWS - 1)) is None


def test_a_zero_mean_is_never_precise() -> None:
    interval = mean_interval([0.0, 0.0, 0.0])
    assert interval is not None and interval.relative_half_width_pct == math.inf


# -- warm-up ----------------------------------------------------------------------------------------------
def test_a_slow_first_window_is_dropped_as_warm_up() -> None:
    assert warmup_windows([300.0, 1000.0, 1010.0, 990.0, 1005.0, 995.0, 1000.0]) == 1


def test_a_steady_series_keeps_every_window() -> None:
    assert warmup_windows([1000.0, 1010.0, 990.0, 1005.0, 995.0, 1002.0]) == 0


def test_warm_up_is_at_most_the_first_window_and_needs_enough_left() -> None:
    assert warmup_windows([1.0, 100.0, 100.0, 101.0, 99.0, 100.0]) == 0  # 5 would be left: too few to judge
    series = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0, 100.0, 100.0, 100.0]
    assert warmup_windows(series) <= 1  # never the quietest stretch of a noisy series


# -- the stopping rule ------------------------------------------------------------------------------------
RULE = {"target_pct": 5.0, "max_windows": 30, "max_seconds": 30.0}


def test_tight_windows_converge_at_the_first_run() -> None:
    verdict = judge([1000.0, 1004.0, 998.0], elapsed_seconds=2.0, next_run_seconds=2.0, **RULE)
    assert verdict == Verdict(True, True, verdict.reason)
    assert verdict.reason.startswith("converged: +-")


def test_wide_windows_ask_for_another_run_while_time_is_left() -> None:
    verdict = judge([1850.69, 3353.98, 2647.68], elapsed_seconds=2.0, next_run_seconds=2.0, **RULE)
    assert not verdict.done and not verdict.converged


def test_the_time_cap_ends_a_point_that_has_not_converged_and_says_so() -> None:
    verdict = judge([1850.69, 3353.98, 2647.68], elapsed_seconds=27.0, next_run_seconds=4.0, **RULE)
    assert verdict.done and not verdict.converged
    assert "30 s" in verdict.reason and "target +-5%" in verdict.reason


def test_the_window_cap_ends_a_point() -> None:
    verdict = judge([1.0, 2.0, 3.0] * 4, 5.0, 1.0, target_pct=5.0, max_windows=12, max_seconds=100.0)
    assert verdict.done and not verdict.converged and "--max-trials 12" in verdict.reason


def test_a_window_cap_below_one_run_still_lets_a_run_finish() -> None:
    assert judge([1.0, 2.0, 3.0], 1.0, 1.0, target_pct=5.0, max_windows=1, max_seconds=100.0).done


def test_on_a_busy_machine_the_real_windows_do_not_fake_convergence() -> None:
    """The busy machine's 24 windows (CV about 25%, slow spells lasting seconds): judged run by run (3
    windows each) at 5%, the rule never claims convergence, and its interval keeps the series' mean."""
    series = busy_throughputs()
    assert len(series) == 24
    for n in range(3, 25, 3):
        assert not judge(series[:n], n * 0.6, 1.8, **{**RULE, "max_seconds": 1000.0}).converged
    interval = mean_interval(series)
    assert interval is not None and interval.low < statistics.fmean(series) < interval.high


def test_on_the_busy_windows_a_looser_target_converges() -> None:
    series = busy_throughputs()
    verdicts = [judge(series[:n], 0.0, 0.0, target_pct=15.0, max_windows=100, max_seconds=1e9) for n in (3, 6, 9)]
    assert any(v.converged for v in verdicts)


# -- perf_analyzer's verbose output -----------------------------------------------------------------------
def test_windows_are_read_from_verbose_output_with_their_p99() -> None:
    windows = parse_perf_analyzer_windows(ONE_RUN.read_text())
    assert windows == [
        PerfWindow(1850.69, 20.527),
        PerfWindow(3353.98, 15.679),
        PerfWindow(2647.68, 30.972),
    ]
    assert parse_request_count(ONE_RUN.read_text()) == 1191


def test_a_window_cut_short_by_an_interrupt_is_left_out() -> None:
    windows = parse_perf_analyzer_windows(INTERRUPTED.read_text())
    assert len(windows) == 5  # "Pass [6]" came after the interrupt: a partial window (58 infer/sec)
    assert all(w.throughput_infer_per_sec > 300 for w in windows)


def test_output_without_windows_gives_none() -> None:
    assert parse_perf_analyzer_windows("Request concurrency: 1\n  Client:\n") == []
    assert parse_request_count("") is None


# -- one point from several runs --------------------------------------------------------------------------
def run_of(windows: list[float], p99: float = 2.0, requests: int = 1000, concurrency: int = 1) -> PerfRun:
    summary = parse_perf_analyzer_csv(REPORT.read_text(), Load.concurrency(concurrency))
    summary = summary.model_copy(update={"latency_p99_ms": p99})
    return PerfRun(summary, [PerfWindow(w, p99) for w in windows], requests)


def test_a_point_from_runs_reports_the_mean_its_interval_and_what_it_rests_on() -> None:
    runs = [run_of([1000.0, 1010.0, 990.0]), run_of([1005.0, 995.0, 1000.0])]
    verdict = Verdict(True, True, "converged: +-0.6% over 6 windows")
    m = combine_runs(runs, verdict, batch_size=1, window_ms=1000)
    assert m.throughput_infer_per_sec == pytest.approx(1000.0)
    assert m.throughput_ci_low is not None and m.throughput_ci_high is not None
    assert m.throughput_ci_low < 1000.0 < m.throughput_ci_high
    assert m.windows == 6 and m.requests == 2000
    assert m.converged is True and m.convergence == verdict.reason
    assert m.latency_p99_ms == pytest.approx(2.0)
    assert m.latency_p99_ci_low_ms == pytest.approx(2.0) and m.latency_p99_ci_high_ms == pytest.approx(2.0)


def test_a_slow_first_window_is_left_out_of_throughput_and_its_interval() -> None:
    first = run_of([100.0, 1000.0, 1000.0])
    steady = [run_of([1000.0, 1010.0, 990.0]) for _ in range(2)]
    m = combine_runs([first, *steady], Verdict(True, True, "converged"), batch_size=1, window_ms=1000)
    assert m.windows == 8
    assert m.throughput_infer_per_sec == pytest.approx(1000.0)


def test_p99_moving_from_run_to_run_widens_its_interval_past_what_its_windows_say() -> None:
    """Each run's windows agree with each other (a slow spell lasts a run), but the runs do not: the interval a
    budget is judged on must cover the runs' spread (batch means), not only the windows'."""

    def run_at(p99: float) -> PerfRun:
        run = run_of([1000.0, 1000.0, 1000.0], p99=p99)
        return PerfRun(run.summary, [PerfWindow(1000.0, p99 + d) for d in (-0.01, 0.0, 0.01)], run.requests)

    runs = [run_at(18.0), run_at(19.0), run_at(20.0)]
    m = combine_runs(runs, Verdict(True, True, "converged"), batch_size=1, window_ms=1000)
    assert m.latency_p99_ms == pytest.approx(19.0)
    assert m.latency_p99_ci_low_ms is not None and m.latency_p99_ci_high_ms is not None
    # t(2) x s / sqrt(3) over the runs' 18, 19, 20: 4.303 x 1 / 1.732 = 2.48 ms either side.
    assert m.latency_p99_ci_high_ms - 19.0 == pytest.approx(4.303 / math.sqrt(3), rel=1e-3)
    # With two runs there are too few for batch means: the windows' spread stands.
    two = combine_runs(runs[:2], Verdict(True, True, "converged"), batch_size=1, window_ms=1000)
    assert two.latency_p99_ci_high_ms is not None and two.latency_p99_ci_high_ms - 18.5 < 1.0


def test_p99_has_no_interval_when_windows_hold_few_requests() -> None:
    """50 infer/sec at batch 8 over 1 s windows is ~6 requests a window: its "p99" is its slowest request."""
    m = combine_runs([run_of([50.0, 52.0, 48.0])], Verdict(True, True, "converged"), batch_size=8, window_ms=1000)
    assert m.latency_p99_ci_low_ms is None and m.latency_p99_ci_high_ms is None
    assert m.throughput_ci_low is not None


def test_a_point_on_the_real_busy_windows_is_honest_about_its_spread() -> None:
    series = busy_throughputs()
    runs = [run_of(series[i : i + 3]) for i in range(0, 24, 3)]
    verdict = judge(series, 29.0, 2.0, **RULE)
    m = combine_runs(runs, verdict, batch_size=1, window_ms=500)
    assert m.converged is False and "not converged" in (m.convergence or "")
    assert m.throughput_ci_low is not None and m.throughput_ci_high is not None
    assert (m.throughput_ci_high - m.throughput_ci_low) / 2 > 0.05 * m.throughput_infer_per_sec


def test_combining_needs_a_run() -> None:
    with pytest.raises(ValueError):
        combine_runs([], Verdict(True, False, ""), 1, 1000)


# -- windows too short to hold a request ------------------------------------------------------------------
NO_REQUESTS = "Pass [1] cb::Error: No valid requests recorded within time interval. Please use a larger time window."


def test_a_window_with_no_request_is_doubled_while_it_fits() -> None:
    assert longer_window_ms(NO_REQUESTS, 300, seconds_left=30.0) == 600
    assert longer_window_ms(NO_REQUESTS, 8000, seconds_left=30.0) is None  # 3 x 16 s do not fit


def test_other_failures_are_not_retried_with_longer_windows() -> None:
    assert longer_window_ms("Failed to retrieve results from inference request.", 300, 30.0) is None
