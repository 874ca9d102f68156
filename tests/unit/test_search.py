"""The concurrency search's decisions, on points as the engine records them (no server)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from modelanalysis.core.budget import p99_budget
from modelanalysis.core.load import Load, LoadValue
from modelanalysis.core.perf import PerfMeasurement, with_second_reading
from modelanalysis.core.results import AnalysisResult, PointResult, PointStatus
from modelanalysis.core.search import edge_to_recheck, next_load, rises_over
from modelanalysis.core.spec import ConcurrencySearch, SweepSpec, doubling_steps

SEARCH = ConcurrencySearch()
STEPS = doubling_steps(64)
RECORDED = Path(__file__).resolve().parents[1] / "data" / "cli-cpu-add_sub-concurrency-climb.json"


@dataclass(frozen=True)
class Step:
    concurrency: LoadValue | None
    reason: str


def next_concurrency(
    steps: list[int], measured: Iterable[PointResult], search: ConcurrencySearch | None, budget: float | None = None
) -> Step:
    """The search's next step over concurrency values, as a number."""
    step = next_load([Load.concurrency(s) for s in steps], measured, search, p99_budget(budget))
    return Step(step.load.value if step.load else None, step.reason)


def point(
    concurrency: int,
    throughput: float,
    half_width_pct: float = 2.0,
    p99_ms: float = 1.0,
    p99_half_ms: float | None = None,
) -> PointResult:
    """A measured point; `p99_half_ms`: its p99 interval's half-width (None: no p99 interval, too few requests)."""
    half = throughput * half_width_pct / 100
    ci = {} if p99_half_ms is None else {"latency_p99_ci_low_ms": p99_ms - p99_half_ms,
                                         "latency_p99_ci_high_ms": p99_ms + p99_half_ms}  # fmt: skip
    perf = PerfMeasurement(
        throughput_infer_per_sec=throughput, latency_p50_ms=p99_ms / 2, latency_p90_ms=p99_ms, latency_p95_ms=p99_ms,
        latency_p99_ms=p99_ms, throughput_ci_low=throughput - half, throughput_ci_high=throughput + half, **ci,
    )  # fmt: skip
    return PointResult(model="m", batch_size=1, concurrency=concurrency, status=PointStatus.MEASURED, perf=perf)


def failed(concurrency: int) -> PointResult:
    return PointResult(model="m", batch_size=1, concurrency=concurrency, status=PointStatus.FAILED, error="timeout")


def climb(measured: dict[int, PointResult], budget: float | None = None) -> list[int]:
    """Run the search against a table of what each concurrency would measure; the concurrencies it measured."""
    done: list[PointResult] = []
    while (step := next_concurrency(STEPS, done, SEARCH, budget)).concurrency is not None:
        done.append(measured[step.concurrency])
    return [int(p.load.value) for p in done]


def test_doubling_steps_end_at_the_maximum() -> None:
    assert doubling_steps(1024) == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert doubling_steps(12) == [1, 2, 4, 8, 12]
    assert doubling_steps(1) == [1]


def test_auto_concurrency_without_a_list_climbs_powers_of_two() -> None:
    spec = SweepSpec.model_validate({"models": [{"name": "m"}], "concurrencySearch": {"maxConcurrency": 16}})
    assert spec.concurrency_steps == [1, 2, 4, 8, 16]
    listed = SweepSpec.model_validate({"models": [{"name": "m"}], "concurrency": [3, 1], "concurrencySearch": {}})
    assert listed.concurrency_steps == [1, 3]


def test_without_a_search_every_step_is_measured_in_order() -> None:
    assert next_concurrency([1, 2, 4], [point(1, 100)], None).concurrency == 2
    assert next_concurrency([1, 2, 4], [point(1, 100), point(2, 100), point(4, 100)], None).concurrency is None


def test_a_rise_inside_the_noise_is_no_rise() -> None:
    assert rises_over(point(2, 200), point(1, 100), 5)
    assert not rises_over(point(2, 103), point(1, 100), 5)  # under 5%
    assert not rises_over(point(2, 110, half_width_pct=10), point(1, 100, half_width_pct=10), 5)  # intervals overlap


def test_the_climb_stops_two_steps_after_throughput_saturates() -> None:
    table = {1: point(1, 1000), 2: point(2, 1900), 4: point(4, 2600), 8: point(8, 2650), 16: point(16, 2580)}
    assert climb(table) == [1, 2, 4, 8, 16]
    last = next_concurrency(STEPS, table.values(), SEARCH)
    assert last.concurrency is None
    assert "saturated" in last.reason and "concurrency 4's 2,600.0 infer/sec" in last.reason


def test_one_step_without_a_rise_is_not_yet_saturation() -> None:
    table = {c: point(c, t) for c, t in [(1, 1000), (2, 1010), (4, 2500), (8, 2510), (16, 2490)]}
    assert climb(table) == [1, 2, 4, 8, 16]  # 2 did not rise, 4 did: the count starts again


def test_a_latency_budget_bisects_for_the_highest_concurrency_under_it() -> None:
    p99 = {1: 1.0, 2: 1.5, 4: 2.5, 8: 6.0, 5: 3.0, 6: 4.5, 7: 5.5}
    table = {c: point(c, 1000 * c, p99_ms=ms) for c, ms in p99.items()}
    assert climb(table, budget=5.0) == [1, 2, 4, 8, 6, 7]
    final = next_concurrency(STEPS, [table[c] for c in (1, 2, 4, 8, 6, 7)], SEARCH, 5.0)
    assert final.concurrency is None
    assert "concurrency 6 is the highest surely under the 5 ms p99 budget; 7 surely over it" in final.reason
    assert "decided on p99's point value" in final.reason  # these points have no p99 interval: it says so


def test_budget_decisions_use_the_p99_interval_and_leave_an_undecided_band_as_such() -> None:
    """Issue 21: one reading next to the budget must not decide. 4 and 6 straddle the 5 ms budget: the climb goes
    on past 4, and the bisection narrows both edges of the band without measuring inside it."""
    p99 = {1: (1.0, 0.2), 2: (2.0, 0.2), 4: (4.8, 0.5), 8: (7.0, 0.5), 3: (3.5, 0.3), 6: (5.2, 0.5), 7: (6.5, 0.4),
           5: (5.0, 0.5)}  # fmt: skip
    table = {c: point(c, 1000 * c, p99_ms=ms, p99_half_ms=half) for c, (ms, half) in p99.items()}
    assert climb(table, budget=5.0) == [1, 2, 4, 8, 3, 6, 7]
    final = next_concurrency(STEPS, [table[c] for c in (1, 2, 4, 8, 3, 6, 7)], SEARCH, 5.0)
    assert final.concurrency is None
    assert final.reason == (
        "the search's boundary: m batch 1: concurrency 3 is the highest surely under the 5 ms p99 budget; "
        "4, 6 undecided (95% intervals straddle it); 7 surely over it"
    )


def test_with_nothing_surely_under_the_answer_says_so() -> None:
    table = {1: point(1, 100, p99_ms=5.1, p99_half_ms=0.5), 2: point(2, 150, p99_ms=9.0, p99_half_ms=0.5)}
    assert climb(table, budget=5.0) == [1, 2]
    reason = next_concurrency(STEPS, table.values(), SEARCH, 5.0).reason
    assert "no concurrency is surely under the 5 ms p99 budget; 1 undecided" in reason and "2 surely over" in reason


def test_a_budget_broken_at_concurrency_1_has_no_feasible_point() -> None:
    table = {1: point(1, 100, p99_ms=9.0)}
    assert climb(table, budget=5.0) == [1]
    assert "already at concurrency 1" in next_concurrency(STEPS, table.values(), SEARCH, 5.0).reason


def test_a_failed_point_ends_the_climb() -> None:
    table = {1: point(1, 100), 2: point(2, 200), 4: failed(4)}
    assert climb(table) == [1, 2, 4]
    assert "concurrency 4 failed" in next_concurrency(STEPS, table.values(), SEARCH).reason


def test_a_failed_bisection_point_counts_as_over_the_budget() -> None:
    table = {1: point(1, 100, p99_ms=1.0), 2: point(2, 200, p99_ms=2.0), 4: point(4, 300, p99_ms=9.0), 3: failed(3)}
    assert climb(table, budget=5.0) == [1, 2, 4, 3]
    assert "concurrency 2 is the highest" in next_concurrency(STEPS, table.values(), SEARCH, 5.0).reason


def test_the_search_gives_the_same_answer_from_the_same_points_after_a_restart() -> None:
    table = {1: point(1, 1000), 2: point(2, 1900), 4: point(4, 2600)}
    first = next_concurrency(STEPS, [table[1], table[2], table[4]], SEARCH)
    again = next_concurrency(STEPS, [table[4], table[1], table[2]], SEARCH)  # status may hold them in any order
    assert first == again and first.concurrency == 8


def test_on_a_real_recorded_climb_the_search_stops_near_the_knee() -> None:
    """add_sub on this 2-core machine's CPU, batch 1 and 8 at concurrency 1 to 32 (tests/data/README.md)."""
    recorded = AnalysisResult.model_validate(json.loads(RECORDED.read_text()))
    for batch in (1, 8):
        table = {p.load.value: p for p in recorded.points if p.batch_size == batch}
        steps = sorted(table)
        done: list[PointResult] = []
        while (step := next_concurrency(steps, done, SEARCH)).concurrency is not None:
            done.append(table[step.concurrency])
        best_measured = max(table.values(), key=lambda p: p.perf.throughput_infer_per_sec if p.perf else 0)
        best_found = max(done, key=lambda p: p.perf.throughput_infer_per_sec if p.perf else 0)
        assert len(done) < len(steps), "the search measured every step: no saving"
        # What the search found is the best of the full sweep, or statistically tied with it.
        assert best_found.perf is not None and best_measured.perf is not None
        assert best_found.perf.throughput_ci_high is not None and best_measured.perf.throughput_ci_low is not None
        assert best_found.perf.throughput_ci_high >= best_measured.perf.throughput_ci_low


def test_both_edges_of_a_found_boundary_are_read_twice_and_disagreeing_readings_make_a_load_undecided() -> None:
    """Issue 21: one reading's interval does not see the machine drift between readings. With the boundary found
    (3 surely under, 7 surely over, the band between undecided), 3 is measured again, then 7; a second reading of
    3 that straddles the budget makes 3 undecided, so the search bisects below it."""
    p99 = {1: (1.0, 0.2), 2: (2.0, 0.2), 4: (4.8, 0.5), 8: (7.0, 0.5), 3: (3.5, 0.3), 6: (5.2, 0.5), 7: (6.5, 0.4)}
    done = [point(c, 1000 * c, p99_ms=ms, p99_half_ms=half) for c, (ms, half) in p99.items()]
    budget = p99_budget(5.0)
    assert edge_to_recheck(done, SEARCH, budget) == Load.concurrency(3)
    three = next(p for p in done if p.load.value == 3)
    second = point(3, 3000, p99_ms=4.9, p99_half_ms=0.3).perf
    assert three.perf is not None and second is not None
    three.perf, three.rechecked = with_second_reading(three.perf, second), True
    assert (three.perf.latency_p99_ci_low_ms, three.perf.latency_p99_ci_high_ms) == (3.2, 5.2)
    assert three.perf.latency_p99_ms == 3.5  # the first reading's numbers stand; only the intervals widen
    assert next_concurrency(STEPS, done, SEARCH, 5.0).concurrency is None  # 2..3: neighbours, nothing to bisect
    assert edge_to_recheck(done, SEARCH, budget) == Load.concurrency(2)  # the new edge, read once so far
    for p in done:
        p.rechecked = True
    assert edge_to_recheck(done, SEARCH, budget) is None


def test_nothing_is_read_twice_without_a_search_or_a_broken_budget() -> None:
    done = [point(c, 1000 * c, p99_ms=1.0, p99_half_ms=0.1) for c in (1, 2, 4)]
    assert edge_to_recheck(done, None, p99_budget(5.0)) is None
    assert edge_to_recheck(done, SEARCH, p99_budget(5.0)) is None  # the climb never broke the budget
    assert edge_to_recheck(done, SEARCH, ()) is None
