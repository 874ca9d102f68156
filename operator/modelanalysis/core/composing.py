"""A pipeline's config search: its composing models varied one step at a time, the bottleneck step first.

A pipeline (an ensemble, or a BLS model and the models it calls) has no config of its own worth varying; its
composing models do. Every combination over every step is C**S variants for S steps of C settings each (4 settings
and 3 steps: 64 sweeps), so the search walks instead, coordinate by coordinate, led by Triton's own counters:

1. The pipeline as the repository has it (`<pipeline>_config_default`) is measured at every planned point.
2. The current best config says which step its requests spend the longest in, queued and computing
   (core/pipeline.py), read at the most loaded point of its best point's batch size (the best point is chosen as
   the answer is, under the constraints). The next variant is the current best
   with that step's next untried setting (the search's combinations, in their order).
3. A variant whose best point is surely better (it ranks higher, and the 95% intervals of the objective's metric do
   not overlap) becomes the current best, and its bottleneck is read again.
4. A step with no untried setting on the current best is done with; the walk goes to the next slowest step.
5. The walk ends when no step has an untried setting on the current best, or when it has measured as many
   variants as the plain search would (one per combination, and the default): the same bound admission counts.

An ensemble's steps must each take a batch as large as the ensemble's own max_batch_size (Triton refuses to load
it otherwise), so a setting with a smaller max batch size is never tried on an ensemble's step.

It can miss the optimum where steps interact: a setting that only pays together with another step's (two steps
that each need a second instance before either shows a gain), or one that helps one step by taking CPU or GPU
from another. A setting only probably better (intervals overlapping) is not built on. The answer itself is chosen
over every point measured, as for any search (core/objectives.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelanalysis.core.objectives import best_point, surely_better
from modelanalysis.core.results import PointResult
from modelanalysis.core.spec import ConfigSearch, Constraints, Objective
from modelanalysis.core.variants import ModelVariant, combinations, pipeline_variant

Settings = tuple[int | None, int | None, bool | None]  # instance count, max batch size, dynamic batching
UNCHANGED: Settings = (None, None, None)


@dataclass(frozen=True)
class WalkDecision:
    variant: ModelVariant | None  # None: the walk has ended
    reason: str  # why this variant is next, or why the walk ended


def _effective(variant: ModelVariant, steps: Sequence[str], own: dict[str, Settings]) -> tuple[Settings, ...]:
    """Each step's setting as Triton would load it: what the variant sets, else the step's own config's."""
    set_by = {c.model: c.own_settings for c in variant.composing}
    result = []
    for step in steps:
        mine, theirs = set_by.get(step, UNCHANGED), own.get(step, UNCHANGED)
        result.append(tuple(m if m is not None else t for m, t in zip(mine, theirs, strict=True)))
    return tuple(result)  # type: ignore[arg-type]


def _best_of(variant: ModelVariant, points: Sequence[PointResult], objective: Objective,
             constraints: Constraints) -> tuple[PointResult, bool] | None:  # fmt: skip
    """A variant's best point, and whether it is surely within the constraints."""
    return best_point([p for p in points if p.variant_name == variant.name], objective, constraints)


def _better(a: tuple[PointResult, bool] | None, b: tuple[PointResult, bool] | None, objective: Objective) -> bool:
    """Whether best point `a` surely beats best point `b`: one surely within the constraints beats one that is
    not, whatever their numbers; else by the objective's metric, outside its intervals."""
    if a is None:
        return False
    if b is None:
        return True
    (point_a, within_a), (point_b, within_b) = a, b
    if within_a != within_b:
        return within_a
    return surely_better(point_a, point_b, objective)


def bottleneck_order(point: PointResult | None, steps: Sequence[str]) -> list[str]:
    """The steps, the one a request spends longest in first (steps the point did not break down last, in order)."""
    busy = {s.model: s.busy_ms for s in (point.steps or [])} if point is not None else {}
    return sorted(steps, key=lambda step: (step not in busy, -busy.get(step, 0.0)))


def most_loaded(best: PointResult | None, points: Sequence[PointResult]) -> PointResult | None:
    """Where a variant's bottleneck is read: its most loaded measured point at its best point's batch size. Queues
    form under load; at a light best point (a latency objective's, or one tied with heavier ones) every step looks
    idle but the slowest."""
    if best is None:
        return None
    same = [p for p in points if p.variant_name == best.variant_name and p.batch_size == best.batch_size
            and p.triton_version == best.triton_version and p.steps]  # fmt: skip
    return max(same, key=lambda p: p.load.value, default=best)


def current_best(history: Sequence[ModelVariant], points: Sequence[PointResult], objective: Objective,
                 constraints: Constraints) -> tuple[ModelVariant, PointResult | None]:  # fmt: skip
    """The walk's current best config and its best point: the default, replaced by each later variant that surely
    beats it (replayed in the order measured, so a resumed walk decides as the first run did)."""
    current = history[0]
    current_best_point = _best_of(current, points, objective, constraints)
    for variant in history[1:]:
        candidate = _best_of(variant, points, objective, constraints)
        if _better(candidate, current_best_point, objective):
            current, current_best_point = variant, candidate
    return current, current_best_point[0] if current_best_point else None


def next_in_walk(
    placeholder: ModelVariant,
    steps: tuple[str, ...],
    search: ConfigSearch,
    history: Sequence[ModelVariant],
    points: Sequence[PointResult],
    objective: Objective,
    constraints: Constraints,
    own: dict[str, Settings],
    batch_floor: int = 0,
) -> WalkDecision:
    """The variant to measure in `placeholder`'s place (the walk's next), or why the walk has ended.

    `history`: the pipeline's variants measured so far, its default first; `own`: each step's own settings (from
    the config Triton loaded), so a setting equal to a step's own is not measured again; `batch_floor`: an
    ensemble's max_batch_size, below which a step's max batch size would not load."""
    if not history or _best_of(history[0], points, objective, constraints) is None:
        return WalkDecision(None, "the pipeline's own config measured no point: no bottleneck to start from")
    current, best = current_best(history, points, objective, constraints)
    point = most_loaded(best, points)
    tried = {_effective(v, steps, own) for v in history}
    base = {c.model: c.own_settings for c in current.composing}
    order = bottleneck_order(point, steps)
    busy = {s.model: s.busy_ms for s in (point.steps or [])} if point is not None else {}
    loadable = [c for c in combinations(search) if c[1] is None or c[1] >= batch_floor]
    left_out = "" if len(loadable) == len(combinations(search)) else (
        f" (settings with a max batch size under the ensemble's {batch_floor} are left out: Triton would not load "
        "them)")  # fmt: skip
    for rank, step in enumerate(order):
        for settings in loadable:
            candidate = pipeline_variant(placeholder, {**base, step: settings}, steps)
            if _effective(candidate, steps, own) in tried:
                continue
            where = f"{step} is the slowest step" if rank == 0 else (
                f"{', '.join(order[:rank])} {'has' if rank == 1 else 'have'} no untried setting left and {step} is the "
                "next slowest step")  # fmt: skip
            spent = f" ({busy[step]:.2f} ms a request)" if step in busy else ""
            return WalkDecision(candidate, f"{where}{spent} of {current.name}, the best so far")
    return WalkDecision(None, f"every step's settings have been tried on the best config, {current.name}{left_out}")
