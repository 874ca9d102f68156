"""Models measured together (spec.profileModelsConcurrently): which combinations of their variants are measured.

Without a config search every model is one variant, and there is one combination: all of them. With one, a
combination is one variant of each model, loaded on the one server at the same time, and every combination is
measured (Model Analyzer's brute-force concurrent search does the same): each model's variants against each of
the others', because what one model's second instance costs depends on what shares the server with it. So it
costs the product of the models' variant counts in combinations, each measured at every listed batch x load
point; admission bounds that product (core/spec.MAX_COMBINATIONS). The answer is the combination and point at
which every model is surely within its constraints with the most throughput summed (core/objectives.
best_together).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from modelanalysis.core.variants import ModelVariant


def combinations_together(variants: Sequence[ModelVariant]) -> list[tuple[ModelVariant, ...]]:
    """Every combination of one variant per model, in the models' order: each model's own config first, so the
    first combination is every model as the repository has it."""
    by_model: dict[str, list[ModelVariant]] = {}
    for variant in variants:
        by_model.setdefault(variant.model, []).append(variant)
    return list(itertools.product(*by_model.values()))


def company(combination: Sequence[ModelVariant], member: ModelVariant) -> list[str]:
    """What a member is measured with: the other members' variant names."""
    return [v.name for v in combination if v is not member]


def together_multiples(variants: Sequence[ModelVariant]) -> dict[str, int]:
    """How many combinations each variant is measured in: the product of the other models' variant counts."""
    combinations = combinations_together(variants)
    counts: dict[str, int] = {}
    for combination in combinations:
        for variant in combination:
            counts[variant.name] = counts.get(variant.name, 0) + 1
    return counts
