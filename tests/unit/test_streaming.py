"""Streaming (decoupled) models: perf_analyzer's per-request export reduced to TTFT, ITL and tokens per second
(core/streaming.py), on exports captured from the real perf_analyzer 2.50 against the example streaming models
(tests/data/README.md), and on hand-made ones whose answers are known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelanalysis.core.budget import Side, budget_verdict, latency_budgets
from modelanalysis.core.convergence import Verdict
from modelanalysis.core.load import Load
from modelanalysis.core.objectives import choose_best, violations
from modelanalysis.core.perf import PerfMeasurement, PerfRun, PerfWindow, combine_runs, perf_analyzer_args
from modelanalysis.core.report import INFERENCE_CSV, csv_files
from modelanalysis.core.results import AnalysisResult, ModelStatus, PointResult, PointStatus
from modelanalysis.core.search import next_load
from modelanalysis.core.spec import AtMost, ConcurrencySearch, Constraints, MeasurementSettings, Objective, Protocol
from modelanalysis.core.streaming import (
    ProfileExportError,
    combine_stream_windows,
    parse_profile_export,
    percentile,
    read_stream_windows,
    stream_windows,
)
from modelanalysis.core.sweep import Point
from tests.fakes import Recorder, StandInTriton, engine, numbers, spec

DATA = Path(__file__).resolve().parents[1] / "data"
LLM_EXPORT = (DATA / "perf-analyzer-2.50-llm_stream-export.json").read_text()
TOKEN_EXPORT = (DATA / "perf-analyzer-2.50-token_stream-export.json").read_text()
MS = 1_000_000  # ns


def export(requests: list[dict[str, object]], boundaries: list[int] | None = None) -> str:
    experiment = {"experiment": {"mode": "concurrency", "value": 1}, "requests": requests}
    if boundaries is not None:
        experiment["window_boundaries"] = boundaries
    return json.dumps({"experiments": [experiment], "version": "2.50"})


def request(start_ms: float, responses_ms: list[float], outputs: list[object] | None = None) -> dict[str, object]:
    entry: dict[str, object] = {
        "timestamp": int(start_ms * MS),
        "response_timestamps": [int(t * MS) for t in responses_ms],
    }
    if outputs is not None:
        entry["response_outputs"] = outputs
    return entry


def test_the_real_text_export_counts_16_tokens_a_request_leaving_out_the_empty_final_response() -> None:
    requests, boundaries = parse_profile_export(LLM_EXPORT)
    assert len(requests) == 86 and len(boundaries) == 4
    assert {len(r.token_ns) for r in requests} == {16}  # 17 responses each: 16 tokens and the empty final one
    windows = stream_windows(requests, boundaries)
    assert [w.requests for w in windows] == [28, 28, 30] and sum(w.requests for w in windows) == 86


def test_a_numeric_final_response_is_told_from_a_token_by_how_soon_it_follows_the_last_one() -> None:
    # perf_analyzer writes the flag-only final response of an INT32 model as a leftover number (-136210735 here).
    requests, _ = parse_profile_export(TOKEN_EXPORT)
    assert {len(r.token_ns) for r in requests} == {16}
    # A real last token, one decode step after the one before it, counts.
    steady = request(0, [5, 7, 9, 11], [{"ID": [1]}, {"ID": [2]}, {"ID": [3]}, {"ID": [4]}])
    closing = request(0, [5, 7, 9, 9.1], [{"ID": [1]}, {"ID": [2]}, {"ID": [3]}, {"ID": 7}])
    numbers_only = request(0, [5, 7, 9, 11], [{"ID": 1}, {"ID": 2}, {"ID": 3}, {"ID": 4}])
    parsed, _ = parse_profile_export(export([steady, closing, numbers_only]))
    assert [len(r.token_ns) for r in parsed] == [4, 3, 4]


def test_ttft_itl_and_latency_are_read_from_the_timestamps() -> None:
    text = export(
        [request(0, [10, 12, 15, 15.2], [{"t": "a"}, {"t": "b"}, {"t": "c"}, {"t": ""}]),
         request(20, [24, 30, 30.1], [{"t": "a"}, {"t": "b"}, {}])],
        boundaries=[0, 40 * MS],
    )  # fmt: skip
    (window,) = read_stream_windows(text)
    assert tuple(window.ttft_ms) == (10.0, 4.0)
    assert tuple(window.itl_ms) == (2.0, 3.0, 6.0)  # each gap between tokens, request by request
    assert tuple(window.latency_ms) == pytest.approx((15.2, 10.1))  # to the last response, final one included
    assert window.tokens == 5 and window.output_tokens_per_sec == pytest.approx(5 / 0.040)


def test_requests_belong_to_the_window_they_end_in() -> None:
    text = export([request(0, [5, 9]), request(8, [12, 15]), request(12, [18, 21])], boundaries=[0, 10 * MS, 20 * MS])
    windows = read_stream_windows(text)
    assert [w.requests for w in windows] == [1, 1]  # the third ends after the last boundary: in no window


def test_an_export_without_requests_or_experiments_is_a_sentence_not_a_traceback() -> None:
    with pytest.raises(ProfileExportError, match="profile export"):
        parse_profile_export('{"experiments": []}')
    with pytest.raises(ProfileExportError):
        parse_profile_export("not json")


def test_percentile_interpolates_as_numpy_does() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(101)), 99) == 99
    assert percentile([7], 99) == 7


def test_a_streaming_point_has_intervals_for_ttft_itl_and_tokens_per_second() -> None:
    windows = read_stream_windows(LLM_EXPORT)
    numbers_ = combine_stream_windows([windows], dropped=0)
    assert numbers_["tokens_per_request"] == 16
    assert numbers_["output_tokens_per_sec"] == pytest.approx(
        sum(w.tokens for w in windows) / sum(w.seconds for w in windows)
    )
    low, high = numbers_["output_tokens_ci_low"], numbers_["output_tokens_ci_high"]
    assert low < numbers_["output_tokens_per_sec"] < high
    # ITL has 15 gaps a request, over 100 a window: an interval; TTFT has 28-30 values a window: too few for one.
    assert numbers_["itl_p99_ci_low_ms"] <= numbers_["itl_p99_ms"] <= numbers_["itl_p99_ci_high_ms"]
    assert numbers_["ttft_p99_ci_low_ms"] is None and numbers_["ttft_p99_ms"] is not None
    assert numbers_["ttft_p50_ms"] <= numbers_["ttft_p99_ms"]


def test_combine_runs_takes_request_latency_from_the_export_and_drops_the_same_warm_up() -> None:
    windows = read_stream_windows(LLM_EXPORT)
    summary = PerfMeasurement(throughput_infer_per_sec=47.7, latency_p50_ms=1, latency_p90_ms=1, latency_p95_ms=1,
                              latency_p99_ms=1)  # fmt: skip
    run = PerfRun(summary, [PerfWindow(46.6), PerfWindow(46.6), PerfWindow(49.9)], 86, stream_windows=windows)
    perf = combine_runs([run], Verdict(True, True, "converged"), batch_size=1, window_ms=500)
    assert perf.streamed and perf.output_tokens_per_sec is not None and perf.tokens_per_request == 16
    assert perf.latency_p50_ms > 30  # the whole request, 16 tokens, not perf_analyzer's first-response figure
    assert perf.throughput_infer_per_sec == pytest.approx((46.6 + 46.6 + 49.9) / 3)


def test_a_model_that_answers_once_keeps_its_record_as_it_was() -> None:
    plain = numbers(Point(model="m", batch_size=1, load=Load.concurrency(1)))
    assert not plain.streamed
    assert not any(k.startswith(("ttft", "itl", "output_tokens", "tokens_per")) for k in plain.model_dump())


def test_a_streaming_point_is_sent_over_streaming_grpc_with_its_export() -> None:
    point = Point(model="llm", batch_size=1, load=Load.concurrency(2), streaming=True)
    settings = MeasurementSettings(protocol=Protocol.HTTP)
    args = perf_analyzer_args(point, settings, "g:8001", "h:8000", "r.csv", export_path="/tmp/e.json")
    assert args[args.index("-i") + 1] == "grpc" and args[args.index("-u") + 1] == "g:8001"
    assert "--async" in args and "--streaming" in args
    assert args[args.index("--profile-export-file") + 1] == "/tmp/e.json"
    plain = perf_analyzer_args(point.model_copy(update={"streaming": False}), MeasurementSettings(), "g", "h", "r.csv")
    assert "--streaming" not in plain and "--profile-export-file" not in plain
    assert "streaming" not in point.model_dump()  # how it is measured, not which point


def test_the_engine_streams_decoupled_models_and_says_so_once() -> None:
    triton = StandInTriton(max_batch_size={"llm": 0, "add_sub": 8}, decoupled={"llm"})
    seen: list[Point] = []

    def run(point: Point, settings: MeasurementSettings) -> PerfMeasurement:
        seen.append(point)
        return numbers(point)

    result = engine(spec(["llm", "add_sub"], [1], [1, 2]), triton, Recorder(), run=run).run(
        AnalysisResult(triton_version="")
    )
    assert [(p.model, p.streaming) for p in seen] == [
        ("llm", True),
        ("llm", True),
        ("add_sub", False),
        ("add_sub", False),
    ]
    assert sum("llm is decoupled" in n for n in result.notes) == 1


def test_http_is_refused_for_a_decoupled_model_with_a_sentence() -> None:
    triton = StandInTriton(max_batch_size={"llm": 0}, decoupled={"llm"})
    s = spec(["llm"], [1], [1], protocol="http")
    result = engine(s, triton, Recorder()).run(AnalysisResult(triton_version=""))
    (outcome,) = result.models
    assert outcome.status == ModelStatus.REFUSED and "gRPC" in (outcome.error or "") and not result.points


def test_the_csv_has_the_streaming_columns_only_where_a_model_streamed() -> None:
    point = Point(model="llm", batch_size=1, load=Load.concurrency(1))
    windows = read_stream_windows(LLM_EXPORT)
    streamed = numbers(point).model_copy(update=combine_stream_windows([windows], 0))
    streamed_point = PointResult(**point.identity(), status=PointStatus.MEASURED, perf=streamed)
    plain_point = PointResult(**point.identity(), status=PointStatus.MEASURED, perf=numbers(point))
    with_stream = csv_files(AnalysisResult(triton_version="", points=[streamed_point]))[INFERENCE_CSV]
    without = csv_files(AnalysisResult(triton_version="", points=[plain_point]))[INFERENCE_CSV]
    assert "p99 Time To First Token (ms)" in with_stream.splitlines()[0]
    assert "Output Token Throughput (infer/sec)" in with_stream.splitlines()[0]
    assert "Time To First Token" not in without


def streamed_point(concurrency: int, ttft_p99: float, ci: tuple[float, float] | None, tokens: float) -> PointResult:
    point = Point(model="llm", batch_size=1, load=Load.concurrency(concurrency))
    perf = numbers(point).model_copy(
        update={"ttft_p99_ms": ttft_p99, "ttft_p99_ci_low_ms": ci[0] if ci else None,
                "ttft_p99_ci_high_ms": ci[1] if ci else None, "output_tokens_per_sec": tokens,
                "output_tokens_ci_low": tokens * 0.98, "output_tokens_ci_high": tokens * 1.02}
    )  # fmt: skip
    return PointResult(**point.identity(), status=PointStatus.MEASURED, perf=perf)


def test_a_ttft_budget_is_decided_on_its_interval_and_not_judged_where_a_model_does_not_stream() -> None:
    (budget,) = latency_budgets(Constraints(ttft_p99_ms=AtMost(max=10)))
    assert budget.what == "p99 TTFT"
    assert budget_verdict(streamed_point(1, 6, (5, 7), 100).perf, budget).side == Side.UNDER  # type: ignore[union-attr]
    assert budget_verdict(streamed_point(2, 9.5, (8, 11), 100).perf, budget).side == Side.UNDECIDED  # type: ignore[union-attr]
    assert budget_verdict(streamed_point(3, 20, (15, 25), 100).perf, budget).side == Side.OVER  # type: ignore[union-attr]
    plain = numbers(Point(model="m", batch_size=1, load=Load.concurrency(1)))
    assert budget_verdict(plain, budget) is None  # no TTFT: not judged, as GPU memory without a GPU


def test_the_search_stops_on_the_ttft_budget_and_bisects_for_the_most_users_under_it() -> None:
    steps = [Load.concurrency(c) for c in (1, 2, 4, 8)]
    budgets = latency_budgets(Constraints(ttft_p99_ms=AtMost(max=10)))
    search = ConcurrencySearch()
    measured = [
        streamed_point(1, 4, (3, 5), 100),
        streamed_point(2, 5, (4, 6), 200),
        streamed_point(4, 30, (25, 35), 220),
    ]
    assert next_load(steps, measured, search, budgets).load == Load.concurrency(3)
    measured.append(streamed_point(3, 14, (12, 16), 210))
    done = next_load(steps, measured, search, budgets)
    assert done.load is None and "2 is the highest surely under the 10 ms p99 TTFT budget" in done.reason


def test_maximize_output_tokens_picks_the_most_tokens_per_second_under_the_budgets() -> None:
    points = [
        streamed_point(1, 4, (3, 5), 100),
        streamed_point(2, 5, (4, 6), 200),
        streamed_point(4, 30, (25, 35), 400),
    ]
    constraints = Constraints(ttft_p99_ms=AtMost(max=10))
    best = choose_best(points, Objective.MAXIMIZE_OUTPUT_TOKENS, constraints)
    assert best.overall is not None and best.overall.load.value == 2
    assert best.overall.output_tokens_per_sec == 200 and best.overall.ttft_p99_ms == 5
    assert "200.0 tok/s p99 TTFT 5.00 ms" in best.overall.summary()
    assert "most output tokens/sec" in best.overall.why
    (found,) = best.boundaries
    assert (found.surely_under, found.surely_over, found.ttft_budget_ms, found.budget_ms) == (2, 4, 10, None)
    assert "p99 TTFT (ms) 30 > 10" in " ".join(v.sentence() for v in violations(points[2], constraints))


def test_records_without_streaming_numbers_are_written_as_before() -> None:
    assert "ttft_p99_ms" not in Constraints().model_dump() and "ttftP99Ms" not in Constraints().model_dump(
        by_alias=True
    )
    best = choose_best([streamed_point(1, 4, (3, 5), 100)], Objective.MAXIMIZE_THROUGHPUT, Constraints())
    assert best.overall is not None and "ttft_p99_ms" in best.overall.model_dump()
    where = Point(model="m", batch_size=1, load=Load.concurrency(1))
    plain = PointResult(**where.identity(), status=PointStatus.MEASURED, perf=numbers(where))
    plain_best = choose_best([plain], Objective.MAXIMIZE_THROUGHPUT, Constraints())
    assert plain_best.overall is not None and "ttft_p99_ms" not in plain_best.overall.model_dump()
