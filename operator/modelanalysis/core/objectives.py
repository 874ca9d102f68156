"""Which point to deploy: each point judged against the constraints, and the best one per model and overall.

Pure functions over measured points, shared by the CLI and the operator (the engine keeps the answer in the
result as it goes). A point satisfies the constraints when it was measured and no measured value breaks a bound
(a value that was not measured, such as GPU memory without a GPU, is not judged). Among the points that
satisfy them surely (p99 and throughput by their 95% intervals, core/budget.py; a point only probably within
is named beside the answer, never chosen) the objective ranks: maximize-throughput takes the highest
throughput (ties: lower p99),
minimize-latency the lowest p99 (ties: higher throughput). When none satisfies, the answer says so and names
the closest point: the one whose bounds are broken by the least, summed relatively (10% over a latency budget
counts as much as 10% short of a throughput floor).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from modelanalysis.core.budget import (
    ON_POINT_VALUE,
    BudgetVerdict,
    Side,
    boundaries,
    budgets_verdict,
    delivery_verdict,
    floor_verdict,
    latency_budgets,
    offered_infer_per_sec,
)
from modelanalysis.core.load import Load
from modelanalysis.core.results import BestChoice, BestPoint, BestTogether, PointResult
from modelanalysis.core.spec import Constraints, Objective


class Violation(BaseModel):
    """One bound a point breaks: what, its value, the bound, and by how much relative to the bound."""

    what: str
    value: float
    bound: float
    relative: float

    def sentence(self) -> str:
        side = "<" if self.what in FLOORS else ">"
        return f"{self.what} {_num(self.value)} {side} {_num(self.bound)} (by {100 * self.relative:.0f}%)"


DELIVERED = "delivered throughput"  # an open-loop point's, against the rate it offered (core/budget.py)
FLOORS = ("throughput", DELIVERED)


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def gpu_memory_mb(point: PointResult) -> float | None:
    gpus = point.resources.gpus if point.resources else []
    values = [g.max_memory_used_mb for g in gpus if g.max_memory_used_mb is not None]
    return max(values) if values else None


def violations(point: PointResult, constraints: Constraints) -> list[Violation]:
    """The bounds a measured point breaks (empty: it satisfies them)."""
    perf = point.perf
    if perf is None:
        return []
    found: list[Violation] = []
    for budget in latency_budgets(constraints):
        value = budget.value(perf)
        if value is not None and value > budget.max_ms:
            what = "p99 latency (ms)" if budget.what == "p99" else f"{budget.what} (ms)"
            found.append(Violation(what=what, value=value, bound=budget.max_ms,
                                   relative=(value - budget.max_ms) / budget.max_ms))  # fmt: skip
    floor = constraints.throughput_infer_per_sec
    if floor is not None and perf.throughput_infer_per_sec < floor.min:
        short = (floor.min - perf.throughput_infer_per_sec) / floor.min if floor.min else 1.0
        found.append(Violation(what="throughput", value=perf.throughput_infer_per_sec, bound=floor.min, relative=short))
    memory = gpu_memory_mb(point)
    if constraints.gpu_memory_mb is not None and memory is not None and memory > constraints.gpu_memory_mb.max:
        bound = constraints.gpu_memory_mb.max
        found.append(Violation(what="GPU memory (MB)", value=memory, bound=bound, relative=(memory - bound) / bound))
    offered = offered_infer_per_sec(point)
    delivery = delivery_verdict(point)
    if offered and delivery is not None and delivery.side == Side.OVER:
        # A rate the server did not sustain is no measurement at that rate, whatever the constraints.
        short = (offered - perf.throughput_infer_per_sec) / offered
        found.append(Violation(what=DELIVERED, value=perf.throughput_infer_per_sec, bound=offered, relative=short))
    return found


def describe_rule(objective: Objective, constraints: Constraints) -> str:
    """How the best point is chosen, in one sentence (the report's legend)."""
    metric = METRIC_WORDS[objective]
    bounds = []
    if constraints.p99_latency_ms is not None:
        bounds.append(f"p99 latency at most {_num(constraints.p99_latency_ms.max)} ms")
    for budget in latency_budgets(constraints)[1 if constraints.p99_latency_ms is not None else 0 :]:
        bounds.append(f"{budget.what} at most {_num(budget.max_ms)} ms (where measured)")
    if constraints.throughput_infer_per_sec is not None:
        bounds.append(f"throughput at least {_num(constraints.throughput_infer_per_sec.min)} infer/sec")
    if constraints.gpu_memory_mb is not None:
        bounds.append(f"GPU memory at most {_num(constraints.gpu_memory_mb.max)} MB (where measured)")
    surely = "surely " if judged_on_intervals(constraints) else ""
    within = f"{surely}within the constraints ({'; '.join(bounds)})" if bounds else "measured (no constraints given)"
    latencies = "p99" if [b.what for b in latency_budgets(constraints)] in ([], ["p99"]) else "latencies"
    intervals = f" ({latencies} and throughput by their 95% intervals)" if surely else ""
    return (
        f"Best = the {metric} ({objective.value}) among the points {within}{intervals}; with none inside, the "
        "closest."
    )


def satisfies(point: PointResult, constraints: Constraints) -> bool:
    """Model Analyzer's "Satisfies Constraints" (on point values, as its CSV column): a failed point never does."""
    return point.perf is not None and not violations(point, constraints)


def judged_on_intervals(constraints: Constraints) -> bool:
    """Whether a bound is judged on an interval (p99, throughput), so "within" means surely within."""
    return bool(latency_budgets(constraints)) or constraints.throughput_infer_per_sec is not None


def within(point: PointResult, constraints: Constraints) -> BudgetVerdict:
    """Whether a point is surely within every bound (UNDER), surely outside one (OVER), or undecided: p99 and
    throughput judged by their 95% intervals (core/budget.py), GPU memory by its value (it has no interval).
    `by_point_value`: a bound was judged on a point value for want of an interval."""
    perf = point.perf
    if perf is None:
        return BudgetVerdict(Side.OVER)
    verdicts = budgets_verdict(perf, latency_budgets(constraints))
    if constraints.throughput_infer_per_sec is not None:
        verdicts.append(floor_verdict(perf.throughput_infer_per_sec, perf.throughput_ci_low,
                                      perf.throughput_ci_high, constraints.throughput_infer_per_sec.min))  # fmt: skip
    delivery = delivery_verdict(point)
    if delivery is not None and delivery.side == Side.OVER:
        return BudgetVerdict(Side.OVER)  # a rate not delivered; one whose interval reaches it counts as held
    memory = gpu_memory_mb(point)
    if constraints.gpu_memory_mb is not None and memory is not None and memory > constraints.gpu_memory_mb.max:
        return BudgetVerdict(Side.OVER)
    sides = {v.side for v in verdicts}
    side = Side.OVER if Side.OVER in sides else Side.UNDECIDED if Side.UNDECIDED in sides else Side.UNDER
    return BudgetVerdict(side, by_point_value=any(v.by_point_value for v in verdicts))


def _interval(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f", 95% CI {low:,.1f} to {high:,.1f}"


METRIC_WORDS = {
    Objective.MAXIMIZE_THROUGHPUT: "highest throughput",
    Objective.MINIMIZE_LATENCY: "lowest p99 latency",
    Objective.MAXIMIZE_OUTPUT_TOKENS: "most output tokens/sec",
}


def _rank_key(point: PointResult, objective: Objective) -> tuple[float, ...]:
    """Smaller is better."""
    assert point.perf is not None
    thr, p99 = point.perf.throughput_infer_per_sec, point.perf.latency_p99_ms
    if objective == Objective.MAXIMIZE_OUTPUT_TOKENS:  # points that stream first, then by throughput
        tokens = point.perf.output_tokens_per_sec
        return (0.0 if tokens is not None else 1.0, -(tokens or 0.0), -thr, p99)
    return (-thr, p99) if objective == Objective.MAXIMIZE_THROUGHPUT else (p99, -thr)


def _tied(best: PointResult, other: PointResult, objective: Objective) -> bool:
    """Whether the runner-up is within the winner's confidence interval of the objective's metric."""
    a, b = best.perf, other.perf
    assert a is not None and b is not None
    if objective == Objective.MAXIMIZE_OUTPUT_TOKENS:
        if a.output_tokens_ci_low is None or b.output_tokens_ci_high is None:
            return False
        return b.output_tokens_ci_high >= a.output_tokens_ci_low
    if objective == Objective.MAXIMIZE_THROUGHPUT:
        if a.throughput_ci_low is None or b.throughput_ci_high is None:
            return False
        return b.throughput_ci_high >= a.throughput_ci_low
    if a.latency_p99_ci_high_ms is None or b.latency_p99_ci_low_ms is None:
        return False
    return b.latency_p99_ci_low_ms <= a.latency_p99_ci_high_ms


def _best_of(points: Sequence[PointResult], objective: Objective, constraints: Constraints) -> BestPoint | None:
    measured = [p for p in points if p.perf is not None]
    if not measured:
        return None
    judged = {p.point.key: within(p, constraints) for p in measured}
    ranked = sorted(measured, key=lambda p: _rank_key(p, objective))
    feasible = [p for p in ranked if judged[p.point.key].side == Side.UNDER]
    # Within by their values but not surely (an interval straddles a bound): shown beside, never chosen.
    probable = [p for p in ranked if judged[p.point.key].side != Side.UNDER and satisfies(p, constraints)]
    probably_within = ""
    metric = METRIC_WORDS[objective]
    if feasible:
        winner = feasible[0]
        assert winner.perf is not None
        surely = "surely " if judged_on_intervals(constraints) else ""
        inside = f"{surely}within the constraints" if constraints.any else "measured"
        why = f"{metric} of the {len(feasible)} points {inside}"
        if len(feasible) > 1 and _tied(winner, feasible[1], objective):
            why += f"; {feasible[1].point.key} is within its confidence interval (statistically tied)"
        if judged[winner.point.key].by_point_value:
            why += f" ({ON_POINT_VALUE})"
        better = [p for p in probable if _rank_key(p, objective) < _rank_key(winner, objective)]
        if better:
            probably_within = better[0].point.key
            why += (f"; {probably_within} ranks higher but is only probably within (an interval straddles a bound), "
                    "so it is not chosen")  # fmt: skip
        ok = True
    elif probable:
        winner = probable[0]
        probably_within = winner.point.key
        why = (f"no point is surely within the constraints; {probably_within} ({metric} of the {len(probable)} "
               "probably within: by its values, with an interval straddling a bound) is the closest")  # fmt: skip
        ok = False
    else:
        broken = {p.point.key: violations(p, constraints) for p in measured}
        winner = min(measured, key=lambda p: (sum(v.relative for v in broken[p.point.key]), _rank_key(p, objective)))
        why = "no point satisfies the constraints; closest: " + "; ".join(
            v.sentence() for v in broken[winner.point.key]
        )
        ok = False
    perf = winner.perf
    assert perf is not None
    why += f" (throughput {perf.throughput_infer_per_sec:,.1f} infer/sec"
    why += _interval(perf.throughput_ci_low, perf.throughput_ci_high) + f"; p99 {perf.latency_p99_ms:.3f} ms"
    if perf.streamed:
        assert perf.output_tokens_per_sec is not None
        why += f"; {perf.output_tokens_per_sec:,.1f} output tokens/sec"
        why += _interval(perf.output_tokens_ci_low, perf.output_tokens_ci_high)
        for what, value in (("p99 TTFT", perf.ttft_p99_ms), ("p99 ITL", perf.itl_p99_ms)):
            why += f"; {what} {value:.3f} ms" if value is not None else ""
    why += ")"
    return BestPoint(
        **winner.identity(),
        throughput_infer_per_sec=perf.throughput_infer_per_sec,
        throughput_ci_low=perf.throughput_ci_low,
        throughput_ci_high=perf.throughput_ci_high,
        latency_p99_ms=perf.latency_p99_ms,
        gpu_memory_mb=gpu_memory_mb(winner),
        satisfies_constraints=ok,
        why=why,
        probably_within=probably_within,
        output_tokens_per_sec=perf.output_tokens_per_sec,
        ttft_p99_ms=perf.ttft_p99_ms,
        itl_p99_ms=perf.itl_p99_ms,
    )


def best_point(
    points: Sequence[PointResult], objective: Objective, constraints: Constraints
) -> tuple[PointResult, bool] | None:
    """The point the answer would choose among `points`, as measured, and whether it is surely within the
    constraints (None: nothing measured)."""
    best = _best_of(points, objective, constraints)
    if best is None:
        return None
    chosen = next(p for p in points if p.perf is not None and p.point.key == best.key)
    return chosen, best.satisfies_constraints


def surely_better(a: PointResult, b: PointResult, objective: Objective) -> bool:
    """Whether `a` ranks above `b` with the 95% intervals of the objective's metric apart (by their values where
    either has no interval)."""
    return _rank_key(a, objective) < _rank_key(b, objective) and not _tied(a, b, objective)


def best_together(points: Sequence[PointResult], objective: Objective, constraints: Constraints) -> BestTogether | None:
    """Among the batch x load points at which models were measured together, the best combination: each member
    surely within the constraints, then the most throughput summed over them (output tokens for
    maximize-output-tokens; for minimize-latency, the lowest of the members' worst p99). With none inside, the
    closest: the fewest members outside. None: nothing was measured together."""
    groups: dict[tuple[str, int, Load, frozenset[str]], list[PointResult]] = {}
    for p in points:
        if p.measured_with:
            combination = frozenset([p.variant_name, *p.measured_with])
            groups.setdefault((p.triton_version, p.batch_size, p.load, combination), []).append(p)
    if not groups:
        return None

    def inside(group: list[PointResult]) -> int:
        return sum(within(p, constraints).side == Side.UNDER for p in group)

    def score(group: list[PointResult]) -> float:
        perfs = [p.perf for p in group if p.perf is not None]
        if objective == Objective.MINIMIZE_LATENCY:
            return -max((f.latency_p99_ms for f in perfs), default=float("inf"))
        if objective == Objective.MAXIMIZE_OUTPUT_TOKENS:
            return sum(f.output_tokens_per_sec or f.throughput_infer_per_sec for f in perfs)
        return sum(f.throughput_infer_per_sec for f in perfs)

    def summed_interval(group: list[PointResult]) -> tuple[float, float] | None:
        """The throughput summed over the members, as a range: their intervals' lows and highs added (None:
        a member without an interval, or an objective that does not sum throughput)."""
        if objective != Objective.MAXIMIZE_THROUGHPUT:
            return None
        lows, highs = [], []
        for p in group:
            if p.perf is None or p.perf.throughput_ci_low is None or p.perf.throughput_ci_high is None:
                return None
            lows.append(p.perf.throughput_ci_low)
            highs.append(p.perf.throughput_ci_high)
        return sum(lows), sum(highs)

    ranked = sorted(groups.values(), key=lambda g: (len(g) - inside(g), -score(g)))
    chosen = ranked[0]
    ok = inside(chosen) == len(chosen)
    # Combinations as good as the chosen one within the intervals: the answer says it is not the only one.
    chosen_range = summed_interval(chosen)
    tied = [g for g in ranked[1:] if chosen_range is not None and inside(g) == inside(chosen)
            and (r := summed_interval(g)) is not None and r[1] >= chosen_range[0]]  # fmt: skip
    numbers = ", ".join(f"{p.variant_name} {p.perf.throughput_infer_per_sec:,.1f} infer/sec p99 "
                        f"{p.perf.latency_p99_ms:.2f} ms" for p in chosen if p.perf is not None)  # fmt: skip
    surely = "surely " if judged_on_intervals(constraints) else ""
    if ok:
        why = f"{METRIC_WORDS[objective]} together of the {sum(inside(g) == len(g) for g in groups.values())} "
        why += f"combinations with every model {surely}within the constraints ({numbers})"
    else:
        why = f"no combination has every model {surely}within the constraints; closest ({numbers})"
    if tied:
        other = " + ".join(sorted(p.variant_name for p in tied[0])) + f" at {tied[0][0].where}"
        why += (f"; statistically tied with {len(tied)} other combination{'s' if len(tied) > 1 else ''} (their "
                f"summed 95% intervals overlap), e.g. {other}")
    first = chosen[0]
    searched = any(p.variant for p in points if p.measured_with)  # a config search: say which combination
    return BestTogether(batch_size=first.batch_size, load=first.load, members=[p.point.key for p in chosen],
                        satisfies_constraints=ok, why=why,
                        variants=[p.variant_name for p in chosen] if searched else None)  # fmt: skip


def choose_best(points: Sequence[PointResult], objective: Objective, constraints: Constraints) -> BestChoice:
    """The best point overall, per model and, with several Triton versions, per version (each in the order its
    first point was measured)."""
    models = list(dict.fromkeys(p.model for p in points))
    per_model = [b for m in models if (b := _best_of([p for p in points if p.model == m], objective, constraints))]
    versions = list(dict.fromkeys(p.triton_version for p in points if p.triton_version))
    per_version = [
        b for v in versions if (b := _best_of([p for p in points if p.triton_version == v], objective, constraints))
    ]
    return BestChoice(
        objective=objective,
        overall=_best_of(points, objective, constraints),
        per_model=per_model,
        per_version=per_version,
        boundaries=boundaries(points, latency_budgets(constraints)),
        together=best_together(points, objective, constraints),
    )
