"""Pipelines seen inside: where an ensemble's time goes, step by step, from Triton's own per-model counters.

An ensemble (`platform: "ensemble"`) is measured as any model: perf_analyzer sends it requests and times them
whole. What it cannot say is which step queues and which computes. Triton counts that per model, composing models
included: requests, executions, and the microseconds spent queued and in compute input, infer and output
(`nv_inference_*_duration_us`, cumulative). Over a point's window, the change of each counter divided by the
change in requests is that step's average per request.

The bottleneck is the step whose requests spend the longest in it, queued and computing: in a pipeline under load
the slowest step's queue grows while the others wait on it, so its time per request stands out (see the README's
"Pipelines" section for when that reading misleads: a step that batches well may queue by design).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from modelanalysis.core.server_metrics import ServerSample

US_PER_MS = 1000.0
REQUESTS, EXECUTIONS = "nv_inference_request_success", "nv_inference_exec_count"
# Each per-request average a step reports: StepBreakdown's field and Triton's counter (microseconds).
DURATIONS = (
    ("queue_ms", "nv_inference_queue_duration_us"),
    ("compute_input_ms", "nv_inference_compute_input_duration_us"),
    ("compute_infer_ms", "nv_inference_compute_infer_duration_us"),
    ("compute_output_ms", "nv_inference_compute_output_duration_us"),
    ("request_ms", "nv_inference_request_duration_us"),
)


class StepBreakdown(BaseModel):
    """One composing model of an ensemble over one point: how many requests and executions it served, and the
    average time a request spent queued and in each compute phase there (ms)."""

    model: str
    requests: float
    executions: float
    queue_ms: float | None = None
    compute_input_ms: float | None = None
    compute_infer_ms: float | None = None
    compute_output_ms: float | None = None
    request_ms: float | None = None
    bottleneck: bool = False

    @property
    def busy_ms(self) -> float:
        """Queued plus computing, per request: what the bottleneck is judged by."""
        parts = (self.queue_ms, self.compute_input_ms, self.compute_infer_ms, self.compute_output_ms)
        return sum(p or 0.0 for p in parts)

    def sentence(self) -> str:
        return (
            f"{self.model} (queue {self.queue_ms or 0:.2f} ms, compute {self.busy_ms - (self.queue_ms or 0):.2f} ms "
            f"a request, {self.requests / self.executions if self.executions else 0:.1f} requests an execution)"
        )


def ensemble_steps(config: dict[str, Any]) -> tuple[str, ...]:
    """The composing models of an ensemble's config, in step order, each once (empty: not an ensemble)."""
    if config.get("platform") != "ensemble":
        return ()
    steps = (config.get("ensemble_scheduling") or {}).get("step") or []
    return tuple(dict.fromkeys(str(s.get("model_name", "")) for s in steps if s.get("model_name")))


def _change(samples: Sequence[ServerSample], model: str, counter: str) -> float | None:
    values = [s.model_counters[model][counter] for s in samples if counter in s.model_counters.get(model, {})]
    return values[-1] - values[0] if len(values) >= 2 else None


def step_breakdown(
    samples: Sequence[ServerSample], steps: Sequence[str], caller: str | None = None
) -> list[StepBreakdown]:
    """Each composing model's share of a point, from the first to the last sample of its window; a step that
    served no request in it is left out. The step its requests spend longest in is marked the bottleneck.

    `caller`: a BLS model, whose Python code calls the steps. It is a step too (its instances run that code), listed
    first; Triton counts its calls' time in its own compute, so that is taken out (what its requests spend in the
    steps it calls, per request) and its row is what it spends itself, queued for an instance and computing."""
    ordered = sorted(samples, key=lambda s: s.timestamp)
    found = []
    for model in ([caller] if caller else []) + list(steps):
        requests = _change(ordered, model, REQUESTS)
        if not requests:
            continue
        averages = {}
        for field, counter in DURATIONS:
            total = _change(ordered, model, counter)
            averages[field] = None if total is None else total / requests / US_PER_MS
        found.append(StepBreakdown(model=model, requests=requests, executions=_change(ordered, model, EXECUTIONS) or 0,
                                   **averages))  # fmt: skip
    if caller and found and found[0].model == caller:
        own, called = found[0], found[1:]
        in_calls = sum((s.request_ms or 0.0) * s.requests / own.requests for s in called)
        infer = max(0.0, (own.compute_infer_ms or 0.0) - in_calls) if own.compute_infer_ms is not None else None
        found[0] = own.model_copy(update={"compute_infer_ms": infer})
    if found:
        slowest = max(found, key=lambda s: s.busy_ms)
        found = [s.model_copy(update={"bottleneck": s is slowest}) for s in found]
    return found


def bottleneck(steps: Sequence[StepBreakdown]) -> StepBreakdown | None:
    return next((s for s in steps if s.bottleneck), None)
