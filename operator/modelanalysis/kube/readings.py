"""Pure readings of what the API server says: pods and Jobs (why a Triton pod is not ready, how a Job ended, a
container's termination message), which children belong to another generation, the spec's first error as one
sentence. No I/O: tests/unit/test_kube_status.py decides them on recorded objects."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from modelanalysis.kube import names
from modelanalysis.kube.ownership import owned_by
from modelanalysis.kube.resource import API_VERSION, KIND, Reason


def spec_error_message(error: ValidationError) -> str:
    """The first error, with its field written as kubectl writes it (spec.models[0].name), as one sentence."""
    first = error.errors()[0]
    where = "spec" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"])
    what = first["msg"].removeprefix("Value error, ").rstrip(".")
    return f"{where}: {what}; fix it and apply the analysis again."


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


def triton_slot_key(pod: dict[str, Any]) -> str | None:
    """The Triton slot a live pod holds (kube/slots.py keys: `<namespace>/<analysis>`, `#<n>` for trial n of
    several), from its owner reference (labels are cut to 63 characters, names are not); None for a pod being
    deleted or one no analysis owns."""
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return None
    owner = next((o for o in meta.get("ownerReferences") or [] if o.get("kind") == KIND), None)
    if owner is None or not owner.get("name"):
        return None
    trial = (meta.get("labels") or {}).get(names.LABEL_TRIAL)
    return f"{meta.get('namespace')}/{owner['name']}" + (f"#{trial}" if trial else "")
