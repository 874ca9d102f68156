"""perf_analyzer: the arguments for one point, and the reading of its CSV report. Pure functions, so the
CLI (a local process) and the operator (a Job's container) run exactly the same measurement."""

from __future__ import annotations

import csv
import io

from pydantic import BaseModel

from modelanalysis.core.spec import MeasurementSettings, Protocol
from modelanalysis.core.sweep import Point

US_PER_MS = 1000.0


class PerfMeasurement(BaseModel):
    """What perf_analyzer reported for one point (latencies converted from us to ms)."""

    throughput_infer_per_sec: float
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    latency_avg_ms: float | None = None


class PerfReportError(ValueError):
    """perf_analyzer's CSV did not hold the row we need."""


def perf_analyzer_args(
    point: Point, settings: MeasurementSettings, grpc_url: str, http_url: str, report_path: str
) -> list[str]:
    """perf_analyzer's arguments (without the program name) to measure `point` and write `report_path`."""
    url = grpc_url if settings.protocol == Protocol.GRPC else http_url
    return [
        "-m", point.model,
        "-b", str(point.batch_size),
        "--concurrency-range", f"{point.concurrency}:{point.concurrency}",
        "-u", url,
        "-i", settings.protocol.value,
        "--measurement-interval", str(settings.measurement_interval_ms),
        "--stability-percentage", str(settings.stability_percentage),
        "--max-trials", str(settings.max_trials),
        "-f", report_path,
    ]  # fmt: skip


def parse_perf_analyzer_csv(text: str, concurrency: int | None = None) -> PerfMeasurement:
    """Read perf_analyzer's `-f` CSV: one row per concurrency; take the row for `concurrency` (or the last one).

    A report with rows for other concurrencies but none for `concurrency` is an error: their numbers must
    never stand in for the point asked for.
    """
    rows = list(csv.DictReader(io.StringIO(text)))
    if concurrency is not None and any(r.get("Concurrency") is not None for r in rows):
        found = [(r.get("Concurrency") or "").strip() for r in rows]
        rows = [r for r, c in zip(rows, found, strict=True) if c == str(concurrency)]
        if not rows:
            raise PerfReportError(f"perf_analyzer's report has no row for concurrency {concurrency} (rows: {found})")
    if not rows:
        raise PerfReportError("perf_analyzer wrote no measurement row")
    row = rows[-1]
    try:
        percentiles = {p: float(row[f"p{p} latency"]) / US_PER_MS for p in (50, 90, 95, 99)}
        throughput = float(row["Inferences/Second"])
    except (KeyError, ValueError, TypeError) as exc:  # TypeError: a short row's missing cells are None
        raise PerfReportError(f"perf_analyzer's report lacks {exc}; header was {list(row)}") from exc
    avg = _average_latency_ms(row)
    return PerfMeasurement(
        throughput_infer_per_sec=throughput,
        latency_p50_ms=percentiles[50],
        latency_p90_ms=percentiles[90],
        latency_p95_ms=percentiles[95],
        latency_p99_ms=percentiles[99],
        latency_avg_ms=avg,
    )


_LATENCY_PARTS = (
    "Client Send",
    "Network+Server Send/Recv",
    "Server Queue",
    "Server Compute Input",
    "Server Compute Infer",
    "Server Compute Output",
    "Client Recv",
)


def _average_latency_ms(row: dict[str, str]) -> float | None:
    # perf_analyzer's breakdown columns are average components of one request's latency; they sum to it.
    try:
        return sum(float(row[c]) for c in _LATENCY_PARTS) / US_PER_MS
    except (KeyError, ValueError, TypeError):
        return None
