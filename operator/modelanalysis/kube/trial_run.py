"""One trial (core/trials.py) in the operator: a Triton slot, its Triton pod, and its points measured one at a time
by the engine (each as a load-generator Job, kube/point_jobs.py)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from modelanalysis.adapters.dcgm_prometheus import DcgmMemoryUtilization
from modelanalysis.adapters.triton_control import TritonControl, TritonUnreachable
from modelanalysis.core.results import Placement
from modelanalysis.core.sweep import Point
from modelanalysis.core.trials import Trial
from modelanalysis.engine import SweepEngine
from modelanalysis.kube import journal, names, objects, point_jobs, preflight
from modelanalysis.kube.conditions import now_rfc3339, short
from modelanalysis.kube.failures import AnalysisFailed
from modelanalysis.kube.readings import pod_failure, pod_ready
from modelanalysis.kube.resource import ConditionType, ModelAnalysisSpec, Phase, Reason
from modelanalysis.kube.slots import SETTLING_MESSAGE, queue_update_interval_s, queued_message
from modelanalysis.kube.transitions import trial_end
from modelanalysis.kube.waiting import Deadline

if TYPE_CHECKING:
    from modelanalysis.kube.reconcile import AnalysisRun


class TrialRun:
    """One trial (core/trials.py): its Triton pod, started once a slot is free, and its points, measured one at a
    time by the engine. It speaks through its entry in status.trials; the analysis' phase is derived from the
    entries (AnalysisRun.show_trials). Its pod goes when it ends."""

    def __init__(self, run: AnalysisRun, trial: Trial, trial_count: int) -> None:
        self.run = run
        self.trial = trial
        self.pod_name = names.trial_pod_name(run.name, run.generation, trial, trial_count)
        # One trial's names and words are the analysis' own; one of several is told apart by its number and name.
        self.slot_key = run.slot_key if trial_count == 1 else f"{run.slot_key}#{trial.index + 1}"
        self.label = "" if trial_count == 1 else f"[{trial.name}] "
        self.pod_trial = None if trial_count == 1 else trial.index
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
        """Say where the trial stands, in its status entry (and a condition of the analysis, when given); the
        analysis' phase follows from the entries."""
        with self.run.lock:
            entry = self.run.trial_status(self.trial)
            entry.phase, entry.message = phase.value, short(message)
            if phase == Phase.PROFILING and entry.started_at is None:
                entry.started_at = now_rfc3339()
            if condition is not None:
                self.run.condition(*condition, self.label + message)
            self.run.show_trials()
            self.run.save()

    def run_guarded(self) -> None:
        """The trial, in a thread of its own: a failure of its own (its server, its pod) is recorded and the
        other trials go on; a stop, or anything unexpected, halts them all."""
        try:
            self.run_trial()
        except AnalysisFailed as failure:
            self.delete_triton_pod()
            self.run.slots.release(self.slot_key)
            with self.run.lock:
                entry = self.run.trial_status(self.trial)
                entry.reason, entry.finished_at = failure.reason.value, now_rfc3339()
            named = failure.condition != ConditionType.READY  # READY is the analysis' own: set when it ends
            self.show(Phase.FAILED, failure.message, (failure.condition, False, failure.reason) if named else None)
            if self.label:  # one of several: the analysis goes on, so its Event is the only word of it
                self.run.event("Warning", failure.reason, self.label + failure.message)
        except BaseException:
            self.run.halt.set()
            raise

    def run_trial(self) -> None:
        self.run.check_generation()  # a trial that waited its turn starts nothing for a run that has stopped
        self.wait_for_slot()
        pod_ip = self.ensure_triton_pod()
        with self.run.lock:
            self.run.condition(ConditionType.PROFILING, True, Reason.MEASURING, "measuring points one at a time")
        self.show(Phase.PROFILING, "measuring")
        self.measure(pod_ip)
        self.delete_triton_pod()
        self.run.slots.release(self.slot_key)
        share = self.run.trial_results[self.trial.index]
        end = trial_end(share.models, len(share.points))
        with self.run.lock:
            entry = self.run.trial_status(self.trial)
            entry.finished_at, entry.reason = now_rfc3339(), end.reason.value if end.reason else None
        self.show(end.phase, end.message)
        if end.reason is not None and self.label:
            self.run.event("Warning", end.reason, self.label + end.message)

    def wait_for_slot(self) -> None:
        """Wait for a Triton slot (kube/slots.py: fair between namespaces), saying in status where the analysis
        stands in the queue, as it moves."""
        exists = self.run.read_child("Pod", self.pod_name) is not None
        slots, since = self.run.slots, str(self.run.body.get("metadata", {}).get("creationTimestamp") or "")
        said, said_at = "", 0.0
        try:
            while not slots.acquire(self.slot_key, already_running=exists, since=since):
                message = SETTLING_MESSAGE if slots.settling else queued_message(
                    slots.position(self.slot_key), slots.in_use(), slots.limit, slots.per_namespace)  # fmt: skip
                due = time.monotonic() - said_at >= queue_update_interval_s(len(slots.waiters))
                if message != said and (not said or due):
                    self.show(Phase.QUEUED, message, (ConditionType.SERVER_READY, False, Reason.QUEUED))
                    if not said:
                        self.run.event("Normal", Reason.QUEUED, self.label + message)
                    said, said_at = message, time.monotonic()
                self.run.sleep(2.0)
        except BaseException:
            slots.withdraw(self.slot_key)  # stopped while waiting: no longer in the queue
            raise

    def ensure_triton_pod(self) -> str:
        run, spec, pod_name = self.run, self.spec, self.pod_name
        manifest = objects.triton_pod(
            run.name, run.namespace, run.generation, spec, run.settings,
            trial=self.pod_trial, triton_version=self.trial.triton_version,
        )  # fmt: skip
        pod = run.read_child("Pod", pod_name)  # after an operator restart: its own pod, never one by name only
        if pod is None:
            preflight.check_claims(run, spec)
            pod = run.create_child(manifest)
            with run.lock:
                run.trial_status(self.trial).pod = pod_name
            created = (ConditionType.SERVER_READY, False, Reason.POD_CREATED)
            self.show(Phase.STARTING, f"starting Triton pod {pod_name}", created)
            run.event(
                "Normal",
                Reason.POD_CREATED,
                f"Created Triton pod {pod_name} ({manifest['spec']['containers'][0]['image']})",
            )
        timeout = spec.triton.ready_timeout_seconds or run.settings.triton_ready_timeout_seconds
        deadline = Deadline(timeout)
        said = run.trial_status(self.trial).message
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
                run.event("Warning", failure[0], f"{self.label}{failure[1]} (waiting up to {timeout} s)")
            if pod_ready(pod) and pod.get("status", {}).get("podIP"):
                break
            if deadline.passed:
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
        with run.lock:
            entry = run.trial_status(self.trial)
            entry.node = self.server_node
        if entry.phase in (None, Phase.PENDING, Phase.QUEUED, Phase.STARTING):
            ready = f"Triton answers at {pod_ip}"
            self.show(Phase.STARTING, ready, (ConditionType.SERVER_READY, True, Reason.SERVER_READY))
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
            lambda point, settings: point_jobs.run_point_job(self, point, pod_ip),
            lambda event, result: journal.record(run, event, result, self.trial),
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
            run_together=lambda points, settings: point_jobs.run_group_job(self, points, pod_ip),
        )
        try:
            engine.run(run.trial_results[self.trial.index])
        except TritonUnreachable as exc:
            raise AnalysisFailed(Reason.SERVER_GONE, str(exc), ConditionType.SERVER_READY) from None
        finally:
            control.close()

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
