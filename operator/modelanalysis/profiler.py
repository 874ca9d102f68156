"""One analysis against one Triton server: baseline, then each model's points, one at a time.

This is the CLI's loop. It only glues the pure core (planning, aggregation) to the adapters (Triton's
repository API, the metrics sampler, perf_analyzer); the operator runs the same steps as Kubernetes objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from modelanalysis.adapters.dcgm_prometheus import DcgmMemoryUtilization, PrometheusQueryError
from modelanalysis.adapters.metrics_sampler import MetricsSampler, sample_for
from modelanalysis.adapters.perf_analyzer import PerfAnalyzerError
from modelanalysis.adapters.triton_control import ModelLoadError, TritonControl
from modelanalysis.adapters.triton_server import TritonEndpoints
from modelanalysis.core.perf import PerfMeasurement
from modelanalysis.core.results import AnalysisResult, ModelOutcome, ModelStatus, PointResult, PointStatus
from modelanalysis.core.server_metrics import (
    GpuMetrics,
    ResourceMetrics,
    aggregate_window,
)
from modelanalysis.core.spec import MeasurementSettings, SweepSpec
from modelanalysis.core.sweep import Point, plan_model_points, planned_point_count

NO_MEMORY_UTILIZATION_NOTE = (
    "Max Memory Utilization is empty: Triton does not export it. To fill it, give the URL of a Prometheus "
    "that scrapes NVIDIA's dcgm-exporter (CLI: --prometheus-url; operator: the chart's prometheusUrl)."
)

RunPoint = Callable[[Point, MeasurementSettings, str, str], PerfMeasurement]


@dataclass(frozen=True)
class ProfileEvent:
    """Progress, for whoever shows it. `done`/`total` count points (total shrinks as points are skipped)."""

    kind: str  # baseline | loading | load-failed | point | point-done | point-failed | unloaded
    done: int
    total: int
    model: str = ""
    point: Point | None = None
    message: str = ""


def add_memory_utilization(resources: ResourceMetrics, by_gpu: dict[str, float]) -> None:
    """Merge DCGM's per-GPU memory utilization into the GPUs Triton reported (or add the GPUs it did not)."""
    known = {g.gpu_uuid: g for g in resources.gpus}
    for uuid, value in by_gpu.items():
        gpu = known.get(uuid)
        if gpu is None:
            gpu = GpuMetrics(gpu_uuid=uuid)
            resources.gpus.append(gpu)
        gpu.max_memory_utilization_pct = value


class Profiler:
    def __init__(
        self,
        spec: SweepSpec,
        endpoints: TritonEndpoints,
        control: TritonControl,
        run_point: RunPoint,
        result: AnalysisResult,
        memory_utilization: DcgmMemoryUtilization | None = None,
        on_event: Callable[[ProfileEvent], None] = lambda event: None,
        on_point: Callable[[AnalysisResult], None] = lambda result: None,
        model_config_path: Callable[[str], str] = lambda model: "",
    ) -> None:
        self.spec = spec
        self.endpoints = endpoints
        self.control = control
        self.run_point = run_point
        self.result = result
        self.memory_utilization = memory_utilization
        self.on_event = on_event
        self.on_point = on_point
        self.model_config_path = model_config_path
        self.total = planned_point_count(spec)
        self.done = 0
        self._memory_note_given = False

    def _emit(self, kind: str, model: str = "", point: Point | None = None, message: str = "") -> None:
        self.on_event(ProfileEvent(kind, self.done, self.total, model, point, message))

    def run(self) -> AnalysisResult:
        """Measure everything; the result is filled in place, so an interrupted run keeps what it measured."""
        self.result.started_at = time.time()
        if self.memory_utilization is None:
            self._note(NO_MEMORY_UTILIZATION_NOTE)
        self.result.server_version = self.control.server_version()
        self.measure_baseline()
        for model in self.spec.model_names:
            self.profile_model(model)
        self.result.finished_at = time.time()
        return self.result

    def _note(self, text: str) -> None:
        if text not in self.result.notes:
            self.result.notes.append(text)

    def measure_baseline(self) -> None:
        settings = self.spec.measurement
        self._emit("baseline", message="measuring the server with no model loaded")
        start = time.time()
        samples = sample_for(
            self.endpoints.metrics_url, settings.baseline_duration_ms / 1000, settings.metrics_interval_ms / 1000
        )
        self.result.baseline = aggregate_window(samples)
        self._add_dcgm(self.result.baseline, start, time.time())

    def profile_model(self, model: str) -> None:
        settings = self.spec.measurement
        planned_here = len(self.spec.batch_sizes) * len(self.spec.concurrency)
        self._emit("loading", model=model)
        already_loaded = self.control.is_model_ready(model)
        try:
            if not already_loaded:
                self.control.load(model)
            config = self.control.model_config(model)
        except ModelLoadError as exc:
            self.result.models.append(ModelOutcome(name=model, status=ModelStatus.LOAD_FAILED, error=str(exc)))
            self.total -= planned_here
            self._emit("load-failed", model=model, message=str(exc))
            self.on_point(self.result)
            return
        plan = plan_model_points(self.spec, model, config.max_batch_size)
        outcome = ModelOutcome(
            name=model,
            status=ModelStatus.INTERRUPTED,  # until every point is done
            max_batch_size=config.max_batch_size,
            instance_group=config.instance_group,
            config_path=self.model_config_path(model),
            skipped=plan.skipped,
        )
        self.result.models.append(outcome)
        self.total += len(plan.points) - planned_here
        try:
            for point in plan.points:
                self._emit("point", model=model, point=point)
                self.result.points.append(self.measure_point(point, settings))
                self.done += 1
                last = self.result.points[-1]
                self._emit(
                    "point-done" if last.status == PointStatus.MEASURED else "point-failed",
                    model,
                    point,
                    last.error or "",
                )
                self.on_point(self.result)
            outcome.status = ModelStatus.PROFILED
        finally:
            if not already_loaded:
                self.control.unload(model)
                self._emit("unloaded", model=model)

    def measure_point(self, point: Point, settings: MeasurementSettings) -> PointResult:
        sampler = MetricsSampler(self.endpoints.metrics_url, settings.metrics_interval_ms / 1000)
        started = time.time()
        sampler.start()
        try:
            perf = self.run_point(point, settings, self.endpoints.grpc, self.endpoints.http)
            error = None
        except PerfAnalyzerError as exc:
            perf, error = None, str(exc)
        finally:
            samples = sampler.stop()
        finished = time.time()
        result = PointResult.from_window(
            point, perf, error, samples, started, finished, settings.measurement_interval_ms
        )
        assert result.resources is not None
        self._add_dcgm(result.resources, started, finished)
        return result

    def _add_dcgm(self, resources: ResourceMetrics, start: float, end: float) -> None:
        if self.memory_utilization is None:
            return
        try:
            by_gpu = self.memory_utilization.max_by_gpu(start, end)
        except PrometheusQueryError as exc:
            # Each unanswered query costs seconds of client retries: stop asking for the rest of the run.
            self.memory_utilization = None
            self._note(f"Max Memory Utilization is empty from here on: {exc}")
            return
        if not by_gpu:
            self._note(
                "Max Memory Utilization is empty where Prometheus held no DCGM sample inside a point's window: "
                "scrape dcgm-exporter more often than a point lasts (e.g. every second) while profiling."
            )
        add_memory_utilization(resources, by_gpu)
