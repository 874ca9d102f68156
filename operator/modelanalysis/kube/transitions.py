"""What the operator says about each step of the sweep: the status message and the Event, as pure functions
of what the engine reported (tested without a cluster)."""

from __future__ import annotations

from dataclasses import dataclass

from modelanalysis.engine import EngineEvent, EventKind
from modelanalysis.kube.conditions import short
from modelanalysis.kube.resource import Reason

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
