"""Judging points against constraints and choosing the best (core/objectives.py), on real-looking numbers:
add_sub on this machine's CPU Triton, batch 1, concurrency 1 to 16."""

from __future__ import annotations

import pytest

from modelanalysis.core.objectives import choose_best, satisfies, violations
from modelanalysis.core.perf import PerfMeasurement
from modelanalysis.core.results import PointResult, PointStatus
from modelanalysis.core.server_metrics import GpuMetrics, ResourceMetrics
from modelanalysis.core.spec import Constraints, Objective, SweepSpec

# (concurrency, throughput, CI low, CI high, p99 ms): throughput saturates near 8, p99 keeps climbing.
ADD_SUB = [
    (1, 1510.0, 1482.0, 1538.0, 0.92),
    (2, 2790.0, 2731.0, 2849.0, 1.05),
    (4, 4420.0, 4301.0, 4539.0, 1.61),
    (8, 5180.0, 5010.0, 5350.0, 2.90),
    (16, 5260.0, 5060.0, 5460.0, 5.80),
]


def point(
    model: str, c: int, thr: float, low: float, high: float, p99: float, gpu_mb: float | None = None,
    p99_ci: tuple[float, float] | None = None,
) -> PointResult:
    gpus = [GpuMetrics(gpu_uuid="GPU-0", max_memory_used_mb=gpu_mb)] if gpu_mb is not None else []
    ci = {"latency_p99_ci_low_ms": p99_ci[0], "latency_p99_ci_high_ms": p99_ci[1]} if p99_ci else {}
    return PointResult(
        model=model, batch_size=1, concurrency=c, status=PointStatus.MEASURED,
        perf=PerfMeasurement(throughput_infer_per_sec=thr, latency_p50_ms=p99 / 2, latency_p90_ms=p99 * 0.8,
                             latency_p95_ms=p99 * 0.9, latency_p99_ms=p99, throughput_ci_low=low,
                             throughput_ci_high=high, **ci),
        resources=ResourceMetrics(gpus=gpus),
    )  # fmt: skip


def failed(model: str, c: int) -> PointResult:
    return PointResult(model=model, batch_size=1, concurrency=c, status=PointStatus.FAILED, error="server died")


def constraints(**wire: object) -> Constraints:
    return Constraints.model_validate(wire)


POINTS = [point("add_sub", *row) for row in ADD_SUB]


def test_judging_each_bound() -> None:
    budget = constraints(p99LatencyMs={"max": 2.0})
    assert [satisfies(p, budget) for p in POINTS] == [True, True, True, False, False]
    floor = constraints(throughputInferPerSec={"min": 3000})
    assert [satisfies(p, floor) for p in POINTS] == [False, False, True, True, True]
    (broken,) = violations(POINTS[3], budget)
    assert broken.value == 2.90 and broken.bound == 2.0 and broken.relative == pytest.approx(0.45)


def test_gpu_memory_is_judged_only_where_measured() -> None:
    memory = constraints(gpuMemoryMB={"max": 1000})
    assert satisfies(point("m", 1, 10, 9, 11, 1, gpu_mb=900), memory)
    assert not satisfies(point("m", 1, 10, 9, 11, 1, gpu_mb=1200), memory)
    assert satisfies(point("m", 1, 10, 9, 11, 1, gpu_mb=None), memory)  # no GPU: nothing to judge


def test_a_failed_point_never_satisfies() -> None:
    assert not satisfies(failed("add_sub", 32), Constraints())


def test_without_constraints_the_highest_throughput_wins_and_a_tie_within_the_interval_is_said() -> None:
    best = choose_best(POINTS, Objective.MAXIMIZE_THROUGHPUT, Constraints())
    assert best.overall is not None
    assert (best.overall.load.value, best.overall.satisfies_constraints) == (16, True)
    assert (best.overall.throughput_ci_low, best.overall.throughput_ci_high) == (5060.0, 5460.0)
    # concurrency 8's interval reaches into 16's: the answer says they are statistically tied.
    assert "add_sub/b1/c8 is within its confidence interval" in best.overall.why
    assert "95% CI 5,060.0 to 5,460.0" in best.overall.why


def test_a_latency_budget_picks_the_highest_throughput_under_it() -> None:
    best = choose_best(POINTS, Objective.MAXIMIZE_THROUGHPUT, constraints(p99LatencyMs={"max": 2.0}))
    assert best.overall is not None and best.overall.load.value == 4 and best.overall.satisfies_constraints
    assert "of the 3 points surely within the constraints" in best.overall.why
    assert "statistically tied" not in best.overall.why  # 2's high 2849 < 4's low 4301
    assert "judged on point values" in best.overall.why  # these points have no p99 interval: it says so


def test_a_point_only_probably_within_the_budget_is_named_beside_the_answer_never_chosen() -> None:
    """Issue 21: c8's p99 2.9 ms is under a 3 ms budget by its value, but its interval (2.6 to 3.2) straddles it;
    c4's (1.5 to 1.7) is surely under. c4 is the answer, c8 is named beside it."""
    points = [point("add_sub", 4, 4420.0, 4301.0, 4539.0, 1.61, p99_ci=(1.5, 1.7)),
              point("add_sub", 8, 5180.0, 5010.0, 5350.0, 2.90, p99_ci=(2.6, 3.2))]  # fmt: skip
    best = choose_best(points, Objective.MAXIMIZE_THROUGHPUT, constraints(p99LatencyMs={"max": 3.0}))
    assert best.overall is not None and best.overall.load.value == 4 and best.overall.satisfies_constraints
    assert best.overall.probably_within == "add_sub/b1/c8"
    assert "add_sub/b1/c8 ranks higher but is only probably within" in best.overall.why
    assert "judged on point values" not in best.overall.why
    # With only the probable one, it is not passed off as an answer: none is surely within, it is the closest.
    alone = choose_best(points[1:], Objective.MAXIMIZE_THROUGHPUT, constraints(p99LatencyMs={"max": 3.0}))
    assert alone.overall is not None and not alone.overall.satisfies_constraints
    assert alone.overall.why.startswith("no point is surely within the constraints; add_sub/b1/c8")


def test_a_throughput_floor_is_judged_on_the_throughput_interval() -> None:
    # c4's interval 4301-4539 straddles a 4400 floor although its mean 4420 is above it: not surely within.
    best = choose_best(POINTS[:3], Objective.MINIMIZE_LATENCY, constraints(throughputInferPerSec={"min": 4400}))
    assert best.overall is not None and not best.overall.satisfies_constraints
    assert best.overall.probably_within == "add_sub/b1/c4"


def test_minimize_latency_picks_the_lowest_p99_within_the_constraints() -> None:
    best = choose_best(POINTS, Objective.MINIMIZE_LATENCY, constraints(throughputInferPerSec={"min": 2000}))
    assert best.overall is not None and best.overall.load.value == 2
    assert best.overall.why.startswith("lowest p99 latency")


def test_when_no_point_satisfies_the_closest_is_named() -> None:
    strict = constraints(p99LatencyMs={"max": 0.5}, throughputInferPerSec={"min": 5000})
    best = choose_best(POINTS, Objective.MAXIMIZE_THROUGHPUT, strict)
    assert best.overall is not None and not best.overall.satisfies_constraints
    # c1: p99 84% over + throughput 70% short; c8: p99 480% over; c2: 110% + 44%: c1 breaks them least.
    assert best.overall.load.value == 1
    assert best.overall.why.startswith("no point satisfies the constraints; closest: p99 latency (ms) 0.92 > 0.5")
    assert best.overall.summary().startswith("none satisfy; closest add_sub/b1/c1")


def test_best_per_model_and_overall_and_nothing_measured() -> None:
    other = [point("resnet", 1, 300.0, 290.0, 310.0, 3.0), point("resnet", 2, 520.0, 500.0, 540.0, 3.9)]
    best = choose_best([*POINTS, *other, failed("resnet", 4)], Objective.MAXIMIZE_THROUGHPUT, Constraints())
    assert [(b.model, b.load.value) for b in best.per_model] == [("add_sub", 16), ("resnet", 2)]
    assert best.overall is not None and best.overall.model == "add_sub"
    nothing = choose_best([failed("resnet", 1)], Objective.MAXIMIZE_THROUGHPUT, Constraints())
    assert nothing.overall is None and nothing.per_model == []


def test_the_spec_takes_objective_and_constraints_on_the_wire() -> None:
    spec = SweepSpec.model_validate(
        {"models": [{"name": "a"}], "objective": "minimize-latency",
         "constraints": {"p99LatencyMs": {"max": 20}, "gpuMemoryMB": {"max": 16000}}}
    )  # fmt: skip
    assert spec.objective == Objective.MINIMIZE_LATENCY
    assert spec.constraints.p99_latency_ms is not None and spec.constraints.p99_latency_ms.max == 20
    with pytest.raises(ValueError):
        SweepSpec.model_validate({"models": [{"name": "a"}], "constraints": {"p99LatencyMs": {"max": 0}}})
    with pytest.raises(ValueError):
        SweepSpec.model_validate({"models": [{"name": "a"}], "objective": "maximize-happiness"})
