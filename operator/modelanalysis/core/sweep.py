"""Sweep planning: which batch x concurrency points a model is measured at, in order."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from modelanalysis.core.spec import SweepSpec


class Point(BaseModel):
    """One measurement: a model (in one of its config variants) at a batch size and a client concurrency."""

    model_config = ConfigDict(frozen=True)

    model: str  # the name Triton serves it under: what perf_analyzer is pointed at
    batch_size: int
    concurrency: int
    variant: str = ""  # the config variant loaded (e.g. add_sub_config_1); empty: the model's own config
    triton_version: str = ""  # the Triton release it ran on, when an analysis compares several; else empty

    @property
    def variant_name(self) -> str:
        return self.variant or self.model

    @property
    def key(self) -> str:
        """A stable identifier, used to tell which points are already measured."""
        return point_key(self.variant_name, self.batch_size, self.concurrency, self.triton_version)


def point_key(variant_name: str, batch_size: int, concurrency: int, triton_version: str = "") -> str:
    """`add_sub_config_1/b8/c4`, prefixed with the Triton version (`24.08-py3/...`) when several are compared."""
    key = f"{variant_name}/b{batch_size}/c{concurrency}"
    return f"{triton_version}/{key}" if triton_version else key


class SkippedPoint(BaseModel):
    point: Point
    reason: str


class ModelPlan(BaseModel):
    model: str
    points: list[Point]
    skipped: list[SkippedPoint]


def plan_model_points(
    spec: SweepSpec, model: str, max_batch_size: int, variant: str = "", triton_version: str = ""
) -> ModelPlan:
    """The points to run for one model, batch-major, given the max_batch_size Triton reports for it.

    A model with max_batch_size 0 takes no batch dimension: it runs at batch 1 only. Batch sizes above a
    model's max_batch_size cannot be sent, so they are skipped with the reason recorded.
    """
    points: list[Point] = []
    skipped: list[SkippedPoint] = []
    for batch in spec.batch_sizes:
        for concurrency in spec.concurrency_steps:
            point = Point(
                model=model, batch_size=batch, concurrency=concurrency, variant=variant, triton_version=triton_version
            )
            if max_batch_size == 0 and batch != 1:
                skipped.append(
                    SkippedPoint(point=point, reason=f"{model} has max_batch_size 0 (no batching): batch 1 only")
                )
            elif max_batch_size > 0 and batch > max_batch_size:
                skipped.append(
                    SkippedPoint(point=point, reason=f"batch {batch} exceeds {model}'s max_batch_size {max_batch_size}")
                )
            else:
                points.append(point)
    if max_batch_size == 0 and 1 not in spec.batch_sizes:
        # The user asked only for batch sizes the model cannot take; batch 1 is still what it can do.
        points = [
            Point(model=model, batch_size=1, concurrency=c, variant=variant, triton_version=triton_version)
            for c in spec.concurrency_steps
        ]
    return ModelPlan(model=model, points=points, skipped=skipped)
