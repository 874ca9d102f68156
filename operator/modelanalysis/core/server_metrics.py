"""Triton's Prometheus metrics (:8002/metrics): parse one scrape, then aggregate a window of scrapes.

Units follow NVIDIA Model Analyzer: utilization in %, memory in MB (bytes / 1e6), power in W.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, Field

BYTES_PER_MB = 1e6


class GpuSample(BaseModel):
    utilization_ratio: float | None = None
    memory_used_bytes: float | None = None
    memory_total_bytes: float | None = None
    power_watts: float | None = None


class ServerSample(BaseModel):
    """One scrape of Triton's metrics endpoint, taken at `timestamp` (seconds since the epoch)."""

    timestamp: float
    gpus: dict[str, GpuSample] = Field(default_factory=dict, description="By gpu_uuid label.")
    cpu_utilization_ratio: float | None = None
    cpu_memory_used_bytes: float | None = None
    # Successful inferences so far, per model (summed over versions), from nv_inference_count.
    inference_count: dict[str, float] = Field(default_factory=dict)
    # Each model's own cumulative counters (summed over versions), by series name: requests, executions and the
    # time spent queued and computing (core/pipeline.py reads an ensemble's steps from them).
    model_counters: dict[str, dict[str, float]] = Field(default_factory=dict)


_GPU_FIELDS = {
    "nv_gpu_utilization": "utilization_ratio",
    "nv_gpu_memory_used_bytes": "memory_used_bytes",
    "nv_gpu_memory_total_bytes": "memory_total_bytes",
    "nv_gpu_power_usage": "power_watts",
}


# Triton's per-model counters an ensemble's breakdown is made of (cumulative; durations in microseconds).
MODEL_COUNTERS = frozenset({
    "nv_inference_request_success", "nv_inference_exec_count", "nv_inference_request_duration_us",
    "nv_inference_queue_duration_us", "nv_inference_compute_input_duration_us",
    "nv_inference_compute_infer_duration_us", "nv_inference_compute_output_duration_us",
})  # fmt: skip


def parse_triton_metrics(text: str, timestamp: float) -> ServerSample:
    """Turn one /metrics page into a ServerSample; series Triton did not export stay None."""
    sample = ServerSample(timestamp=timestamp)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in _GPU_FIELDS:
                uuid = s.labels.get("gpu_uuid", "")
                gpu = sample.gpus.setdefault(uuid, GpuSample())
                setattr(gpu, _GPU_FIELDS[s.name], s.value)
            elif s.name == "nv_cpu_utilization":
                sample.cpu_utilization_ratio = s.value
            elif s.name == "nv_cpu_memory_used_bytes":
                sample.cpu_memory_used_bytes = s.value
            elif s.name in ("nv_inference_count", "nv_inference_count_total"):
                model = s.labels.get("model", "")
                sample.inference_count[model] = sample.inference_count.get(model, 0.0) + s.value
            counter = s.name.removesuffix("_total")  # the parser names a counter's sample <name>_total
            if counter in MODEL_COUNTERS:
                counters = sample.model_counters.setdefault(s.labels.get("model", ""), {})
                counters[counter] = counters.get(counter, 0.0) + s.value
    return sample


class GpuMetrics(BaseModel):
    """One GPU's maxima over a window."""

    gpu_uuid: str
    max_utilization_pct: float | None = None
    max_memory_used_mb: float | None = None
    max_power_watts: float | None = None
    # DCGM's memory-copy utilization, from a Prometheus server when one is configured.
    max_memory_utilization_pct: float | None = None


class ResourceMetrics(BaseModel):
    """The server's resource use over a window: per GPU, and the host CPU and memory."""

    gpus: list[GpuMetrics] = Field(default_factory=list)
    max_cpu_utilization_pct: float | None = None
    max_cpu_memory_used_mb: float | None = None
    sample_count: int = 0


def _max(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def aggregate_window(samples: Sequence[ServerSample]) -> ResourceMetrics:
    """The maximum of each series over the window's samples (None where the server never reported it)."""
    uuids = sorted({uuid for s in samples for uuid in s.gpus})
    gpus = []
    for uuid in uuids:
        per_gpu = [s.gpus[uuid] for s in samples if uuid in s.gpus]
        gpus.append(
            GpuMetrics(
                gpu_uuid=uuid,
                max_utilization_pct=_scaled(_max([g.utilization_ratio for g in per_gpu]), 100.0),
                max_memory_used_mb=_scaled(_max([g.memory_used_bytes for g in per_gpu]), 1 / BYTES_PER_MB),
                max_power_watts=_max([g.power_watts for g in per_gpu]),
            )
        )
    return ResourceMetrics(
        gpus=gpus,
        max_cpu_utilization_pct=_scaled(_max([s.cpu_utilization_ratio for s in samples]), 100.0),
        max_cpu_memory_used_mb=_scaled(_max([s.cpu_memory_used_bytes for s in samples]), 1 / BYTES_PER_MB),
        sample_count=len(samples),
    )


def inference_rate(samples: Sequence[ServerSample], model: str, last_seconds: float | None = None) -> float | None:
    """Inferences per second that Triton itself counted for `model` up to the last sample.

    With `last_seconds`, only over (about) that much time before the last sample: perf_analyzer reports its
    last stable windows, not its warm-up and retried ones, so this is the span to compare it with.
    """
    points = [(s.timestamp, s.inference_count[model]) for s in samples if model in s.inference_count]
    # The load generator starts after the first sample and ends before the last: drop the idle samples at
    # either end (the count does not move there), so the rate is over the time it was really loaded.
    while len(points) > 2 and points[-2][1] == points[-1][1]:
        points.pop()
    while len(points) > 2 and points[1][1] == points[0][1]:
        points.pop(0)
    if len(points) < 2:
        return None
    t1, c1 = points[-1]
    if last_seconds is not None:
        # The latest sample at or before the window's start, so the span covers the whole window.
        earlier = [p for p in points[:-1] if p[0] <= t1 - last_seconds]
        points = [earlier[-1] if earlier else points[0]]
    t0, c0 = points[0]
    if t1 <= t0:
        return None
    return (c1 - c0) / (t1 - t0)


def inferences_counted(samples: Sequence[ServerSample], model: str) -> float | None:
    """How many inferences Triton counted for `model` between the first and the last sample."""
    ordered = sorted(samples, key=lambda s: s.timestamp)
    counts = [s.inference_count[model] for s in ordered if model in s.inference_count]
    return counts[-1] - counts[0] if len(counts) >= 2 else None


def server_inference_rate(
    samples: Sequence[ServerSample], model: str, load_seconds: float | None, fallback_window_ms: int
) -> float | None:
    """Triton's own throughput for a point: what it counted over the point, per second of applied load.

    The samples span the whole point, runs and the gaps between them; the gaps hold no inferences, so the
    count over the point divided by the time the windows covered (`load_seconds`) is the rate perf_analyzer's
    windows saw. Results from before load_seconds was recorded fall back to the span of the last run.
    """
    if load_seconds:
        counted = inferences_counted(samples, model)
        return None if counted is None else counted / load_seconds
    return inference_rate(samples, model, stable_span_seconds(fallback_window_ms))


def stable_span_seconds(measurement_interval_ms: int) -> float:
    """The span of one perf_analyzer run: its 3 measurement windows."""
    return 3 * measurement_interval_ms / 1000
