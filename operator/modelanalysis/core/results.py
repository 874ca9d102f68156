"""What an analysis found: per point, per model, and the server-only baseline."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from modelanalysis.core.convergence import MIN_REQUESTS_FOR_P99, MIN_WINDOWS
from modelanalysis.core.load import WORDS, Load, LoadKind, LoadValue, PointIdentity, number_text
from modelanalysis.core.perf import PerfMeasurement
from modelanalysis.core.pipeline import StepBreakdown
from modelanalysis.core.server_metrics import (
    ResourceMetrics,
    ServerSample,
    aggregate_window,
    server_inference_rate,
)
from modelanalysis.core.spec import Constraints, Objective, SweepSpec
from modelanalysis.core.sweep import Point, SkippedPoint, plan_model_points
from modelanalysis.core.together import together_multiples
from modelanalysis.core.variants import ModelVariant, plan_variants
from modelanalysis.core.wire import OmitsEmptyNewFields


class PointStatus(StrEnum):
    MEASURED = "Measured"
    FAILED = "Failed"


class Placement(BaseModel):
    """Where a point ran: the node (or, for the CLI, the machine) of the server and of the load generator, and
    how the load generator was placed (e.g. SameNodeAsServer, Anywhere; Local for the CLI)."""

    server_node: str | None = None
    load_generator_node: str | None = None
    load_generator_placement: str | None = None


LOCAL_PLACEMENT = "Local"  # the CLI: perf_analyzer runs on this machine
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"}


def local_placement(hostname: str, server_host: str | None = None) -> Placement:
    """Where the CLI's points run: perf_analyzer on this machine; the server here too, unless --triton-url names
    another host (then that host, as given)."""
    host = (server_host or "").strip()
    remote = host and host.lower() not in LOOPBACK_HOSTS and host.lower() != hostname.lower()
    return Placement(
        server_node=host if remote else hostname,
        load_generator_node=hostname,
        load_generator_placement=LOCAL_PLACEMENT,
    )


class PointResult(PointIdentity):
    """One batch x load point of one model: perf_analyzer's numbers and the server's resource use."""

    WIRE_ORDER = ("model", "batch_size", "load", "status", "variant", "triton_version")

    status: PointStatus
    error: str | None = None
    perf: PerfMeasurement | None = None
    resources: ResourceMetrics | None = None
    # Triton's own count of inferences over the point, per second: a cross-check of perf_analyzer.
    server_throughput_infer_per_sec: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    placement: Placement = Field(default_factory=Placement)
    # An ensemble's point: each composing model's share, from Triton's own counters (core/pipeline.py).
    steps: list[StepBreakdown] | None = None
    # An edge of a search's boundary is measured a second time once the search has found it (core/search.py);
    # `perf`'s intervals are then the union of both readings' (a load holds surely only if both say so), and the
    # second reading's own numbers are kept here (not in the operator's status, which keeps only `rechecked`).
    rechecked: bool | None = None
    second_reading: PerfMeasurement | None = None

    # Left out of its JSON while empty (as core/wire.OmitsEmptyNewFields does): points of other models.
    OMITTED_WHEN_EMPTY: ClassVar[tuple[str, ...]] = ("steps", "measured_with", "rechecked", "second_reading")

    @property
    def point(self) -> Point:
        return Point(**self.identity())

    @classmethod
    def from_window(
        cls,
        point: Point,
        perf: PerfMeasurement | None,
        error: str | None,
        samples: Sequence[ServerSample],
        started: float,
        finished: float,
        measurement_interval_ms: int,
        placement: Placement | None = None,
    ) -> PointResult:
        """A point from what perf_analyzer said and the server samples taken while it ran (CLI and operator)."""
        return cls(
            **point.identity(),
            status=PointStatus.MEASURED if perf else PointStatus.FAILED,
            error=error,
            perf=perf,
            resources=aggregate_window(samples),
            server_throughput_infer_per_sec=server_inference_rate(
                samples,
                point.model,
                perf.load_seconds if perf else None,
                (perf.window_ms if perf else None) or measurement_interval_ms,
            ),
            started_at=started,
            finished_at=finished,
            placement=placement or Placement(),
        )


class ModelStatus(StrEnum):
    PROFILED = "Profiled"
    LOAD_FAILED = "LoadFailed"
    REFUSED = "Refused"  # loaded, but it cannot be measured as asked (core/inputs.py says why)
    INTERRUPTED = "Interrupted"
    # A pipeline's planned variant that its composing-model walk ended before (core/composing.py): not a failure.
    NOT_NEEDED = "NotNeeded"


# A model that ended with no point measured, and never will be: one that would not load, or was refused.
NOT_MEASURABLE = frozenset({ModelStatus.LOAD_FAILED, ModelStatus.REFUSED})
# A model or variant that is done: profiled, or never to be measured (not measurable, or not needed).
ENDED = NOT_MEASURABLE | {ModelStatus.PROFILED, ModelStatus.NOT_NEEDED}


class ModelOutcome(OmitsEmptyNewFields):
    """How profiling one model, or one config variant of it, went."""

    OMITTED_WHEN_EMPTY: ClassVar[tuple[str, ...]] = ("composing", "composing_configs", "reason")

    name: str  # the model, or its variant (add_sub_config_1)
    status: ModelStatus
    model: str = ""  # the model a variant is of; empty when `name` is the model itself
    changes: str = ""  # what the variant changes in the model's config, in words
    triton_version: str = ""  # the Triton release it was loaded into, when an analysis compares several
    # The whole config Triton loaded for a variant (its JSON form), to write it out if it wins; not kept in the
    # operator's status (too large), where a variant is rebuilt from its name.
    config: dict[str, Any] | None = None
    error: str | None = None
    max_batch_size: int | None = None
    instance_group: str = ""
    config_path: str = ""
    skipped: list[SkippedPoint] = Field(default_factory=list)
    # What perf_analyzer sent it, as its flags (--shape INPUT_IDS:128 --input-data ...); None: made-up data.
    inputs: str | None = None
    # A pipeline's variant in a composing-model search (core/composing.py): each composing model's setting, in
    # step order (unchanged ones too, so a resumed walk knows the steps), the whole config each was loaded with
    # (to write out if it wins; not kept in the operator's status), and why the walk measured it (or ended).
    composing: list[ModelVariant] | None = None
    composing_configs: dict[str, dict[str, Any]] | None = None
    reason: str | None = None


P99_ON_POINT_VALUE = (
    f"decided on p99's point value: too few requests for a p99 interval (a window needs at least "
    f"{MIN_REQUESTS_FOR_P99}, and a point {MIN_WINDOWS} windows); longer windows (--measurement-interval) give one"
)


class BudgetBoundary(OmitsEmptyNewFields):
    """Where the load a variant holds ends at one batch size: what a search (or a sweep) found. A load holds when
    p99 (and, for a streaming model, p99 TTFT and ITL) is surely under its budget and, for an offered request
    rate, the rate is surely delivered."""

    OMITTED_WHEN_EMPTY = ("ttft_budget_ms", "itl_budget_ms")

    model: str
    variant: str = ""
    triton_version: str = ""
    batch_size: int
    budget_ms: float | None  # None: a request-rate boundary with no latency budget (delivery alone)
    # Loads, by their value (a boundary is of one kind of load).
    surely_under: LoadValue | None = Field(None, description="The highest load surely under the budget: deploy it.")
    surely_over: LoadValue | None = Field(None, description="The lowest load surely over it.")
    undecided: list[LoadValue] = Field(default_factory=list, description="Measured between, intervals straddling it.")
    on_point_value: list[LoadValue] = Field(default_factory=list, description="Decided on point values (no interval).")
    load_kind: LoadKind = LoadKind.CONCURRENCY
    ttft_budget_ms: float | None = None
    itl_budget_ms: float | None = None

    @property
    def name(self) -> str:
        where = f"{self.variant or self.model} batch {self.batch_size}"
        return f"{where} on {self.triton_version}" if self.triton_version else where

    def sentence(self) -> str:
        """One line: the load to deploy, the one surely too much, and what lies undecided between."""
        words = WORDS[self.load_kind]
        named = [(self.budget_ms, "p99"), (self.ttft_budget_ms, "p99 TTFT"), (self.itl_budget_ms, "p99 ITL")]
        given = [f"{ms:g} ms {what}" for ms, what in named if ms is not None]
        budget = f"under the {' and '.join(given)} budget{'s' if len(given) > 1 else ''}" if given else ""
        holds = budget if self.load_kind == LoadKind.CONCURRENCY else " and ".join(
            p for p in ("delivered", budget) if p
        )
        parts = [
            f"{Load(kind=self.load_kind, value=self.surely_under).words} is the highest surely {holds}"
            if self.surely_under is not None
            else f"no {words} is surely {holds}"
        ]
        if self.undecided:
            parts.append(f"{_listed(self.undecided)} undecided (95% intervals straddle it)")
        if self.surely_over is not None:
            beyond = "over it" if self.load_kind == LoadKind.CONCURRENCY else "not"
            parts.append(f"{number_text(self.surely_over)} surely {beyond}")
        text = f"{self.name}: " + "; ".join(parts)
        if self.on_point_value:
            text += f" ({_listed(self.on_point_value)}: {P99_ON_POINT_VALUE})"
        return text


def _listed(values: Sequence[float]) -> str:
    return ", ".join(number_text(v) for v in values)



class BestPoint(PointIdentity):
    """The point chosen for one model (or overall), with its numbers and why it won (core/objectives.py)."""

    WIRE_ORDER = ("model", "variant", "triton_version", "batch_size", "load")
    # Left out of its JSON while empty (as core/wire.OmitsEmptyNewFields does): answers that do not stream.
    OMITTED_WHEN_EMPTY: ClassVar[tuple[str, ...]] = (
        "output_tokens_per_sec", "ttft_p99_ms", "itl_p99_ms", "measured_with"
    )

    throughput_infer_per_sec: float
    throughput_ci_low: float | None = None
    throughput_ci_high: float | None = None
    latency_p99_ms: float
    gpu_memory_mb: float | None = None
    satisfies_constraints: bool
    why: str
    # A point that ranks higher (or, with none surely within, this one) but is only probably within the
    # constraints: by its values, with a 95% interval straddling a bound (core/budget.py).
    probably_within: str = ""
    # A streaming model's point: its output tokens per second, p99 time to first token and inter-token latency.
    output_tokens_per_sec: float | None = None
    ttft_p99_ms: float | None = None
    itl_p99_ms: float | None = None

    def summary(self) -> str:
        """One short line: where it is and what it gives (the operator's Best column)."""
        if self.output_tokens_per_sec is not None and self.ttft_p99_ms is not None:
            text = f"{self.key} {self.output_tokens_per_sec:,.1f} tok/s p99 TTFT {self.ttft_p99_ms:.2f} ms"
            return text if self.satisfies_constraints else f"none satisfy; closest {text}"
        text = f"{self.key} {self.throughput_infer_per_sec:,.1f} infer/s p99 {self.latency_p99_ms:.2f} ms"
        return text if self.satisfies_constraints else f"none satisfy; closest {text}"


class BestTogether(OmitsEmptyNewFields):
    """Models measured together (spec.profileModelsConcurrently): the batch x load, and with a config search the
    combination of their variants (core/together.py), at which they do best together, each within the
    constraints, and why."""

    OMITTED_WHEN_EMPTY = ("variants",)

    batch_size: int
    load: Load
    members: list[str]  # each member point's key
    satisfies_constraints: bool
    why: str
    variants: list[str] | None = None  # the combination, where a config search made several

    @property
    def where(self) -> str:
        at = f"batch {self.batch_size} {self.load.words}"
        return f"{' + '.join(self.variants)} at {at}" if self.variants else at


class BestChoice(OmitsEmptyNewFields):
    """The answer: the best point overall, per model, and per Triton version when an analysis compares several
    (None/absent where nothing was measured)."""

    OMITTED_WHEN_EMPTY = ("together",)

    objective: Objective
    overall: BestPoint | None = None
    per_model: list[BestPoint] = Field(default_factory=list)
    per_version: list[BestPoint] = Field(default_factory=list)
    # Where the p99 budget falls at each variant's batch size (with a latency budget; core/budget.py).
    boundaries: list[BudgetBoundary] = Field(default_factory=list)
    # Models measured together: their best point as a combination (core/objectives.best_together).
    together: BestTogether | None = None


class AnalysisResult(OmitsEmptyNewFields):
    OMITTED_WHEN_EMPTY = ("spec",)

    triton_version: str
    server_version: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    baseline: ResourceMetrics | None = None
    models: list[ModelOutcome] = Field(default_factory=list)
    points: list[PointResult] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="Things the user should know, said once.")
    # Each searched model's own config as Triton read it (its JSON form): every variant's whole config is built
    # from it (core/variants.py: config_override), e.g. the winner's, to deploy.
    model_configs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    interrupted: bool = False
    # What the points are judged by, and the answer so far (core/objectives.py).
    objective: Objective = Objective.MAXIMIZE_THROUGHPUT
    constraints: Constraints = Field(default_factory=Constraints)
    best: BestChoice | None = None
    # The analysis asked for (the spec's wire form), so a stopped CLI run can be resumed as the same one
    # (core/resume.py); absent from results written before it was kept.
    spec: dict[str, Any] | None = None

    def outcome(self, model: str, triton_version: str = "") -> ModelOutcome | None:
        """A model's (or variant's) outcome; with several Triton versions, its outcome on the one named."""
        return next((m for m in self.models if m.name == model and m.triton_version == triton_version), None)

    def best_throughput(self) -> float | None:
        values = [p.perf.throughput_infer_per_sec for p in self.points if p.perf is not None]
        return max(values) if values else None


def together_configs(together: BestTogether, result: AnalysisResult) -> dict[str, dict[str, Any]] | None:
    """The best combination's configs to deploy, by model: each member's whole config as its variant loaded it
    (None without a config search: every model as its repository has it)."""
    if not together.variants:
        return None
    members = [p for p in result.points if p.point.key in together.members]
    configs = {}
    for p in members:
        outcome = result.outcome(p.variant_name, p.triton_version)
        if outcome is not None and outcome.config is not None:
            configs[p.model] = outcome.config
    return configs or None


def expected_point_count(
    spec: SweepSpec,
    result: AnalysisResult,
    variants: Sequence[ModelVariant] | None = None,
    triton_version: str = "",
) -> int:
    """Points the sweep will have run when done, as far as is known: a variant that failed to load has none; a
    loaded one has the points measured plus those planned and not yet measured or skipped (a concurrency
    search skips the rest of a batch's steps when it stops, and may add bisection points); one not reached yet
    counts every batch x load pair. `variants` and `triton_version`: a trial's share (default: all)."""
    total = 0
    planned_variants = plan_variants(spec) if variants is None else list(variants)
    times = together_multiples(planned_variants) if spec.profile_models_concurrently else {}
    for variant in planned_variants:
        # Measured together: once in each combination it is in (core/together.py); else once.
        multiple = times.get(variant.name, 1)
        outcome = result.outcome(variant.name, triton_version)
        if outcome is not None and outcome.status in NOT_MEASURABLE | {ModelStatus.NOT_NEEDED}:
            continue
        measured = {
            p.point.key for p in result.points if p.variant_name == variant.name and p.triton_version == triton_version
        }
        if outcome is not None and outcome.status == ModelStatus.PROFILED:
            total += len(measured)  # done: whatever it did not measure is recorded as skipped, or needed none
        elif outcome is not None and outcome.max_batch_size is not None:
            skipped = {s.point.key for s in outcome.skipped}
            planned = plan_model_points(
                spec, variant.model, outcome.max_batch_size, variant.point_variant, triton_version
            ).points
            left = sum(1 for p in planned if p.key not in measured and p.key not in skipped)
            # Measured together, a point's key holds its company, which the plan's do not: count by number.
            together = spec.profile_models_concurrently
            total += max(len(measured), left * multiple) if together else len(measured) + left
        else:
            total += len(spec.batch_sizes) * len(spec.load_steps) * multiple
    return total
