"""What an analysis found: per point, per model, and the server-only baseline."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from modelanalysis.core.perf import PerfMeasurement
from modelanalysis.core.server_metrics import ResourceMetrics
from modelanalysis.core.sweep import Point, SkippedPoint


class PointStatus(StrEnum):
    MEASURED = "Measured"
    FAILED = "Failed"


class PointResult(BaseModel):
    """One batch x concurrency point of one model: perf_analyzer's numbers and the server's resource use."""

    model: str
    batch_size: int
    concurrency: int
    status: PointStatus
    error: str | None = None
    perf: PerfMeasurement | None = None
    resources: ResourceMetrics | None = None
    # Triton's own count of inferences over the point, per second: a cross-check of perf_analyzer.
    server_throughput_infer_per_sec: float | None = None
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def point(self) -> Point:
        return Point(model=self.model, batch_size=self.batch_size, concurrency=self.concurrency)


class ModelStatus(StrEnum):
    PROFILED = "Profiled"
    LOAD_FAILED = "LoadFailed"
    INTERRUPTED = "Interrupted"


class ModelOutcome(BaseModel):
    name: str
    status: ModelStatus
    error: str | None = None
    max_batch_size: int | None = None
    instance_group: str = ""
    config_path: str = ""
    skipped: list[SkippedPoint] = Field(default_factory=list)


class AnalysisResult(BaseModel):
    triton_version: str
    server_version: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    baseline: ResourceMetrics | None = None
    models: list[ModelOutcome] = Field(default_factory=list)
    points: list[PointResult] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="Things the user should know, said once.")
    interrupted: bool = False

    def outcome(self, model: str) -> ModelOutcome | None:
        return next((m for m in self.models if m.name == model), None)

    def best_throughput(self) -> float | None:
        values = [p.perf.throughput_infer_per_sec for p in self.points if p.perf is not None]
        return max(values) if values else None
