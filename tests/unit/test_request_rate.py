"""Open-loop load (request rate) as a kind of point in the one engine: spec, keys, perf_analyzer's arguments and
output, whether the offered rate was delivered, and how CSV and status carry it. perf_analyzer's text is real
(tests/data/README.md)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from modelanalysis.core.budget import Side, boundaries, delivery_verdict, not_delivered_sentence, p99_budget
from modelanalysis.core.convergence import Verdict
from modelanalysis.core.load import Load, LoadKind
from modelanalysis.core.objectives import choose_best
from modelanalysis.core.perf import (
    PerfMeasurement,
    PerfRun,
    combine_runs,
    parse_perf_analyzer_csv,
    parse_perf_analyzer_windows,
    parse_send_rate,
    perf_analyzer_args,
)
from modelanalysis.core.report import INFERENCE_CSV, csv_files
from modelanalysis.core.results import AnalysisResult, PointResult, PointStatus
from modelanalysis.core.search import next_load
from modelanalysis.core.spec import Constraints, MeasurementSettings, Objective, RequestDistribution, SweepSpec
from modelanalysis.core.sweep import Point, plan_model_points
from modelanalysis.kube.conditions import compact_point, expand_point, model_entry
from modelanalysis.kube.names import point_job_name

DATA = Path(__file__).resolve().parents[1] / "data"


def measured(rate: float, name: str) -> PointResult:
    """A point measured from one real perf_analyzer run at `rate` (its windows, report and warnings)."""
    text = (DATA / f"{name}.txt").read_text()
    summary = parse_perf_analyzer_csv((DATA / f"{name}.csv").read_text(), Load.request_rate(rate))
    send_rate, delayed = parse_send_rate(text)
    run = PerfRun(summary, parse_perf_analyzer_windows(text), None, send_rate, delayed)
    perf = combine_runs([run], Verdict(True, True, "converged"), batch_size=1, window_ms=500)
    return PointResult(model="add_sub", batch_size=1, load=Load.request_rate(rate), status=PointStatus.MEASURED,
                       perf=perf)  # fmt: skip


SUSTAINED = measured(500, "perf-analyzer-2.50-request-rate-500")
BEHIND = measured(20000, "perf-analyzer-2.50-request-rate-20000")


def test_a_rate_sweep_plans_rate_points_in_ascending_order() -> None:
    spec = SweepSpec.model_validate({"models": [{"name": "m"}], "requestRate": [400, 100.0, 250.5, 100]})
    assert [load.value for load in spec.load_steps] == [100, 250.5, 400]
    plan = plan_model_points(spec, "m", max_batch_size=8)
    assert [p.key for p in plan.points] == ["m/b1/r100", "m/b1/r250.5", "m/b1/r400"]
    assert all(p.load.kind == LoadKind.REQUEST_RATE for p in plan.points)


@pytest.mark.parametrize("other", [{"concurrency": [1, 2]}, {"concurrencySearch": {}}])
def test_a_rate_and_a_concurrency_together_are_refused_in_one_sentence(other: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match=r"give either requestRate.* not both"):
        SweepSpec.model_validate({"models": [{"name": "m"}], "requestRate": [100], **other})


@pytest.mark.parametrize("rate", [0, -5, 2_000_000])
def test_a_rate_out_of_bounds_is_refused(rate: float) -> None:
    with pytest.raises(ValidationError):
        SweepSpec.model_validate({"models": [{"name": "m"}], "requestRate": [rate]})


def test_perf_analyzer_is_held_at_the_rate_with_the_distribution_asked_for() -> None:
    point = Point(model="m", batch_size=4, load=Load.request_rate(250))
    settings = MeasurementSettings(request_distribution=RequestDistribution.POISSON)
    args = perf_analyzer_args(point, settings, "h:8001", "h:8000", "/tmp/r.csv")
    assert args[args.index("--request-rate-range") + 1] == "250:250"
    assert args[args.index("--request-distribution") + 1] == "poisson"
    assert "--concurrency-range" not in args
    closed = perf_analyzer_args(Point(model="m", batch_size=4, load=Load.concurrency(2)), settings, "h", "h", "r")
    assert "--request-distribution" not in closed and closed[closed.index("--concurrency-range") + 1] == "2:2"


def test_a_sustained_rate_is_delivered_within_its_interval() -> None:
    perf = SUSTAINED.perf
    assert perf is not None and perf.send_rate_per_sec is None and perf.delayed_requests_pct is None
    assert perf.throughput_ci_low is not None and perf.throughput_ci_high is not None
    assert perf.throughput_ci_low <= 500 <= perf.throughput_ci_high
    verdict = delivery_verdict(SUSTAINED)
    assert verdict is not None and verdict.side != Side.OVER
    assert not_delivered_sentence(SUSTAINED) is None


def test_a_rate_above_what_perf_analyzer_can_send_says_it_was_not_delivered_and_who_fell_behind() -> None:
    perf = BEHIND.perf
    assert perf is not None and perf.send_rate_per_sec == pytest.approx(4667.32)
    assert perf.delayed_requests_pct == pytest.approx(99.98)
    verdict = delivery_verdict(BEHIND)
    assert verdict is not None and verdict.side == Side.OVER
    sentence = not_delivered_sentence(BEHIND)
    assert sentence is not None and "offered request rate 20000/s" in sentence
    assert "perf_analyzer sent only 4,667 requests/sec" in sentence and "load generator fell behind" in sentence


def test_closed_loop_points_offer_no_rate() -> None:
    point = SUSTAINED.model_copy(update={"load": Load.concurrency(4)})
    assert delivery_verdict(point) is None and not_delivered_sentence(point) is None


def test_a_rate_not_delivered_never_satisfies_and_is_never_the_best() -> None:
    best = choose_best([SUSTAINED, BEHIND], Objective.MAXIMIZE_THROUGHPUT, Constraints())
    assert best.overall is not None and best.overall.load == Load.request_rate(500)
    assert best.overall.satisfies_constraints


def test_the_csv_carries_the_rate_in_model_analyzers_request_rate_column_and_says_what_was_delivered() -> None:
    result = AnalysisResult(triton_version="x", points=[SUSTAINED, BEHIND])
    rows = list(csv.DictReader(io.StringIO(csv_files(result)[INFERENCE_CSV])))
    assert "Concurrency" not in rows[0] and [r["Request Rate"] for r in rows] == ["500", "20000"]
    assert [r["Delivered"] for r in rows] == ["Yes", "No"]
    assert [r["Satisfies Constraints"] for r in rows] == ["Yes", "No"]
    assert rows[1]["Send Rate (req/sec)"] == "4667.320" and rows[1]["Delayed Requests (%)"] == "99.980"


def test_a_rate_point_round_trips_through_analysis_json_and_status() -> None:
    wire = json.loads(SUSTAINED.model_dump_json())
    assert wire["request_rate"] == 500 and "concurrency" not in wire and "load" not in wire
    assert PointResult.model_validate(wire) == SUSTAINED
    compact = compact_point(BEHIND)
    status = compact.model_dump(by_alias=True, exclude_none=True)
    assert status["requestRate"] == 20000 and "concurrency" not in status and status["sendRate"] == 4667.32
    back = expand_point(compact)
    assert back.load == BEHIND.load and back.key == BEHIND.key == "add_sub/b1/r20000"


def test_a_fractional_rate_gets_a_job_name_kubernetes_accepts() -> None:
    name = point_job_name("analysis", 1, Point(model="m", batch_size=2, load=Load.request_rate(2.5)))
    assert "-b2-r2p5-" in name and "." not in name


def test_skipped_rate_points_keep_their_rate_in_status() -> None:
    from modelanalysis.core.results import ModelOutcome, ModelStatus
    from modelanalysis.core.sweep import SkippedPoint

    skipped = SkippedPoint(point=Point(model="m", batch_size=16, load=Load.request_rate(100)), reason="too big")
    entry = model_entry(ModelOutcome(name="m", status=ModelStatus.PROFILED, skipped=[skipped]))
    assert entry.skipped is not None and entry.skipped[0].model_dump(by_alias=True, exclude_none=True) == {
        "batch": 16, "requestRate": 100, "reason": "too big"
    }


# ---- the request-rate search (core/search.py) ------------------------------------------------------------

CAPACITY = 1000.0  # infer/sec a made-up server answers at most


def served(rate: float, p99_at: float = 0.0) -> PointResult:
    """What a server of CAPACITY would measure at `rate` (batch 1): throughput the rate or the capacity, +-2%;
    p99 `p99_at` ms per 100 req/s offered (+-5%), when given."""
    throughput = min(float(rate), CAPACITY)
    p99 = p99_at * rate / 100 if p99_at else 1.0
    perf = PerfMeasurement(
        throughput_infer_per_sec=throughput, latency_p50_ms=p99 / 2, latency_p90_ms=p99, latency_p95_ms=p99,
        latency_p99_ms=p99, throughput_ci_low=throughput * 0.98, throughput_ci_high=throughput * 1.02,
        latency_p99_ci_low_ms=p99 * 0.95, latency_p99_ci_high_ms=p99 * 1.05,
    )  # fmt: skip
    return PointResult(model="m", batch_size=1, load=Load.request_rate(rate), status=PointStatus.MEASURED, perf=perf)


def search_rates(budget: float | None = None, p99_at: float = 0.0) -> tuple[list[float], str]:
    spec = SweepSpec.model_validate({"models": [{"name": "m"}], "requestRateSearch": {}})
    done: list[PointResult] = []
    while (step := next_load(spec.load_steps, done, spec.load_search, p99_budget(budget))).load is not None:
        done.append(served(step.load.value, p99_at))
    return [p.load.value for p in done], step.reason


def test_the_rate_search_doubles_until_a_rate_is_not_delivered_then_bisects_to_within_5_percent() -> None:
    rates, reason = search_rates()
    assert rates[:8] == [16, 32, 64, 128, 256, 512, 1024, 2048]  # 2048 is surely not delivered
    [found] = boundaries([served(r) for r in rates], ())
    assert found.load_kind == LoadKind.REQUEST_RATE
    assert found.surely_under is not None and found.surely_over is not None
    # The true capacity is bracketed, up to the measurement's own +-2% (1024/s reads 1000 +- 20: it may be so).
    assert found.surely_under <= CAPACITY * 1.05 and found.surely_over > CAPACITY
    edge = max([found.surely_under, *found.undecided])
    assert found.surely_over - edge <= 0.05 * found.surely_over  # bisected to within 5% of the rate
    assert reason.startswith("the search's boundary: m batch 1: request rate ")
    assert "is the highest surely delivered" in reason


def test_under_a_latency_budget_the_rate_search_stops_where_p99_breaks_it() -> None:
    # p99 = 2 ms per 100 req/s: the 10 ms budget falls at 500 req/s, well before the server's capacity.
    rates, reason = search_rates(budget=10.0, p99_at=2.0)
    assert 1024 in rates and 2048 not in rates  # 512's p99 interval straddles the budget: the climb goes on
    [found] = boundaries([served(r, 2.0) for r in rates], p99_budget(10.0))
    assert found.surely_under is not None and found.surely_over is not None
    assert found.surely_under < 500 < found.surely_over
    assert "is the highest surely delivered and under the 10 ms p99 budget" in reason


def test_a_first_rate_that_is_not_delivered_ends_the_search_saying_so() -> None:
    spec = SweepSpec.model_validate({"models": [{"name": "m"}], "requestRateSearch": {"minRate": 4000}})
    first = served(4000)
    step = next_load(spec.load_steps, [first], spec.load_search)
    assert step.load is None and step.reason == "request rate 4000/s, the search's lowest, does not hold already"


@pytest.mark.parametrize(
    ("search", "says"),
    [({"minRate": 100, "maxRate": 50}, "is below minRate"), ({"minRate": 1, "maxRate": 100000}, "more than 65536")],
)
def test_a_rate_search_with_bounds_that_do_not_climb_is_refused(search: dict[str, float], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        SweepSpec.model_validate({"models": [{"name": "m"}], "requestRateSearch": search})
