"""What the operator says and decides about each step of the sweep, as pure functions tested without a
cluster: the status message and the Event for what the engine reported, and what to do with a point whose
load generator was stopped from outside."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelanalysis.core.results import NOT_MEASURABLE, ModelOutcome, ModelStatus
from modelanalysis.engine import EngineEvent, EventKind
from modelanalysis.kube.conditions import short
from modelanalysis.kube.resource import FINISHED_PHASES, Phase, Reason, TrialStatus

EVENT_MESSAGE = 400  # an Event's message is a line in `kubectl describe`, not a log


@dataclass(frozen=True)
class KubeEvent:
    type: str  # Normal | Warning
    reason: Reason
    message: str


def progress_message(event: EngineEvent) -> str | None:
    """status.message while the sweep runs."""
    where = event.point.key if event.point else event.model
    return {
        EventKind.BASELINE: "measuring the server with no model loaded",
        EventKind.LOADING: f"loading {where}",
        EventKind.POINT: f"measuring {where}",
        EventKind.POINT_MEASURED: f"measured {where}",
        EventKind.POINT_FAILED: f"{where} failed",
        EventKind.LOAD_FAILED: f"{where} failed to load",
        EventKind.REFUSED: f"{where} refused",
        EventKind.PROFILED: f"profiled {where}",
    }.get(event.kind)


def event_for(event: EngineEvent) -> KubeEvent | None:
    """The Event to post for what the engine reported, if any."""
    where = event.point.key if event.point else event.model
    match event.kind:
        case EventKind.BASELINE_MEASURED:
            return KubeEvent("Normal", Reason.BASELINE_MEASURED, "Measured the server with no model loaded")
        case EventKind.LOADED:
            return KubeEvent("Normal", Reason.MODEL_LOADED, f"Loaded {where}")
        case EventKind.LOAD_FAILED:
            return KubeEvent(
                "Warning", Reason.MODEL_LOAD_FAILED, f"{where} failed to load: {short(event.message, EVENT_MESSAGE)}"
            )
        case EventKind.REFUSED:
            return KubeEvent("Warning", Reason.MODEL_REFUSED, f"{short(event.message, EVENT_MESSAGE)}")
        case EventKind.POINT_FAILED:
            return KubeEvent("Warning", Reason.POINT_FAILED, f"{where}: {short(event.message, EVENT_MESSAGE)}")
        case EventKind.POINT_MEASURED:
            perf = event.result.perf if event.result else None
            if perf is not None and perf.converged is False:
                why = short(perf.convergence or "", EVENT_MESSAGE)
                return KubeEvent("Normal", Reason.POINT_NOT_CONVERGED, f"{where} measured, {why}")
            return None
        case EventKind.PROFILED:
            return KubeEvent("Normal", Reason.MODEL_PROFILED, f"Profiled {where}: {event.message}")
        case _:
            return None


@dataclass(frozen=True)
class TrialEnd:
    phase: Phase
    reason: Reason | None
    message: str


def trial_end(outcomes: Sequence[ModelOutcome], points: int) -> TrialEnd:
    """How a trial that ran to its end ended: Failed when none of its variants would load (nothing could be
    measured on its server), else Succeeded with what it measured."""
    failed = [o for o in outcomes if o.status in NOT_MEASURABLE]
    if outcomes and len(failed) == len(outcomes):
        why = "; ".join(f"{o.name}: {o.error}" for o in failed)
        if all(o.status == ModelStatus.REFUSED for o in failed):
            return TrialEnd(Phase.FAILED, Reason.MODEL_REFUSED, short(f"refused: {why}") or "")
        return TrialEnd(Phase.FAILED, Reason.MODEL_LOAD_FAILED, short(f"failed to load: {why}") or "")
    message = f"{points} points measured"
    load_failed = [o.name for o in failed if o.status == ModelStatus.LOAD_FAILED]
    refused = [o.name for o in failed if o.status == ModelStatus.REFUSED]
    if load_failed:
        message += f"; failed to load: {', '.join(load_failed)}"
    if refused:
        message += f"; refused: {', '.join(refused)} (see status.models)"
    return TrialEnd(Phase.SUCCEEDED, None, message)


@dataclass(frozen=True)
class TrialsVerdict:
    failed: list[str]  # the trials that failed, by name
    all_failed: tuple[str, str] | None  # (reason, message) for the analysis when every trial failed


def trials_verdict(trials: Sequence[TrialStatus]) -> TrialsVerdict:
    """What the trials' ends mean for the analysis: it goes on to its results unless every trial failed (then it
    fails with the first one's reason: the trial's own message where it is the only one, else naming each)."""
    failed = [t for t in trials if t.phase == Phase.FAILED]
    if not trials or len(failed) < len(trials):
        return TrialsVerdict([t.name for t in failed], None)
    reason = failed[0].reason or Reason.SERVER_GONE.value
    if len(trials) == 1:
        return TrialsVerdict([failed[0].name], (reason, failed[0].message or ""))
    reasons = "; ".join(f"{t.name}: {t.message}" for t in failed)
    return TrialsVerdict([t.name for t in failed], (reason, short(f"every trial failed. {reasons}") or ""))


@dataclass(frozen=True)
class Standing:
    """Where a running analysis stands, as its trials show it."""

    phase: Phase
    message: str
    triton_pods: str | None  # the Triton pods its trials run (or ran) on, comma-separated


def analysis_standing(trials: Sequence[TrialStatus], at_once: int) -> Standing | None:
    """The analysis' phase and message, derived in one step from its trials while any still runs (None once all
    have ended: the run's end decides then). One trial speaks for the analysis (its queue place, its pod, its
    progress); several are summed up, each saying its own in status.trials."""
    pods = ", ".join(t.pod for t in trials if t.pod) or None
    if all(t.phase in FINISHED_PHASES for t in trials):
        return None
    if len(trials) == 1:
        return Standing(Phase(trials[0].phase or Phase.PENDING.value), trials[0].message or "", pods)
    return Standing(Phase.PROFILING, f"{len(trials)} trials, at most {at_once} at once", pods)



# A point whose load-generator pod was deleted, evicted or preempted mid-point is run this many times at most:
# once more after the first interruption (the user asked for that point and nothing was wrong with it), but
# not for ever if something keeps removing its pods.
MAX_POINT_RUNS = 2


def load_generator_interruption(job: dict[str, Any], pods: list[dict[str, Any]], seen_pod: bool) -> str | None:
    """Why the point's load generator was stopped from outside before it finished (its pod deleted by a person
    or a drain, evicted, preempted), or None when it ended on its own: a result, a failed measurement, or the
    point's deadline (the Job controller deletes the pods of a Job past activeDeadlineSeconds: that is the
    point timing out, not an interruption).

    `pods` are the Job's pods now; `seen_pod` says whether one was seen earlier (a pod that vanished
    between two looks was deleted)."""
    job_conditions = (job.get("status") or {}).get("conditions") or []
    if any(c.get("reason") == "DeadlineExceeded" and c.get("status") == "True" for c in job_conditions):
        return None
    for pod in pods:
        name = pod["metadata"]["name"]
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "DisruptionTarget" and cond.get("status") == "True":
                why = cond.get("message") or cond.get("reason") or "disrupted"
                return f"its pod {name} was stopped ({why})"
        if pod["metadata"].get("deletionTimestamp"):
            return f"its pod {name} was deleted"
    if seen_pod and not pods:
        return "its pod was deleted"
    return None


@dataclass(frozen=True)
class InterruptedPoint:
    """What to do with a point whose load generator was interrupted: run it again (with an Event saying so),
    or record it as failed with `error` and go on to the next point."""

    rerun: bool
    event: KubeEvent | None = None
    error: str | None = None


def after_interruption(point_key: str, runs: int, why: str) -> InterruptedPoint:
    """`runs`: how many times the point's load generator has been started, this interrupted one included."""
    if runs < MAX_POINT_RUNS:
        message = f"{point_key}: the load generator was interrupted ({why}); measuring the point again"
        return InterruptedPoint(
            True, KubeEvent("Warning", Reason.POINT_INTERRUPTED, short(message, EVENT_MESSAGE) or "")
        )
    return InterruptedPoint(
        False,
        error=(
            f"the load generator was interrupted on each of its {runs} runs (last: {why}); "
            "find what deletes or evicts the load-generator pods (kubectl get events), then change the spec "
            "(or re-create the analysis) to measure the point again"
        ),
    )


# What a user can do about a results claim the results Job could not write to, by the error it met.
RESULTS_WRITE_FIXES = {
    "Read-only file system": "the claim's volume is read-only: give results.pvc a claim that is mounted writable",
    "Permission denied": "make the folder writable by user 10001, the results Job's user (e.g. chown 10001 on it)",
    "No space left on device": "free space on the claim or give it more",
    "Disk quota exceeded": "free space on the claim or raise its quota",
}


def results_write_failure(claim: str, folder: str, error: str, configmap: str, analysis: str) -> str:
    """The message of a results claim that could not be written: what failed, what to fix, and where the
    results are meanwhile (the ConfigMap and status keep them)."""
    fix = next((fix for text, fix in RESULTS_WRITE_FIXES.items() if text in error), None)
    error = error.strip().removeprefix("error: ") or "the results Job failed"
    return (
        f"could not write the result files to claim {claim} (folder {folder}): {error}. "
        f"{(fix[0].upper() + fix[1:]) if fix else 'Fix the claim'}, then change the spec or re-create the analysis "
        f"to run again. Meanwhile the results are in ConfigMap {configmap} (`model-analyzer results {analysis}`) "
        "and every point is in status."
    )
