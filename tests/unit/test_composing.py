"""A pipeline's composing-model walk (core/composing.py), decided without I/O on numbers seen on the real local
Triton: examples/models/pipeline (preprocess 1 ms an execution, classify 4 ms), concurrency 4."""

from __future__ import annotations

from modelanalysis.core.composing import bottleneck_order, current_best, next_in_walk
from modelanalysis.core.perf import PerfMeasurement
from modelanalysis.core.pipeline import StepBreakdown
from modelanalysis.core.results import PointResult, PointStatus
from modelanalysis.core.spec import ConfigSearch, Constraints, Objective
from modelanalysis.core.variants import ModelVariant, pipeline_variant

STEPS = ("preprocess", "classify")
SEARCH = ConfigSearch(instance_counts=[1, 2])
OWN = {"preprocess": (1, 8, False), "classify": (1, 8, False)}  # as their config.pbtxt have them
NONE = Constraints()


def placeholder(n: int) -> ModelVariant:
    return ModelVariant(name=f"pipeline_config_{n}", model="pipeline", instance_count=[1, 2][n])


DEFAULT = ModelVariant(name="pipeline_config_default", model="pipeline",
                       composing=(ModelVariant(name="preprocess", model="preprocess"),
                                  ModelVariant(name="classify", model="classify")))  # fmt: skip


def measured(variant: str, thr: float, half_width: float, busy: dict[str, float]) -> PointResult:
    steps = [StepBreakdown(model=m, requests=1000, executions=1000, queue_ms=b / 2, compute_infer_ms=b / 2)
             for m, b in busy.items()]  # fmt: skip
    return PointResult(
        model="pipeline", batch_size=1, concurrency=4, variant=variant, status=PointStatus.MEASURED,
        perf=PerfMeasurement(throughput_infer_per_sec=thr, latency_p50_ms=9, latency_p90_ms=10, latency_p95_ms=11,
                             latency_p99_ms=12, throughput_ci_low=thr * (1 - half_width),
                             throughput_ci_high=thr * (1 + half_width)),
        steps=steps,
    )  # fmt: skip


def walk(history: list[ModelVariant], points: list[PointResult], n: int) -> tuple[ModelVariant | None, str]:
    decision = next_in_walk(placeholder(n), STEPS, SEARCH, history, points, Objective.MAXIMIZE_THROUGHPUT, NONE, OWN)
    return decision.variant, decision.reason


def test_the_walk_starts_on_the_slowest_step_and_skips_a_setting_equal_to_its_own() -> None:
    points = [measured("pipeline_config_default", 215, 0.056, {"preprocess": 1.8, "classify": 16.7})]
    variant, reason = walk([DEFAULT], points, 0)
    assert variant is not None and variant.name == "pipeline_config_0"
    # classify's own count is 1, so the first setting it is given is 2 instances; preprocess is left as it is.
    assert variant.describe() == "classify: 2 instances"
    assert reason.startswith("classify is the slowest step (16.70 ms a request) of pipeline_config_default")


def test_a_surely_better_variant_is_built_on_and_the_walk_moves_to_the_next_slowest_step() -> None:
    first = pipeline_variant(placeholder(0), {"classify": (2, None, None)}, STEPS)
    points = [
        measured("pipeline_config_default", 215, 0.056, {"preprocess": 1.8, "classify": 16.7}),
        measured("pipeline_config_0", 433, 0.038, {"preprocess": 1.8, "classify": 7.1}),
    ]
    assert current_best([DEFAULT, first], points, Objective.MAXIMIZE_THROUGHPUT, NONE)[0] == first
    variant, reason = walk([DEFAULT, first], points, 1)
    assert variant is not None and variant.describe() == "preprocess: 2 instances; classify: 2 instances"
    assert "classify has no untried setting left and preprocess is the next slowest step" in reason
    assert "of pipeline_config_0, the best so far" in reason


def test_a_variant_inside_the_best_ones_interval_is_not_built_on() -> None:
    first = pipeline_variant(placeholder(0), {"classify": (2, None, None)}, STEPS)
    points = [
        measured("pipeline_config_default", 215, 0.10, {"preprocess": 1.8, "classify": 16.7}),
        measured("pipeline_config_0", 230, 0.10, {"preprocess": 1.8, "classify": 15.0}),  # intervals overlap
    ]
    assert current_best([DEFAULT, first], points, Objective.MAXIMIZE_THROUGHPUT, NONE)[0] == DEFAULT
    variant, _ = walk([DEFAULT, first], points, 1)
    # Still on the default: classify is done, so preprocess gets its second instance on the default's config.
    assert variant is not None and variant.describe() == "preprocess: 2 instances"


def test_the_walk_ends_when_every_step_is_tried_on_the_best_config() -> None:
    first = pipeline_variant(placeholder(0), {"classify": (2, None, None)}, STEPS)
    second = pipeline_variant(placeholder(1), {"classify": (2, None, None), "preprocess": (2, None, None)}, STEPS)
    points = [
        measured("pipeline_config_default", 215, 0.056, {"preprocess": 1.8, "classify": 16.7}),
        measured("pipeline_config_0", 433, 0.038, {"preprocess": 1.8, "classify": 7.1}),
        measured("pipeline_config_1", 433, 0.039, {"preprocess": 1.7, "classify": 7.0}),
    ]
    variant, reason = walk([DEFAULT, first, second], points, 1)
    assert variant is None
    assert reason == "every step's settings have been tried on the best config, pipeline_config_0"


def test_a_default_that_measured_nothing_ends_the_walk_before_it_starts() -> None:
    failed = PointResult(model="pipeline", batch_size=1, concurrency=4, variant="pipeline_config_default",
                         status=PointStatus.FAILED, error="server died")  # fmt: skip
    variant, reason = walk([DEFAULT], [failed], 0)
    assert variant is None and "measured no point" in reason


def test_steps_are_ordered_by_the_time_a_request_spends_in_them() -> None:
    point = measured("pipeline_config_default", 215, 0.05, {"preprocess": 9.0, "classify": 2.0})
    assert bottleneck_order(point, STEPS) == ["preprocess", "classify"]
    assert bottleneck_order(None, STEPS) == list(STEPS)


def test_an_ensembles_step_is_never_given_a_max_batch_under_the_ensembles_own() -> None:
    """Seen on the real Triton: classify at max batch 4 under an ensemble of max batch 8 does not load."""
    search = ConfigSearch(instance_counts=[1, 2], max_batch_sizes=[4, 8], dynamic_batching=[True])
    points = [measured("pipeline_config_default", 215, 0.056, {"preprocess": 1.8, "classify": 16.7})]
    decision = next_in_walk(placeholder(0), STEPS, search, [DEFAULT], points, Objective.MAXIMIZE_THROUGHPUT, NONE,
                            OWN, batch_floor=8)  # fmt: skip
    assert decision.variant is not None
    assert decision.variant.describe() == "classify: 1 instance, max batch 8, dynamic batching"
    only_small = ConfigSearch(max_batch_sizes=[2, 4])
    ended = next_in_walk(placeholder(0), STEPS, only_small, [DEFAULT], points, Objective.MAXIMIZE_THROUGHPUT, NONE,
                         OWN, batch_floor=8)  # fmt: skip
    assert ended.variant is None and "under the ensemble's 8 are left out" in ended.reason
