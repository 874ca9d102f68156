"""One ModelAnalysis, run to completion from whatever state its status and its children are in.

Every step observes first and creates only what is missing, and every measured point is written to status
before the next starts, so an operator restarted at any moment picks up where it was: no point measured
twice, none lost. Steps wait by polling with `stopped.wait()`, which returns at once when kopf stops the
daemon (the analysis was deleted, or the operator is exiting).
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from modelanalysis.core.results import AnalysisResult, ModelStatus, PointStatus, expected_point_count
from modelanalysis.core.trials import Trial, plan_trials
from modelanalysis.core.variants import plan_variants
from modelanalysis.kube import journal, names, objects, preflight, results_writer
from modelanalysis.kube.api import ChildApi
from modelanalysis.kube.conditions import analysis_result, now_rfc3339, set_condition, short
from modelanalysis.kube.failures import AnalysisFailed, EventSink, Stopped, StopRun
from modelanalysis.kube.ownership import NameTaken, collision_message
from modelanalysis.kube.readings import owner_reference, stale_children
from modelanalysis.kube.resource import (
    FINISHED_PHASES,
    ConditionType,
    ModelAnalysisSpec,
    ModelAnalysisStatus,
    Phase,
    Reason,
    TrialStatus,
)
from modelanalysis.kube.settings import OperatorSettings
from modelanalysis.kube.slots import TritonSlots
from modelanalysis.kube.transitions import analysis_standing, trials_verdict
from modelanalysis.kube.trial_run import TrialRun
from modelanalysis.kube.waiting import LEFTOVER_SECONDS, Deadline

T = TypeVar("T")
LEFTOVER_WAIT_SECONDS = LEFTOVER_SECONDS  # a module attribute, so tests can shorten the wait


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
        self.trials_at_once = 1

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
        deadline, said = Deadline(LEFTOVER_WAIT_SECONDS), False
        while True:
            try:
                return attempt()
            except NameTaken as taken:
                if not taken.leftover or deadline.passed:
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
        return AnalysisFailed(Reason.NAME_IN_USE, collision_message(taken, kept))

    # -- the run --------------------------------------------------------------------------------------
    def run(self) -> None:
        if self.status.observed_generation == self.generation and self.status.phase in FINISHED_PHASES:
            return
        try:
            # 1. Validate the spec with the core's models.
            spec = preflight.validate(self)
            if spec is None:
                return
            self.spec = spec
            trials = self.plan(spec)
            # 2. A new generation starts a new run: forget the last one's progress and children.
            if self.status.observed_generation != self.generation:
                self.start_generation(trials)
            # 2b. The operator-wide policy: nothing is created for an image outside the allowlist.
            preflight.check_image(self, spec)
            # 2c. The Kubernetes fields the spec passes through are checked by the API server only when a pod is
            # made: ask it now (a dry run), before anything is created or waited for.
            preflight.check_children(self, spec)
            # 2d. Every name the analysis will give a child is free, or already its own (kube/ownership.py).
            preflight.check_names(self, spec, trials)
            # 3-5. Each trial: wait for a free Triton slot, start its server, then the baseline and each model and
            # point (the engine the CLI runs too), resuming from status.
            self.measure_trials(spec, trials)
            self.condition(ConditionType.PROFILING, False, Reason.SWEEP_DONE, "every point has been run")
            # 7. Write the CSV files; 8. clean up and finish.
            results_writer.write_results(self, spec)
            self.finish(spec)
        except AnalysisFailed as failure:
            self.fail(failure)
        except StopRun:
            self.logger.info("Run stopped; it resumes from status when the analysis is next reconciled.")
        finally:
            # Hold the slots while the pods live (the next run resumes with them); free them once they are gone.
            if self.status.phase in FINISHED_PHASES or self.status.phase == Phase.QUEUED:
                self.slots.release_analysis(self.slot_key)

    def plan(self, spec: ModelAnalysisSpec) -> list[Trial]:
        # Models measured together share one server: their variants are never split between trials.
        max_trials = 1 if spec.profile_models_concurrently else spec.parallelism.max_trials
        return plan_trials(plan_variants(spec), spec.triton.compared_versions, max_trials)

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

    # -- trials ---------------------------------------------------------------------------------------
    def trial_status(self, trial: Trial) -> TrialStatus:
        """The trial's entry in status.trials."""
        assert self.status.trials is not None
        return self.status.trials[trial.index]

    def show_trials(self) -> None:
        """The analysis' phase, message and Triton pods, derived from its trials' entries in one step."""
        standing = analysis_standing(self.status.trials or [], self.trials_at_once)
        if standing is not None:
            self.set_phase(standing.phase, standing.message)
            self.status.triton_pod = standing.triton_pods

    def measure_trials(self, spec: ModelAnalysisSpec, trials: list[Trial]) -> None:
        """Run every trial not finished yet, at most spec.parallelism.maxTrials at once (each within the
        operator's cap on Triton pods), each in a thread of its own."""
        full = analysis_result(self.status, spec.triton.version or self.settings.default_triton_version)
        self.trial_runs = [TrialRun(self, trial, len(trials)) for trial in trials]
        if len(self.status.trials or []) != len(trials):  # the status of an operator that wrote no trials
            one = len(trials) == 1  # there, one trial's pod and baseline are the analysis' own
            self.status.trials = [
                TrialStatus(
                    name=t.name,
                    triton_version=t.triton_version or None,
                    variants=[v.name for v in t.variants],
                    pod=self.status.triton_pod if one else None,
                    baseline=self.status.baseline if one else None,
                )
                for t in trials
            ]
        for trial in trials:
            self.trial_results[trial.index] = journal.trial_share(self, full, trial)
        pending = [t for t in self.trial_runs if self.trial_status(t.trial).phase not in FINISHED_PHASES]
        self.trials_at_once = min(spec.parallelism.max_trials, len(pending)) or 1
        with ThreadPoolExecutor(max_workers=self.trials_at_once, thread_name_prefix=f"trial-{self.name}") as pool:
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

    def delete_triton_pods(self) -> None:
        pods = {names.triton_pod_name(self.name, self.generation), *(t.pod_name for t in self.trial_runs)}
        for pod in sorted(pods):  # the first: one trial's, also when the run ends before its trials are planned
            self.delete_child("Pod", pod)

    def finish(self, spec: ModelAnalysisSpec) -> None:
        self.delete_triton_pods()
        points = self.status.points or []
        measured = [p for p in points if p.status == PointStatus.MEASURED]
        failed_models = [m.name for m in self.status.models or [] if m.status == ModelStatus.LOAD_FAILED]
        refused = [m.name for m in self.status.models or [] if m.status == ModelStatus.REFUSED]
        self.status.finished_at = now_rfc3339()
        summary = f"{len(measured)}/{len(points)} points measured; results in {self.status.results}"
        if failed_models:
            summary += f"; failed to load: {', '.join(failed_models)}"
        if refused:
            summary += f"; refused: {', '.join(refused)} (see status.models)"
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
