"""Status bookkeeping as pure functions: conditions, and the compact point form kept in status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelanalysis.core.load import Load, LoadKind
from modelanalysis.core.perf import PerfMeasurement
from modelanalysis.core.pipeline import StepBreakdown
from modelanalysis.core.results import (
    AnalysisResult,
    BestPoint,
    BestTogether,
    BudgetBoundary,
    ModelOutcome,
    ModelStatus,
    Placement,
    PointResult,
    PointStatus,
    together_configs,
)
from modelanalysis.core.server_metrics import GpuMetrics, ResourceMetrics
from modelanalysis.core.sweep import Point, SkippedPoint
from modelanalysis.core.variants import ModelVariant, config_override
from modelanalysis.kube.resource import (
    BestStatus,
    BoundaryStatus,
    CompactBaseline,
    CompactGpu,
    CompactPoint,
    CompactStep,
    ComposingSettingStatus,
    Condition,
    ModelAnalysisStatus,
    ModelStatusEntry,
    SkippedPointStatus,
    TogetherStatus,
)

MAX_MESSAGE = 1024  # conditions and errors stay short: status must stay small


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_seconds(text: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 time written by now_rfc3339 (None if absent or unreadable)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def short(text: str | None, limit: int = MAX_MESSAGE) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 3] + "..."


def set_condition(
    conditions: list[Condition] | None,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int,
    now: str | None = None,
) -> list[Condition]:
    """Conditions with `type_` set; lastTransitionTime moves only when the status flips."""
    value = "True" if status else "False"
    existing = {c.type: c for c in conditions or []}
    previous = existing.get(type_)
    transition = previous.last_transition_time if previous and previous.status == value else (now or now_rfc3339())
    existing[type_] = Condition(
        type=type_,
        status=value,
        reason=reason,
        message=short(message) or "",
        last_transition_time=transition,
        observed_generation=generation,
    )
    return list(existing.values())


def _r(value: float | None, digits: int = 3) -> float | None:
    # 3 decimals by default: the CSV files' precision (report.py), so the files the operator writes from
    # status are the ones the CLI writes from the same measurements.
    return None if value is None else round(value, digits)


def compact_gpus(resources: ResourceMetrics | None) -> list[CompactGpu] | None:
    if resources is None or not resources.gpus:
        return None
    return [
        CompactGpu(
            uuid=g.gpu_uuid,
            util=_r(g.max_utilization_pct),
            mem_mb=_r(g.max_memory_used_mb),
            power_w=_r(g.max_power_watts),
            mem_util=_r(g.max_memory_utilization_pct),
        )
        for g in resources.gpus
    ]


def _gpu_metrics(gpus: list[CompactGpu] | None) -> list[GpuMetrics]:
    return [
        GpuMetrics(
            gpu_uuid=g.uuid,
            max_utilization_pct=g.util,
            max_memory_used_mb=g.mem_mb,
            max_power_watts=g.power_w,
            max_memory_utilization_pct=g.mem_util,
        )
        for g in gpus or []
    ]


def _pair(low: float | None, high: float | None) -> list[float] | None:
    return None if low is None or high is None else [round(low, 3), round(high, 3)]


# Each number of a point's measurement that status keeps: CompactPoint's field, PerfMeasurement's field, and
# whether it is rounded (a float) or kept as it is. A new metric is a line here and a CompactPoint field.
PERF_IN_STATUS: tuple[tuple[str, str, bool], ...] = (
    ("throughput", "throughput_infer_per_sec", True),
    ("p50", "latency_p50_ms", True),
    ("p90", "latency_p90_ms", True),
    ("p95", "latency_p95_ms", True),
    ("p99", "latency_p99_ms", True),
    ("avg", "latency_avg_ms", True),
    ("windows", "windows", False),
    ("requests", "requests", False),
    ("send_rate", "send_rate_per_sec", True),
    ("delayed_pct", "delayed_requests_pct", True),
    ("converged", "converged", False),
    ("load_generator_cpu", "load_generator_cpu_cores", True),
    ("load_generator_cpu_budget", "load_generator_cpu_budget_cores", True),
    ("load_generator_bottleneck", "load_generator_bottleneck", False),
    ("ttft_avg", "ttft_avg_ms", True),
    ("ttft_p50", "ttft_p50_ms", True),
    ("ttft_p90", "ttft_p90_ms", True),
    ("ttft_p95", "ttft_p95_ms", True),
    ("ttft_p99", "ttft_p99_ms", True),
    ("itl_avg", "itl_avg_ms", True),
    ("itl_p50", "itl_p50_ms", True),
    ("itl_p90", "itl_p90_ms", True),
    ("itl_p95", "itl_p95_ms", True),
    ("itl_p99", "itl_p99_ms", True),
    ("tokens_per_sec", "output_tokens_per_sec", True),
    ("tokens_per_request", "tokens_per_request", True),
)
# Intervals, kept as [low, high]: CompactPoint's field and PerfMeasurement's two.
INTERVALS_IN_STATUS: tuple[tuple[str, str, str], ...] = (
    ("throughput_ci", "throughput_ci_low", "throughput_ci_high"),
    ("p99_ci", "latency_p99_ci_low_ms", "latency_p99_ci_high_ms"),
    ("ttft_ci", "ttft_p99_ci_low_ms", "ttft_p99_ci_high_ms"),
    ("itl_ci", "itl_p99_ci_low_ms", "itl_p99_ci_high_ms"),
    ("tokens_ci", "output_tokens_ci_low", "output_tokens_ci_high"),
)


def load_in_status(load: Load) -> dict[str, Any]:
    """A point's load as status writes it: its own field (`concurrency: 4`)."""
    return {load.kind.value: load.value}


def compact_point(p: PointResult) -> CompactPoint:
    perf, res = p.perf, p.resources
    numbers: dict[str, Any] = {}
    if perf is not None:
        for key, field, rounded in PERF_IN_STATUS:
            value = getattr(perf, field)
            numbers[key] = _r(value) if rounded else value
        for key, low, high in INTERVALS_IN_STATUS:
            numbers[key] = _pair(getattr(perf, low), getattr(perf, high))
        numbers["convergence"] = short(perf.convergence, 200)
    return CompactPoint(
        model=p.model,
        variant=p.variant or None,
        triton_version=p.triton_version or None,
        batch=p.batch_size,
        **load_in_status(p.load),
        status=p.status.value,
        error=short(p.error),
        server_throughput=_r(p.server_throughput_infer_per_sec),
        cpu_util=_r(res.max_cpu_utilization_pct if res else None),
        cpu_mem_mb=_r(res.max_cpu_memory_used_mb if res else None),
        gpus=compact_gpus(res),
        server_node=p.placement.server_node,
        load_generator_node=p.placement.load_generator_node,
        steps=[compact_step(s) for s in p.steps] if p.steps else None,
        measured_with=p.measured_with or None,
        rechecked=p.rechecked,
        started=_r(p.started_at, 1),
        finished=_r(p.finished_at, 1),
        **numbers,
    )


def compact_step(s: StepBreakdown) -> CompactStep:
    rounded = {f: _r(getattr(s, f)) for f in ("queue_ms", "compute_input_ms", "compute_infer_ms", "compute_output_ms",
                                               "request_ms")}  # fmt: skip
    return CompactStep(model=s.model, requests=s.requests, executions=s.executions, bottleneck=s.bottleneck or None,
                       **rounded)  # fmt: skip


def expand_step(c: CompactStep) -> StepBreakdown:
    return StepBreakdown(**c.model_dump(exclude={"bottleneck"}), bottleneck=bool(c.bottleneck))


def expand_point(c: CompactPoint, placement: str | None = None) -> PointResult:
    perf = None
    if c.throughput is not None and None not in (c.p50, c.p90, c.p95, c.p99):
        numbers = {field: getattr(c, key) for key, field, _ in PERF_IN_STATUS}
        for key, low, high in INTERVALS_IN_STATUS:
            pair = getattr(c, key)
            numbers[low], numbers[high] = (pair[0], pair[1]) if pair else (None, None)
        perf = PerfMeasurement(**numbers, convergence=c.convergence)
    return PointResult(
        model=c.model,
        variant=c.variant or "",
        triton_version=c.triton_version or "",
        batch_size=c.batch,
        load=Load.of(c),
        status=PointStatus(c.status),
        error=c.error,
        perf=perf,
        resources=ResourceMetrics(
            gpus=_gpu_metrics(c.gpus), max_cpu_utilization_pct=c.cpu_util, max_cpu_memory_used_mb=c.cpu_mem_mb
        ),
        server_throughput_infer_per_sec=c.server_throughput,
        started_at=c.started,
        finished_at=c.finished,
        placement=Placement(
            server_node=c.server_node, load_generator_node=c.load_generator_node, load_generator_placement=placement
        ),
        steps=[expand_step(s) for s in c.steps] if c.steps else None,
        measured_with=c.measured_with,
        rechecked=c.rechecked,
    )


def compact_baseline(resources: ResourceMetrics) -> CompactBaseline:
    return CompactBaseline(
        cpu_util=_r(resources.max_cpu_utilization_pct),
        cpu_mem_mb=_r(resources.max_cpu_memory_used_mb),
        gpus=compact_gpus(resources),
    )


def _composing_in_status(settings: list[ModelVariant] | None) -> list[ComposingSettingStatus] | None:
    if settings is None:
        return None
    return [
        ComposingSettingStatus(model=c.model, instance_count=c.instance_count, max_batch_size=c.max_batch_size,
                               dynamic_batching=c.dynamic_batching)
        for c in settings
    ]


def _composing_from_status(settings: list[ComposingSettingStatus] | None) -> list[ModelVariant] | None:
    if settings is None:
        return None
    return [
        ModelVariant(name=c.model, model=c.model, instance_count=c.instance_count, max_batch_size=c.max_batch_size,
                     dynamic_batching=c.dynamic_batching)
        for c in settings
    ]


def model_entry(outcome: ModelOutcome) -> ModelStatusEntry:
    return ModelStatusEntry(
        name=outcome.name,
        model=outcome.model or None,
        changes=outcome.changes or None,
        triton_version=outcome.triton_version or None,
        status=outcome.status.value,
        error=short(outcome.error),
        max_batch_size=outcome.max_batch_size,
        instance_group=outcome.instance_group or None,
        inputs=short(outcome.inputs, 500),
        composing=_composing_in_status(outcome.composing),
        reason=short(outcome.reason) or None,
        skipped=[
            SkippedPointStatus(batch=s.point.batch_size, **load_in_status(s.point.load), reason=s.reason)
            for s in outcome.skipped
        ]
        or None,
    )


def best_status(best: BestPoint, result: AnalysisResult, variant: ModelVariant | None = None) -> BestStatus:
    """`variant`: the config variant it won in, whose whole config is given (built from the model's own)."""
    outcome = result.outcome(best.variant, best.triton_version) if best.variant else None
    own = result.model_configs.get(best.model)
    composing_configs = None
    if outcome is not None and outcome.composing is not None:  # a pipeline: its own config, its steps' as set
        variant = ModelVariant(name=best.variant, model=best.model)
        composing_configs = {
            c.model: config_override(result.model_configs[c.model], c)
            for c in outcome.composing
            if c.model in result.model_configs
        } or None
    return BestStatus(
        model=best.model,
        variant=best.variant or None,
        variant_changes=outcome.changes if outcome else None,
        triton_version=best.triton_version or None,
        batch=best.batch_size,
        **load_in_status(best.load),
        throughput=round(best.throughput_infer_per_sec, 3),
        throughput_ci=_pair(best.throughput_ci_low, best.throughput_ci_high),
        p99=round(best.latency_p99_ms, 3),
        gpu_mem_mb=_r(best.gpu_memory_mb),
        config=config_override(own, variant) if variant is not None and own is not None else None,
        composing_configs=composing_configs,
        satisfies_constraints=best.satisfies_constraints,
        why=short(best.why) or "",
        summary=best.summary(),
        probably_within=best.probably_within or None,
    )


def together_status(t: BestTogether, result: AnalysisResult | None = None) -> TogetherStatus:
    label = "best together" if t.satisfies_constraints else "together, closest"
    return TogetherStatus(batch=t.batch_size, **load_in_status(t.load), variants=t.variants, members=t.members,
                          satisfies_constraints=t.satisfies_constraints,
                          summary=short(f"{label}: {t.where}: {t.why}") or "",
                          configs=together_configs(t, result) if result is not None else None)  # fmt: skip


def boundary_status(b: BudgetBoundary) -> BoundaryStatus:
    return BoundaryStatus(
        model=b.model,
        variant=b.variant or None,
        triton_version=b.triton_version or None,
        batch=b.batch_size,
        request_rate=True if b.load_kind == LoadKind.REQUEST_RATE else None,
        surely_under=b.surely_under,
        surely_over=b.surely_over,
        undecided=b.undecided or None,
        summary=short(b.sentence()) or "",
    )


def analysis_result(status: ModelAnalysisStatus, triton_version: str) -> AnalysisResult:
    """Rebuild the core's result from status, so the CSV is written by the same code as the CLI's."""
    baseline = status.baseline
    return AnalysisResult(
        triton_version=triton_version,
        server_version=status.server_version or "",
        started_at=rfc3339_seconds(status.started_at),
        finished_at=rfc3339_seconds(status.finished_at),
        baseline=ResourceMetrics(
            gpus=_gpu_metrics(baseline.gpus),
            max_cpu_utilization_pct=baseline.cpu_util,
            max_cpu_memory_used_mb=baseline.cpu_mem_mb,
        )
        if baseline
        else None,
        models=[
            ModelOutcome(
                name=m.name,
                model=m.model or "",
                changes=m.changes or "",
                triton_version=m.triton_version or "",
                config_path=m.name if m.model else "",
                status=ModelStatus(m.status),
                error=m.error,
                max_batch_size=m.max_batch_size,
                instance_group=m.instance_group or "",
                inputs=m.inputs,
                composing=_composing_from_status(m.composing),
                reason=m.reason,
                skipped=[
                    SkippedPoint(
                        point=Point(
                            model=m.model or m.name,
                            batch_size=s.batch,
                            load=Load.of(s),
                            variant=m.name if m.model else "",
                            triton_version=m.triton_version or "",
                        ),
                        reason=s.reason,
                    )
                    for s in m.skipped or []
                ],
            )
            for m in status.models or []
        ],
        points=[expand_point(p, status.load_generator_placement) for p in status.points or []],
        notes=list(status.notes or []),
        model_configs=dict(status.model_configs or {}),
    )
