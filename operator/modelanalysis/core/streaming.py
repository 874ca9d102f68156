"""Streaming (decoupled) models: what one perf_analyzer run's per-request record says about time to first token,
inter-token latency and tokens per second, window by window. Pure functions over the export's text.

perf_analyzer (`--profile-export-file`, Triton >= 23.09) writes, for every request that ended inside a measurement
window, when it was sent and when each of its responses arrived, and the boundaries of its windows. From these:

- time to first token (TTFT): first token response - request start;
- inter-token latency (ITL): each gap between two consecutive token responses of a request (one value per gap,
  not AIPerf's (latency - TTFT) / (tokens - 1) per request: a slow stall shows in p99 instead of being averaged
  away);
- request latency: last response (of any kind) - request start;
- output token throughput: the token responses of the requests that ended in a window, over the window's length.

A token is one response that carries output. The empty final response a model sends to close the stream (Triton's
COMPLETE_FINAL flag alone) is not a token: perf_analyzer records it as an empty text (BYTES outputs) or, for
numeric outputs, as a leftover value, so a last response counts as a token only when it carries text, or, for
numbers, when it did not follow the token before it much sooner than the request's other gaps (a flag-only final
arrives at once; a real token takes a decode step).
"""

from __future__ import annotations

import itertools
import json
import statistics
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelanalysis.core.convergence import MIN_REQUESTS_FOR_P99, mean_interval

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
# A numeric last response that follows the token before it in under this share of the request's median gap is
# the flag-only final response, not a token.
FINAL_RESPONSE_GAP_SHARE = 0.25
# The percentiles reported for TTFT and ITL (Model Analyzer's LLM columns, less min/max/p25/p75).
PERCENTILES = (50, 90, 95, 99)


class ProfileExportError(ValueError):
    """perf_analyzer's profile export is missing what a streaming point needs; the message says what."""


@dataclass(frozen=True)
class StreamedRequest:
    """One request of a streaming run: when it was sent, when each token arrived, when its stream ended (ns)."""

    start_ns: int
    token_ns: tuple[int, ...]
    end_ns: int

    @property
    def ttft_ms(self) -> float | None:
        return (self.token_ns[0] - self.start_ns) / NS_PER_MS if self.token_ns else None

    @property
    def itl_ms(self) -> list[float]:
        return [(b - a) / NS_PER_MS for a, b in zip(self.token_ns, self.token_ns[1:], strict=False)]

    @property
    def latency_ms(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_MS


@dataclass(frozen=True)
class StreamWindow:
    """One measurement window of a streaming run: the requests that ended inside it, reduced to numbers."""

    seconds: float
    requests: int
    tokens: int
    # Packed doubles, not tuples of floats: a point keeps every window of its runs, ~15 gaps a request each.
    ttft_ms: Sequence[float]
    itl_ms: Sequence[float]
    latency_ms: Sequence[float]

    @property
    def output_tokens_per_sec(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def ttft_p99_ms(self) -> float | None:
        return percentile(self.ttft_ms, 99) if self.ttft_ms else None

    @property
    def itl_p99_ms(self) -> float | None:
        return percentile(self.itl_ms, 99) if self.itl_ms else None


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct` percentile by linear interpolation between closest ranks (numpy's default)."""
    return _of_sorted(sorted(values), pct)


def _of_sorted(ordered: Sequence[float], pct: float) -> float:
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _carries_output(outputs: Any) -> bool | None:
    """True: text or a non-empty array; False: empty; None: a number, which cannot tell (see the module doc)."""
    if not isinstance(outputs, dict) or not outputs:
        return False
    values = list(outputs.values())
    if any(isinstance(v, str) and v for v in values) or any(isinstance(v, list) and v for v in values):
        return True
    if all(isinstance(v, str | list) for v in values):
        return False
    return None


def _token_timestamps(start: int, responses: Sequence[int], outputs: Sequence[Any]) -> tuple[int, ...]:
    """The responses that are tokens (see the module doc). A numeric last response is judged against the
    request's median gap between tokens, or, with a single token before it, against the time to that token."""
    if not responses:
        return ()
    carries = [_carries_output(o) for o in outputs] if len(outputs) == len(responses) else [None] * len(responses)
    tokens = [t for t, c in zip(responses[:-1], carries[:-1], strict=True) if c is not False]
    last, last_carries = responses[-1], carries[-1]
    if last_carries is None and tokens:
        gaps = [b - a for a, b in itertools.pairwise(tokens)]
        typical = statistics.median(gaps) if gaps else tokens[0] - start
        last_carries = (last - tokens[-1]) >= FINAL_RESPONSE_GAP_SHARE * typical
    if last_carries is not False:
        tokens.append(last)
    return tuple(tokens)


def _reduce_request(entry: dict[str, Any]) -> Any:
    """json's object hook: a request's entry, reduced to a StreamedRequest as soon as it is read, so its inputs and
    outputs (most of the file) are never all held at once (10,000 requests a window stay within tens of MB)."""
    if "response_timestamps" not in entry or "timestamp" not in entry:
        return entry
    responses = [int(t) for t in entry.get("response_timestamps") or []]
    if not responses:
        return None  # a request that never answered is perf_analyzer's error to report, not a token count
    start = int(entry["timestamp"])
    tokens = _token_timestamps(start, responses, entry.get("response_outputs") or [])
    return StreamedRequest(start_ns=start, token_ns=tokens, end_ns=responses[-1])


def parse_profile_export(text: str) -> tuple[list[StreamedRequest], list[int]]:
    """The requests of a run's export and its window boundaries (ns). One run measures one load, so the export
    holds one experiment."""
    try:
        export = json.loads(text, object_hook=_reduce_request)
        experiment = export["experiments"][-1]
        boundaries = [int(b) for b in experiment.get("window_boundaries") or []]
        requests = [r for r in experiment["requests"] if isinstance(r, StreamedRequest)]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ProfileExportError(f"perf_analyzer's profile export is not what was expected ({exc!r})") from None
    return requests, boundaries


def stream_windows(requests: Sequence[StreamedRequest], boundaries: Sequence[int]) -> list[StreamWindow]:
    """Each window's numbers, from the requests that ended in it. Without boundaries (an export that lacks them)
    the run is one window from its first request's start to its last response."""
    if len(boundaries) < 2:
        if not requests:
            return []
        boundaries = [min(r.start_ns for r in requests), max(r.end_ns for r in requests) + 1]
    windows = []
    for start, end in itertools.pairwise(boundaries):
        inside = [r for r in requests if start <= r.end_ns < end]
        windows.append(
            StreamWindow(
                seconds=(end - start) / NS_PER_S,
                requests=len(inside),
                tokens=sum(len(r.token_ns) for r in inside),
                ttft_ms=array("d", (t for r in inside if (t := r.ttft_ms) is not None)),
                itl_ms=array("d", (g for r in inside for g in r.itl_ms)),
                latency_ms=array("d", (r.latency_ms for r in inside)),
            )
        )
    return windows


def read_stream_windows(text: str) -> list[StreamWindow]:
    """A run's export, reduced to its windows (what a streaming PerfRun keeps)."""
    requests, boundaries = parse_profile_export(text)
    return stream_windows(requests, boundaries)


def _p99_interval(windows: Sequence[Sequence[float]], runs: Sequence[Sequence[float]]) -> tuple[float, float] | None:
    """p99's 95% interval, as request latency's p99 takes it (core/perf.combine_runs): the spread
    of the windows' p99s when every window holds at least MIN_REQUESTS_FOR_P99 values, widened to the spread of
    the runs' p99s (batch means) when that is wider and there are MIN_WINDOWS runs or more. None: too few."""
    if not windows or any(len(w) < MIN_REQUESTS_FOR_P99 for w in windows):
        return None
    by_window = mean_interval([percentile(w, 99) for w in windows])
    if by_window is None:
        return None
    by_run = mean_interval([percentile(r, 99) for r in runs if r])
    half = max(by_window.half_width, by_run.half_width if by_run else 0.0)
    pooled = percentile(array("d", (v for w in windows for v in w)), 99)
    return max(pooled - half, 0.0), pooled + half


def _summary(prefix: str, values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {f"{prefix}_avg_ms": None, **{f"{prefix}_p{p}_ms": None for p in PERCENTILES}}
    ordered = sorted(values)  # once, for every percentile
    return {f"{prefix}_avg_ms": statistics.fmean(ordered), **{f"{prefix}_p{p}_ms": _of_sorted(ordered, p)
                                                               for p in PERCENTILES}}  # fmt: skip


def combine_stream_windows(runs: Sequence[Sequence[StreamWindow]], dropped: int) -> dict[str, Any]:
    """A streaming point's numbers from its runs' windows, leaving out the first `dropped` (warm-up): the
    PerfMeasurement fields named in its streaming block, and request latency's percentiles from the requests'
    own ends (perf_analyzer's report times only the first response of a decoupled model's request)."""
    flat = [w for run in runs for w in run]
    kept = flat[dropped:]
    if not kept or not any(w.requests for w in kept):
        return {}
    kept_runs, seen = [], 0
    for run in runs:
        kept_runs.append([w for i, w in enumerate(run, start=seen) if i >= dropped])
        seen += len(run)
    ttft = array("d", (v for w in kept for v in w.ttft_ms))
    itl = array("d", (v for w in kept for v in w.itl_ms))
    latency = array("d", (v for w in kept for v in w.latency_ms))
    tokens = mean_interval([w.output_tokens_per_sec for w in kept])
    requests = sum(w.requests for w in kept)
    numbers: dict[str, Any] = {
        **_summary("ttft", ttft),
        **_summary("itl", itl),
        "output_tokens_per_sec": sum(w.tokens for w in kept) / sum(w.seconds for w in kept),
        "output_tokens_ci_low": max(tokens.low, 0.0) if tokens else None,
        "output_tokens_ci_high": tokens.high if tokens else None,
        "tokens_per_request": sum(w.tokens for w in kept) / requests if requests else None,
    }
    for prefix, values in (("ttft", ttft), ("itl", itl), ("latency", latency)):
        field = f"{prefix}_ms"
        per_window = [getattr(w, field) for w in kept]
        per_run = [array("d", (v for w in r for v in getattr(w, field))) for r in kept_runs]
        interval = _p99_interval(per_window, per_run) if values else None
        numbers[f"{prefix}_p99_ci_low_ms"], numbers[f"{prefix}_p99_ci_high_ms"] = interval or (None, None)
    numbers.update(_summary("latency", latency))
    return numbers
