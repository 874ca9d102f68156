"""One ModelAnalysis, run to completion from whatever state its status and its children are in.

Every step observes first and creates only what is missing, and every measured point is written to status
before the next starts, so an operator restarted at any moment picks up where it was: no point measured
twice, none lost. Steps wait by polling with `stopped.wait()`, which returns at once when kopf stops the
daemon (the analysis was deleted, or the operator is exiting).
"""

from __future__ import annotations

import contextvars
import json
import logging
import posixpath
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from modelanalysis.adapters.dcgm_prometheus import DcgmMemoryUtilization
from modelanalysis.adapters.triton_control import TritonControl, TritonUnreachable
from modelanalysis.core.html_report import REPORT_HTML, render_html
from modelanalysis.core.objectives import choose_best
from modelanalysis.core.perf import MeasureAgain, PerfMeasurement, PointMeasurementError
from modelanalysis.core.report import csv_files
from modelanalysis.core.results import AnalysisResult, ModelStatus, Placement, PointStatus, expected_point_count
from modelanalysis.core.sweep import Point
from modelanalysis.core.trials import Trial, plan_trials
from modelanalysis.core.variants import plan_variants
from modelanalysis.engine import EngineEvent, SweepEngine
from modelanalysis.kube import names, objects, policy
from modelanalysis.kube.api import ChildApi
from modelanalysis.kube.conditions import (
    analysis_result,
    best_status,
    boundary_status,
    compact_baseline,
    compact_point,
    model_entry,
    now_rfc3339,
    set_condition,
    short,
)
from modelanalysis.kube.ownership import NameTaken, collision_message, first_collision, owned_by
from modelanalysis.kube.refusals import refusal_message
from modelanalysis.kube.resource import (
    API_VERSION,
    FINISHED_PHASES,
    KIND,
    ConditionType,
    ModelAnalysisSpec,
    ModelAnalysisStatus,
    Phase,
    Reason,
    TrialStatus,
)
from modelanalysis.kube.settings import OperatorSettings
from modelanalysis.kube.transitions import (
    after_interruption,
    event_for,
    load_generator_interruption,
    progress_message,
    results_write_failure,
    trial_end,
    trials_verdict,
)

T = TypeVar("T")
# How long a new analysis waits for the children of a deleted one of the same name to be garbage-collected.
LEFTOVER_WAIT_SECONDS = 120.0

# Stand-ins for what is known only once the Triton pod runs, in the dry run of a load-generator Job.
DRY_RUN_POD_IP = "10.0.0.1"
DRY_RUN_NODE = "the-triton-node"


def spec_error_message(error: ValidationError) -> str:
    """The first error, with its field written as kubectl writes it (spec.models[0].name), as one sentence."""
    first = error.errors()[0]
    where = "spec" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"])
    what = first["msg"].removeprefix("Value error, ").rstrip(".")
    return f"{where}: {what}; fix it and apply the analysis again."


class Stopped(Protocol):
    def wait(self, timeout: float | None = None) -> object: ...
    def is_set(self) -> bool: ...


class StopRun(Exception):
    """The daemon was asked to stop, or the spec changed: leave the rest to the next run."""


class AnalysisFailed(Exception):
    def __init__(self, reason: Reason, message: str, condition: ConditionType = ConditionType.READY) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.condition = condition


EventSink = Callable[[str, str, str], None]  # (type Normal|Warning, reason, message)


class TritonSlots:
    """Caps how many Triton pods this operator runs at once; analyses beyond the cap wait as Queued."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.holders: set[str] = set()
        self.lock = threading.Lock()

    def acquire(self, key: str, *, already_running: bool) -> bool:
        with self.lock:
            # An analysis whose pod already exists (an operator restart) keeps it, even past the cap.
            if key in self.holders or already_running or len(self.holders) < self.limit:
                self.holders.add(key)
                return True
            return False

    def release(self, key: str) -> None:
        with self.lock:
            self.holders.discard(key)

    def release_analysis(self, key: str) -> None:
        """Free the analysis' slot and those of its trials (`<key>#<n>`)."""
        with self.lock:
            self.holders = {h for h in self.holders if h != key and not h.startswith(f"{key}#")}


def owner_reference(body: dict[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {"apiVersion": API_VERSION, "kind": KIND, "name": meta["name"], "uid": meta["uid"], "controller": True}


def pod_failure(pod: dict[str, Any]) -> tuple[Reason, str] | None:
    """Why a Triton pod cannot become ready, if it cannot: unschedulable, image pull, or a crash."""
    status = pod.get("status") or {}
    for cond in status.get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            return Reason.UNSCHEDULABLE, f"Triton pod cannot be scheduled: {cond.get('message', '')}"
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
            return (
                Reason.IMAGE_PULL_FAILED,
                f"Triton image {cs.get('image')} cannot be pulled: {waiting.get('message', waiting['reason'])}",
            )
        if waiting.get("reason") in ("CreateContainerConfigError", "CreateContainerError"):
            return (
                Reason.CONTAINER_CONFIG,
                f"Triton container cannot be created: {waiting.get('message', waiting['reason'])}",
            )
        if waiting.get("reason") == "CrashLoopBackOff":
            return Reason.SERVER_CRASHED, f"Triton keeps crashing: {waiting.get('message', '')}"
        terminated = state.get("terminated")
        if terminated:
            return Reason.SERVER_CRASHED, (
                f"Triton exited with code {terminated.get('exitCode')}: "
                f"{(terminated.get('message') or terminated.get('reason') or '').strip()[-600:]}"
            )
    if status.get("phase") in ("Failed", "Succeeded"):
        return Reason.SERVER_CRASHED, f"Triton pod ended in phase {status.get('phase')}: {status.get('message', '')}"
    return None


def pod_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def job_outcome(job: dict[str, Any]) -> str | None:
    """'Complete' or 'Failed' once the Job has finished, else None."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if (
            cond.get("type") in ("Complete", "Failed", "SuccessCriteriaMet", "FailureTarget")
            and cond.get("status") == "True"
        ):
            return "Failed" if cond["type"] in ("Failed", "FailureTarget") else "Complete"
    return None


def termination_message(pods: list[dict[str, Any]]) -> tuple[int | None, str]:
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (cs.get("state") or {}).get("terminated")
            if terminated:
                return terminated.get("exitCode"), (terminated.get("message") or "").strip()
    return None, ""


def unscheduled(pods: list[dict[str, Any]]) -> str | None:
    """The scheduler's reason when a Job's pod could not be placed (e.g. no node matches loadGenerator)."""
    for pod in pods:
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
                return f"the load-generator pod could not be scheduled: {cond.get('message', '')}"
    return None


def copied_results(message: str) -> dict[str, Any]:
    """What the results Job says it did (its termination message: copied files, and where earlier files went)."""
    try:
        said = json.loads(message)
    except ValueError:
        return {}
    return said if isinstance(said, dict) else {}


def stale_children(children: list[dict[str, Any]], generation: int, owner_uid: str) -> list[str]:
    """Names of the analysis's own children made for another generation of the spec: a new generation deletes
    them. An object that only carries the analysis's labels, without it as owner, is not among them."""
    return [
        child["metadata"]["name"]
        for child in children
        if owned_by(child, owner_uid)
        and (child["metadata"].get("labels") or {}).get(names.LABEL_GENERATION) != str(generation)
    ]


class AnalysisRun:
    def __init__(
        self,
        api: ChildApi,
        body: dict[str, Any],
        settings: OperatorSettings,
        slots: TritonSlots,
        stopped: Stopped,
        event: EventSink,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.api = api
        self.body = body
        self.name: str = body["metadata"]["name"]
        self.namespace: str = body["metadata"]["namespace"]
        self.uid: str = body["metadata"]["uid"]  # what the owner references of its children name
        self.owner = owner_reference(body)
        self.generation: int = int(body["metadata"].get("generation", 1))
        self.settings = settings
        self.slots = slots
        self.stopped = stopped
        self.event = event
        self.logger = logger
        self.status = ModelAnalysisStatus.model_validate(body.get("status") or {})
        self.slot_key = f"{self.namespace}/{self.name}"
        self.spec: ModelAnalysisSpec | None = None
        # Trials run in threads of their own (core/trials.py): status is changed and written under this lock, and
        # `halt` tells the others when one of them stops the run.
        self.lock = threading.RLock()
        self.halt = threading.Event()
        self.trial_runs: list[TrialRun] = []
        # Each trial's share of the result, changed in place by its engine.
        self.trial_results: dict[int, AnalysisResult] = {}

    # -- status ---------------------------------------------------------------------------------------
    def save(self, reset: bool = False) -> None:
        with self.lock:
            wire = self.status.wire()
            if reset:  # a merge patch keeps fields it does not mention: clear the last run's explicitly
                fields = {f.alias or n for n, f in ModelAnalysisStatus.model_fields.items()}
                wire = {**dict.fromkeys(fields), **wire}
            self.api.patch_status(self.namespace, self.name, wire)

    def condition(self, type_: ConditionType, ok: bool, reason: Reason, message: str) -> None:
        self.status.conditions = set_condition(self.status.conditions, type_, ok, reason, message, self.generation)

    def set_phase(self, phase: Phase, message: str) -> None:
        self.status.phase = phase.value
        self.status.message = short(message)

    def update_progress(self, total: int | None = None) -> None:
        points = self.status.points or []
        if total is not None:
            self.status.points_total = total
        self.status.points_done = len(points)
        self.status.progress = f"{self.status.points_done}/{self.status.points_total}"
        values = [p.throughput for p in points if p.throughput is not None]
        self.status.best_throughput = max(values) if values else None

    def sleep(self, seconds: float) -> None:
        if self.stopped.wait(seconds) or self.halt.is_set():
            raise StopRun()

    def check_generation(self) -> None:
        """Stop if asked to, or if the analysis is gone or its spec changed since this run started."""
        if self.stopped.is_set() or self.halt.is_set():
            raise StopRun()
        current = self.api.get_analysis(self.namespace, self.name)
        if current is None or int(current["metadata"].get("generation", 1)) != self.generation:
            raise StopRun()

    def create_child(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create a child, owned by the analysis, or find the analysis's own already there (a resumed run). A
        name held by anyone else's object ends the analysis (or this trial), that object untouched."""
        manifest["metadata"]["ownerReferences"] = [self.owner]
        return self.until_free(lambda: self.api.create(manifest))

    def read_child(self, kind: str, name: str) -> dict[str, Any] | None:
        """The analysis's own child of that name, or None; someone else's under that name ends the analysis."""
        return self.until_free(lambda: self.api.read_owned(kind, self.namespace, name, self.owner))

    def until_free(self, attempt: Callable[[], T]) -> T:
        """`attempt`, once no object of someone else's is in its way. The children of a deleted analysis of the
        same name (deleted and applied again at once) are being garbage-collected: wait for them to go, up to
        LEFTOVER_WAIT_SECONDS. Anything else in the way ends the analysis (or the trial) at once."""
        deadline, said = time.monotonic() + LEFTOVER_WAIT_SECONDS, False
        while True:
            try:
                return attempt()
            except NameTaken as taken:
                if not taken.leftover or time.monotonic() > deadline:
                    raise self.collision(taken) from None
                if not said:
                    self.logger.info("Waiting for %s %s of an earlier %s to be garbage-collected", taken.kind,
                                     taken.name, self.name)  # fmt: skip
                    said = True
                self.sleep(self.settings.poll_interval_seconds)

    def delete_child(self, kind: str, name: str) -> None:
        self.api.delete(kind, self.namespace, name, self.uid)

    def collision(self, taken: NameTaken) -> AnalysisFailed:
        points = len(self.status.points or [])
        kept = f"; the {points} points measured so far are kept in status" if points else ""
        return AnalysisFailed(Reason.NAME_IN_USE, collision_message(taken, self.name, kept))

    # -- the run --------------------------------------------------------------------------------------
    def run(self) -> None:
        if self.status.observed_generation == self.generation and self.status.phase in FINISHED_PHASES:
            return
        try:
            # 1. Validate the spec with the core's models.
            spec = self.validate()
            if spec is None:
                return
            self.spec = spec
            trials = self.plan(spec)
            # 2. A new generation starts a new run: forget the last one's progress and children.
            if self.status.observed_generation != self.generation:
                self.start_generation(trials)
            # 2b. The operator-wide policy: nothing is created for an image outside the allowlist.
            self.check_image(spec)
            # 2c. The Kubernetes fields the spec passes through are checked by the API server only when a pod is
            # made: ask it now (a dry run), before anything is created or waited for.
            self.check_children(spec)
            # 2d. Every name the analysis will give a child is free, or already its own (kube/ownership.py).
            self.check_names(spec, trials)
            # 3-5. Each trial: wait for a free Triton slot, start its server, then the baseline and each model and
            # point (the engine the CLI runs too), resuming from status.
            self.measure_trials(spec, trials)
            self.condition(ConditionType.PROFILING, False, Reason.SWEEP_DONE, "every point has been run")
            # 7. Write the CSV files; 8. clean up and finish.
            self.write_results(spec)
            self.finish(spec)
        except AnalysisFailed as failure:
            self.fail(failure)
        except StopRun:
            self.logger.info("Run stopped; it resumes from status when the analysis is next reconciled.")
        finally:
            # Hold the slots while the pods live (the next run resumes with them); free them once they are gone.
            if self.status.phase in FINISHED_PHASES or self.status.phase == Phase.QUEUED:
                self.slots.release_analysis(self.slot_key)

    def validate(self) -> ModelAnalysisSpec | None:
        try:
            return ModelAnalysisSpec.model_validate(self.body.get("spec") or {})
        except ValidationError as exc:
            message = spec_error_message(exc)
            self.status.observed_generation = self.generation
            self.set_phase(Phase.FAILED, message)
            self.condition(ConditionType.SPEC_VALID, False, Reason.INVALID_SPEC, message)
            self.condition(ConditionType.READY, False, Reason.INVALID_SPEC, message)
            self.save(reset=True)
            self.event("Warning", Reason.INVALID_SPEC, message)
            return None

    def plan(self, spec: ModelAnalysisSpec) -> list[Trial]:
        return plan_trials(plan_variants(spec), spec.triton.compared_versions, spec.parallelism.max_trials)

    def start_generation(self, trials: list[Trial]) -> None:
        for kind in ("Pod", "Job"):
            children = self.api.list(kind, self.namespace, f"{names.LABEL_ANALYSIS}={names.fit(self.name)}")
            for child in stale_children(children, self.generation, self.uid):
                self.delete_child(kind, child)
        assert self.spec is not None
        spec = self.spec
        self.status = ModelAnalysisStatus(
            phase=Phase.PENDING.value,
            observed_generation=self.generation,
            started_at=now_rfc3339(),
            triton_image=", ".join(dict.fromkeys(objects.triton_image(spec, self.settings, t.triton_version)
                                                 for t in trials)),
            load_generator_placement=spec.load_generator.placement.value,
        )  # fmt: skip
        empty = AnalysisResult(triton_version="")
        totals = [expected_point_count(spec, empty, t.variants, t.triton_version) for t in trials]
        if len(trials) > 1:
            self.status.trials = [
                TrialStatus(
                    name=t.name,
                    triton_version=t.triton_version or None,
                    variants=[v.name for v in t.variants],
                    points_total=total,
                )
                for t, total in zip(trials, totals, strict=True)
            ]
        self.update_progress(sum(totals))
        self.condition(ConditionType.SPEC_VALID, True, Reason.VALID, "spec is valid")
        self.save(reset=True)
        total, generation = self.status.points_total, self.generation
        in_trials = f" in {len(trials)} trials" if len(trials) > 1 else ""
        self.event("Normal", Reason.STARTED, f"Profiling {total} points{in_trials} (generation {generation})")

    def check_image(self, spec: ModelAnalysisSpec) -> None:
        for version in spec.triton.compared_versions or [""]:
            refusal = policy.image_refusal(objects.triton_image(spec, self.settings, version), self.settings)
            if refusal is not None:
                raise AnalysisFailed(Reason.IMAGE_NOT_ALLOWED, refusal, ConditionType.SPEC_VALID)

    def check_children(self, spec: ModelAnalysisSpec) -> None:
        first = Point(model=spec.models[0].name, batch_size=spec.batch_sizes[0], concurrency=spec.concurrency_steps[0])
        children = [
            ("Triton pod", "spec.triton", objects.triton_pod(self.name, self.namespace, self.generation, spec,
                                                             self.settings)),
            ("load-generator Job", "spec.loadGenerator", objects.load_generator_job(
                self.name, self.namespace, self.generation, spec, first, DRY_RUN_POD_IP, self.settings,
                server_node=DRY_RUN_NODE)),
        ]  # fmt: skip
        if spec.results.pvc is not None:
            job = objects.results_writer_job(self.name, self.namespace, self.generation, spec, self.settings,
                                             uid=self.uid)  # fmt: skip
            children.append(("results-writer Job", "spec.results", job))
        for what, field, manifest in children:
            refusal = self.api.dry_run(manifest)
            if refusal is not None:
                message = refusal_message(what, manifest["kind"], refusal, field)
                raise AnalysisFailed(Reason.INVALID_SPEC, message, ConditionType.SPEC_VALID)

    def check_names(self, spec: ModelAnalysisSpec, trials: list[Trial]) -> None:
        """Refuse, before anything is created, a child name that an object the analysis does not own holds: the
        Triton pods, the results ConfigMap and Job, the point Jobs of the listed steps. (Names known only later,
        a search's bisection steps and the results ConfigMaps past the first, are checked when created.)"""
        alone = len(trials) == 1
        for trial in trials:
            self.read_child("Pod", names.triton_pod_name(self.name, self.generation, None if alone else trial.index))
        self.read_child("ConfigMap", names.results_configmap_name(self.name))
        jobs = names.planned_point_job_names(self.name, self.generation, trials, spec.batch_sizes,
                                             spec.concurrency_steps)  # fmt: skip
        if spec.results.pvc is not None:
            jobs.add(names.results_job_name(self.name, self.generation))

        def look() -> None:
            taken = first_collision(self.api.list("Job", self.namespace), jobs, "Job", self.owner)
            if taken is not None:
                raise taken

        self.until_free(look)

    def check_claims(self, spec: ModelAnalysisSpec) -> None:
        """Refuse a claim that does not exist before anything runs: a missing results claim would otherwise
        surface only after the whole sweep, when the results Job cannot start."""
        claims = [
            ("modelRepository.pvc.claimName", spec.model_repository.pvc),
            ("results.pvc.claimName", spec.results.pvc),
        ]
        for field, location in claims:
            if location and self.api.read("PersistentVolumeClaim", self.namespace, location.claim_name) is None:
                raise AnalysisFailed(
                    Reason.INVALID_SPEC,
                    f"{field} {location.claim_name!r}: no such PersistentVolumeClaim in namespace "
                    f"{self.namespace}; create it or fix the name.",
                )

    # -- trials ---------------------------------------------------------------------------------------
    def trial_status(self, trial: Trial) -> TrialStatus:
        """The trial's entry in status.trials (there when the analysis runs more than one)."""
        assert self.status.trials is not None
        return self.status.trials[trial.index]

    def trial_share(self, full: AnalysisResult, trial: Trial) -> AnalysisResult:
        """What status holds of one trial: its points and outcomes, and its server's baseline."""
        variants = {v.name for v in trial.variants}
        baseline = self.trial_status(trial).baseline
        share = analysis_result(ModelAnalysisStatus(baseline=baseline), full.triton_version)
        share.server_version, share.started_at, share.notes = full.server_version, full.started_at, list(full.notes)
        share.model_configs = dict(full.model_configs)
        version = trial.triton_version
        share.points = [p for p in full.points if p.variant_name in variants and p.triton_version == version]
        share.models = [m for m in full.models if m.name in variants and m.triton_version == version]
        return share

    def measure_trials(self, spec: ModelAnalysisSpec, trials: list[Trial]) -> None:
        """Run every trial not finished yet: alone as the whole analysis, or several at once (at most
        spec.parallelism.maxTrials, each within the operator's cap on Triton pods)."""
        full = analysis_result(self.status, spec.triton.version or self.settings.default_triton_version)
        alone = len(trials) == 1
        self.trial_runs = [TrialRun(self, trial, alone) for trial in trials]
        if not alone and len(self.status.trials or []) != len(trials):  # status of an operator without trials
            self.status.trials = [
                TrialStatus(name=t.name, triton_version=t.triton_version or None, variants=[v.name for v in t.variants])
                for t in trials
            ]
        for trial in trials:
            self.trial_results[trial.index] = full if alone else self.trial_share(full, trial)
        if alone:
            self.trial_runs[0].run_trial()
            return
        pending = [t for t in self.trial_runs if self.trial_status(t.trial).phase not in FINISHED_PHASES]
        at_once = min(spec.parallelism.max_trials, len(pending)) or 1
        message = f"{len(trials)} trials, at most {at_once} at once"
        with self.lock:
            self.set_phase(Phase.PROFILING, message)
            self.condition(ConditionType.PROFILING, True, Reason.MEASURING, f"measuring {message}")
            self.save()
        with ThreadPoolExecutor(max_workers=at_once, thread_name_prefix=f"trial-{self.name}") as pool:
            # Each trial thread runs in a copy of this thread's context: kopf keeps its settings there (its Events
            # need them).
            futures = [pool.submit(contextvars.copy_context().run, t.run_guarded) for t in pending]
        errors = [e for f in futures if (e := f.exception()) is not None]
        if any(not isinstance(e, StopRun) for e in errors):
            raise next(e for e in errors if not isinstance(e, StopRun))
        if errors:
            raise StopRun()
        verdict = trials_verdict(self.status.trials or [])
        if verdict.all_failed is not None:
            reason, message = verdict.all_failed
            raise AnalysisFailed(Reason(reason), message)

    def record(self, event: EngineEvent, result: AnalysisResult, trial: Trial | None = None) -> None:
        """The engine's journal: everything measured so far goes to status, with an Event where one is due. With
        several trials, each journals its own share and status holds them all."""
        index = trial.index if trial is not None else 0
        with self.lock:
            self.trial_results[index] = result
            merged = self.merged_result()
            self.status.server_version = merged.server_version or None
            self.status.notes = list(merged.notes) or None
            self.status.baseline = compact_baseline(merged.baseline) if merged.baseline else None
            self.status.models = [model_entry(m) for m in merged.models] or None
            self.status.points = [compact_point(p) for p in merged.points] or None
            self.status.model_configs = merged.model_configs or None
            if merged.best is not None:
                best, variants = merged.best, {v.name: v for v in plan_variants(self.spec)} if self.spec else {}
                self.status.best = best_status(best.overall, merged, variants.get(best.overall.variant)) if (
                    best.overall) else None  # fmt: skip
                self.status.best_per_model = [best_status(b, merged, variants.get(b.variant))
                                              for b in best.per_model] or None  # fmt: skip
                self.status.best_per_version = [best_status(b, merged, variants.get(b.variant))
                                                for b in best.per_version] or None  # fmt: skip
                self.status.boundaries = [boundary_status(b) for b in best.boundaries] or None
            message = progress_message(event)
            if trial is not None and self.status.trials:
                entry = self.trial_status(trial)
                entry.points_done, entry.points_total = len(result.points), event.total
                entry.baseline = compact_baseline(result.baseline) if result.baseline else None
                entry.message = short(message) if message else entry.message
                self.update_progress(sum(t.points_total for t in self.status.trials))
            else:
                self.update_progress(event.total)
                if message:
                    self.set_phase(Phase.PROFILING, message)
            self.save()
        posted = event_for(event)
        if posted is not None:
            where = f"[{trial.name}] " if trial is not None and self.status.trials else ""
            self.event(posted.type, posted.reason, where + posted.message)

    def merged_result(self) -> AnalysisResult:
        """Every trial's share as one result, in the trials' order, with the best point over them all."""
        results = [self.trial_results[i] for i in sorted(self.trial_results)]
        if len(results) == 1:
            return results[0]
        merged = AnalysisResult(
            triton_version=results[0].triton_version,
            server_version=", ".join(dict.fromkeys(r.server_version for r in results if r.server_version)),
            baseline=next((r.baseline for r in results if r.baseline is not None), None),
            models=[m for r in results for m in r.models],
            points=[p for r in results for p in r.points],
            notes=list(dict.fromkeys(n for r in results for n in r.notes)),
            model_configs={k: v for r in reversed(results) for k, v in r.model_configs.items()},
        )
        if self.spec is not None:
            merged.best = choose_best(merged.points, self.spec.objective, self.spec.constraints)
        return merged

    def write_results(self, spec: ModelAnalysisSpec) -> None:
        self.set_phase(Phase.WRITING_RESULTS, "writing CSV files and report.html")
        self.save()
        result = analysis_result(self.status, spec.triton.version or self.settings.default_triton_version)
        result.finished_at = result.finished_at or time.time()  # the report says how long it took
        result.objective, result.constraints = spec.objective, spec.constraints  # for Satisfies Constraints
        files = {**csv_files(result), REPORT_HTML: render_html(result, title=self.name)}
        configmaps = objects.results_configmaps(self.name, self.namespace, self.generation, files)
        for configmap in configmaps:
            self.create_child(configmap)
        self.status.results = f"configmap/{names.results_configmap_name(self.name)}"
        if len(configmaps) > 1:
            self.status.results += f" (and {len(configmaps) - 1} more: -2, -3, ...)"
        if spec.results.pvc is None:
            return
        manifest = objects.results_writer_job(
            self.name, self.namespace, self.generation, spec, self.settings, configmaps=len(configmaps), uid=self.uid
        )
        job = self.create_child(manifest)
        job_name = manifest["metadata"]["name"]
        deadline = time.monotonic() + 300
        while job_outcome(job) is None and time.monotonic() < deadline:
            self.sleep(self.settings.poll_interval_seconds)
            job = self.read_child("Job", job_name) or job
        # This Job's pods only, by its uid: not a pod someone else labelled job-name=<this name>.
        pods = self.api.list("Pod", self.namespace, f"batch.kubernetes.io/controller-uid={job['metadata']['uid']}")
        _, message = termination_message(pods)
        if job_outcome(job) != "Complete":
            self.delete_child("Job", job_name)  # it has said why: nothing stays behind
            raise AnalysisFailed(
                Reason.RESULTS_WRITE_FAILED,
                results_write_failure(
                    spec.results.pvc.claim_name,
                    objects.results_folder(self.name, spec),
                    message,
                    names.results_configmap_name(self.name),
                    self.name,
                ),
            )
        self.delete_child("Job", job_name)
        self.status.results = f"pvc://{spec.results.pvc.claim_name}/{objects.results_folder(self.name, spec)}"
        set_aside = copied_results(message).get("setAside")
        if set_aside:
            folder = objects.results_folder(self.name, spec)
            moved = posixpath.join(posixpath.dirname(folder), str(set_aside))
            note = f"{folder} on the results claim held earlier files (not this run's): they were moved to {moved}"
            self.status.notes = [*(self.status.notes or []), note]
            self.event("Normal", Reason.EARLIER_RESULTS_KEPT, note)

    def delete_triton_pods(self) -> None:
        self.delete_child("Pod", names.triton_pod_name(self.name, self.generation))
        for trial_run in self.trial_runs:
            if not trial_run.alone:
                trial_run.delete_triton_pod()

    def finish(self, spec: ModelAnalysisSpec) -> None:
        self.delete_triton_pods()
        points = self.status.points or []
        measured = [p for p in points if p.status == PointStatus.MEASURED]
        failed_models = [m.name for m in self.status.models or [] if m.status == ModelStatus.LOAD_FAILED]
        self.status.finished_at = now_rfc3339()
        summary = f"{len(measured)}/{len(points)} points measured; results in {self.status.results}"
        if failed_models:
            summary += f"; failed to load: {', '.join(failed_models)}"
        failed_trials = trials_verdict(self.status.trials or []).failed
        if failed_trials:
            summary += f"; trials failed: {', '.join(failed_trials)} (see status.trials)"
        if measured:
            self.set_phase(Phase.SUCCEEDED, summary)
            self.condition(ConditionType.READY, True, Reason.SUCCEEDED, summary)
            self.event("Normal", Reason.SUCCEEDED, summary)
        else:
            self.set_phase(Phase.FAILED, summary)
            self.condition(ConditionType.READY, False, Reason.NO_POINTS, summary)
            self.event("Warning", Reason.NO_POINTS, summary)
        self.save()

    def fail(self, failure: AnalysisFailed) -> None:
        self.delete_triton_pods()
        self.status.observed_generation = self.generation
        self.status.finished_at = now_rfc3339()
        self.set_phase(Phase.FAILED, failure.message)
        if failure.condition != ConditionType.READY:
            self.condition(failure.condition, False, failure.reason, failure.message)
        self.condition(ConditionType.READY, False, failure.reason, failure.message)
        self.save()
        self.event("Warning", failure.reason, failure.message)


class TrialRun:
    """One trial (core/trials.py): its Triton pod, started once a slot is free, and its points, measured one at a
    time by the engine. Alone, it is the whole analysis and speaks through the analysis' own phase and
    conditions; one of several, it speaks through its entry in status.trials and its pod goes when it ends."""

    def __init__(self, run: AnalysisRun, trial: Trial, alone: bool) -> None:
        self.run = run
        self.trial = trial
        self.alone = alone
        self.pod_name = names.triton_pod_name(run.name, run.generation, None if alone else trial.index)
        self.slot_key = run.slot_key if alone else f"{run.slot_key}#{trial.index + 1}"
        # Where the Triton pod runs (known once it is scheduled), and where the last point's Job ran.
        self.server_node: str | None = None
        self.server_tolerations: list[dict[str, Any]] = []
        self.load_generator_node: str | None = None
        # How many times each point's load generator was started by this run (an interrupted one runs again once).
        self.point_runs: dict[str, int] = {}

    @property
    def spec(self) -> ModelAnalysisSpec:
        assert self.run.spec is not None
        return self.run.spec

    def show(self, phase: Phase, message: str, condition: tuple[ConditionType, bool, Reason] | None = None) -> None:
        """Say where the trial stands: as the analysis' phase (and condition) alone, else in its status entry."""
        with self.run.lock:
            if self.alone:
                self.run.set_phase(phase, message)
                if condition is not None:
                    self.run.condition(*condition, message)
            else:
                entry = self.run.trial_status(self.trial)
                entry.phase, entry.message = phase.value, short(message)
                if phase == Phase.PROFILING and entry.started_at is None:
                    entry.started_at = now_rfc3339()
            self.run.save()

    def run_guarded(self) -> None:
        """One of several trials, in its own thread: a failure of its own (its server, its pod) is recorded and
        the other trials go on; a stop, or anything unexpected, halts them all."""
        try:
            self.run_trial()
        except AnalysisFailed as failure:
            self.delete_triton_pod()
            self.run.slots.release(self.slot_key)
            with self.run.lock:
                entry = self.run.trial_status(self.trial)
                entry.reason, entry.finished_at = failure.reason.value, now_rfc3339()
            self.show(Phase.FAILED, failure.message)
            self.run.event("Warning", failure.reason, f"[{self.trial.name}] {failure.message}")
        except BaseException:
            self.run.halt.set()
            raise

    def run_trial(self) -> None:
        self.run.check_generation()  # a trial that waited its turn starts nothing for a run that has stopped
        self.wait_for_slot()
        pod_ip = self.ensure_triton_pod()
        if self.alone:
            with self.run.lock:
                self.run.set_phase(Phase.PROFILING, "measuring")
                self.run.condition(ConditionType.PROFILING, True, Reason.MEASURING, "measuring points one at a time")
                self.run.save()
        else:
            self.show(Phase.PROFILING, "measuring")
        self.measure(pod_ip)
        if not self.alone:
            self.delete_triton_pod()
            self.run.slots.release(self.slot_key)
            share = self.run.trial_results[self.trial.index]
            end = trial_end(share.models, len(share.points))
            with self.run.lock:
                entry = self.run.trial_status(self.trial)
                entry.finished_at, entry.reason = now_rfc3339(), end.reason.value if end.reason else None
            self.show(end.phase, end.message)
            if end.reason is not None:
                self.run.event("Warning", end.reason, f"[{self.trial.name}] {end.message}")

    def wait_for_slot(self) -> None:
        exists = self.run.read_child("Pod", self.pod_name) is not None
        announced = False
        while not self.run.slots.acquire(self.slot_key, already_running=exists):
            if not announced:
                message = f"waiting: {self.run.slots.limit} Triton pods are running, the operator's maximum"
                self.show(Phase.QUEUED, message, (ConditionType.SERVER_READY, False, Reason.QUEUED))
                self.run.event("Normal", Reason.QUEUED, message if self.alone else f"[{self.trial.name}] {message}")
                announced = True
            self.run.sleep(2.0)

    def ensure_triton_pod(self) -> str:
        run, spec, pod_name = self.run, self.spec, self.pod_name
        manifest = objects.triton_pod(
            run.name, run.namespace, run.generation, spec, run.settings,
            trial=None if self.alone else self.trial.index, triton_version=self.trial.triton_version,
        )  # fmt: skip
        pod = run.read_child("Pod", pod_name)  # after an operator restart: its own pod, never one by name only
        if pod is None:
            run.check_claims(spec)
            pod = run.create_child(manifest)
            with run.lock:
                if self.alone:
                    run.status.triton_pod = pod_name
                else:
                    run.trial_status(self.trial).pod = pod_name
            created = (ConditionType.SERVER_READY, False, Reason.POD_CREATED)
            self.show(Phase.STARTING, f"starting Triton pod {pod_name}", created)
            run.event(
                "Normal",
                Reason.POD_CREATED,
                f"Created Triton pod {pod_name} ({manifest['spec']['containers'][0]['image']})",
            )
        timeout = spec.triton.ready_timeout_seconds or run.settings.triton_ready_timeout_seconds
        deadline = time.monotonic() + timeout
        said = run.status.message if self.alone else run.trial_status(self.trial).message
        while True:
            if pod is None:
                raise AnalysisFailed(
                    Reason.SERVER_GONE, f"Triton pod {pod_name} was deleted", ConditionType.SERVER_READY
                )
            failure = pod_failure(pod)
            # Unschedulable can pass (a GPU frees up, the autoscaler adds a node), and so can a missing Secret
            # or ConfigMap (someone creates it): say so and wait until the timeout. An image that cannot be
            # pulled or a server that crashed will not mend by waiting.
            if failure and failure[0] not in (Reason.UNSCHEDULABLE, Reason.CONTAINER_CONFIG):
                raise AnalysisFailed(failure[0], failure[1], ConditionType.SERVER_READY)
            if failure and said != failure[1]:
                said = failure[1]
                self.show(Phase.STARTING, failure[1], (ConditionType.SERVER_READY, False, failure[0]))
                where = "" if self.alone else f"[{self.trial.name}] "
                run.event("Warning", failure[0], f"{where}{failure[1]} (waiting up to {timeout} s)")
            if pod_ready(pod) and pod.get("status", {}).get("podIP"):
                break
            if time.monotonic() > deadline:
                reason, why = failure or (Reason.SERVER_TIMEOUT, f"phase {pod.get('status', {}).get('phase')}")
                raise AnalysisFailed(
                    reason,
                    f"Triton pod {pod_name} was not ready within {timeout} s ({why}); "
                    f"see `kubectl describe pod {pod_name}`",
                    ConditionType.SERVER_READY,
                )
            run.sleep(run.settings.poll_interval_seconds)
            pod = run.read_child("Pod", pod_name)
        pod_ip = str(pod["status"]["podIP"])
        # The load-generator Jobs go beside it by default, tolerating what it tolerates (admission plugins and
        # webhooks may have added tolerations that the spec does not list, e.g. for GPU taints).
        self.server_node = pod["spec"].get("nodeName")
        self.server_tolerations = list(pod["spec"].get("tolerations") or [])
        if not self.alone:
            with run.lock:
                run.trial_status(self.trial).node = self.server_node
        phase = run.status.phase if self.alone else run.trial_status(self.trial).phase
        if phase in (Phase.PENDING, Phase.QUEUED, Phase.STARTING):
            ready = f"Triton answers at {pod_ip}"
            with run.lock:
                if self.alone:
                    run.condition(ConditionType.SERVER_READY, True, Reason.SERVER_READY, ready)
            self.show(Phase.STARTING, "Triton is ready" if self.alone else ready)
            run.event("Normal", Reason.SERVER_READY, f"Triton pod {pod_name} is ready at {pod_ip}")
        return pod_ip

    def metrics_url(self, pod_ip: str) -> str:
        host = f"[{pod_ip}]" if ":" in pod_ip else pod_ip
        return f"http://{host}:{objects.METRICS_PORT}/metrics"

    def measure(self, pod_ip: str) -> None:
        run, spec = self.run, self.spec
        control = TritonControl(f"{pod_ip}:{objects.HTTP_PORT}")
        engine = SweepEngine(
            spec,
            control,
            self.metrics_url(pod_ip),
            lambda point, settings: self.run_point_job(point, pod_ip),
            lambda event, result: run.record(event, result, None if self.alone else self.trial),
            memory_utilization=DcgmMemoryUtilization(run.settings.prometheus_url)
            if run.settings.prometheus_url
            else None,
            owns_server=True,
            tidy_on_stop=False,  # a stopped run resumes on this pod: the model stays loaded for it
            where_ran=lambda: Placement(
                server_node=self.server_node,
                load_generator_node=self.load_generator_node,
                load_generator_placement=spec.load_generator.placement.value,
            ),
            checkpoint=run.check_generation,
            wait=run.sleep,
            variants=self.trial.variants,
            triton_version=self.trial.triton_version,
        )
        try:
            engine.run(run.trial_results[self.trial.index])
        except TritonUnreachable as exc:
            raise AnalysisFailed(Reason.SERVER_GONE, str(exc), ConditionType.SERVER_READY) from None
        finally:
            control.close()

    def run_point_job(self, point: Point, pod_ip: str) -> PerfMeasurement:
        """One point as a load-generator Job; its container measures the point and returns the result in its
        termination message. A Job whose pod is deleted, evicted or preempted mid-point asks the engine to
        measure the point again, once (transitions.after_interruption): nothing was wrong with the point."""
        self.point_runs[point.key] = runs = self.point_runs.get(point.key, 0) + 1
        self.check_server(point, pod_ip)  # no Job against a server that is gone
        exit_code, message, interruption = self.run_load_generator(point, pod_ip)
        if exit_code == 0:
            try:
                return PerfMeasurement.model_validate_json(message)
            except ValidationError:
                raise PointMeasurementError(
                    f"the load generator's result could not be read: {message[:200]!r}"
                ) from None
        # A point that failed because the server went away is not the point's failure: the run fails, with
        # why, and the interrupted point is not recorded (every point measured before it is kept).
        self.check_server(point, pod_ip)
        if interruption is None:
            raise PointMeasurementError(message)
        decision = after_interruption(point.key, runs, interruption)
        if not decision.rerun:
            raise PointMeasurementError(decision.error or interruption)
        if decision.event is not None:
            self.run.event(decision.event.type, decision.event.reason, decision.event.message)
        self.run.check_generation()  # the analysis itself may be what is going away
        raise MeasureAgain(interruption)

    def run_load_generator(self, point: Point, pod_ip: str) -> tuple[int | None, str, str | None]:
        """Run the point's Job to its end: (exit code, termination message or why it failed, why it was
        interrupted from outside if it was). The Job and its pods are gone when this returns."""
        run, spec = self.run, self.spec
        manifest = objects.load_generator_job(
            run.name, run.namespace, run.generation, spec, point, pod_ip, run.settings,
            server_node=self.server_node, server_tolerations=self.server_tolerations,
        )  # fmt: skip
        job_name = manifest["metadata"]["name"]
        self.load_generator_node = None
        job = run.create_child(manifest)  # after an operator restart: the Job it had started, adopted
        # This Job's pods only, by its uid: a pod of an earlier Job of the same name may still be going.
        job_uid = job["metadata"]["uid"]
        pod_selector = f"batch.kubernetes.io/controller-uid={job_uid}"
        deadline = time.monotonic() + spec.measurement.point_timeout_seconds + 120
        seen_pod = False
        while True:
            # The container's end is the point's end: its result is in the termination message as soon as
            # the kubelet records it, a moment before the Job controller marks the Job finished.
            pods = run.api.list("Pod", run.namespace, pod_selector)
            seen_pod = seen_pod or bool(pods)
            self.load_generator_node = next(
                (p["spec"]["nodeName"] for p in pods if p["spec"].get("nodeName")), self.load_generator_node
            )
            exit_code, message = termination_message(pods)
            if exit_code == 0:
                break
            interrupted = load_generator_interruption(job, pods, seen_pod) is not None
            if interrupted or exit_code is not None or job_outcome(job) is not None or time.monotonic() > deadline:
                # The Job as it is now: a deadline that passed deletes its pods, which is not an interruption.
                job = run.read_child("Job", job_name) or job
                break
            run.sleep(run.settings.poll_interval_seconds)
            job = run.read_child("Job", job_name) or job
        interruption = None if exit_code == 0 else load_generator_interruption(job, pods, seen_pod)
        run.delete_child("Job", job_name)
        if interruption is not None:
            # A rerun must not overlap a load generator still stopping (it would load the server twice), nor
            # find this Job again under the same name.
            for pod in pods:  # owned by the Job, whose pods they are by the selector
                run.api.delete("Pod", run.namespace, pod["metadata"]["name"], job_uid)
            self.wait_gone(job_name, pod_selector)
        return (
            exit_code,
            message or unscheduled(pods) or f"load-generator Job {job_name} did not complete",
            interruption,
        )

    def wait_gone(self, job_name: str, pod_selector: str, timeout: float = 120) -> None:
        run = self.run
        deadline = time.monotonic() + timeout
        while run.read_child("Job", job_name) is not None or run.api.list("Pod", run.namespace, pod_selector):
            if time.monotonic() > deadline:
                run.logger.warning("Job %s or its pods still there after %.0f s; going on", job_name, timeout)
                return
            run.sleep(run.settings.poll_interval_seconds)

    def check_server(self, point: Point, pod_ip: str) -> None:
        """Fail the trial if its Triton pod is gone, going, crashed or replaced: measuring on would only record
        every remaining point as failed. It fails instead (decided: no new pod mid-sweep, whose server would
        not be the one the earlier points were measured on), saying which point it stopped at."""
        pod_name, run = self.pod_name, self.run
        pod = run.read_child("Pod", pod_name)
        kept = f"the {len(run.status.points or [])} points measured before it are kept in status"
        replaced = pod is not None and (pod.get("status") or {}).get("podIP") not in (None, pod_ip)
        if pod is None or pod["metadata"].get("deletionTimestamp") or replaced:
            raise AnalysisFailed(
                Reason.SERVER_GONE,
                f"Triton pod {pod_name} was deleted while point {point.key} was measured; {kept}. "
                "Change the spec (or delete and re-create the analysis) to run it again.",
                ConditionType.SERVER_READY,
            )
        failure = pod_failure(pod)
        if failure is not None:
            raise AnalysisFailed(
                failure[0], f"{failure[1]} (while point {point.key} was measured; {kept})", ConditionType.SERVER_READY
            )

    def delete_triton_pod(self) -> None:
        self.run.delete_child("Pod", self.pod_name)
