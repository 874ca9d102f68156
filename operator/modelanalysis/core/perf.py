"""perf_analyzer: the arguments for one run, the reading of its report and of its windows, and one point's
measurement from several runs. Pure functions, so the CLI (a local process) and the operator (a Job's
container) run exactly the same measurement."""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from modelanalysis.core.convergence import (
    MIN_REQUESTS_FOR_P99,
    Verdict,
    mean_interval,
    warmup_windows,
)
from modelanalysis.core.load import Load
from modelanalysis.core.spec import MeasurementSettings, Protocol
from modelanalysis.core.streaming import StreamWindow, combine_stream_windows
from modelanalysis.core.sweep import Point
from modelanalysis.core.wire import OmitsEmptyNewFields

US_PER_MS = 1000.0
# perf_analyzer's own stability rule must never end a run early or fail it: each run measures exactly 3
# windows (the fewest its rule looks at) and the core decides, from every window, when the point is done.
RUN_STABILITY_PERCENTAGE = 1_000_000
WINDOWS_PER_RUN = 3


# perf_analyzer is taken to be the bottleneck above this share of the CPU it was given: Model Analyzer's
# perf_analyzer_cpu_util default (80%), above which it warns that the load generator may limit the numbers.
LOAD_GENERATOR_BUSY = 0.8


def load_generator_cpu(
    cpu_seconds: float, wall_seconds: float, budget_cores: float | None
) -> tuple[float | None, bool | None]:
    """Cores the load generator used on average while it ran, and whether that was more than LOAD_GENERATOR_BUSY
    of its budget (None where either is unknown)."""
    if wall_seconds <= 0:
        return None, None
    cores = cpu_seconds / wall_seconds
    busy = None if not budget_cores else cores > LOAD_GENERATOR_BUSY * budget_cores
    return round(cores, 3), busy


class PointMeasurementError(RuntimeError):
    """A point could not be measured (the server died, the model errored, the point timed out); the message
    says which and why."""


class InputsRefused(PointMeasurementError):
    """What perf_analyzer was to send the model cannot be sent (an input-data file that does not parse): the
    model is refused, not each of its points failed (core/inputs.py)."""


# How a load generator says so in its one-line result (the operator's Job: its termination message).
INPUTS_REFUSED_PREFIX = "inputs refused: "


class MeasureAgain(RuntimeError):
    """The point's measurement was cut off from outside (its load generator's pod deleted or evicted) and the
    runner asks for it to be measured again from the start; nothing of the cut-off try is kept."""


class PerfMeasurement(OmitsEmptyNewFields):
    """One point's numbers (latencies in ms) and how sure they are.

    Throughput is the mean of the measurement windows, with its 95% confidence interval over them; latency
    percentiles are perf_analyzer's, averaged over its runs. The interval fields are empty for results from
    before intervals were measured, and the p99 interval where windows hold too few requests to estimate it.
    """

    throughput_infer_per_sec: float
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    latency_avg_ms: float | None = None
    throughput_ci_low: float | None = None
    throughput_ci_high: float | None = None
    latency_p99_ci_low_ms: float | None = None
    latency_p99_ci_high_ms: float | None = None
    windows: int | None = None  # measurement windows the numbers rest on (after warm-up)
    window_ms: int | None = None  # each window's length
    requests: int | None = None  # requests perf_analyzer sent and timed over the point
    # How long load was applied: the wall time of every perf_analyzer run, warm-up and retried ones included.
    # Its load is on from its start (about 50 ms in) to its end, and off between runs; its windows run longer
    # than asked (a "500 ms" window lasts ~630 ms here), so this, not windows x window_ms, is the span Triton's
    # own inference count over the point is divided by to give the server's view of the same throughput.
    load_seconds: float | None = None
    converged: bool | None = None  # the throughput interval reached the precision asked for
    convergence: str | None = None  # why measuring stopped, in words
    # The load generator's own CPU use: perf_analyzer's CPU time over the time it ran (cores), the CPU it was
    # given (cores), and whether it used more than LOAD_GENERATOR_BUSY of that (Model Analyzer's 80% rule), when
    # its numbers may be its own limit rather than the server's.
    load_generator_cpu_cores: float | None = None
    load_generator_cpu_budget_cores: float | None = None
    load_generator_bottleneck: bool | None = None
    # Open-loop (request-rate) points: the rate perf_analyzer actually sent at (its "Avg send request rate"), and
    # the share of requests it started late because it could not keep up ("... of the requests were delayed").
    # Empty where it printed neither: it does when it falls behind the rate asked for.
    send_rate_per_sec: float | None = None
    delayed_requests_pct: float | None = None
    # Streaming (decoupled) models, from perf_analyzer's per-request export (core/streaming.py): time to first
    # token, each gap between tokens, output tokens per second (mean of the windows, with its interval) and tokens
    # per request. Empty for models that answer each request once. Their latency_* fields are then each whole
    # request's, first request to last response.
    ttft_avg_ms: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p90_ms: float | None = None
    ttft_p95_ms: float | None = None
    ttft_p99_ms: float | None = None
    ttft_p99_ci_low_ms: float | None = None
    ttft_p99_ci_high_ms: float | None = None
    itl_avg_ms: float | None = None
    itl_p50_ms: float | None = None
    itl_p90_ms: float | None = None
    itl_p95_ms: float | None = None
    itl_p99_ms: float | None = None
    itl_p99_ci_low_ms: float | None = None
    itl_p99_ci_high_ms: float | None = None
    output_tokens_per_sec: float | None = None
    output_tokens_ci_low: float | None = None
    output_tokens_ci_high: float | None = None
    tokens_per_request: float | None = None

    @property
    def streamed(self) -> bool:
        return self.output_tokens_per_sec is not None



# A model that answers once has none of them: its analysis.json stays as it always was.
PerfMeasurement.OMITTED_WHEN_EMPTY = tuple(
    name for name in PerfMeasurement.model_fields if name.startswith(("ttft_", "itl_", "output_tokens", "tokens_"))
)


@dataclass(frozen=True)
class PerfWindow:
    """One of perf_analyzer's measurement windows ("Pass [n]" in its verbose output)."""

    throughput_infer_per_sec: float
    latency_p99_ms: float | None = None


@dataclass(frozen=True)
class PerfRun:
    """One perf_analyzer run: its summary report (its windows pooled) and each window."""

    summary: PerfMeasurement
    windows: list[PerfWindow] = field(default_factory=list)
    requests: int | None = None
    send_rate_per_sec: float | None = None
    delayed_requests_pct: float | None = None
    # A streaming point's run: each window's numbers from perf_analyzer's per-request export (core/streaming.py).
    stream_windows: list[StreamWindow] = field(default_factory=list)


class PerfReportError(ValueError):
    """perf_analyzer's CSV did not hold the row we need."""


def perf_analyzer_args(
    point: Point,
    settings: MeasurementSettings,
    grpc_url: str,
    http_url: str,
    report_path: str,
    input_args: Sequence[str] = (),
    export_path: str | None = None,
) -> list[str]:
    """perf_analyzer's arguments (without the program name) to measure `point` and write `report_path`;
    `input_args`: what to send the model (core/inputs.py: InputSettings.perf_analyzer_args). A streaming point
    (a decoupled model) is sent over streaming gRPC, whatever the protocol asked for (the engine refuses HTTP
    for it first), and writes its per-request record to `export_path`."""
    grpc = settings.protocol == Protocol.GRPC or point.streaming
    url = grpc_url if grpc else http_url
    streaming = ["--async", "--streaming", "--profile-export-file", export_path or "export.json"]
    return [
        "-m", point.model,
        "-b", str(point.batch_size),
        *point.load.perf_analyzer_args(),
        *([] if point.load.is_concurrency else ["--request-distribution", settings.request_distribution.value]),
        "-u", url,
        "-i", Protocol.GRPC.value if grpc else settings.protocol.value,
        "--measurement-interval", str(settings.measurement_interval_ms),
        "--stability-percentage", str(RUN_STABILITY_PERCENTAGE),
        "--max-trials", str(WINDOWS_PER_RUN),
        "--percentile", "99",  # each window's p99 in the verbose output, for p99's interval
        "-v",  # each window's numbers ("Pass [n] ...")
        "-f", report_path,
        *(streaming if point.streaming else []),
        *input_args,
    ]  # fmt: skip


def _same_number(text: str, value: float) -> bool:
    try:
        return float(text) == float(value)
    except ValueError:
        return False


def parse_perf_analyzer_csv(text: str, load: Load | None = None) -> PerfMeasurement:
    """Read perf_analyzer's `-f` CSV: one row per load (its first column: Concurrency or Request Rate); take the
    row for `load` (or the last one).

    A report with rows for other loads but none for `load` is an error: their numbers must never stand in for
    the point asked for.
    """
    rows = list(csv.DictReader(io.StringIO(text)))
    if load is not None and any(r.get(load.csv_column) is not None for r in rows):
        found = [(r.get(load.csv_column) or "").strip() for r in rows]
        rows = [r for r, value in zip(rows, found, strict=True) if _same_number(value, load.value)]
        if not rows:
            raise PerfReportError(f"perf_analyzer's report has no row for {load.words} (rows: {found})")
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


_PASS = re.compile(
    r"Pass \[(\d+)\] throughput: ([0-9.eE+-]+) infer/sec\. (?:p99 latency: ([0-9.]+) usec|Avg latency)"
)
_REQUEST_COUNT = re.compile(r"Request count: (\d+)")
_SEND_RATE = re.compile(r"Avg send request rate: ([0-9.eE+-]+)")
_DELAYED = re.compile(r"([0-9.]+)% of the requests were delayed")


def parse_perf_analyzer_windows(output: str) -> list[PerfWindow]:
    """Each measurement window of a verbose perf_analyzer run, in order.

    A window that an interrupt cut short is printed after "Interrupt signal" and is not a full window: it is
    left out.
    """
    complete = output.split("Interrupt signal", 1)[0]
    return [
        PerfWindow(float(m[2]), float(m[3]) / US_PER_MS if m[3] else None) for m in _PASS.finditer(complete)
    ]


def parse_request_count(output: str) -> int | None:
    """Requests perf_analyzer timed over its reported windows (its "Client: Request count")."""
    found = _REQUEST_COUNT.search(output)
    return int(found[1]) if found else None


def parse_send_rate(output: str) -> tuple[float | None, float | None]:
    """An open-loop run's send rate (requests per second) and share of delayed requests (%), where printed."""
    rate, delayed = _SEND_RATE.search(output), _DELAYED.search(output)
    return (float(rate[1]) if rate else None), (float(delayed[1]) if delayed else None)


def _delayed_share(runs: Sequence[PerfRun]) -> float | None:
    """The mean share of delayed requests over the runs; a run that printed none delayed none (perf_analyzer
    prints it only when it falls behind)."""
    shares = [r.delayed_requests_pct for r in runs]
    return None if all(s is None for s in shares) else statistics.fmean(s or 0.0 for s in shares)


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def combine_runs(runs: Sequence[PerfRun], verdict: Verdict, batch_size: int, window_ms: int) -> PerfMeasurement:
    """One point's measurement from its perf_analyzer runs.

    Throughput and its interval come from every window after warm-up; the latency percentiles are the mean
    of the runs' reports (each run pools its own windows), leaving out runs that lie wholly in the warm-up.
    p99's interval takes its half-width from the spread of the windows' p99 values, when every window holds
    at least MIN_REQUESTS_FOR_P99 requests, or from the spread of the runs' p99s (batch means) when that is
    wider and there are at least MIN_WINDOWS runs.
    """
    if not runs:
        raise ValueError("a point needs at least one perf_analyzer run")
    windows = [w for run in runs for w in run.windows]
    if not windows:  # an older perf_analyzer that printed no windows: its report is all there is
        return runs[-1].summary.model_copy(update={"converged": False, "convergence": verdict.reason})
    dropped = warmup_windows([w.throughput_infer_per_sec for w in windows])
    kept = windows[dropped:]
    kept_runs, first = [], 0
    for run in runs:
        first += len(run.windows)
        if first > dropped:
            kept_runs.append(run)
    throughput = mean_interval([w.throughput_infer_per_sec for w in kept])
    mean_throughput = statistics.fmean(w.throughput_infer_per_sec for w in kept)
    summaries = [r.summary for r in kept_runs]
    p99 = statistics.fmean(s.latency_p99_ms for s in summaries)
    requests_per_window = mean_throughput * window_ms / 1000 / max(batch_size, 1)
    p99_values = [w.latency_p99_ms for w in kept if w.latency_p99_ms is not None]
    p99_interval = (
        mean_interval(p99_values)
        if len(p99_values) == len(kept) and requests_per_window >= MIN_REQUESTS_FOR_P99
        else None
    )
    # Windows of one run are not independent (a slow spell spans several), so their spread alone can make p99's
    # interval too narrow for a budget decision. With MIN_WINDOWS runs or more, the runs' own p99s (batch means)
    # say how much p99 moves from run to run; the interval is the wider of the two.
    between_runs = mean_interval([s.latency_p99_ms for s in summaries]) if p99_interval else None
    if p99_interval and between_runs and between_runs.half_width > p99_interval.half_width:
        p99_interval = between_runs
    request_counts = [r.requests for r in runs]
    measured = PerfMeasurement(
        throughput_infer_per_sec=mean_throughput,
        latency_p50_ms=statistics.fmean(s.latency_p50_ms for s in summaries),
        latency_p90_ms=statistics.fmean(s.latency_p90_ms for s in summaries),
        latency_p95_ms=statistics.fmean(s.latency_p95_ms for s in summaries),
        latency_p99_ms=p99,
        latency_avg_ms=_mean([s.latency_avg_ms for s in summaries]),
        throughput_ci_low=throughput.low if throughput else None,
        throughput_ci_high=throughput.high if throughput else None,
        latency_p99_ci_low_ms=max(p99 - p99_interval.half_width, 0.0) if p99_interval else None,
        latency_p99_ci_high_ms=p99 + p99_interval.half_width if p99_interval else None,
        windows=len(kept),
        window_ms=window_ms,
        requests=sum(c for c in request_counts if c is not None) if any(request_counts) else None,
        converged=verdict.converged,
        convergence=verdict.reason,
        send_rate_per_sec=_mean([r.send_rate_per_sec for r in kept_runs]),
        delayed_requests_pct=_delayed_share(kept_runs),
    )
    if not any(r.stream_windows for r in runs):
        return measured
    # A streaming run's export has a window for each of perf_analyzer's: the same warm-up is left out.
    aligned = all(len(r.stream_windows) == len(r.windows) for r in runs)
    streamed = combine_stream_windows([r.stream_windows for r in runs], dropped if aligned else 0)
    return measured.model_copy(update=streamed)


# Each interval a PerfMeasurement carries: (value, low, high) field names.
INTERVALS = (
    ("throughput_infer_per_sec", "throughput_ci_low", "throughput_ci_high"),
    ("latency_p99_ms", "latency_p99_ci_low_ms", "latency_p99_ci_high_ms"),
    ("ttft_p99_ms", "ttft_p99_ci_low_ms", "ttft_p99_ci_high_ms"),
    ("itl_p99_ms", "itl_p99_ci_low_ms", "itl_p99_ci_high_ms"),
    ("output_tokens_per_sec", "output_tokens_ci_low", "output_tokens_ci_high"),
)


def with_second_reading(first: PerfMeasurement, second: PerfMeasurement) -> PerfMeasurement:
    """The first reading's numbers with each interval widened to cover the second reading's too (its interval,
    or its value where it has none): a decision on the result holds only where both readings agree. An interval
    the first reading lacks stays absent (the decision is on its point value, and says so)."""
    update = {}
    for value, low, high in INTERVALS:
        first_low, first_high = getattr(first, low), getattr(first, high)
        if first_low is None or first_high is None or getattr(second, value) is None:
            continue
        second_low = getattr(second, low) if getattr(second, low) is not None else getattr(second, value)
        second_high = getattr(second, high) if getattr(second, high) is not None else getattr(second, value)
        update[low], update[high] = min(first_low, second_low), max(first_high, second_high)
    return first.model_copy(update=update)
