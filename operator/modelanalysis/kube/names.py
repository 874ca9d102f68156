"""Child object names and labels, derived from the analysis so a retried step finds what it created."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from modelanalysis.core.load import Load
from modelanalysis.core.sweep import Point
from modelanalysis.core.trials import Trial
from modelanalysis.kube.resource import GROUP

MAX_NAME = 63
MANAGED_BY = "modelanalysis-operator"
LABEL_ANALYSIS = f"{GROUP}/analysis"
LABEL_GENERATION = f"{GROUP}/generation"
LABEL_POINT = f"{GROUP}/point"
LABEL_TRIAL = f"{GROUP}/trial"
LABEL_COMPONENT = "app.kubernetes.io/component"
COMPONENT_TRITON = "triton-server"
COMPONENT_LOAD_GENERATOR = "load-generator"
COMPONENT_RESULTS_WRITER = "results-writer"


def short_hash(text: str, length: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def dns_label(text: str) -> str:
    """Lower-case letters, digits and '-', as object names and label values need."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "x"


def fit(name: str, limit: int = MAX_NAME) -> str:
    """`name` if it fits, else its start plus a hash of the whole, so two long names never collide.

    The start loses a trailing '-' or '.': a cut right after a dot would give '.-', which no DNS name allows."""
    if len(name) <= limit:
        return name
    suffix = short_hash(name, 8)
    return f"{name[: limit - len(suffix) - 1].rstrip('-.')}-{suffix}"


def triton_pod_name(analysis: str, generation: int, trial: int | None = None) -> str:
    """The Triton pod; when an analysis runs several trials (core/trials.py), trial n's is <...>-t<n+1>-triton."""
    return fit(f"{analysis}-g{generation}" + (f"-t{trial + 1}" if trial is not None else "") + "-triton")


def trial_pod_name(analysis: str, generation: int, trial: Trial, trial_count: int) -> str:
    """A trial's Triton pod: the analysis' own pod name where it has one trial, numbered where it has several."""
    return triton_pod_name(analysis, generation, trial.index if trial_count > 1 else None)


def point_job_name(analysis: str, generation: int, point: Point) -> str:
    load = point.load.key_part.replace(".", "p")  # c4, r100, r2p5
    tail = f"-{dns_label(point.model)[:20]}-b{point.batch_size}-{load}-{short_hash(point.key, 4)}"
    return fit(f"{fit(analysis, MAX_NAME - len(tail) - 4)}-g{generation}{tail}")


def results_job_name(analysis: str, generation: int) -> str:
    return fit(f"{analysis}-g{generation}-results")


def results_configmap_name(analysis: str, index: int = 0) -> str:
    """The results ConfigMap; results too big for one continue in <analysis>-results-2, -3, ..."""
    return fit(f"{analysis}-results" + (f"-{index + 1}" if index else ""), 253)


def labels(analysis: str, generation: int, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "model-analyzer",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_COMPONENT: component,
        LABEL_ANALYSIS: fit(analysis),
        LABEL_GENERATION: str(generation),
    }


def planned_point_job_names(
    analysis: str, generation: int, trials: Sequence[Trial], batch_sizes: Sequence[int], loads: Sequence[Load]
) -> set[str]:
    """The load-generator Job names a sweep may use: every variant of every trial at every listed batch size and
    load step (a superset: batches a model cannot take are skipped later, and a search's bisection steps
    are known only as it goes; those are checked when their Job is created)."""
    return {
        point_job_name(
            analysis,
            generation,
            Point(model=v.model, batch_size=b, load=load, variant=v.point_variant, triton_version=t.triton_version),
        )
        for t in trials
        for v in t.variants
        for b in batch_sizes
        for load in loads
    }
