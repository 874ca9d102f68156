"""The sweep engine: one analysis against one Triton server, for the CLI and the operator alike.

Baseline (the server with no model loaded), then each model in turn: load it, read its config, plan its
points, measure each point while sampling Triton's metrics, unload it. What differs between the two entry
points sits behind small ports:

- `control` (ServerControl) loads and unloads models and reads their configs: the Triton the CLI started or was
  given, or the operator's Triton pod (adapters/triton_control.py for both).
- `run_point` measures one point: a local perf_analyzer process (CLI) or a Job whose result comes back in its
  termination message (operator). Both end in the same converging measurement (adapters/perf_analyzer.py).
  `run_together` measures several models' points at once, over the same windows (spec.profileModelsConcurrently).
- `journal` records what happened: an AnalysisResult plus export files and a progress bar (CLI), or the
  resource's status plus Events (operator).
- `where_ran` says where the point just measured ran: the server's and the load generator's node and how the
  load generator was placed (CLI: this machine for both; operator: the Triton pod's node and the Job pod's).
- `checkpoint` and `wait` are how a stop arrives: Ctrl-C (CLI), or kopf's `stopped` and a changed generation
  (operator); either raises out of the engine, which leaves the server as it found it.
- `memory_utilization` (optional) reads DCGM's memory utilization for a point's window from Prometheus.

The engine resumes: a result that already holds a baseline, models and points (the operator rebuilds it from
status after a restart) is continued, and no point in it is measured again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from modelanalysis.adapters.dcgm_prometheus import PrometheusQueryError
from modelanalysis.adapters.metrics_sampler import MetricsSampler
from modelanalysis.adapters.triton_control import (
    ModelConfigSummary,
    ModelLoadError,
    summarize_model_config,
)
from modelanalysis.core.budget import latency_budgets
from modelanalysis.core.composing import next_in_walk
from modelanalysis.core.inputs import InputCheck, SharedMemory, check_inputs, parse_input_data
from modelanalysis.core.load import Load
from modelanalysis.core.objectives import choose_best
from modelanalysis.core.perf import (
    InputsRefused,
    MeasureAgain,
    PerfMeasurement,
    PointMeasurementError,
    with_second_reading,
)
from modelanalysis.core.pipeline import step_breakdown
from modelanalysis.core.results import (
    ENDED,
    NOT_MEASURABLE,
    AnalysisResult,
    ModelOutcome,
    ModelStatus,
    Placement,
    PointResult,
    PointStatus,
    expected_point_count,
)
from modelanalysis.core.search import edge_to_recheck, next_load
from modelanalysis.core.server_metrics import GpuMetrics, ResourceMetrics, aggregate_window
from modelanalysis.core.spec import DEFAULT_STABILITY_PERCENTAGE, MeasurementSettings, SweepSpec
from modelanalysis.core.spec import Protocol as WireProtocol
from modelanalysis.core.sweep import Point, SkippedPoint, plan_model_points
from modelanalysis.core.together import combinations_together, company
from modelanalysis.core.variants import ModelVariant, config_override, plan_variants, same_config, settings_in

NO_MEMORY_UTILIZATION_NOTE = (
    "Max Memory Utilization is empty: Triton does not export it. To fill it, give the URL of a Prometheus "
    "that scrapes NVIDIA's dcgm-exporter (CLI: --prometheus-url; operator: the chart's prometheusUrl)."
)
NO_DCGM_SAMPLE_NOTE = (
    "Max Memory Utilization is empty where Prometheus held no DCGM sample inside a point's window: "
    "scrape dcgm-exporter more often than a point lasts (e.g. every second) while profiling."
)
LOAD_GENERATOR_BOTTLENECK_NOTE = (
    "At some points perf_analyzer used more than 80% of the CPU it was given (Load Generator Bottleneck: Yes): "
    "their throughput may be the load generator's limit rather than the server's. Give it more CPU "
    "(operator: loadGenerator.resources) or, on the CLI, a machine with more cores free."
)
MAX_TRIALS_NOTE = (
    "measurement.maxTrials is deprecated: it is measurement.maxWindows now (a trial is what one Triton server "
    "measures, spec.parallelism.maxTrials). The old name still works for this release."
)
HTTP_STREAMING_REFUSAL = (
    "{model} is decoupled (it streams its responses, model_transaction_policy.decoupled) and perf_analyzer can "
    "only stream over gRPC: use --protocol grpc (measurement.protocol: grpc), the default"
)


def streaming_note(model: str) -> str:
    return (
        f"{model} is decoupled (it streams its responses): measured with perf_analyzer --async --streaming over "
        "gRPC; its time to first token, inter-token latency and output tokens per second come from perf_analyzer's "
        "per-request record (README: LLMs and streaming models)."
    )


def ensemble_note(model: str, composing: Sequence[str], bls: bool = False) -> str:
    what = "a BLS model calling" if bls else "an ensemble of"
    return (
        f"{model} is {what} {', '.join(composing)}: each of its points also says, from Triton's own "
        "counters, where a request's time went step by step and which step is the bottleneck "
        "(metrics-model-steps.csv; README: Pipelines)."
    )


def together_note(models: Sequence[str], combinations: int = 1) -> str:
    each = (f" The {combinations} combinations of one config variant per model were loaded and measured in turn, "
            "but for those with a variant that could not be measured (README: Models sharing a server)."
            if combinations > 1 else "")  # fmt: skip
    return (
        f"{', '.join(models)} were loaded together and measured at once, each by its own perf_analyzer over the same "
        "windows: each point's numbers are under the others' load, and its server figures are the combination's "
        f"(Measured With names the company).{each}"
    )


PIPELINE_NOT_SPLIT = (
    "{model} is a pipeline: its composing models are searched one variant after another on one server (each "
    "built on what the last one measured), so its variants cannot be split into parallel trials; set "
    "spec.parallelism.maxTrials to 1, or profile {model} in a ModelAnalysis of its own"
)


PIPELINE_NOT_TOGETHER = (
    "{model} is a pipeline: its config search walks its composing models one step at a time on a server of its "
    "own, which is not done for models measured together; measured together it is measured in its own config "
    "(profile its config search without --concurrent / profileModelsConcurrently)"
)


def walk_note(model: str, steps: Sequence[str]) -> str:
    return (
        f"{model} is a pipeline of {', '.join(steps)}: its config search varies them one step "
        "at a time, the slowest step first, keeping a change only where it is surely better (README: Pipelines); "
        "each variant's Reason says why it was measured."
    )


STABILITY_PERCENTAGE_NOTE = (
    "--stability-percentage (stabilityPercentage) no longer ends a point: each point is measured until the 95% "
    "confidence interval of its throughput is within --convergence (convergencePct) percent, or its time cap."
)


class ServerControl(Protocol):
    """What the engine asks of the Triton server it measures (adapters/triton_control.TritonControl)."""

    def server_version(self) -> str: ...
    def is_model_ready(self, model: str) -> bool: ...
    def load(self, model: str, config: dict[str, Any] | None = None) -> None: ...
    def unload(self, model: str, timeout_s: float = 60.0) -> None: ...
    def model_config(self, model: str) -> ModelConfigSummary: ...
    def raw_model_config(self, model: str) -> dict[str, Any]: ...


class MemoryUtilization(Protocol):
    """Each GPU's highest memory utilization in a window (adapters/dcgm_prometheus.DcgmMemoryUtilization)."""

    def max_by_gpu(self, start: float, end: float) -> dict[str, float]: ...


# Measures a point; raises PointMeasurementError (with the reason) when it cannot be measured, MeasureAgain when
# its try was cut off from outside and it should start over.
PointRunner = Callable[[Point, MeasurementSettings], PerfMeasurement]
# Measures several points at once, one per model, over the same windows (spec.profileModelsConcurrently): each
# member's measurement, or the error that member's measurement ended in.
GroupRunner = Callable[[Sequence[Point], MeasurementSettings], Sequence[PerfMeasurement | PointMeasurementError]]


class EventKind(StrEnum):
    BASELINE = "baseline"  # measuring the server with no model loaded
    BASELINE_MEASURED = "baseline-measured"
    LOADING = "loading"
    LOADED = "loaded"
    LOAD_FAILED = "load-failed"
    REFUSED = "refused"  # loaded, but what perf_analyzer would send does not fit it (core/inputs.py)
    POINT = "point"  # a point starts
    POINT_MEASURED = "point-measured"
    POINT_FAILED = "point-failed"
    PROFILED = "profiled"  # every point of a model is done
    UNLOADED = "unloaded"


@dataclass(frozen=True)
class EngineEvent:
    """What just happened. `done`/`total` count points; total shrinks as points are skipped or models fail."""

    kind: EventKind
    done: int
    total: int
    model: str = ""
    point: Point | None = None
    message: str = ""
    result: PointResult | None = None


# Records an event; the result holds everything measured so far (it is changed in place as the run goes).
Journal = Callable[[EngineEvent, AnalysisResult], None]


def add_memory_utilization(resources: ResourceMetrics, by_gpu: dict[str, float]) -> None:
    """Merge DCGM's per-GPU memory utilization into the GPUs Triton reported (or add the GPUs it did not)."""
    known = {g.gpu_uuid: g for g in resources.gpus}
    for uuid, value in by_gpu.items():
        gpu = known.get(uuid)
        if gpu is None:
            gpu = GpuMetrics(gpu_uuid=uuid)
            resources.gpus.append(gpu)
        gpu.max_memory_utilization_pct = value


def outcome_of(variant: ModelVariant, triton_version: str, **fields: Any) -> ModelOutcome:
    """A model's outcome, or a config variant's (which also names its model and what it changes)."""
    searched = bool(variant.point_variant)
    described = {"model": variant.model, "changes": variant.describe()} if searched else {}
    return ModelOutcome(name=variant.name, triton_version=triton_version, **{**described, **fields})


def inputs_sent(spec: SweepSpec, model: str) -> str | None:
    """What perf_analyzer sends `model`, as its flags (None: its own made-up data, nothing given)."""
    return " ".join(spec.inputs_for(model).perf_analyzer_args()) or None


class SweepEngine:
    def __init__(
        self,
        spec: SweepSpec,
        control: ServerControl,
        metrics_url: str,
        run_point: PointRunner,
        journal: Journal,
        *,
        memory_utilization: MemoryUtilization | None = None,
        owns_server: bool = True,
        tidy_on_stop: bool = True,
        model_config_path: Callable[[str], str] = lambda model: "",
        where_ran: Callable[[], Placement] = Placement,
        checkpoint: Callable[[], None] = lambda: None,
        wait: Callable[[float], None] = time.sleep,
        variants: Sequence[ModelVariant] | None = None,
        triton_version: str = "",
        read_input_data: Callable[[str], str] | None = None,
        run_together: GroupRunner | None = None,
    ) -> None:
        self.spec = spec
        # What this server measures (core/trials.py): by default every variant of every model; the points and
        # outcomes are stamped with the Triton version when an analysis compares several.
        self.variants = list(plan_variants(spec) if variants is None else variants)
        self.triton_version = triton_version
        self.control = control
        self.metrics_url = metrics_url
        self.run_point = run_point
        self.journal = journal
        self.memory_utilization = memory_utilization
        # A server this run started (or the operator's own pod) is returned empty; a server the user gave
        # keeps the models it already had loaded.
        self.owns_server = owns_server
        # On a stop, return the server as it was (CLI). The operator does not: its stopped run resumes on the same
        # Triton pod, where the next run (another operator process, maybe already started) may be measuring the
        # model; unloading it would pull it from under that run. The pod goes with the analysis anyway.
        self.tidy_on_stop = tidy_on_stop
        self.model_config_path = model_config_path
        self.where_ran = where_ran
        self.checkpoint = checkpoint
        self.wait = wait
        # Reads an input-data file to check it against each model before any point runs (the CLI: a local file).
        # None where this process cannot see the file (the operator: it is on the model claim, which only the
        # load-generator Job mounts): perf_analyzer then reads it, and its own error is the point's.
        self.read_input_data = read_input_data
        # How models loaded together are measured at once (None: this entry point cannot, and refuses such a spec).
        self.run_together = run_together
        self.result = AnalysisResult(triton_version="")
        self._own_configs: dict[str, dict[str, Any]] = {}  # each model's own config, as Triton read it
        self._loaded_composing: dict[str, list[str]] = {}  # a BLS model's composing models this run loaded
        self._steps: dict[str, tuple[str, ...]] = {}  # a searched pipeline's composing models, once known
        self._overridden: set[str] = set()  # composing models this run loaded with a config not their own
        self._step_configs: dict[str, dict[str, dict[str, Any]]] = {}  # a pipeline variant's composing configs
        self._walk_reasons: dict[str, str] = {}  # why the walk chose each of its variants

    # -- bookkeeping ---------------------------------------------------------------------------------
    def _record(self, kind: EventKind, model: str = "", point: Point | None = None, message: str = "",
                result: PointResult | None = None) -> None:  # fmt: skip
        # The answer so far, so a journal that keeps it (status, analysis.json) always holds the current best.
        self.result.best = choose_best(self.result.points, self.spec.objective, self.spec.constraints)
        done = len(self.result.points)
        total = expected_point_count(self.spec, self.result, self.variants, self.triton_version)
        self.journal(EngineEvent(kind, done, total, model, point, message, result), self.result)

    def _note(self, text: str) -> None:
        if text not in self.result.notes:
            self.result.notes.append(text)

    # -- the run -------------------------------------------------------------------------------------
    def run(self, result: AnalysisResult) -> AnalysisResult:
        """Measure whatever `result` still lacks; it is filled in place, so a stopped run keeps what it measured."""
        self.result = result
        result.objective, result.constraints = self.spec.objective, self.spec.constraints
        if result.started_at is None:
            result.started_at = time.time()
        if self.memory_utilization is None:
            self._note(NO_MEMORY_UTILIZATION_NOTE)
        if self.spec.measurement.stability_percentage != DEFAULT_STABILITY_PERCENTAGE:
            self._note(STABILITY_PERCENTAGE_NOTE)
        if self.spec.measurement.max_trials is not None:
            self._note(MAX_TRIALS_NOTE)
        result.server_version = self.control.server_version() or result.server_version
        if result.baseline is None:
            self.measure_baseline()
        if self.spec.profile_models_concurrently:
            self.profile_together()
            self.variants = []  # measured above, together
        for planned in self.variants:
            outcome = result.outcome(planned.name, self.triton_version)
            if outcome is not None and outcome.status in ENDED:
                continue
            self.checkpoint()
            variant = self._walked(planned)
            if variant is not None:
                self.profile_model(variant)
        result.best = choose_best(result.points, self.spec.objective, self.spec.constraints)
        result.finished_at = time.time()
        return result

    def measure_baseline(self) -> None:
        settings = self.spec.measurement
        self._record(EventKind.BASELINE, message="measuring the server with no model loaded")
        sampler = MetricsSampler(self.metrics_url, settings.metrics_interval_ms / 1000)
        start = time.time()
        sampler.start()
        try:
            self.wait(settings.baseline_duration_ms / 1000)
        finally:
            samples = sampler.stop()
        baseline = aggregate_window(samples)
        self._add_dcgm(baseline, start, time.time())
        self.result.baseline = baseline
        self._record(EventKind.BASELINE_MEASURED)

    def _load(self, variant: ModelVariant, already_loaded: bool) -> ModelConfigSummary:
        """Load the variant's config into Triton and read back what Triton made of it.

        Triton keeps an override until it is given another one (a plain load of a loaded model changes
        nothing), so in a config search every variant, the default too, is loaded with its whole config, built
        from the model's own config as Triton first read it.
        """
        model = variant.model
        if not variant.point_variant:  # no config search: the model as the repository has it
            if not already_loaded:
                self.control.load(model)
            return self.control.model_config(model)
        first = model not in self._own_configs
        own = self._own_config(model, already_loaded)
        if variant.composing:  # a pipeline's walk: the pipeline as it is; its steps are set by _set_steps
            if not self.control.is_model_ready(model):
                self.control.load(model)
            return summarize_model_config(own)
        if first and not variant.changes_config:
            return summarize_model_config(own)
        self.control.load(model, config=config_override(own, variant))
        return self.control.model_config(model)

    def _own_config(self, model: str, already_loaded: bool) -> dict[str, Any]:
        """The model's own config, as Triton first read it here (loaded as the repository has it to read it)."""
        own = self._own_configs.get(model)
        if own is None:
            if already_loaded:
                self.control.unload(model)  # it may hold another config
            self.control.load(model)
            own = self._own_configs[model] = self.control.raw_model_config(model)
            self.result.model_configs.setdefault(model, own)
        return own

    def _pipeline_fields(self, variant: ModelVariant) -> dict[str, Any]:
        """A searched pipeline's variant's outcome fields: each step's setting and config, and why it was chosen."""
        configs = self._step_configs.get(variant.name)
        if configs is None:
            return {}
        settings = {c.model: c for c in variant.composing}
        composing = [settings.get(step, ModelVariant(name=step, model=step)) for step in configs]
        reason = self._walk_reasons.get(variant.name)
        return {"composing": composing, "composing_configs": configs, "reason": reason}

    def _loaded_config(self, variant: ModelVariant) -> dict[str, Any] | None:
        """The whole config of a search's variant as loaded (None without a search)."""
        own = self._own_configs.get(variant.model)
        return config_override(own, variant) if variant.point_variant and own is not None else None

    def profile_model(self, variant: ModelVariant) -> None:
        name, model = variant.name, variant.model
        self._record(EventKind.LOADING, model=name)
        own = self._own_configs.get(model)
        if (variant.changes_config and not variant.composing and own is not None
                and same_config(config_override(own, variant), own)):
            # A combination that sets what the model's own config already has: measured as its default.
            summary = summarize_model_config(own)
            self.result.models.append(outcome_of(
                variant, self.triton_version, status=ModelStatus.PROFILED, max_batch_size=summary.max_batch_size,
                instance_group=summary.instance_group, config_path=variant.name,
                changes=f"{variant.describe()}: the model's own config, measured as {variant.model}_config_default",
            ))  # fmt: skip
            self._record(EventKind.PROFILED, model=name, message="the model's own config: not measured again")
            return
        already_loaded = self.control.is_model_ready(model)
        # A server this run started is returned empty; on a server the user gave, a model they had loaded stays
        # loaded, with its own config.
        unload = self.owns_server or not already_loaded
        admitted = self._admit(variant, already_loaded, unload)
        if admitted is None:
            return
        config, check = admitted
        plan = plan_model_points(self.spec, model, config.max_batch_size, variant.point_variant, self.triton_version,
                                 batch_limit=(check.max_batch, check.max_batch_reason) if check.max_batch else None)
        outcome = self.result.outcome(name, self.triton_version)
        if outcome is None:  # a resumed run already has it, with the points measured before
            outcome = outcome_of(
                variant,
                self.triton_version,
                status=ModelStatus.INTERRUPTED,  # until every point is done
                max_batch_size=config.max_batch_size,
                instance_group=config.instance_group,
                config_path=variant.point_variant or self.model_config_path(model),
                config=self._loaded_config(variant),
                skipped=plan.skipped,
                inputs=inputs_sent(self.spec, model),
                **self._pipeline_fields(variant),
            )
            self.result.models.append(outcome)
        self._record(EventKind.LOADED, model=name)
        if config.decoupled:
            self._note(streaming_note(model))
        if config.composing and variant.point_variant:
            self._note(walk_note(model, self._steps.get(model, config.composing)))
        if config.composing:
            self._note(ensemble_note(model, config.composing, bls=bool(self.spec.bls_composing_models(model))))
        try:
            for batch in sorted({p.batch_size for p in plan.points}):
                steps = [p.load for p in plan.points if p.batch_size == batch]
                self.profile_batch(variant, batch, steps, outcome, config)
            outcome.status = ModelStatus.PROFILED
            measured = len(self._measured(name))
            self._record(EventKind.PROFILED, model=name, message=f"{measured} points")
        except InputsRefused as refused:
            outcome.status, outcome.error = ModelStatus.REFUSED, str(refused)
            self._record(EventKind.REFUSED, model=name, message=str(refused))
            self._leave(variant, unload)
            return
        except BaseException:
            # Stopped (Ctrl-C, the analysis deleted) or the server went away: leave the server as it was if it
            # still answers, and let the reason through unchanged.
            if self.tidy_on_stop:
                with contextlib.suppress(Exception):
                    self._leave(variant, unload)
            raise
        self._leave(variant, unload)
        if unload:
            self._record(EventKind.UNLOADED, model=name)

    # -- a pipeline's config search: its composing models, one step at a time (core/composing.py) --------
    def _pipeline_steps(self, model: str) -> tuple[str, ...]:
        """A searched model's composing models if it is a pipeline (empty: it is not). A BLS model's are in the
        spec; an ensemble's are learnt from its config: when its default was measured here, from its outcome on a
        resumed run, or else by loading it as it is (a trial that holds none of its other variants)."""
        if model in self._steps:
            return self._steps[model]
        bls = self.spec.bls_composing_models(model)
        steps = (model, *bls) if bls else ()  # a BLS model is a step of its own: its instances run its calls
        default = next((o for o in self.result.models if o.model == model and o.composing is not None), None)
        if not steps and default is not None and default.composing is not None:
            steps = tuple(c.model for c in default.composing)
        if not steps and model not in self._own_configs:
            with contextlib.suppress(ModelLoadError):
                self._own_config(model, self.control.is_model_ready(model))
        if not steps and model in self._own_configs:
            steps = summarize_model_config(self._own_configs[model]).composing
        self._steps[model] = steps
        return steps

    def _walked(self, planned: ModelVariant) -> ModelVariant | None:
        """What to measure in a planned variant's place: itself, or, for a pipeline's searched variant, the
        walk's next (None: the walk has ended, or cannot walk on this server; recorded so)."""
        target = next((t for t in self.spec.models if t.name == planned.model), None)
        if not planned.changes_config or target is None or target.config_search is None:
            return planned
        steps = self._pipeline_steps(planned.model)
        if not steps:
            return planned
        default_name = f"{planned.model}_config_default"
        history = [
            ModelVariant(name=o.name, model=planned.model, composing=tuple(o.composing or ()))
            for o in self.result.models
            if o.model == planned.model and o.triton_version == self.triton_version and o.status == ModelStatus.PROFILED
        ]
        if not history or history[0].name != default_name:
            refusal = PIPELINE_NOT_SPLIT.format(model=planned.model)
            self.result.models.append(outcome_of(planned, self.triton_version, status=ModelStatus.REFUSED,
                                                 error=refusal))  # fmt: skip
            self._record(EventKind.REFUSED, model=planned.name, message=refusal)
            return None
        configs = {**self.result.model_configs, **self._own_configs}
        own = {step: settings_in(configs[step]) for step in steps if step in configs}
        pipeline = configs.get(planned.model, {})
        floor = int(pipeline.get("max_batch_size", 0)) if pipeline.get("platform") == "ensemble" else 0
        decision = next_in_walk(planned, steps, target.config_search, history, self.result.points,
                                self.spec.objective, self.spec.constraints, own, batch_floor=floor)  # fmt: skip
        if decision.variant is None:
            self.result.models.append(ModelOutcome(
                name=planned.name, model=planned.model, status=ModelStatus.NOT_NEEDED,
                triton_version=self.triton_version, reason=decision.reason,
            ))  # fmt: skip
            self._record(EventKind.PROFILED, model=planned.name, message=f"not measured: {decision.reason}")
            return None
        self._walk_reasons[planned.name] = decision.reason
        return decision.variant

    def _set_steps(self, variant: ModelVariant, steps: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        """Load each composing model of a searched pipeline with the config the variant gives it (its own where
        the variant leaves it), and return those configs. Every step is loaded each time: Triton may have
        reloaded one from the repository with the pipeline."""
        settings = {c.model: c for c in variant.composing}
        configs = {}
        for step in steps:
            own = self._own_configs.get(step)
            if own is None and step in self.result.model_configs:
                # A resumed run: the step may still hold the config the stopped run gave it, so load it anew.
                own = self._own_configs[step] = self.result.model_configs[step]
                self._overridden.add(step)
            if own is None:
                own = self._own_configs[step] = self.control.raw_model_config(step)
                self.result.model_configs.setdefault(step, own)
            change = settings.get(step)
            changed = change is not None and change.changes_config
            config = config_override(own, change) if change is not None and changed else own
            if changed or step in self._overridden:
                try:
                    self.control.load(step, config=config)
                except ModelLoadError as exc:
                    raise ModelLoadError(f"{variant.model}'s composing model {step} did not load as "
                                         f"{change.describe() if change else 'its own config'}: {exc}") from None
                if changed:
                    self._overridden.add(step)
                else:
                    self._overridden.discard(step)
            configs[step] = config
        return configs

    # -- models loaded together, measured at once ------------------------------------------------------
    def profile_together(self) -> None:
        """Every model loaded on the one server, one variant of each at a time (core/together.py: with a config
        search, every combination of them), and each batch x load point measured for all of them at once, by a
        load generator each, over the same windows (spec.profileModelsConcurrently). A model that fails to load or
        is refused is left out, said so, and the others are measured together; a combination with a searched
        variant that cannot be measured is left out (the model's other variants stand for it)."""
        if self.run_together is None:
            raise ValueError("measuring models together (profileModelsConcurrently) is not possible here")
        variants_of: dict[str, list[ModelVariant]] = {}
        for variant in self.variants:
            variants_of.setdefault(variant.model, []).append(variant)
        already: dict[str, bool] = {}  # loaded before this run: on a server the user gave, it stays loaded
        loaded: dict[str, ModelVariant] = {}  # each model's variant loaded now
        plans: dict[str, list[Point]] = {}  # each admitted variant's points, before its company is known
        combinations = combinations_together(self.variants)
        try:
            for combination in combinations:
                if self._combination_done(combination, variants_of):
                    continue
                members: list[ModelVariant] = []
                for variant in combination:
                    if not self._measurable(variant):
                        if len(variants_of[variant.model]) == 1:
                            continue  # the model is out of this run; the others are measured without it
                        members = []
                        break
                    if loaded.get(variant.model) != variant:
                        if variant.model not in already:
                            already[variant.model] = self.control.is_model_ready(variant.model)
                        loaded.pop(variant.model, None)
                        plan = self._admit_together(variant, variants_of[variant.model], already[variant.model])
                        if plan is None:
                            if len(variants_of[variant.model]) == 1:
                                continue
                            members = []
                            break
                        plans[variant.name], loaded[variant.model] = plan, variant
                    members.append(variant)
                if len(members) > 1:
                    self._note(together_note([v.model for v in members], len(combinations)))
                if members:
                    self._measure_combination(members, plans)
        except BaseException:
            if self.tidy_on_stop:  # stopped: leave the server as it was, as profile_model does
                for variant in loaded.values():
                    with contextlib.suppress(Exception):
                        self._leave(variant, unload=self.owns_server or not already[variant.model])
            raise
        for variant in self.variants:  # every combination is measured, or left out: each variant is done
            outcome = self.result.outcome(variant.name, self.triton_version)
            if outcome is not None and outcome.status == ModelStatus.INTERRUPTED:
                outcome.status = ModelStatus.PROFILED
                self._record(EventKind.PROFILED, model=variant.name)
        for variant in loaded.values():
            unload = self.owns_server or not already[variant.model]
            self._leave(variant, unload)
            if unload:
                self._record(EventKind.UNLOADED, model=variant.model)

    def _measurable(self, variant: ModelVariant) -> bool:
        outcome = self.result.outcome(variant.name, self.triton_version)
        return outcome is None or outcome.status not in NOT_MEASURABLE

    def _admit_together(
        self, variant: ModelVariant, its_variants: Sequence[ModelVariant], already_loaded: bool
    ) -> list[Point] | None:
        """Load one variant to be measured in company; its planned points (None: it cannot be measured). A
        pipeline's config search is not made in company: its other variants are refused, said why."""
        self._record(EventKind.LOADING, model=variant.name)
        ready = self.control.is_model_ready(variant.model)
        admitted = self._admit(variant, ready, unload=self.owns_server or not already_loaded)
        if admitted is None:
            return None
        config, check = admitted
        if config.composing:
            for other in its_variants:
                if other is not variant and self.result.outcome(other.name, self.triton_version) is None:
                    refusal = PIPELINE_NOT_TOGETHER.format(model=variant.model)
                    self.result.models.append(outcome_of(other, self.triton_version, status=ModelStatus.REFUSED,
                                                         error=refusal))  # fmt: skip
                    self._record(EventKind.REFUSED, model=other.name, message=refusal)
        plan = plan_model_points(self.spec, variant.model, config.max_batch_size, variant.point_variant,
                                 self.triton_version,
                                 batch_limit=(check.max_batch, check.max_batch_reason) if check.max_batch else None)
        if self.result.outcome(variant.name, self.triton_version) is None:
            self.result.models.append(outcome_of(
                variant, self.triton_version, status=ModelStatus.INTERRUPTED, max_batch_size=config.max_batch_size,
                instance_group=config.instance_group,
                config_path=variant.point_variant or self.model_config_path(variant.model),
                config=self._loaded_config(variant), skipped=plan.skipped, inputs=inputs_sent(self.spec, variant.model),
            ))  # fmt: skip
        self._record(EventKind.LOADED, model=variant.name)
        return [p.model_copy(update={"streaming": config.decoupled, "composing": config.composing})
                for p in plan.points]  # fmt: skip

    def _combination_done(
        self, combination: Sequence[ModelVariant], variants_of: dict[str, list[ModelVariant]]
    ) -> bool:
        """Whether a resumed run measured this combination already (every member's planned points, in its company)."""
        members = [v for v in combination if self._measurable(v)]
        if len(members) < len(combination) and any(len(variants_of[v.model]) > 1 for v in combination
                                                   if v not in members):  # fmt: skip
            return True  # left out: a searched variant that cannot be measured
        measured = {p.key for p in self.result.points}
        for variant in members:
            outcome = self.result.outcome(variant.name, self.triton_version)
            if outcome is None or outcome.max_batch_size is None:
                return False
            skipped = {s.point.key for s in outcome.skipped}
            plan = plan_model_points(self.spec, variant.model, outcome.max_batch_size, variant.point_variant,
                                     self.triton_version).points  # fmt: skip
            with_company = company(members, variant) or None
            if any(p.key not in skipped and p.model_copy(update={"measured_with": with_company}).key not in measured
                   for p in plan):  # fmt: skip
                return False
        return True

    def _measure_combination(self, members: Sequence[ModelVariant], plans: dict[str, list[Point]]) -> None:
        """Each batch x load point of one combination, every member measured at once, in the others' company."""
        for batch in self.spec.batch_sizes:
            for load in self.spec.load_steps:
                points = [
                    p.model_copy(update={"measured_with": company(members, v) or None})
                    for v in members for p in plans[v.name] if p.batch_size == batch and p.load == load
                ]  # fmt: skip
                measured = {p.key for p in self.result.points}
                points = [p for p in points if p.key not in measured]
                if not points:
                    continue
                self.checkpoint()
                self._record(EventKind.POINT, model=" + ".join(p.variant_name for p in points), point=points[0])
                for result in self.measure_group(points, self.spec.measurement):
                    self.result.points.append(result)
                    measured_now = result.status == PointStatus.MEASURED
                    kind = EventKind.POINT_MEASURED if measured_now else EventKind.POINT_FAILED
                    self._record(kind, result.model, result.point, result.error or "", result)

    def measure_group(self, members: Sequence[Point], settings: MeasurementSettings) -> list[PointResult]:
        """Points of several models measured at once: one window of server samples for all of them."""
        assert self.run_together is not None
        while True:
            sampler = MetricsSampler(self.metrics_url, settings.metrics_interval_ms / 1000)
            started = time.time()
            sampler.start()
            try:
                outcomes = self.run_together(members, settings)
            except MeasureAgain:
                continue  # a fresh window, as for one point (measure_point)
            finally:
                samples = sampler.stop()
            break
        finished = time.time()
        placement = self.where_ran()
        results = []
        for point, outcome in zip(members, outcomes, strict=True):
            perf = outcome if isinstance(outcome, PerfMeasurement) else None
            error = None if perf is not None else str(outcome)
            result = PointResult.from_window(point, perf, error, samples, started, finished,
                                             settings.measurement_interval_ms, placement)  # fmt: skip
            if point.composing:
                result.steps = step_breakdown(samples, point.composing, self._caller(point.model)) or None
            assert result.resources is not None
            self._add_dcgm(result.resources, started, finished)
            results.append(result)
        return results

    def _admit(
        self, variant: ModelVariant, already_loaded: bool, unload: bool
    ) -> tuple[ModelConfigSummary, InputCheck] | None:
        """Load a variant (a BLS model's composing models first) and check what perf_analyzer is to send it. A
        model that does not load, or is refused, is recorded so with its Event (a refused one is left as it was
        found) and None returned; else what Triton loaded, and the check (a batch limit it may set)."""
        model = variant.model
        try:
            bls = self._load_bls_composing(model)
            config = self._load(variant, already_loaded)
            if bls:
                config = dataclasses.replace(config, composing=bls)
            if config.composing and variant.point_variant:  # a pipeline's config search
                steps = self._steps[model] = ((model,) if bls else ()) + config.composing
                self._step_configs[variant.name] = self._set_steps(variant, steps)
        except ModelLoadError as exc:
            self.result.models.append(
                outcome_of(variant, self.triton_version, status=ModelStatus.LOAD_FAILED, error=str(exc))
            )
            self._record(EventKind.LOAD_FAILED, model=variant.name, message=str(exc))
            return None
        check = self._check_inputs(model, config)
        if config.decoupled and self.spec.measurement.protocol == WireProtocol.HTTP:
            check = InputCheck(HTTP_STREAMING_REFUSAL.format(model=model))
        if check.refusal is not None:
            refused = outcome_of(variant, self.triton_version, status=ModelStatus.REFUSED, error=check.refusal,
                                 max_batch_size=config.max_batch_size,
                                 inputs=inputs_sent(self.spec, model))  # fmt: skip
            self.result.models.append(refused)
            self._record(EventKind.REFUSED, model=variant.name, message=check.refusal)
            self._leave(variant, unload)
            return None
        return config, check

    def _check_inputs(self, model: str, config: ModelConfigSummary) -> InputCheck:
        """Whether the model can be measured with what perf_analyzer is to send it (core/inputs.py)."""
        settings = self.spec.inputs_for(model)
        data = None
        if settings.data_file and self.read_input_data is not None:
            try:
                data = parse_input_data(self.read_input_data(settings.data_file), settings.data_file)
            except OSError as exc:
                return InputCheck(f"{model}: cannot read input data {settings.data_file} ({exc.strerror or exc})")
            except ValueError as exc:
                return InputCheck(f"{model}: {exc}")
        if settings.shared_memory == SharedMemory.CUDA and self.result.baseline and not self.result.baseline.gpus:
            return InputCheck(
                f"{model}: --shared-memory cuda (inputs.sharedMemory) needs a GPU, and this server reports none (no "
                "GPU metrics); use system or none"
            )
        return check_inputs(model, list(config.inputs), settings, data, self.spec.scoped_shapes(model))

    def _caller(self, model: str) -> str | None:
        """`model` if it is a BLS model (it calls its composing models itself, and is a step of its own)."""
        return model if self.spec.bls_composing_models(model) else None

    def _load_bls_composing(self, model: str) -> tuple[str, ...]:
        """Load the models a BLS model calls (spec models[].blsComposingModels) before it: Triton does not load
        them with it, as it does an ensemble's. Those this run loads are unloaded with the model."""
        composing = self.spec.bls_composing_models(model)
        for name in composing:
            if self.control.is_model_ready(name):
                continue
            try:
                self.control.load(name)
            except ModelLoadError as exc:
                raise ModelLoadError(f"{model}'s BLS composing model {name} did not load: {exc}") from None
            self._loaded_composing.setdefault(model, []).append(name)
        return composing

    def _leave(self, variant: ModelVariant, unload: bool) -> None:
        own = self._own_configs.get(variant.model)
        if not self.owns_server:  # the user's server gets its composing models' own configs back
            for step in sorted(self._overridden):
                self.control.load(step, config=self._own_configs[step])
            self._overridden.clear()
        if unload:
            self.control.unload(variant.model)
            for name in self._loaded_composing.pop(variant.model, []):
                self.control.unload(name)
        elif variant.point_variant and own is not None:
            self.control.load(variant.model, config=own)  # the user's server gets its model's own config back

    def _measured(self, variant_name: str) -> list[PointResult]:
        """The points of a variant measured on this run's Triton version so far."""
        return [
            p for p in self.result.points if p.variant_name == variant_name and p.triton_version == self.triton_version
        ]

    def profile_batch(
        self, variant: ModelVariant, batch: int, steps: list[Load], outcome: ModelOutcome,
        config: ModelConfigSummary | None = None,
    ) -> None:
        """Measure one batch size at the loads the search picks, one at a time; record the steps it
        left out, with why. `config`: what Triton loaded, which says how its points are measured (a decoupled
        model streams: core/streaming.py; an ensemble's steps are broken down: core/pipeline.py)."""
        streaming, composing = (config.decoupled, config.composing) if config else (False, ())
        budgets = latency_budgets(self.spec.constraints)
        model, name, tag = variant.model, variant.name, variant.point_variant
        while True:
            measured = [p for p in self._measured(name) if p.batch_size == batch]
            step = next_load(steps, measured, self.spec.load_search, budgets)
            if step.load is None:
                edge = edge_to_recheck(measured, self.spec.load_search, budgets)
                if edge is None:
                    break
                first = next(p for p in measured if p.load == edge)
                self._recheck(first, Point(model=model, batch_size=batch, load=edge, variant=tag, streaming=streaming,
                                           triton_version=self.triton_version, composing=composing), name)  # fmt: skip
                continue
            version = self.triton_version
            point = Point(model=model, batch_size=batch, load=step.load, variant=tag, triton_version=version,
                          streaming=streaming, composing=composing)  # fmt: skip
            self.checkpoint()
            self._record(EventKind.POINT, model=name, point=point)
            result = self.measure_point(point, self.spec.measurement)
            self.result.points.append(result)
            kind = EventKind.POINT_MEASURED if result.status == PointStatus.MEASURED else EventKind.POINT_FAILED
            self._record(kind, name, point, result.error or "", result)
        measured_steps = {p.load for p in measured}
        known = {s.point.key for s in outcome.skipped}
        version = self.triton_version
        left_out = [
            SkippedPoint(
                point=Point(model=model, batch_size=batch, load=load, variant=tag, triton_version=version),
                reason=step.reason,
            )
            for load in steps
            if load not in measured_steps
        ]
        outcome.skipped.extend(s for s in left_out if s.point.key not in known)

    def _recheck(self, first: PointResult, point: Point, name: str) -> None:
        """Measure an edge of a search's boundary a second time and widen its intervals to cover both readings
        (core/search.py): the point stays one point, its decision now resting on both."""
        self.checkpoint()
        self._record(EventKind.POINT, model=name, point=point, message="measured again: an edge of the boundary")
        again = self.measure_point(point, self.spec.measurement)
        first.rechecked = True
        if again.perf is not None and first.perf is not None:
            first.second_reading = again.perf
            first.perf = with_second_reading(first.perf, again.perf)
        else:
            self._note(f"{point.key} could not be measured a second time ({again.error}); its first reading stands")
        self._record(EventKind.POINT_MEASURED, name, point, "measured again", first)

    def measure_point(self, point: Point, settings: MeasurementSettings) -> PointResult:
        while True:
            sampler = MetricsSampler(self.metrics_url, settings.metrics_interval_ms / 1000)
            started = time.time()
            sampler.start()
            perf: PerfMeasurement | None = None
            error: str | None = None
            try:
                perf = self.run_point(point, settings)
            except MeasureAgain:
                # A fresh window: the cut-off try's requests must not count in this point's server throughput.
                continue
            except InputsRefused:
                raise  # the model is refused (profile_model), not this point failed
            except PointMeasurementError as exc:
                error = str(exc)
            finally:
                samples = sampler.stop()
            break
        finished = time.time()
        result = PointResult.from_window(
            point, perf, error, samples, started, finished, settings.measurement_interval_ms, self.where_ran()
        )
        if point.composing:
            result.steps = step_breakdown(samples, point.composing, self._caller(point.model)) or None
        if perf is not None and perf.load_generator_bottleneck:
            self._note(LOAD_GENERATOR_BOTTLENECK_NOTE)
        assert result.resources is not None
        self._add_dcgm(result.resources, started, finished)
        return result

    def _add_dcgm(self, resources: ResourceMetrics, start: float, end: float) -> None:
        if self.memory_utilization is None:
            return
        try:
            by_gpu = self.memory_utilization.max_by_gpu(start, end)
        except PrometheusQueryError as exc:
            # Each unanswered query costs seconds of client retries: stop asking for the rest of the run.
            self.memory_utilization = None
            self._note(f"Max Memory Utilization is empty from here on: {exc}")
            return
        if not by_gpu:
            self._note(NO_DCGM_SAMPLE_NOTE)
        add_memory_utilization(resources, by_gpu)
