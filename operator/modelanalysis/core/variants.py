"""Model-config variants: what each model is profiled as, and the config Triton loads for each.

A model without a config search is profiled once, as it is (one variant, named after the model). With one,
its unchanged config comes first (`<model>_config_default`), then every combination of the listed values
(`<model>_config_0`, `_config_1`, ...), named as NVIDIA Model Analyzer names them. A variant is loaded
through Triton's repository API with a config override built from the model's own config, so the user's
repository is never written.

A pipeline (an ensemble, or a BLS model given its composing models) has nothing of its own to vary: its search
varies its composing models instead, one step at a time (core/composing.py walks it). Its variants keep the same
names, `<pipeline>_config_<n>` being the walk's n-th; what each sets for which composing model is decided as the
walk goes, and recorded in `composing`.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from pydantic import BaseModel, ConfigDict

from modelanalysis.core.spec import ConfigSearch, ModelTarget, SweepSpec


class ModelVariant(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str  # what its points and outcome are filed under
    model: str  # the name Triton serves it under
    instance_count: int | None = None  # None: as the model's own config has it
    max_batch_size: int | None = None
    dynamic_batching: bool | None = None
    # A pipeline's variant: the setting of each composing model it changes (each named after that model), in
    # step order. Empty for a model that is not a pipeline, and for a pipeline's own config.
    composing: tuple[ModelVariant, ...] = ()

    @property
    def own_settings(self) -> tuple[int | None, int | None, bool | None]:
        return self.instance_count, self.max_batch_size, self.dynamic_batching

    @property
    def changes_config(self) -> bool:
        return self.own_settings != (None, None, None) or any(c.changes_config for c in self.composing)

    @property
    def point_variant(self) -> str:
        """The variant a point records: empty for a model profiled as it is, without a search."""
        return self.name if self.name != self.model else ""

    def describe(self) -> str:
        """The settings it changes, in words (the default: 'its own config')."""
        if self.composing:
            changed = [f"{c.model}: {c.describe()}" for c in self.composing if c.changes_config]
            return "; ".join(changed) or "its own config"
        parts = []
        if self.instance_count is not None:
            parts.append(f"{self.instance_count} instance{'s' if self.instance_count > 1 else ''}")
        if self.max_batch_size is not None:
            parts.append(f"max batch {self.max_batch_size}")
        if self.dynamic_batching is not None:
            parts.append("dynamic batching" if self.dynamic_batching else "no dynamic batching")
        return ", ".join(parts) or "its own config"


def model_variants(target: ModelTarget) -> list[ModelVariant]:
    search = target.config_search
    if search is None:
        return [ModelVariant(name=target.name, model=target.name)]
    variants = [ModelVariant(name=f"{target.name}_config_default", model=target.name)]
    for n, (count, batch, dynamic) in enumerate(combinations(search)):
        variants.append(
            ModelVariant(
                name=f"{target.name}_config_{n}",
                model=target.name,
                instance_count=count,
                max_batch_size=batch,
                dynamic_batching=dynamic,
            )
        )
    return variants


def setting_of(model: str, settings: tuple[int | None, int | None, bool | None]) -> ModelVariant:
    """One composing model's setting in a pipeline's variant."""
    count, batch, dynamic = settings
    return ModelVariant(name=model, model=model, instance_count=count, max_batch_size=batch, dynamic_batching=dynamic)


def pipeline_variant(placeholder: ModelVariant, settings: dict[str, tuple[int | None, int | None, bool | None]],
                     steps: tuple[str, ...]) -> ModelVariant:  # fmt: skip
    """The walk's variant in a planned variant's place (its name): `settings` for the composing models that change."""
    composing = tuple(setting_of(step, settings.get(step, (None, None, None))) for step in steps)
    return ModelVariant(name=placeholder.name, model=placeholder.model, composing=composing)


def combinations(search: ConfigSearch) -> list[tuple[int | None, int | None, bool | None]]:
    """Every combination of a search's listed values, in the order they are tried."""
    def values(listed: list[Any] | None) -> list[Any]:
        return list(dict.fromkeys(listed)) if listed else [None]

    counts, batches, dynamic = search.instance_counts, search.max_batch_sizes, search.dynamic_batching
    return list(itertools.product(values(counts), values(batches), values(dynamic)))


def plan_variants(spec: SweepSpec) -> list[ModelVariant]:
    """Every variant of every model, in the order they are profiled."""
    return [v for target in spec.models for v in model_variants(target)]


def same_config(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two configs are the same for Triton (instance groups compared without the names it gives them)."""

    def plain(config: dict[str, Any]) -> dict[str, Any]:
        groups = [{k: v for k, v in g.items() if k != "name"} for g in config.get("instance_group") or []]
        return {**config, "instance_group": groups}

    return plain(a) == plain(b)


def config_override(base: dict[str, Any], variant: ModelVariant) -> dict[str, Any]:
    """The model's own config (Triton's JSON form) with the variant's settings in place of its own."""
    config = copy.deepcopy(base)
    if variant.instance_count is not None:
        groups = config.get("instance_group") or [{}]
        # Keep the first group's kind and devices; the count is what varies.
        first = {k: v for k, v in groups[0].items() if k != "name"}
        config["instance_group"] = [{**first, "count": variant.instance_count}]
    if variant.max_batch_size is not None:
        config["max_batch_size"] = variant.max_batch_size
    if variant.dynamic_batching is True:
        config.setdefault("dynamic_batching", {})
    elif variant.dynamic_batching is False:
        config.pop("dynamic_batching", None)
    return config


def settings_in(config: dict[str, Any]) -> tuple[int | None, int | None, bool | None]:
    """What a config (Triton's JSON form) sets of what a search varies: instances, max batch, dynamic batching."""
    groups = config.get("instance_group") or []
    count = int(sum(int(g.get("count", 1)) for g in groups)) if groups else None
    return count, int(config.get("max_batch_size", 0)), "dynamic_batching" in config
