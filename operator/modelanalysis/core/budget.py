"""Decisions against a bound, made on intervals: a measured value is surely under it, surely over it, or undecided.

A p99 of 19.7 ms is not "under a 20 ms budget" when its 95% confidence interval runs from 18.9 to 20.6 ms: a
second run may well read 20.3. So every budget decision (the concurrency search's, the best point's) asks on
which side of the bound the whole interval lies; where it straddles the bound the answer is "undecided", and
the search reports the band of such loads rather than letting one reading pick a side. Where a point has no
p99 interval (its windows held too few requests for a window's p99 to mean much, or it has fewer than three
windows) the decision falls back to the point value, and says so.

The boundary of a search at one batch size: the highest concurrency surely under the budget (the one to
deploy), the lowest surely over it, and the undecided ones measured between.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from modelanalysis.core.perf import PerfMeasurement
from modelanalysis.core.results import BudgetBoundary, PointResult
from modelanalysis.core.spec import SweepSpec

# Why a decision fell back to point values, for an answer judged on several bounds (results.P99_ON_POINT_VALUE
# says it for p99 alone).
ON_POINT_VALUE = "judged on point values where a number had no interval: too few requests or windows for one"


class Side(StrEnum):
    UNDER = "surely under"
    OVER = "surely over"
    UNDECIDED = "undecided"


@dataclass(frozen=True)
class BudgetVerdict:
    side: Side
    by_point_value: bool = False  # no interval: decided on the value itself (results.P99_ON_POINT_VALUE says why)


def p99_verdict(perf: PerfMeasurement | None, budget_ms: float) -> BudgetVerdict:
    """Where a point's p99 lies against a budget. A point that could not be measured counts as over it: that
    load was too much."""
    if perf is None:
        return BudgetVerdict(Side.OVER)
    low, high = perf.latency_p99_ci_low_ms, perf.latency_p99_ci_high_ms
    if low is None or high is None:
        return BudgetVerdict(Side.UNDER if perf.latency_p99_ms <= budget_ms else Side.OVER, by_point_value=True)
    if high <= budget_ms:
        return BudgetVerdict(Side.UNDER)
    if low > budget_ms:
        return BudgetVerdict(Side.OVER)
    return BudgetVerdict(Side.UNDECIDED)


def floor_verdict(value: float, low: float | None, high: float | None, floor: float) -> BudgetVerdict:
    """Where a value that must be at least `floor` (throughput) lies against it, by its interval."""
    if low is None or high is None:
        return BudgetVerdict(Side.UNDER if value >= floor else Side.OVER, by_point_value=True)
    if low >= floor:
        return BudgetVerdict(Side.UNDER)  # surely within the bound
    if high < floor:
        return BudgetVerdict(Side.OVER)
    return BudgetVerdict(Side.UNDECIDED)


# An open-loop point delivered its rate when throughput reaches the offered rate x batch, less this share: a
# window that starts or ends between two requests of a constant rate reads a little under it.
DELIVERY_TOLERANCE = 0.02


def offered_infer_per_sec(point: PointResult) -> float | None:
    """What an open-loop point offered, in inferences per second (requests per second x batch); None for
    closed-loop load, which offers no rate."""
    return None if point.load.is_concurrency else point.load.value * point.batch_size


def delivery_verdict(point: PointResult) -> BudgetVerdict | None:
    """Whether an open-loop point's offered rate was delivered: OVER (surely not) when throughput's whole interval
    lies below it, else UNDER (its interval reaches the offered rate: delivered, as far as can be told); None where
    no rate was offered or nothing was measured. There is no undecided side: an interval that holds the offered
    rate is a measurement at that rate.

    A window counts whole requests, so at a few requests a window its throughput is coarse (1 request in a 250 ms
    window reads 3.3/s at an offered 4/s): the tolerance grows to one request per window."""
    offered = offered_infer_per_sec(point)
    perf = point.perf
    if offered is None or perf is None:
        return None
    per_window = point.load.value * (perf.window_ms or 0) / 1000
    tolerance = max(DELIVERY_TOLERANCE, 1 / per_window) if per_window > 0 else DELIVERY_TOLERANCE
    verdict = floor_verdict(perf.throughput_infer_per_sec, perf.throughput_ci_low, perf.throughput_ci_high,
                            offered * (1 - tolerance))  # fmt: skip
    return verdict if verdict.side == Side.OVER else BudgetVerdict(Side.UNDER, verdict.by_point_value)


def not_delivered_sentence(point: PointResult) -> str | None:
    """Why an open-loop point is not a measurement at its rate (None when it surely or probably is): who did not
    keep up, the load generator (it sent fewer requests than asked) or the server (it answered fewer)."""
    verdict = delivery_verdict(point)
    if verdict is None or verdict.side != Side.OVER:
        return None
    perf, offered = point.perf, offered_infer_per_sec(point)
    assert perf is not None and offered is not None
    text = f"offered {point.load.words} ({offered:,.0f} infer/sec), delivered {perf.throughput_infer_per_sec:,.0f}"
    sent = perf.send_rate_per_sec
    if sent is not None and sent * point.batch_size < offered * (1 - DELIVERY_TOLERANCE):
        delayed = f", {perf.delayed_requests_pct:.0f}% of requests started late" if perf.delayed_requests_pct else ""
        return f"{text}: perf_analyzer sent only {sent:,.0f} requests/sec{delayed} (the load generator fell behind)"
    return f"{text}: the server did not keep up"


def search_p99_budget(spec: SweepSpec) -> float | None:
    """The p99 budget a load search decides against (None: no search, or no budget). Its points are
    measured until their p99 interval lies on one side of it, within the point's caps."""
    budget = spec.constraints.p99_latency_ms
    return budget.max if spec.load_search is not None and budget is not None else None


def undecided_sentence(perf: PerfMeasurement, budget_ms: float) -> str:
    return (
        f"p99 {perf.latency_p99_ms:.3g} ms (95% CI {perf.latency_p99_ci_low_ms:.3g} to "
        f"{perf.latency_p99_ci_high_ms:.3g}) straddles the {budget_ms:g} ms budget"
    )


def load_verdict(point: PointResult, budget_ms: float | None) -> BudgetVerdict:
    """Whether a point's load holds: p99 surely under the budget (when there is one) and, for an offered request
    rate, the rate surely delivered. OVER when either surely fails (or nothing was measured), UNDECIDED when
    either is undecided, else UNDER."""
    if point.perf is None:
        return BudgetVerdict(Side.OVER)
    verdicts = [p99_verdict(point.perf, budget_ms)] if budget_ms is not None else []
    delivery = delivery_verdict(point)
    if delivery is not None:
        verdicts.append(delivery)
    sides = {v.side for v in verdicts}
    side = Side.OVER if Side.OVER in sides else Side.UNDECIDED if Side.UNDECIDED in sides else Side.UNDER
    return BudgetVerdict(side, by_point_value=any(v.by_point_value for v in verdicts))


def boundary(points: Sequence[PointResult], budget_ms: float | None) -> BudgetBoundary | None:
    """The boundary over the points of one variant, version and batch size (None without points). The lowest
    load that surely does not hold bounds it from above; the highest that surely holds below it is the answer."""
    if not points:
        return None
    verdicts = {p.load.value: load_verdict(p, budget_ms) for p in points}
    over = [c for c, v in verdicts.items() if v.side == Side.OVER]
    high = min(over) if over else None
    under = [c for c, v in verdicts.items() if v.side == Side.UNDER and (high is None or c < high)]
    low = max(under) if under else None
    undecided = sorted(
        c for c, v in verdicts.items() if v.side == Side.UNDECIDED and (low or 0) < c and (high is None or c < high)
    )
    deciding = {c for c in (low, high) if c is not None}
    first = points[0]
    return BudgetBoundary(
        model=first.model,
        variant=first.variant,
        triton_version=first.triton_version,
        batch_size=first.batch_size,
        budget_ms=budget_ms,
        surely_under=low,
        surely_over=high,
        undecided=undecided,
        on_point_value=sorted(c for c in deciding if verdicts[c].by_point_value),
        load_kind=first.load.kind,
    )


def boundaries(points: Sequence[PointResult], budget_ms: float | None) -> list[BudgetBoundary]:
    """The boundary at each (variant, Triton version, batch size) measured, in the order first measured: under a
    p99 budget, and for request rates (whose delivery bounds them) with or without one."""
    if budget_ms is None and all(p.load.is_concurrency for p in points):
        return []
    groups: dict[tuple[str, str, int], list[PointResult]] = {}
    for p in points:
        groups.setdefault((p.variant_name, p.triton_version, p.batch_size), []).append(p)
    return [b for group in groups.values() if (b := boundary(group, budget_ms)) is not None]
