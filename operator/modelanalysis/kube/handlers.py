"""kopf entry point: `kopf run --standalone -m modelanalysis.kube.handlers --all-namespaces`.

One daemon per unfinished ModelAnalysis runs it (reconcile.AnalysisRun). The daemon's filter is "this
generation is not finished", so kopf starts a daemon when an analysis is created or its spec changes, and
stops it once status says the generation is done.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from kubernetes import client, config

from modelanalysis.kube.api import KubeApi
from modelanalysis.kube.reconcile import AnalysisRun, TritonSlots
from modelanalysis.kube.resource import FINISHED_PHASES, GROUP, PLURAL, VERSION
from modelanalysis.kube.settings import OperatorSettings


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    # Keep kopf's bookkeeping in status rather than annotations, so GitOps tools see no drift in metadata.
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Events tell the story in `kubectl describe`; kopf's own per-handler chatter stays in the log.
    settings.posting.level = logging.WARNING
    # A stopped daemon (analysis deleted, or finished) is a thread that notices `stopped` within a poll
    # interval. Give it that long before kopf looks again: otherwise kopf cancels the task at once and only
    # re-checks after cancellation_timeout, so every `kubectl delete` of a running analysis hung for 30 s.
    settings.background.instant_exit_timeout = 1.0
    operator_settings = OperatorSettings()
    # Each unfinished analysis holds one thread for its sync daemon, queued ones included (they poll for a
    # Triton slot): the default pool (a handful of threads) would leave most analyses without a status.
    settings.execution.max_workers = operator_settings.max_analyses
    logging.getLogger().setLevel(operator_settings.log_level.upper())
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    memo.settings = operator_settings
    api_config = client.Configuration.get_default_copy()
    api_config.connection_pool_maxsize = 32  # many daemon threads share the client
    memo.api = KubeApi(client.ApiClient(api_config))
    memo.slots = TritonSlots(operator_settings.max_triton_pods)
    logger.info("model-analyzer operator: %s", operator_settings.model_dump())


def unfinished(meta: kopf.Meta, status: kopf.Status, **_: Any) -> bool:
    return status.get("observedGeneration") != meta.get("generation") or status.get("phase") not in FINISHED_PHASES


# cancellation_backoff: a daemon still inside a slow call (a model load, an unload) when it is stopped is
# left to finish it and re-checked after that long, rather than cancelled (its thread would run on anyway).
analysis_daemon = kopf.daemon(
    GROUP, VERSION, PLURAL, when=unfinished, cancellation_backoff=5.0, cancellation_timeout=30.0
)


# kopf's DaemonFn type lists every keyword a daemon may take; this one takes the few it needs.
@analysis_daemon  # type: ignore[arg-type]
def run_analysis(
    name: str, namespace: str, memo: kopf.Memo, stopped: kopf.DaemonStopped, logger: kopf.Logger, **_: Any
) -> None:
    api: KubeApi = memo.api
    current = api.get_analysis(namespace, name)  # the freshest copy: kopf's body may predate a restart
    if current is None:
        return
    body: dict[str, Any] = current

    def event(type_: str, reason: str, message: str) -> None:
        kopf.event(kopf.Body(body), type=type_, reason=reason, message=message)  # type: ignore[arg-type]

    try:
        AnalysisRun(api, body, memo.settings, memo.slots, stopped, event, logger).run()
        # A daemon that returns on its own is never restarted for this object, so wait until kopf stops it:
        # it does once status shows this generation finished, and starts a new one when the spec changes.
        while not stopped.wait(10.0):
            fresh = api.get_analysis(namespace, name)
            if fresh is None:
                return
            if fresh["metadata"].get("generation") != body["metadata"].get("generation"):
                body = fresh
                AnalysisRun(api, body, memo.settings, memo.slots, stopped, event, logger).run()
    finally:
        # A run stopped mid-sweep keeps its Triton slot for the next run; once the daemon itself ends (the
        # analysis was deleted, its pod goes with it, or the operator exits) nothing will resume it.
        memo.slots.release(f"{namespace}/{name}")
