"""Trials: how an analysis' work is split between Triton servers.

A trial is what one Triton server measures: a Triton version and the model variants loaded into it, one after
another. With one server at a time (the default, and always on the CLI) each Triton version is one trial holding
every variant, so a server starts once per version. Allowed several servers at once (the operator's
spec.parallelism.maxTrials), every (version, variant) is a trial of its own, so the trials can run side by side
on as many GPU nodes; the points inside a trial still run one at a time, so they do not disturb each other.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from modelanalysis.core.variants import ModelVariant


class Trial(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str  # in status and Events: the variant and/or the version it measures, or "all" for the whole analysis
    index: int  # its place in the plan (its Triton pod is named after it)
    triton_version: str  # "" when the analysis runs on one Triton version
    variants: tuple[ModelVariant, ...]


def trial_name(variants: Sequence[ModelVariant], triton_version: str, whole_analysis: bool) -> str:
    if whole_analysis:
        return triton_version or "all"
    variant = variants[0].name
    return f"{variant}@{triton_version}" if triton_version else variant


def plan_trials(variants: Sequence[ModelVariant], triton_versions: Sequence[str], max_trials: int) -> list[Trial]:
    """The trials of an analysis, in the order they start. `triton_versions` empty: one unnamed version (the
    server's own); `max_trials` > 1 splits each version's variants into a trial each."""
    versions = list(triton_versions) or [""]
    split = max_trials > 1
    groups = (
        [(v, (variant,)) for v in versions for variant in variants]
        if split
        else [(v, tuple(variants)) for v in versions]
    )
    return [
        Trial(name=trial_name(group, version, not split), index=i, triton_version=version, variants=group)
        for i, (version, group) in enumerate(groups)
    ]
