"""What an analysis asks for: the models, the sweep, and how each point is measured.

These models are shared by the CLI and the operator. On the wire (the ModelAnalysis resource, JSON) fields
are camelCase; in Python they are snake_case. The operator's CRD schema is generated from them, so every
constraint here is also enforced by the API server at admission.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from math import prod
from typing import Annotated, Any

from pydantic import Field, StrictBool, field_validator, model_validator

from modelanalysis.core.inputs import InputSettings
from modelanalysis.core.load import Load
from modelanalysis.core.wire import OmitsEmptyNewFields, WireModel

DEFAULT_TRITON_VERSION = "24.08-py3"
# Defaults for a point: 250 ms windows, 3 to a perf_analyzer run, until throughput's 95% interval is within
# +-10% (tighter than what perf_analyzer's default stability rule, 3 windows within a 10% spread, amounts to),
# or 20 s. Most points need two runs (6 windows: with 3, the t-quantile of 4.3 asks for a spread under 4%). Each
# window overruns what was asked by ~130 ms and a run starts in ~50 ms, so shorter windows end a point sooner at
# the same precision: add_sub's 9 points took 26-31 s at 250 ms against 39-47 s at 500 ms on a quiet machine
# (bench/README.md). Windows too short to hold a request are doubled (core/convergence.py).
DEFAULT_MEASUREMENT_INTERVAL_MS = 250
DEFAULT_CONVERGENCE_PCT = 10.0
DEFAULT_MAX_POINT_SECONDS = 20
DEFAULT_MAX_WINDOWS = 30
DEFAULT_STABILITY_PERCENTAGE = 10.0

# Upper bounds of one point. Far above any real use, low enough that a typo or a hostile manifest cannot start a
# load generator that takes a node down (admission refuses more, naming the bound):
# - concurrency: perf_analyzer keeps one request in flight per unit of concurrency (in its default synchronous
#   mode, one thread each). NVIDIA Model Analyzer's own search stops at 1024 (run_config_search_max_concurrency);
#   4096 is four times that, and about the most one perf_analyzer process can keep in flight.
# - batch size: each request carries this many samples. Model Analyzer's search stops at 128 and Triton model
#   configs rarely allow more than a few thousand; 65536 (2**16) leaves room for tiny inputs and no more.
# - request rate: requests started per second, open loop. A million a second is past what one perf_analyzer
#   process can send (tens of thousands here); the bound only keeps a typo from being taken literally.
MAX_CONCURRENCY = 4096
MAX_BATCH_SIZE = 65_536
MAX_REQUEST_RATE = 1_000_000

# Characters that no name, path or argument of a spec may hold: control characters (NUL, escape, newline),
# invisible format characters (zero-width space, bidi overrides, a byte-order mark) and every kind of space.
# Patterns and CEL rules name them as Unicode classes, which Go's regexp (the API server) and pydantic's Rust
# regex read alike: `\s` does not (ASCII-only in Go, Unicode-wide in Rust), so a no-break space used to pass
# admission and then fail in the operator.
CONTROL = r"\p{Cc}"
UNPRINTABLE = rf"{CONTROL}\p{{Cf}}\p{{Z}}"
UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
NO_UNPRINTABLE = rf"^[^{UNPRINTABLE}]+$"


def cel_string(regex: str) -> str:
    """`regex` as a CEL string literal: CEL reads backslash escapes in strings, so each backslash is doubled."""
    return "'" + regex.replace("\\", "\\\\") + "'"


# A model name is a folder of the model repository and goes into perf_analyzer's arguments and Triton's
# repository API: no separator, nothing unprintable, and not a name that means "this folder" or "its parent".
MODEL_NAME_CEL = f"!self.matches({cel_string('[/' + UNPRINTABLE + ']')}) && self != '.' && self != '..'"
MODEL_NAME_MESSAGE = (
    "a model name must be the name of a folder in the model repository: no /, no spaces, no control or "
    "invisible characters, and not . or ..; rename the model or fix the name"
)


def has_unprintable(text: str) -> bool:
    return any(unicodedata.category(ch) in UNPRINTABLE_CATEGORIES for ch in text)


def has_control(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


BatchSize = Annotated[int, Field(ge=1, le=MAX_BATCH_SIZE)]
Concurrency = Annotated[int, Field(ge=1, le=MAX_CONCURRENCY)]
RequestRate = Annotated[float, Field(gt=0, le=MAX_REQUEST_RATE)]


class Protocol(StrEnum):
    GRPC = "grpc"
    HTTP = "http"


class RequestDistribution(StrEnum):
    """How an open-loop rate spaces its requests (perf_analyzer's --request-distribution)."""

    CONSTANT = "constant"  # evenly: 100/s is one request every 10 ms
    POISSON = "poisson"  # at random, as independent users arrive: bursts and gaps, the same mean rate


class MeasurementSettings(WireModel):
    """How perf_analyzer measures one point, and how server metrics are sampled meanwhile."""

    protocol: Protocol = Field(Protocol.GRPC, description="Protocol perf_analyzer uses to reach Triton.")
    request_distribution: RequestDistribution = Field(
        RequestDistribution.CONSTANT,
        description="With requestRate: how requests are spaced, constant (evenly) or poisson (at random, as "
        "independent users arrive).",
    )
    measurement_interval_ms: int = Field(
        DEFAULT_MEASUREMENT_INTERVAL_MS,
        ge=100,
        le=600_000,
        description="Length of one perf_analyzer measurement window, in ms.",
    )
    convergence_pct: float = Field(
        DEFAULT_CONVERGENCE_PCT,
        gt=0,
        le=100,
        description=(
            "Precision a point is measured to: it ends once the 95% confidence interval of its throughput is "
            "within this many percent of the mean (half-width)."
        ),
    )
    max_point_seconds: int = Field(
        DEFAULT_MAX_POINT_SECONDS,
        ge=1,
        le=86_400,
        description=(
            "Time cap for converging one point: past it the point keeps its estimate and interval and is marked "
            "not converged (it is still measured)."
        ),
    )
    max_windows: int = Field(
        DEFAULT_MAX_WINDOWS,
        ge=1,
        le=10_000,
        description="Most measurement windows one point may take before it stops, converged or not (CLI: "
        "--max-trials, the original tool's name).",
    )
    max_trials: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Deprecated: the name maxWindows had until v1alpha1 (a 'trial' is now what one Triton server "
        "measures). Accepted for one more release; maxWindows wins when both are given.",
    )
    stability_percentage: float = Field(
        DEFAULT_STABILITY_PERCENTAGE,
        gt=0,
        le=100,
        description=(
            "Deprecated, no longer used: perf_analyzer's stability rule used to end (or fail) a point; "
            "convergencePct decides now. Accepted so that existing manifests and scripts still work."
        ),
    )
    point_timeout_seconds: int = Field(
        300, ge=10, le=86_400, description="Longest one point may run before it is recorded as failed (a hang)."
    )
    metrics_interval_ms: int = Field(
        500, ge=100, le=60_000, description="How often Triton's metrics endpoint is sampled during a point."
    )
    baseline_duration_ms: int = Field(
        1000, ge=0, le=600_000, description="How long the server is sampled with no model loaded."
    )

    @model_validator(mode="after")
    def _windows_by_their_old_name(self) -> MeasurementSettings:
        if self.max_trials is not None and "max_windows" not in self.model_fields_set:
            self.max_windows = self.max_trials
        return self


# Bounds of a config search: Model Analyzer's own search tries at most 5 instances and max batch 128.
MAX_INSTANCE_COUNT = 64
MAX_VARIANTS = 64
MAX_COMBINATIONS = 64  # models measured together: one variant of each at a time (core/together.py)


class ConfigSearch(WireModel):
    """Variants of a model's config to compare. Every combination of the listed values is one variant, loaded in
    turn through Triton's config override (the model repository is never written); a value not listed stays as
    the model's own config has it. The unchanged config is measured too, first (<model>_config_default)."""

    instance_counts: list[Annotated[int, Field(ge=1, le=MAX_INSTANCE_COUNT)]] | None = Field(
        None, min_length=1, max_length=16, description="Instances of the model (instance_group count) to try."
    )
    max_batch_sizes: list[BatchSize] | None = Field(
        None, min_length=1, max_length=16, description="max_batch_size values to try (the model must batch)."
    )
    dynamic_batching: list[StrictBool] | None = Field(
        None, min_length=1, max_length=2, description="Try the model without (false) and with (true) dynamic batching."
    )

    @property
    def combination_count(self) -> int:
        """Its combinations of listed values, as admission counts them (CEL): the variants besides the default."""
        count = 1
        for values in (self.instance_counts, self.max_batch_sizes, self.dynamic_batching):
            count *= len(values or [None])
        return count

    @model_validator(mode="after")
    def _bounded(self) -> ConfigSearch:
        count = self.combination_count
        if count > MAX_VARIANTS:
            raise ValueError(f"{count} config variants; list fewer values (at most {MAX_VARIANTS} combinations)")
        return self


class ModelTarget(WireModel):
    """One model of the repository to profile."""

    name: str = Field(min_length=1, max_length=253, description="Model name in the repository (a folder name).")
    config_search: ConfigSearch | None = Field(
        None, description="Config variants to compare (instance counts, max batch sizes, dynamic batching)."
    )
    inputs: InputSettings | None = Field(
        None, description="What perf_analyzer sends this model, over spec.inputs (field by field; shapes by input)."
    )
    bls_composing_models: list[Annotated[str, Field(min_length=1, max_length=253)]] | None = Field(
        None,
        max_length=32,
        description="A BLS model's composing models (the models its Python code calls): loaded before it, and each "
        "point broken down by them, as an ensemble's steps are.",
    )

    @field_validator("name")
    @classmethod
    def _a_folder_name(cls, name: str) -> str:
        if "/" in name or has_unprintable(name) or name in (".", ".."):
            raise ValueError(MODEL_NAME_MESSAGE)
        return name

    @field_validator("bls_composing_models")
    @classmethod
    def _folder_names(cls, names: list[str] | None) -> list[str] | None:
        for name in names or []:
            if "/" in name or has_unprintable(name) or name in (".", ".."):
                raise ValueError(MODEL_NAME_MESSAGE)
        return names


class Objective(StrEnum):
    """What makes one point better than another, among those that satisfy the constraints."""

    MAXIMIZE_THROUGHPUT = "maximize-throughput"
    MINIMIZE_LATENCY = "minimize-latency"  # p99
    # Streaming models: output tokens per second under the budgets (goodput); points that do not stream rank by
    # throughput after every one that does.
    MAXIMIZE_OUTPUT_TOKENS = "maximize-output-tokens"


class AtMost(WireModel):
    max: float = Field(gt=0, le=1e12, description="The largest value allowed.")


class AtLeast(WireModel):
    min: float = Field(ge=0, le=1e12, description="The smallest value allowed.")


class Constraints(WireModel, OmitsEmptyNewFields):
    """Bounds a point must stay within to count (Model Analyzer's constraints). A point breaking any of them is
    recorded with Satisfies Constraints: No and is never the best, unless none satisfies (then the closest is
    named, and said to be outside them)."""

    p99_latency_ms: AtMost | None = Field(None, description="p99 latency budget, in ms.")
    throughput_infer_per_sec: AtLeast | None = Field(None, description="Least throughput, in infer/sec.")
    gpu_memory_mb: AtMost | None = Field(
        None,
        alias="gpuMemoryMB",
        description="Most GPU memory the server may use during the point, in MB (judged only where measured).",
    )
    ttft_p99_ms: AtMost | None = Field(
        None, description="Streaming models: p99 time to first token budget, in ms (judged only where measured)."
    )
    itl_p99_ms: AtMost | None = Field(
        None, description="Streaming models: p99 inter-token latency budget, in ms (judged only where measured)."
    )

    OMITTED_WHEN_EMPTY = ("ttft_p99_ms", "itl_p99_ms")

    @property
    def any(self) -> bool:
        return any(
            v is not None
            for v in (self.p99_latency_ms, self.throughput_infer_per_sec, self.gpu_memory_mb, self.ttft_p99_ms,
                      self.itl_p99_ms)
        )  # fmt: skip


# Concurrency search: Model Analyzer's defaults (its search stops at 1024 and counts a rise under 5% as none).
DEFAULT_MAX_SEARCH_CONCURRENCY = 1024
DEFAULT_MIN_GAIN_PCT = 5.0


class ConcurrencySearch(WireModel):
    """Climb concurrency step by step and stop where more load no longer buys throughput, or where p99 breaks
    the latency budget (constraints.p99LatencyMs; then bisect for the highest concurrency under it)."""

    max_concurrency: int = Field(
        DEFAULT_MAX_SEARCH_CONCURRENCY,
        ge=1,
        le=MAX_CONCURRENCY,
        description="Highest concurrency the climb may reach (steps 1, 2, 4, ... up to it, when concurrency is "
        "not listed).",
    )
    min_gain_pct: float = Field(
        DEFAULT_MIN_GAIN_PCT,
        gt=0,
        le=1000,
        description="A step counts as a rise when its throughput is at least this many percent above the best so "
        "far and their 95% confidence intervals do not overlap; two steps in a row without a rise end the climb.",
    )


ONE_KIND_OF_LOAD = (
    "give either requestRate/requestRateSearch (open loop) or concurrency/concurrencySearch (closed loop), not "
    "both: an analysis offers one kind of load"
)


# Request-rate search: Model Analyzer's bounds (run_config_search_min/max_request_rate). The climb doubles the rate
# from minRate; its bisection ends once the gap between a rate that holds and one that does not is within this
# share of the higher (rates are continuous; concurrency bisects down to neighbours).
DEFAULT_MIN_SEARCH_RATE = 16
DEFAULT_MAX_SEARCH_RATE = 8192
MAX_RATE_SPAN = 2**16  # maxRate / minRate: at most 17 doubling steps
RATE_RESOLUTION = 0.05


class RequestRateSearch(WireModel):
    """Climb the offered request rate, doubling from minRate, until it is no longer delivered (the server or the
    load generator falls behind) or p99 breaks the latency budget; then bisect for the highest rate that holds."""

    min_rate: float = Field(
        DEFAULT_MIN_SEARCH_RATE, gt=0, le=MAX_REQUEST_RATE, description="First rate of the climb (requests/sec)."
    )
    max_rate: float = Field(
        DEFAULT_MAX_SEARCH_RATE, gt=0, le=MAX_REQUEST_RATE, description="Highest rate the climb may reach."
    )

    @model_validator(mode="after")
    def _a_span_to_climb(self) -> RequestRateSearch:
        if self.max_rate < self.min_rate:
            raise ValueError(f"maxRate {self.max_rate:g} is below minRate {self.min_rate:g}; give maxRate >= minRate")
        if self.max_rate > self.min_rate * MAX_RATE_SPAN:
            raise ValueError(
                f"maxRate is more than {MAX_RATE_SPAN} x minRate (over 17 doublings); raise minRate or lower maxRate"
            )
        return self

    @property
    def steps(self) -> list[float]:
        """minRate, 2 x minRate, ... up to maxRate (which ends the list)."""
        steps = [self.min_rate]
        while steps[-1] * 2 < self.max_rate:
            steps.append(steps[-1] * 2)
        if steps[-1] != self.max_rate:
            steps.append(self.max_rate)
        return steps


def doubling_steps(max_concurrency: int) -> list[int]:
    """1, 2, 4, ... up to max_concurrency (which ends the list even when it is not a power of two)."""
    steps = [1]
    while steps[-1] * 2 < max_concurrency:
        steps.append(steps[-1] * 2)
    if steps[-1] != max_concurrency:
        steps.append(max_concurrency)
    return steps


TOGETHER_NEEDS_TWO = (
    "profileModelsConcurrently (--concurrent) measures several models together: give two or more models"
)
TOGETHER_LISTED_ONLY = (
    "profileModelsConcurrently (--concurrent) measures listed loads for now: give concurrency (or request rate) "
    "values, not a search (auto)"
)
TOGETHER_TOO_MANY = (
    "profileModelsConcurrently (--concurrent) measures every combination of one config variant per model, and "
    "{described} make {count}; list fewer config values (at most {most} combinations)"
)


class SweepSpec(WireModel):
    """The models and the batch x concurrency points to measure each at."""

    models: list[ModelTarget] = Field(min_length=1, max_length=100, description="Models to profile, in order.")
    batch_sizes: list[BatchSize] = Field(
        default_factory=lambda: [1],
        min_length=1,
        max_length=64,
        description=f"Batch sizes to measure (each 1 to {MAX_BATCH_SIZE}).",
    )
    concurrency: list[Concurrency] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description=f"Numbers of concurrent client requests to measure (each 1 to {MAX_CONCURRENCY}); default 1, "
        "or with concurrencySearch 1, 2, 4, ... up to its maxConcurrency.",
    )
    concurrency_search: ConcurrencySearch | None = Field(
        None,
        description="Search concurrency instead of measuring every value: climb the steps and stop at saturation "
        "or the p99 budget; the steps not measured are recorded as skipped, with why.",
    )
    request_rate: list[RequestRate] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description=f"Open-loop load instead of concurrency: requests started per second, whether or not earlier "
        f"ones have answered (each above 0, at most {MAX_REQUEST_RATE:,}). Not with concurrency or "
        "concurrencySearch.",
    )
    request_rate_search: RequestRateSearch | None = Field(
        None,
        description="Search the request rate instead of measuring every value: climb and bisect for the highest rate "
        "that is delivered and (with constraints.p99LatencyMs) holds the p99 budget. With requestRate listed, "
        "those are the steps climbed.",
    )
    measurement: MeasurementSettings = Field(default_factory=MeasurementSettings)
    inputs: InputSettings = Field(
        default_factory=InputSettings,
        description="What perf_analyzer sends every model: shapes for variable dims, input data, string length, "
        "shared memory (models[].inputs overrides them for one model).",
    )
    objective: Objective = Field(
        Objective.MAXIMIZE_THROUGHPUT,
        description="How the best point is chosen among those within the constraints: maximize-throughput or "
        "minimize-latency (p99).",
    )
    constraints: Constraints = Field(default_factory=Constraints)
    profile_models_concurrently: bool = Field(
        False,
        description="Load the models together on one server and measure them at the same time, each at every "
        "batch x load point with its own load generator, over the same windows (Model Analyzer's concurrent mode): "
        "does each still meet the constraints when they share it? With config searches, every combination of one "
        f"variant per model (at most {MAX_COMBINATIONS}).",
    )

    @field_validator("batch_sizes", "concurrency", "request_rate")
    @classmethod
    def _sorted_unique(cls, values: list[Any] | None) -> list[Any] | None:
        # The order of a sweep is always ascending, whatever order the user typed.
        return None if values is None else sorted(set(values))

    @model_validator(mode="after")
    def _one_kind_of_load(self) -> SweepSpec:
        open_loop = self.request_rate is not None or self.request_rate_search is not None
        if open_loop and (self.concurrency is not None or self.concurrency_search is not None):
            raise ValueError(ONE_KIND_OF_LOAD)
        return self

    @model_validator(mode="after")
    def _together_what_can_be(self) -> SweepSpec:
        if not self.profile_models_concurrently:
            return self
        if len(self.models) < 2:
            raise ValueError(TOGETHER_NEEDS_TWO)
        if self.load_search is not None:
            raise ValueError(TOGETHER_LISTED_ONLY)
        counts = {m.name: 1 + m.config_search.combination_count if m.config_search else 1 for m in self.models}
        if prod(counts.values()) > MAX_COMBINATIONS:
            described = " x ".join(f"{n} {name}'s" for name, n in counts.items() if n > 1)
            raise ValueError(TOGETHER_TOO_MANY.format(described=described + " variants", count=prod(counts.values()),
                                                      most=MAX_COMBINATIONS))  # fmt: skip
        return self

    @property
    def load_search(self) -> ConcurrencySearch | RequestRateSearch | None:
        """The search over the load axis, if any (one kind of load per analysis)."""
        return self.request_rate_search if self.request_rate_search is not None else self.concurrency_search

    @field_validator("models")
    @classmethod
    def _unique_models(cls, models: list[ModelTarget]) -> list[ModelTarget]:
        names = [m.name for m in models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"model {duplicates[0]!r} is listed more than once; list each model once")
        return models

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    def inputs_for(self, model: str) -> InputSettings:
        """What perf_analyzer sends `model`: its own input settings over the general ones."""
        target = next((m for m in self.models if m.name == model), None)
        own = target.inputs if target is not None else None
        return own.merged_over(self.inputs) if own is not None else self.inputs

    def bls_composing_models(self, model: str) -> tuple[str, ...]:
        """The models `model` calls as a BLS model (models[].blsComposingModels; empty: none given)."""
        target = next((m for m in self.models if m.name == model), None)
        return tuple(target.bls_composing_models or ()) if target is not None else ()

    def scoped_shapes(self, model: str) -> set[str]:
        """The inputs given a shape for `model` alone (models[].inputs.shapes)."""
        target = next((m for m in self.models if m.name == model), None)
        own = target.inputs if target is not None else None
        return {s.name for s in own.parsed_shapes} if own is not None else set()

    @property
    def concurrency_steps(self) -> list[int]:
        """The concurrency values a sweep may measure, ascending (a search may stop before the last)."""
        if self.concurrency is not None:
            return self.concurrency
        if self.concurrency_search is not None:
            return doubling_steps(self.concurrency_search.max_concurrency)
        return [1]

    @property
    def load_steps(self) -> list[Load]:
        """The loads a sweep may measure at each batch size, ascending."""
        if self.request_rate is not None:
            return [Load.request_rate(r) for r in self.request_rate]
        if self.request_rate_search is not None:
            return [Load.request_rate(r) for r in self.request_rate_search.steps]
        return [Load.concurrency(c) for c in self.concurrency_steps]
