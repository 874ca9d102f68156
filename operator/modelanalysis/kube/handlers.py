"""kopf entry point: `kopf run --standalone -m modelanalysis.kube.handlers --all-namespaces`.

kopf watches ModelAnalysis objects; this module runs each unfinished one (reconcile.AnalysisRun) in a thread
of its own, started when an analysis is seen unfinished (created, its spec changed, or found at operator
start) and stopped when it is deleted or the operator exits.

Why no kopf daemon, and no finalizer on any analysis:
kopf puts its finalizer on every object that has a daemon (kopf's maintainer declined to make that optional,
nolar/kopf#896, #1183): that is how kopf learns of a deletion in time to stop the daemon. But a finalizer only
works while an operator runs to remove it. After `helm uninstall` (or with the operator's namespace deleted,
or its Deployment scaled to 0) deleting an analysis, its namespace, or the CRD would wait for ever. Nothing
here needs a finalizer: everything an analysis creates (the Triton pod, the perf_analyzer Jobs, the results
ConfigMap) carries an ownerReference to it, so the garbage collector removes it with or without an operator,
even a Job created a moment after the analysis went (its owner's uid no longer exists); and the run's progress
is in the analysis's own status. What a finalizer bought, a prompt stop of the run, comes from the watch
itself: the DELETED event (or a deletionTimestamp) stops the run, and the run also looks for itself through
the API every so often in case a watch event is missed. So the operator never writes anything but status
(its RBAC does not even allow it to patch an analysis), and an operator killed or uninstalled at any moment
leaves nothing that cannot be deleted.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any

import kopf
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from modelanalysis.kube import names
from modelanalysis.kube.api import AnalysisReader, ChildApi, KubeApi
from modelanalysis.kube.failures import EventSink
from modelanalysis.kube.leader import LeaderElector
from modelanalysis.kube.readings import triton_slot_key
from modelanalysis.kube.reconcile import AnalysisRun
from modelanalysis.kube.resource import API_VERSION, FINISHED_PHASES, GROUP, KIND, PLURAL, VERSION, Reason
from modelanalysis.kube.settings import OperatorSettings
from modelanalysis.kube.slots import TritonSlots
from modelanalysis.kube.telemetry import METRICS

Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]

# A missed watch event (a reconnect drops what happened meanwhile) must not leave a run going for ever: each
# run looks its analysis up this often while it waits, and stops if it is gone.
LOOK_AGAIN_S = 30.0
# A run that failed unexpectedly (the API server unreachable, a 500) is retried after this long.
RETRY_S = 10.0
WATCH_HANDLER = "analysis_event"  # kopf's id of the one watch handler, as its log lines name it
# On operator exit, how long the runs get to notice: each polls every poll interval, except inside a slow
# call (a model load); the pod's grace period (30 s by default) then ends the rest.
EXIT_WAIT_S = 20.0


def unfinished(meta: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    return status.get("observedGeneration") != meta.get("generation") or status.get("phase") not in FINISHED_PHASES


def is_deleting(meta: Mapping[str, Any]) -> bool:
    return bool(meta.get("deletionTimestamp"))


class StopSignal:
    """The `stopped` of one run: set when its analysis is deleted or the operator exits, or when a look at the
    API (at most every `look_again_s`, while the run waits) finds the analysis gone."""

    def __init__(self, api: AnalysisReader, namespace: str, name: str, uid: str, look_again_s: float = LOOK_AGAIN_S):
        self.api, self.namespace, self.name, self.uid = api, namespace, name, uid
        self.look_again_s = look_again_s
        self.next_look = time.monotonic() + look_again_s
        self.event = threading.Event()

    def set(self) -> None:
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        if self.event.wait(timeout):
            return True
        if time.monotonic() >= self.next_look:
            self.next_look = time.monotonic() + self.look_again_s
            if self.gone():
                self.event.set()
        return self.event.is_set()

    def gone(self) -> bool:
        try:
            current = self.api.get_analysis(self.namespace, self.name)
        except Exception:  # the API server is unreachable: that says nothing about the analysis
            return False
        return current is None or current["metadata"].get("uid") != self.uid or is_deleting(current["metadata"])


@dataclass
class Run:
    stop: StopSignal
    recheck: bool = False  # an event came while the run was going: look at the analysis again before ending
    future: Future[None] | None = field(default=None, repr=False)


SLOTS_SETTLE_S = 5.0  # after a start, the analyses kopf lists are noticed for this long before slots are handed out


def live_triton_slots(api: ChildApi, namespaces: list[str]) -> set[str]:
    """The slots that the Triton pods in the watched namespaces (all of them: none listed) hold. Every namespace is
    looked at, not only those of the analyses running here: after a restart the runs are noticed one by one."""
    selector = f"{names.LABEL_COMPONENT}={names.COMPONENT_TRITON}"
    return {key for ns in (namespaces or [""]) for pod in api.list("Pod", ns, selector)
            if (key := triton_slot_key(pod)) is not None}  # fmt: skip


class Runs:
    """One thread per unfinished analysis (by uid), fed by kopf's watch events."""

    def __init__(
        self, api: ChildApi, settings: OperatorSettings, slots: TritonSlots, *, retry_s: float = RETRY_S
    ) -> None:
        self.api, self.settings, self.slots, self.retry_s = api, settings, slots, retry_s
        # Each unfinished analysis holds a thread, queued ones included (they poll for a Triton slot); past
        # max_analyses, the next ones wait for a thread.
        self.executor = ThreadPoolExecutor(settings.max_analyses, thread_name_prefix="analysis")
        self.lock = threading.Lock()
        self.runs: dict[str, Run] = {}
        # With several replicas, only the leader runs analyses; the others keep the latest body of each one kopf
        # reports, with kopf's context at that event (a run posts Events through it), to start them all when
        # they take the lead.
        self.acting = threading.Event()
        self.acting.set()
        self.followed: dict[str, tuple[Mapping[str, Any], contextvars.Context]] = {}

    def follow(self) -> None:
        """Run nothing until lead() is called (another replica holds the Lease)."""
        self.acting.clear()
        METRICS.leader.set(0)

    def lead(self, logger: Logger) -> None:
        """Start running: every analysis seen while following is noticed again."""
        with self.lock:
            followed = list(self.followed.values())
            self.followed.clear()
            self.acting.set()
        METRICS.leader.set(1)
        for body, context in followed:
            context.run(self.notice, None, body, logger)

    def notice(self, event_type: str | None, body: Mapping[str, Any], logger: Logger) -> None:
        """A watch event (or, at operator start, a listed object): start, look again, or stop its run."""
        meta, status = body.get("metadata") or {}, body.get("status") or {}
        uid, namespace, name = meta.get("uid"), meta.get("namespace"), meta.get("name")
        if not (uid and namespace and name):
            return
        if event_type == "DELETED":
            METRICS.forgot(uid)
        else:
            METRICS.saw(uid, namespace, status.get("phase"))
        with self.lock:
            if not self.acting.is_set():
                if event_type == "DELETED" or is_deleting(meta):
                    self.followed.pop(uid, None)
                else:
                    self.followed[uid] = (body, contextvars.copy_context())
                return
            run = self.runs.get(uid)
            if event_type == "DELETED" or is_deleting(meta):
                if run is not None:
                    run.stop.set()
                return
            if run is not None:
                run.recheck = True
                return
            if not unfinished(meta, status):
                return
            run = Run(StopSignal(self.api, namespace, name, uid))
            self.runs[uid] = run
            # kopf's context (its event queue) goes with the thread, so the run can post Events.
            context = contextvars.copy_context()
            run.future = self.executor.submit(context.run, self.work, uid, namespace, name, run, logger)

    def work(self, uid: str, namespace: str, name: str, run: Run, logger: Logger) -> None:
        try:
            while not run.stop.is_set():
                with self.lock:
                    run.recheck = False
                try:
                    body = self.api.get_analysis(namespace, name)  # the freshest copy, not the event's
                    if body is None or body["metadata"].get("uid") != uid or is_deleting(body["metadata"]):
                        return
                    if not unfinished(body["metadata"], body.get("status") or {}):
                        with self.lock:
                            if not run.recheck:  # nothing came since that look: done until the spec changes
                                self.runs.pop(uid, None)
                                return
                        continue
                    AnalysisRun(self.api, body, self.settings, self.slots, run.stop, event_sink(body), logger).run()
                except Exception as error:
                    if run.stop.is_set() or run.stop.gone():  # deleted under the run: nothing to retry
                        return
                    refused = isinstance(error, ApiException) and error.status in (401, 403)
                    METRICS.run_errors.labels(kind="api_refused" if refused else "other").inc()
                    if isinstance(error, ApiException) and refused:
                        # Typically `helm uninstall`: it removes the RBAC a moment before this pod is stopped.
                        # Say so in one line (posting an event would be refused too); a real RBAC gap shows here.
                        logger.warning("The API refused a call (%s %s); retried in %.0f s", error.status,
                                       error.reason, self.retry_s)  # fmt: skip
                        run.stop.wait(self.retry_s)
                        continue
                    logger.exception("The run failed; it is retried in %.0f s", self.retry_s)
                    reference = {
                        "apiVersion": API_VERSION,
                        "kind": KIND,
                        "metadata": {"name": name, "namespace": namespace, "uid": uid},
                    }
                    retry = f"{error!r:.400}; retried in {self.retry_s:.0f} s"
                    event_sink(reference)("Warning", Reason.RUN_ERROR, retry)
                    run.stop.wait(self.retry_s)
        finally:
            with self.lock:
                if self.runs.get(uid) is run:
                    del self.runs[uid]
            # A run stopped mid-sweep keeps its Triton slot for the next run; once its thread ends (the analysis
            # was deleted, its pod goes with it, or the operator exits) nothing will resume it here.
            self.slots.release_analysis(f"{namespace}/{name}")

    def shutdown(self, timeout: float = EXIT_WAIT_S) -> None:
        """Stop every run and wait (up to `timeout`) for them to end; each resumes from status next time."""
        with self.lock:
            runs = list(self.runs.values())
        for run in runs:
            run.stop.set()
        self.executor.shutdown(wait=False, cancel_futures=True)
        wait_futures([run.future for run in runs if run.future is not None], timeout=timeout)


def event_sink(body: dict[str, Any]) -> EventSink:
    def event(type_: str, reason: str, message: str) -> None:
        kopf.event(kopf.Body(body), type=type_, reason=reason, message=message)  # type: ignore[arg-type]

    return event


class QuietWatchHandler(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != f"Handler {WATCH_HANDLER!r} succeeded."


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    # Events tell the story in `kubectl describe`; kopf's own per-handler chatter stays in the log.
    settings.posting.level = logging.WARNING
    # kopf logs "Handler ... succeeded" for every watch event, a line per status patch of every analysis.
    logging.getLogger("kopf.objects").addFilter(QuietWatchHandler())
    operator_settings = OperatorSettings()
    logging.getLogger().setLevel(operator_settings.log_level.upper())
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    memo.settings = operator_settings
    api_config = client.Configuration.get_default_copy()
    api_config.connection_pool_maxsize = 32  # many run threads share the client
    memo.api = KubeApi(client.ApiClient(api_config))
    memo.slots = TritonSlots(
        operator_settings.max_triton_pods,
        operator_settings.max_triton_pods_per_namespace,
        observe=lambda: live_triton_slots(memo.api, operator_settings.watch_namespaces),
        settle_s=SLOTS_SETTLE_S,
    )
    METRICS.watch_slots(lambda: len(memo.slots.holders), operator_settings.max_triton_pods)
    if operator_settings.metrics_port:
        try:
            METRICS.serve(operator_settings.metrics_port, operator_settings.pod_ip)
        except OSError as exc:  # no metrics is no reason not to run the analyses
            logger.warning("The metrics endpoint could not listen on port %s: %s", operator_settings.metrics_port, exc)
    memo.runs = Runs(memo.api, operator_settings, memo.slots)
    logger.info("model-analyzer operator: %s", operator_settings.model_dump())
    if operator_settings.leader_election:
        runs: Runs = memo.runs
        runs.follow()
        identity = operator_settings.pod_name or f"{socket.gethostname()}-{os.getpid()}"
        memo.elector = LeaderElector(
            memo.api.api_client, operator_settings.pod_namespace, operator_settings.lease_name, identity,
            duration_s=operator_settings.lease_duration_seconds,
            on_elected=lambda: runs.lead(logging.getLogger("modelanalysis.kube.handlers")),
        )  # fmt: skip
        memo.elector.start()


# A watching handler: kopf calls it for every event of every analysis (and for each one it lists at start),
# keeps no state on the object, and never adds a finalizer (see the module's docstring).
@kopf.on.event(GROUP, VERSION, PLURAL, id=WATCH_HANDLER)
async def analysis_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    runs: Runs = memo.runs
    runs.notice(event.get("type"), body, logger)


@kopf.on.cleanup()
def stop_runs(memo: kopf.Memo, **_: Any) -> None:
    runs: Runs | None = getattr(memo, "runs", None)
    if runs is not None:
        runs.shutdown()
