"""Sweep planning: which batch x load points a model is measured at, in order."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from modelanalysis.core.load import PointIdentity, point_key
from modelanalysis.core.spec import SweepSpec

__all__ = ["ModelPlan", "Point", "SkippedPoint", "plan_model_points", "point_key"]


class Point(PointIdentity):
    """One measurement: a model (in one of its config variants) at a batch size and a load (core/load.py)."""

    model_config = ConfigDict(frozen=True)

    # How it is measured, not which point: a decoupled model streams its responses, and is measured with streaming
    # gRPC and perf_analyzer's per-request export (core/streaming.py). Not written out: the engine sets it from the
    # model's config each time it plans the model's points.
    streaming: bool = Field(False, exclude=True)
    # Likewise: an ensemble's composing models, whose share of the point Triton's counters give (core/pipeline.py).
    composing: tuple[str, ...] = Field((), exclude=True)


class SkippedPoint(BaseModel):
    point: Point
    reason: str


class ModelPlan(BaseModel):
    model: str
    points: list[Point]
    skipped: list[SkippedPoint]


def plan_model_points(
    spec: SweepSpec,
    model: str,
    max_batch_size: int,
    variant: str = "",
    triton_version: str = "",
    batch_limit: tuple[int, str] | None = None,
) -> ModelPlan:
    """The points to run for one model, batch-major, given the max_batch_size Triton reports for it.

    A model with max_batch_size 0 takes no batch dimension: it runs at batch 1 only. Batch sizes above a
    model's max_batch_size cannot be sent, so they are skipped with the reason recorded; so are those above
    `batch_limit` (the largest batch its inputs can be sent at, and why: core/inputs.py).
    """
    points: list[Point] = []
    skipped: list[SkippedPoint] = []
    for batch in spec.batch_sizes:
        for load in spec.load_steps:
            point = Point(model=model, batch_size=batch, load=load, variant=variant, triton_version=triton_version)
            if max_batch_size == 0 and batch != 1:
                skipped.append(
                    SkippedPoint(point=point, reason=f"{model} has max_batch_size 0 (no batching): batch 1 only")
                )
            elif max_batch_size > 0 and batch > max_batch_size:
                skipped.append(
                    SkippedPoint(point=point, reason=f"batch {batch} exceeds {model}'s max_batch_size {max_batch_size}")
                )
            elif batch_limit is not None and batch > batch_limit[0]:
                skipped.append(SkippedPoint(point=point, reason=batch_limit[1]))
            else:
                points.append(point)
    if max_batch_size == 0 and 1 not in spec.batch_sizes:
        # The user asked only for batch sizes the model cannot take; batch 1 is still what it can do.
        points = [
            Point(model=model, batch_size=1, load=load, variant=variant, triton_version=triton_version)
            for load in spec.load_steps
        ]
    return ModelPlan(model=model, points=points, skipped=skipped)
