"""Load search: which load (a concurrency, or an offered request rate) to measure next at one batch size, and
when to stop.

A pure decision over the points already measured, so the engine asks it again after every point and a
resumed run (the operator after a restart) gets the same answer from the same points, with nothing kept in
memory. Without a search every step is measured, in order.

The climb measures the steps in order and stops when
- throughput has saturated: two steps in a row did not rise over the best so far by `min_gain_pct` with
  their 95% confidence intervals apart (a rise inside the noise is no rise), or
- p99 is surely over the latency budget (its whole 95% interval above it, core/budget.py): then it bisects
  the edges of the boundary, for the highest concurrency surely under the budget and the lowest surely over
  it, leaving the undecided band between them as such, or
- a point failed (the server errored or timed out under that load: more load will not do better).

A request-rate search climbs the same way with one difference: a rate holds while it is delivered (throughput's
interval reaches the offered rate, core/budget.py) and p99 is under the budget, if one is given; saturation shows
as a rate not delivered, so there is no throughput-gain rule. Its bisection ends when the gap is within
RATE_RESOLUTION of the higher rate (concurrency bisects down to neighbouring values).

Once a search has found its boundary, both of its edges (the highest load surely holding, the lowest surely not)
are measured a second time, later than the first (edge_to_recheck): a single reading's interval does not see the
machine drift between readings, and two readings that disagree make the load undecided (core/perf.py
with_second_reading), so the search bisects on. Each load is re-measured once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from modelanalysis.core.budget import LatencyBudget, Side, boundary, load_verdict
from modelanalysis.core.load import WORDS, Load, LoadKind
from modelanalysis.core.results import PointResult, PointStatus
from modelanalysis.core.spec import RATE_RESOLUTION, ConcurrencySearch, RequestRateSearch

# Two doublings without a rise: the server is saturated (one could still be noise).
STEPS_WITHOUT_GAIN = 2


@dataclass(frozen=True)
class NextLoad:
    """Measure at `load` next; or, when it is None, the search at this batch size is over, for `reason`."""

    load: Load | None
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


def next_load(
    steps: list[Load],
    measured: Iterable[PointResult],
    search: ConcurrencySearch | RequestRateSearch | None,
    budgets: Sequence[LatencyBudget] = (),
) -> NextLoad:
    """The next load to measure at one batch size, given the points measured there so far, under the latency
    budgets given (p99, and for a streaming model p99 TTFT and ITL: core/budget.py)."""
    by_load = {p.load: p for p in measured}
    if search is None:
        for step in steps:
            if step not in by_load:
                return NextLoad(step)
        return NextLoad(None, f"every {WORDS[steps[0].kind] if steps else 'load'} measured")

    # 1. Climb: walk the steps measured so far, in order, until one ends the climb. A step whose p99 interval
    #    straddles the budget (undecided) does not end it: the next step shows whether the load is too much.
    best: PointResult | None = None
    without_gain = 0
    broke_budget = False
    for step in steps:
        point = by_load.get(step)
        if point is None:
            return NextLoad(step)
        if point.status != PointStatus.MEASURED:
            return NextLoad(None, f"{step.words} failed, so higher ones were not tried")
        if load_verdict(point, budgets).side == Side.OVER:  # over the budget, or a rate not delivered
            broke_budget = True
            break
        if not isinstance(search, ConcurrencySearch):
            continue  # an offered rate climbs until it no longer holds: throughput follows the rate until then
        if best is None or rises_over(point, best, search.min_gain_pct):
            best, without_gain = point, 0
        else:
            without_gain += 1
            if without_gain >= STEPS_WITHOUT_GAIN:
                assert best is not None
                return NextLoad(
                    None,
                    f"throughput saturated: no rise of {search.min_gain_pct:g}% (outside the 95% CI) over "
                    f"{best.load.words}'s {_throughput(best):,.1f} infer/sec in {STEPS_WITHOUT_GAIN} "
                    "steps",
                )
    if not broke_budget:
        return NextLoad(None, f"every {WORDS[steps[0].kind]} step measured")

    # 2. Bisect the two gaps at the edges of the boundary: between the highest load surely under the budget and
    #    the first undecided one above it, and between the last undecided one and the lowest load surely over
    #    it. Loads between two undecided ones are not measured: they would be undecided too.
    found = boundary(list(by_load.values()), budgets)
    assert found is not None and found.surely_over is not None
    kind = steps[0].kind
    low, high, band = found.surely_under or 0, found.surely_over, found.undecided
    if low == 0 and not band and high == min(load.value for load in by_load):
        first = Load(kind=kind, value=high)
        if kind == LoadKind.CONCURRENCY:
            assert budgets
            broken = " or ".join(b.words for b in budgets)
            return NextLoad(None, f"the {broken} budget is broken already at {first.words}")
        return NextLoad(None, f"{first.words}, the search's lowest, does not hold already")
    for a, b in ((low, band[0] if band else high), (band[-1] if band else low, high)):
        if a == 0 and kind == LoadKind.REQUEST_RATE:
            continue  # a rate search does not go below its lowest step
        between = _between(a, b, kind)
        if between is not None:
            return NextLoad(Load(kind=kind, value=between))
    return NextLoad(None, f"the search's boundary: {found.sentence()}")


def _between(low: float, high: float, kind: LoadKind) -> int | None:
    """The load half-way between one that holds and one that does not, while they are apart: neighbouring
    concurrencies end the bisection, and rates within RATE_RESOLUTION of the higher one."""
    if kind == LoadKind.CONCURRENCY:
        return int(low + high) // 2 if high - low > 1 else None
    middle = round((low + high) / 2)
    return middle if high - low > max(1.0, RATE_RESOLUTION * high) and low < middle < high else None


def edge_to_recheck(
    measured: Iterable[PointResult],
    search: ConcurrencySearch | RequestRateSearch | None,
    budgets: Sequence[LatencyBudget] = (),
) -> Load | None:
    """An edge of the boundary a search ended on that has been read only once (None: none left, or no boundary:
    no search, no budget, or a climb that never broke it)."""
    points = list(measured)
    if search is None or not points:
        return None
    found = boundary(points, budgets)
    if found is None or found.surely_over is None:
        return None
    by_value = {p.load.value: p for p in points}
    for edge in (found.surely_under, found.surely_over):
        point = by_value.get(edge) if edge is not None else None
        if point is not None and point.status == PointStatus.MEASURED and not point.rechecked:
            return point.load
    return None
