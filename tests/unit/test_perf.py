"""perf_analyzer: the arguments for a point, and the reading of its real `-f` CSV report.

tests/data/perf-analyzer-2.50-add_sub.csv is a report perf_analyzer (tritonclient 2.50) wrote against the
real Triton 2.51 serving examples/models/add_sub, concurrency 1 and 2 (see tests/data/README.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelanalysis.core.load import Load
from modelanalysis.core.perf import PerfReportError, parse_perf_analyzer_csv, perf_analyzer_args
from modelanalysis.core.spec import MeasurementSettings, Protocol
from modelanalysis.core.sweep import Point

REPORT = Path(__file__).resolve().parents[1] / "data" / "perf-analyzer-2.50-add_sub.csv"


@pytest.fixture
def report() -> str:
    return REPORT.read_text()


def test_row_for_the_asked_concurrency_with_latencies_in_ms(report: str) -> None:
    m = parse_perf_analyzer_csv(report, Load.concurrency(1))
    assert m.throughput_infer_per_sec == pytest.approx(2620.35)
    assert m.latency_p50_ms == pytest.approx(0.263)
    assert m.latency_p90_ms == pytest.approx(0.361)
    assert m.latency_p95_ms == pytest.approx(0.399)
    assert m.latency_p99_ms == pytest.approx(2.603)
    # Average: the sum of the breakdown columns (1+104+45+13+133+79+0 us); perf_analyzer printed 379 us.
    assert m.latency_avg_ms == pytest.approx(0.375)

    m2 = parse_perf_analyzer_csv(report, Load.concurrency(2))
    assert m2.throughput_infer_per_sec == pytest.approx(3846.99)
    assert m2.latency_p99_ms == pytest.approx(1.955)
    assert m2.latency_avg_ms == pytest.approx(0.514)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_real_percentiles_are_ordered(report: str, concurrency: int) -> None:
    m = parse_perf_analyzer_csv(report, Load.concurrency(concurrency))
    assert 0 < m.latency_p50_ms <= m.latency_p90_ms <= m.latency_p95_ms <= m.latency_p99_ms
    assert m.throughput_infer_per_sec > 0


def test_without_a_concurrency_the_last_row_is_taken(report: str) -> None:
    assert parse_perf_analyzer_csv(report).throughput_infer_per_sec == pytest.approx(3846.99)


def test_a_single_row_report_is_read_for_its_own_concurrency(report: str) -> None:
    header, _, second = report.splitlines()
    row = parse_perf_analyzer_csv(f"{header}\n{second}\n", Load.concurrency(2))
    assert row.throughput_infer_per_sec == pytest.approx(3846.99)


def test_a_report_without_the_asked_concurrency_is_an_error_not_another_row(report: str) -> None:
    with pytest.raises(PerfReportError, match="no row for concurrency 4"):
        parse_perf_analyzer_csv(report, Load.concurrency(4))


@pytest.mark.parametrize(
    "text", ["", "Concurrency,Inferences/Second,p50 latency,p90 latency,p95 latency,p99 latency\n"]
)
def test_no_row_is_an_error(text: str) -> None:
    with pytest.raises(PerfReportError, match="no measurement row"):
        parse_perf_analyzer_csv(text)


def test_a_missing_column_is_named(report: str) -> None:
    header, first, _ = report.splitlines()
    text = f"{header.replace('p99 latency', 'p98 latency')}\n{first}\n"
    with pytest.raises(PerfReportError, match="p99 latency"):
        parse_perf_analyzer_csv(text, Load.concurrency(1))


@pytest.mark.parametrize("cut", [2, 9, 12])
def test_a_truncated_row_is_a_report_error(report: str, cut: int) -> None:
    header, first, _ = report.splitlines()
    short = ",".join(first.split(",")[:cut])
    with pytest.raises(PerfReportError):
        parse_perf_analyzer_csv(f"{header}\n{short}\n", Load.concurrency(1))


def test_a_non_numeric_cell_is_a_report_error(report: str) -> None:
    header, first, _ = report.splitlines()
    with pytest.raises(PerfReportError):
        parse_perf_analyzer_csv(f"{header}\n{first.replace('2620.35', 'n/a')}\n", Load.concurrency(1))


def test_average_is_left_out_when_the_breakdown_is_missing() -> None:
    text = "Concurrency,Inferences/Second,p50 latency,p90 latency,p95 latency,p99 latency\n3,100,1000,2000,3000,4000\n"
    m = parse_perf_analyzer_csv(text, Load.concurrency(3))
    assert m.latency_avg_ms is None
    assert (m.latency_p50_ms, m.latency_p99_ms) == (1.0, 4.0)


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_arguments_for_one_point_over_grpc() -> None:
    settings = MeasurementSettings(measurement_interval_ms=300, stability_percentage=50, max_trials=5)
    point = Point(model="add_sub", batch_size=4, concurrency=2)
    args = perf_analyzer_args(point, settings, grpc_url="h:8001", http_url="h:8000", report_path="/tmp/r.csv")
    assert flag(args, "-m") == "add_sub"
    assert flag(args, "-b") == "4"
    assert flag(args, "--concurrency-range") == "2:2"  # exactly one concurrency: one row in the report
    assert flag(args, "-u") == "h:8001"
    assert flag(args, "-i") == "grpc"
    assert flag(args, "--measurement-interval") == "300"
    # perf_analyzer's stability rule never ends a run: each run is 3 windows, the core judges convergence.
    assert float(flag(args, "--stability-percentage")) >= 1000
    assert flag(args, "--max-trials") == "3"
    assert flag(args, "--percentile") == "99"
    assert "-v" in args  # each window's numbers
    assert flag(args, "-f") == "/tmp/r.csv"
    assert all(isinstance(a, str) for a in args)


def test_http_protocol_uses_the_http_url() -> None:
    settings = MeasurementSettings(protocol=Protocol.HTTP)
    args = perf_analyzer_args(Point(model="m", batch_size=1, concurrency=1), settings, "h:8001", "h:8000", "r.csv")
    assert flag(args, "-u") == "h:8000"
    assert flag(args, "-i") == "http"
