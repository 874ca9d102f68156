"""Sweep planning: batch-major order, max_batch_size limits, and what is skipped and why."""

from __future__ import annotations

import pytest

from modelanalysis.core.spec import ModelTarget, SweepSpec
from modelanalysis.core.sweep import Point, plan_model_points


def sweep(batches: list[int], concurrency: list[int], models: tuple[str, ...] = ("m",)) -> SweepSpec:
    return SweepSpec(models=[ModelTarget(name=m) for m in models], batch_sizes=batches, concurrency=concurrency)


def pairs(points: list[Point]) -> list[tuple[int, int]]:
    return [(p.batch_size, p.load.value) for p in points]


def test_points_are_batch_major_in_ascending_order() -> None:
    plan = plan_model_points(sweep([4, 1], [2, 1]), "m", max_batch_size=8)
    assert pairs(plan.points) == [(1, 1), (1, 2), (4, 1), (4, 2)]
    assert all(p.model == "m" for p in plan.points)
    assert plan.skipped == []


def test_batch_equal_to_max_batch_size_runs_and_larger_is_skipped_with_the_reason() -> None:
    plan = plan_model_points(sweep([1, 8, 16], [1, 2]), "add_sub", max_batch_size=8)
    assert pairs(plan.points) == [(1, 1), (1, 2), (8, 1), (8, 2)]
    assert [s.point.key for s in plan.skipped] == ["add_sub/b16/c1", "add_sub/b16/c2"]
    assert all(s.reason == "batch 16 exceeds add_sub's max_batch_size 8" for s in plan.skipped)


def test_no_batching_model_runs_at_batch_1_only_and_reports_the_other_batches() -> None:
    plan = plan_model_points(sweep([1, 4, 8], [1, 2]), "matmul", max_batch_size=0)
    assert pairs(plan.points) == [(1, 1), (1, 2)]
    assert [s.point.key for s in plan.skipped] == ["matmul/b4/c1", "matmul/b4/c2", "matmul/b8/c1", "matmul/b8/c2"]
    assert all("max_batch_size 0" in s.reason and "batch 1 only" in s.reason for s in plan.skipped)


def test_no_batching_model_without_batch_1_asked_still_runs_at_batch_1() -> None:
    plan = plan_model_points(sweep([4, 8], [1, 3]), "matmul", max_batch_size=0)
    assert pairs(plan.points) == [(1, 1), (1, 3)]
    assert len(plan.skipped) == 4


def test_every_batch_too_large_leaves_no_points() -> None:
    plan = plan_model_points(sweep([16, 32], [1]), "m", max_batch_size=8)
    assert plan.points == []
    assert len(plan.skipped) == 2


@pytest.mark.parametrize(
    ("batches", "concurrency", "mbs"), [([1, 4, 8], [1, 2, 4], 8), ([2, 3], [5], 2), ([1], [1], 0)]
)
def test_points_and_skipped_cover_the_grid(batches: list[int], concurrency: list[int], mbs: int) -> None:
    plan = plan_model_points(sweep(batches, concurrency), "m", max_batch_size=mbs)
    assert len(plan.points) + len(plan.skipped) == len(batches) * len(concurrency)
    assert len({p.key for p in plan.points}) == len(plan.points)


def test_point_key_and_value_semantics() -> None:
    point = Point(model="add_sub", batch_size=4, concurrency=2)
    assert point.key == "add_sub/b4/c2"
    assert point == Point(model="add_sub", batch_size=4, concurrency=2)
    assert len({point, Point(model="add_sub", batch_size=4, concurrency=2)}) == 1
    with pytest.raises(ValueError):
        point.batch_size = 8  # type: ignore[misc]  # frozen
