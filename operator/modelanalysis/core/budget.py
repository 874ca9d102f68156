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
from modelanalysis.core.spec import AtMost, Constraints, SweepSpec

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


@dataclass(frozen=True)
class LatencyBudget:
    """A latency a point must stay under: request p99, or for streaming models p99 time to first token or p99
    inter-token latency. `fields`: PerfMeasurement's value and interval fields for it."""

    what: str  # in words: "p99", "p99 TTFT", "p99 ITL"
    max_ms: float
    fields: tuple[str, str, str]

    @property
    def words(self) -> str:
        return f"{self.max_ms:g} ms {self.what}"

    def value(self, perf: PerfMeasurement) -> float | None:
        value: float | None = getattr(perf, self.fields[0])
        return value

    def interval(self, perf: PerfMeasurement) -> tuple[float | None, float | None]:
        return getattr(perf, self.fields[1]), getattr(perf, self.fields[2])


# Constraints' field for each latency budget, its words and PerfMeasurement's fields.
LATENCY_BUDGETS = (
    ("p99_latency_ms", "p99", ("latency_p99_ms", "latency_p99_ci_low_ms", "latency_p99_ci_high_ms")),
    ("ttft_p99_ms", "p99 TTFT", ("ttft_p99_ms", "ttft_p99_ci_low_ms", "ttft_p99_ci_high_ms")),
    ("itl_p99_ms", "p99 ITL", ("itl_p99_ms", "itl_p99_ci_low_ms", "itl_p99_ci_high_ms")),
)


def latency_budgets(constraints: Constraints) -> tuple[LatencyBudget, ...]:
    """The latency budgets the constraints set, p99 first."""
    return tuple(
        LatencyBudget(what, bound.max, fields)
        for name, what, fields in LATENCY_BUDGETS
        if (bound := getattr(constraints, name)) is not None
    )


def p99_budget(budget_ms: float | None) -> tuple[LatencyBudget, ...]:
    """Request p99's budget alone (none for None)."""
    return latency_budgets(Constraints(p99_latency_ms=AtMost(max=budget_ms))) if budget_ms is not None else ()


def budget_verdict(perf: PerfMeasurement | None, budget: LatencyBudget) -> BudgetVerdict | None:
    """Where a point's latency lies against a budget; None where the point has no such number (TTFT of a model
    that does not stream: not judged). A point that could not be measured counts as over it: that load was too
    much."""
    if perf is None:
        return BudgetVerdict(Side.OVER)
    value = budget.value(perf)
    if value is None:
        return None
    low, high = budget.interval(perf)
    if low is None or high is None:
        return BudgetVerdict(Side.UNDER if value <= budget.max_ms else Side.OVER, by_point_value=True)
    if high <= budget.max_ms:
        return BudgetVerdict(Side.UNDER)
    if low > budget.max_ms:
        return BudgetVerdict(Side.OVER)
    return BudgetVerdict(Side.UNDECIDED)


def p99_verdict(perf: PerfMeasurement | None, budget_ms: float) -> BudgetVerdict:
    """Where a point's request p99 lies against a budget (budget_verdict for p99)."""
    verdict = budget_verdict(perf, p99_budget(budget_ms)[0])
    assert verdict is not None  # every measured point has a p99
    return verdict


def budgets_verdict(perf: PerfMeasurement | None, budgets: Sequence[LatencyBudget]) -> list[BudgetVerdict]:
    """The verdict of each budget the point has a number for."""
    return [v for b in budgets if (v := budget_verdict(perf, b)) is not None]


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


def search_budgets(spec: SweepSpec) -> tuple[LatencyBudget, ...]:
    """The latency budgets a load search decides against (none: no search, or no budget). Its points are
    measured until each interval lies on one side of its budget, within the point's caps."""
    return latency_budgets(spec.constraints) if spec.load_search is not None else ()


def undecided_sentence(perf: PerfMeasurement, budgets: Sequence[LatencyBudget]) -> str:
    """Which budgets the point's intervals straddle, in words ("" where none does)."""
    parts = []
    for budget in budgets:
        verdict = budget_verdict(perf, budget)
        if verdict is not None and verdict.side == Side.UNDECIDED:
            value, (low, high) = budget.value(perf), budget.interval(perf)
            parts.append(f"{budget.what} {value:.3g} ms (95% CI {low:.3g} to {high:.3g}) straddles the "
                         f"{budget.max_ms:g} ms budget")  # fmt: skip
    return "; ".join(parts)


def load_verdict(point: PointResult, budgets: Sequence[LatencyBudget]) -> BudgetVerdict:
    """Whether a point's load holds: each latency surely under its budget (where there is one) and, for an
    offered request rate, the rate surely delivered. OVER when either surely fails (or nothing was measured),
    UNDECIDED when either is undecided, else UNDER."""
    if point.perf is None:
        return BudgetVerdict(Side.OVER)
    verdicts = budgets_verdict(point.perf, budgets)
    delivery = delivery_verdict(point)
    if delivery is not None:
        verdicts.append(delivery)
    sides = {v.side for v in verdicts}
    side = Side.OVER if Side.OVER in sides else Side.UNDECIDED if Side.UNDECIDED in sides else Side.UNDER
    return BudgetVerdict(side, by_point_value=any(v.by_point_value for v in verdicts))


def boundary(points: Sequence[PointResult], budgets: Sequence[LatencyBudget]) -> BudgetBoundary | None:
    """The boundary over the points of one variant, version and batch size (None without points). The lowest
    load that surely does not hold bounds it from above; the highest that surely holds below it is the answer."""
    if not points:
        return None
    verdicts = {p.load.value: load_verdict(p, budgets) for p in points}
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
        budget_ms=next((b.max_ms for b in budgets if b.what == "p99"), None),
        ttft_budget_ms=next((b.max_ms for b in budgets if b.what == "p99 TTFT"), None),
        itl_budget_ms=next((b.max_ms for b in budgets if b.what == "p99 ITL"), None),
        surely_under=low,
        surely_over=high,
        undecided=undecided,
        on_point_value=sorted(c for c in deciding if verdicts[c].by_point_value),
        load_kind=first.load.kind,
    )


def boundaries(points: Sequence[PointResult], budgets: Sequence[LatencyBudget]) -> list[BudgetBoundary]:
    """The boundary at each (variant, Triton version, batch size) measured, in the order first measured: under
    latency budgets, and for request rates (whose delivery bounds them) with or without one."""
    if not budgets and all(p.load.is_concurrency for p in points):
        return []
    groups: dict[tuple[str, str, int], list[PointResult]] = {}
    for p in points:
        groups.setdefault((p.variant_name, p.triton_version, p.batch_size), []).append(p)
    return [b for group in groups.values() if (b := boundary(group, budgets)) is not None]
