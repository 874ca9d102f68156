"""Concurrency search: which concurrency to measure next at one batch size, and when to stop.

A pure decision over the points already measured, so the engine asks it again after every point and a
resumed run (the operator after a restart) gets the same answer from the same points, with nothing kept in
memory. Without a search every step is measured, in order.

The climb measures the steps in order and stops when
- throughput has saturated: two steps in a row did not rise over the best so far by `min_gain_pct` with
  their 95% confidence intervals apart (a rise inside the noise is no rise), or
- p99 broke the latency budget: then it bisects between the highest step under the budget and the lowest
  over it, for the highest concurrency under it, or
- a point failed (the server errored or timed out under that load: more load will not do better).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from modelanalysis.core.results import PointResult, PointStatus
from modelanalysis.core.spec import ConcurrencySearch

# Two doublings without a rise: the server is saturated (one could still be noise).
STEPS_WITHOUT_GAIN = 2


@dataclass(frozen=True)
class NextConcurrency:
    """Measure `concurrency` next; or, when it is None, the search at this batch size is over, for `reason`."""

    concurrency: int | None
    reason: str = ""


def _throughput(point: PointResult) -> float:
    return point.perf.throughput_infer_per_sec if point.perf else 0.0


def rises_over(candidate: PointResult, best: PointResult, min_gain_pct: float) -> bool:
    """The candidate's throughput is meaningfully above the best so far: by min_gain_pct, intervals apart."""
    if candidate.perf is None or best.perf is None:
        return False
    if _throughput(candidate) < _throughput(best) * (1 + min_gain_pct / 100):
        return False
    low, high = candidate.perf.throughput_ci_low, best.perf.throughput_ci_high
    return low is None or high is None or low > high


def within_budget(point: PointResult, p99_budget_ms: float | None) -> bool:
    return p99_budget_ms is None or (point.perf is not None and point.perf.latency_p99_ms <= p99_budget_ms)


def next_concurrency(
    steps: list[int],
    measured: Iterable[PointResult],
    search: ConcurrencySearch | None,
    p99_budget_ms: float | None = None,
) -> NextConcurrency:
    """The next concurrency to measure at one batch size, given the points measured there so far."""
    by_concurrency = {p.concurrency: p for p in measured}
    if search is None:
        for step in steps:
            if step not in by_concurrency:
                return NextConcurrency(step)
        return NextConcurrency(None, "every concurrency measured")

    # 1. Climb: walk the steps measured so far, in order, until one ends the climb.
    best: PointResult | None = None
    without_gain = 0
    broke_budget: PointResult | None = None
    for step in steps:
        point = by_concurrency.get(step)
        if point is None:
            return NextConcurrency(step)
        if point.status != PointStatus.MEASURED:
            return NextConcurrency(None, f"concurrency {step} failed, so higher ones were not tried")
        if not within_budget(point, p99_budget_ms):
            broke_budget = point
            break
        if best is None or rises_over(point, best, search.min_gain_pct):
            best, without_gain = point, 0
        else:
            without_gain += 1
            if without_gain >= STEPS_WITHOUT_GAIN:
                assert best is not None
                return NextConcurrency(
                    None,
                    f"throughput saturated: no rise of {search.min_gain_pct:g}% (outside the 95% CI) over "
                    f"concurrency {best.concurrency}'s {_throughput(best):,.1f} infer/sec in {STEPS_WITHOUT_GAIN} "
                    "steps",
                )
    if broke_budget is None:
        return NextConcurrency(None, "every concurrency step measured")

    # 2. Bisect between the highest concurrency under the budget and the lowest over it (a failed point counts
    #    as over: that load was too much).
    assert p99_budget_ms is not None
    high = min(c for c, p in by_concurrency.items() if not within_budget(p, p99_budget_ms))
    under = [c for c, p in by_concurrency.items() if c < high and within_budget(p, p99_budget_ms)]
    if not under:
        return NextConcurrency(None, f"p99 breaks the {p99_budget_ms:g} ms budget already at concurrency {high}")
    low = max(under)
    if high - low > 1:
        return NextConcurrency((low + high) // 2)
    high_perf = by_concurrency[high].perf
    breaks = f" at {high_perf.latency_p99_ms:.3g} ms" if high_perf else " (failed)"
    return NextConcurrency(
        None, f"p99 budget {p99_budget_ms:g} ms: concurrency {low} is the highest under it ({high} breaks it{breaks})"
    )
