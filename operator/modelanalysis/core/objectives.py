"""Which point to deploy: each point judged against the constraints, and the best one per model and overall.

Pure functions over measured points, shared by the CLI and the operator (the engine keeps the answer in the
result as it goes). A point satisfies the constraints when it was measured and no measured value breaks a bound
(a value that was not measured, such as GPU memory without a GPU, is not judged). Among the points that
satisfy them the objective ranks: maximize-throughput takes the highest throughput (ties: lower p99),
minimize-latency the lowest p99 (ties: higher throughput). When none satisfies, the answer says so and names
the closest point: the one whose bounds are broken by the least, summed relatively (10% over a latency budget
counts as much as 10% short of a throughput floor).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from modelanalysis.core.spec import Constraints, Objective
from modelanalysis.core.sweep import point_key

if TYPE_CHECKING:
    from modelanalysis.core.results import PointResult


class Violation(BaseModel):
    """One bound a point breaks: what, its value, the bound, and by how much relative to the bound."""

    what: str
    value: float
    bound: float
    relative: float

    def sentence(self) -> str:
        side = ">" if self.what != "throughput" else "<"
        return f"{self.what} {_num(self.value)} {side} {_num(self.bound)} (by {100 * self.relative:.0f}%)"


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
    if constraints.p99_latency_ms is not None and perf.latency_p99_ms > constraints.p99_latency_ms.max:
        bound = constraints.p99_latency_ms.max
        found.append(Violation(what="p99 latency (ms)", value=perf.latency_p99_ms, bound=bound,
                               relative=(perf.latency_p99_ms - bound) / bound))  # fmt: skip
    floor = constraints.throughput_infer_per_sec
    if floor is not None and perf.throughput_infer_per_sec < floor.min:
        short = (floor.min - perf.throughput_infer_per_sec) / floor.min if floor.min else 1.0
        found.append(Violation(what="throughput", value=perf.throughput_infer_per_sec, bound=floor.min, relative=short))
    memory = gpu_memory_mb(point)
    if constraints.gpu_memory_mb is not None and memory is not None and memory > constraints.gpu_memory_mb.max:
        bound = constraints.gpu_memory_mb.max
        found.append(Violation(what="GPU memory (MB)", value=memory, bound=bound, relative=(memory - bound) / bound))
    return found


def describe_rule(objective: Objective, constraints: Constraints) -> str:
    """How the best point is chosen, in one sentence (the report's legend)."""
    metric = "highest throughput" if objective == Objective.MAXIMIZE_THROUGHPUT else "lowest p99 latency"
    bounds = []
    if constraints.p99_latency_ms is not None:
        bounds.append(f"p99 latency at most {_num(constraints.p99_latency_ms.max)} ms")
    if constraints.throughput_infer_per_sec is not None:
        bounds.append(f"throughput at least {_num(constraints.throughput_infer_per_sec.min)} infer/sec")
    if constraints.gpu_memory_mb is not None:
        bounds.append(f"GPU memory at most {_num(constraints.gpu_memory_mb.max)} MB (where measured)")
    within = f"within the constraints ({'; '.join(bounds)})" if bounds else "measured (no constraints given)"
    return f"Best = the {metric} ({objective.value}) among the points {within}; with none inside, the closest."


def satisfies(point: PointResult, constraints: Constraints) -> bool:
    """Model Analyzer's "Satisfies Constraints": a failed point never does."""
    return point.perf is not None and not violations(point, constraints)


class BestPoint(BaseModel):
    """The point chosen for one model (or overall), with its numbers and why it won."""

    model: str
    variant: str = ""  # the config variant it was measured in (core/variants.py); empty: the model's own config
    triton_version: str = ""  # the Triton release it ran on, when an analysis compares several
    batch_size: int
    concurrency: int
    throughput_infer_per_sec: float
    throughput_ci_low: float | None = None
    throughput_ci_high: float | None = None
    latency_p99_ms: float
    gpu_memory_mb: float | None = None
    satisfies_constraints: bool
    why: str

    @property
    def key(self) -> str:
        return point_key(self.variant or self.model, self.batch_size, self.concurrency, self.triton_version)

    def summary(self) -> str:
        """One short line: where it is and what it gives (the operator's Best column)."""
        text = f"{self.key} {self.throughput_infer_per_sec:,.1f} infer/s p99 {self.latency_p99_ms:.2f} ms"
        return text if self.satisfies_constraints else f"none satisfy; closest {text}"


class BestChoice(BaseModel):
    """The answer: the best point overall, per model, and per Triton version when an analysis compares several
    (None/absent where nothing was measured)."""

    objective: Objective
    overall: BestPoint | None = None
    per_model: list[BestPoint] = Field(default_factory=list)
    per_version: list[BestPoint] = Field(default_factory=list)


def _interval(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f", 95% CI {low:,.1f} to {high:,.1f}"


def _rank_key(point: PointResult, objective: Objective) -> tuple[float, float]:
    """Smaller is better."""
    assert point.perf is not None
    thr, p99 = point.perf.throughput_infer_per_sec, point.perf.latency_p99_ms
    return (-thr, p99) if objective == Objective.MAXIMIZE_THROUGHPUT else (p99, -thr)


def _tied(best: PointResult, other: PointResult, objective: Objective) -> bool:
    """Whether the runner-up is within the winner's confidence interval of the objective's metric."""
    a, b = best.perf, other.perf
    assert a is not None and b is not None
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
    feasible = sorted((p for p in measured if satisfies(p, constraints)), key=lambda p: _rank_key(p, objective))
    if feasible:
        winner = feasible[0]
        assert winner.perf is not None
        metric = "highest throughput" if objective == Objective.MAXIMIZE_THROUGHPUT else "lowest p99 latency"
        within = "within the constraints" if constraints.any else "measured"
        why = f"{metric} of the {len(feasible)} points {within}"
        if len(feasible) > 1 and _tied(winner, feasible[1], objective):
            why += f"; {feasible[1].point.key} is within its confidence interval (statistically tied)"
        ok = True
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
    why += _interval(perf.throughput_ci_low, perf.throughput_ci_high) + f"; p99 {perf.latency_p99_ms:.3f} ms)"
    return BestPoint(
        model=winner.model,
        variant=winner.variant,
        triton_version=winner.triton_version,
        batch_size=winner.batch_size,
        concurrency=winner.concurrency,
        throughput_infer_per_sec=perf.throughput_infer_per_sec,
        throughput_ci_low=perf.throughput_ci_low,
        throughput_ci_high=perf.throughput_ci_high,
        latency_p99_ms=perf.latency_p99_ms,
        gpu_memory_mb=gpu_memory_mb(winner),
        satisfies_constraints=ok,
        why=why,
    )


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
    )
