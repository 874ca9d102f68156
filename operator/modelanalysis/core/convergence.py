"""When has a point been measured well enough? Pure functions over perf_analyzer's measurement windows.

A point is measured as a series of equal-length windows (perf_analyzer's passes). Its throughput is the mean
of the windows, and its 95% confidence interval is Student's t-interval over them: mean +- t * s / sqrt(n).
A point has converged when the interval's half-width is within the precision the user asked for (percent of
the mean). Windows at the start that are still warming up are dropped first, by the MSER rule (White, 1997:
drop the prefix that minimises the standard error of what is left), restricted to the point's first window,
so a slow first window neither biases the mean nor widens the interval.

Treating windows as independent is an approximation: a slow spell on a busy machine that spans several
windows makes the interval narrower than it should be. Windows of a second or so and several runs of
perf_analyzer per point keep that effect small; the number of windows is reported with every interval.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# Two-sided 95% quantiles of Student's t distribution, by degrees of freedom (1..30).
_T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z_975 = 1.959964

MIN_WINDOWS = 3  # an interval from fewer windows says more about luck than about the server
MAX_WARMUP_WINDOWS = 1  # the point's first window: new connections, a cold path in the model
# A window's p99 from fewer requests than this is little more than its slowest request: no interval for p99.
MIN_REQUESTS_FOR_P99 = 100


def t_quantile_975(degrees_of_freedom: int) -> float:
    """Student's t quantile for a two-sided 95% interval."""
    if degrees_of_freedom < 1:
        raise ValueError("a t-interval needs at least 2 values")
    if degrees_of_freedom <= len(_T_975):
        return _T_975[degrees_of_freedom - 1]
    # Cornish-Fisher expansion around the normal quantile: within 1e-4 of the exact value above 30.
    z, v = _Z_975, degrees_of_freedom
    return z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)


@dataclass(frozen=True)
class Interval:
    """A mean and its 95% confidence interval, from `count` values."""

    mean: float
    half_width: float
    count: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    @property
    def relative_half_width_pct(self) -> float:
        """The half-width as a percentage of the mean (infinite when the mean is not positive)."""
        return 100 * self.half_width / self.mean if self.mean > 0 else math.inf


def mean_interval(values: Sequence[float]) -> Interval | None:
    """Student's t-interval for the mean of `values`; None for fewer than MIN_WINDOWS values."""
    if len(values) < MIN_WINDOWS:
        return None
    mean = statistics.fmean(values)
    half_width = t_quantile_975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return Interval(mean=mean, half_width=half_width, count=len(values))


def warmup_windows(values: Sequence[float]) -> int:
    """How many leading windows to drop as warm-up: the first window, when it is an outlier by the MSER rule
    (dropping it lowers sum((x - mean)^2) / (n - d)^2 over the rest) and at least 2 * MIN_WINDOWS remain.

    Only the first window, and only with enough left: on short, noisy series MSER would otherwise pick the
    quietest stretch and claim a precision the point does not have.
    """
    best, best_score = 0, math.inf
    for d in range(min(MAX_WARMUP_WINDOWS, len(values) - 2 * MIN_WINDOWS) + 1):
        rest = values[d:]
        mean = statistics.fmean(rest)
        score = sum((x - mean) ** 2 for x in rest) / len(rest) ** 2
        if score < best_score - 1e-12:  # ties keep the shorter prefix: drop nothing without a reason
            best, best_score = d, score
    return best


@dataclass(frozen=True)
class Verdict:
    """Whether to measure another run of windows, and if not, whether the point converged and why it ended."""

    done: bool
    converged: bool
    reason: str


def judge(
    throughputs: Sequence[float],
    elapsed_seconds: float,
    next_run_seconds: float,
    *,
    target_pct: float,
    max_windows: int,
    max_seconds: float,
    undecided: str = "",
) -> Verdict:
    """The stopping rule: stop once the throughput interval is within `target_pct` of the mean (converged),
    or when another run would pass `max_windows` or `max_seconds` (not converged; the estimate stands).

    `undecided`: why a decision this point serves cannot be made yet (a search's p99 interval straddling its
    budget, core/budget.py); the point then goes on measuring, within the same caps, until it can."""
    kept = throughputs[warmup_windows(throughputs) :]
    interval = mean_interval(kept)
    converged = interval is not None and interval.relative_half_width_pct <= target_pct
    width = "no interval yet" if interval is None else f"+-{interval.relative_half_width_pct:.1f}%"
    if converged and not undecided:
        return Verdict(True, True, f"converged: {width} over {len(kept)} windows")
    state = f"converged: {width} over {len(kept)} windows, but {undecided}" if converged else f"not converged: {width}"
    still = f"; {undecided}" if undecided and not converged else ""
    target = "" if converged else f"; target +-{target_pct:g}%"
    if len(throughputs) >= max(max_windows, MIN_WINDOWS):
        return Verdict(
            True,
            converged,
            f"{state} after {len(throughputs)} windows (the most allowed, --max-trials {max_windows}){target}{still}",
        )
    if elapsed_seconds + next_run_seconds > max_seconds:
        return Verdict(
            True,
            converged,
            f"{state} after {len(throughputs)} windows in {elapsed_seconds:.0f} s (the per-point cap is "
            f"{max_seconds:g} s){target}{still}",
        )
    return Verdict(False, False, f"measuring: {width} after {len(throughputs)} windows{still}")


# perf_analyzer's words when not one request finished inside a window (a slow model, or a busy machine).
NO_REQUEST_IN_WINDOW = "No valid requests recorded within time interval"


def longer_window_ms(error: str, window_ms: int, seconds_left: float) -> int | None:
    """The window to retry a point with when perf_analyzer found windows too short to hold a request: twice as
    long, while a run of 3 such windows still fits in the time left; None for any other failure."""
    if NO_REQUEST_IN_WINDOW not in error:
        return None
    doubled = 2 * window_ms
    return doubled if 3 * doubled / 1000 <= seconds_left else None
