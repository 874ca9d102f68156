"""One point as a load-generator Job: create it, follow its pod to the end, read the measurement from its
termination message; a pod deleted or evicted mid-point asks the engine to measure the point again, once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from modelanalysis.core.perf import (
    INPUTS_REFUSED_PREFIX,
    InputsRefused,
    MeasureAgain,
    PerfMeasurement,
    PointMeasurementError,
)
from modelanalysis.core.sweep import Point
from modelanalysis.kube import objects
from modelanalysis.kube.readings import job_outcome, termination_message, unscheduled
from modelanalysis.kube.transitions import after_interruption, load_generator_interruption
from modelanalysis.kube.waiting import JOB_GONE_SECONDS, POINT_JOB_GRACE_SECONDS, Deadline

if TYPE_CHECKING:
    from modelanalysis.kube.trial_run import TrialRun


def run_point_job(trial: TrialRun, point: Point, pod_ip: str) -> PerfMeasurement:
    """One point as a load-generator Job; its container measures the point and returns the result in its
    termination message. A Job whose pod is deleted, evicted or preempted mid-point asks the engine to
    measure the point again, once (transitions.after_interruption): nothing was wrong with the point."""
    trial.point_runs[point.key] = runs = trial.point_runs.get(point.key, 0) + 1
    trial.check_server(point, pod_ip)  # no Job against a server that is gone
    exit_code, message, interruption = run_load_generator(trial, point, pod_ip)
    if exit_code == 0:
        try:
            return PerfMeasurement.model_validate_json(message)
        except ValidationError:
            raise PointMeasurementError(f"the load generator's result could not be read: {message[:200]!r}") from None
    # A point that failed because the server went away is not the point's failure: the run fails, with
    # why, and the interrupted point is not recorded (every point measured before it is kept).
    trial.check_server(point, pod_ip)
    if interruption is None and message.startswith(INPUTS_REFUSED_PREFIX):
        raise InputsRefused(message.removeprefix(INPUTS_REFUSED_PREFIX))
    if interruption is None:
        raise PointMeasurementError(message)
    decision = after_interruption(point.key, runs, interruption)
    if not decision.rerun:
        raise PointMeasurementError(decision.error or interruption)
    if decision.event is not None:
        trial.run.event(decision.event.type, decision.event.reason, decision.event.message)
    trial.run.check_generation()  # the analysis itself may be what is going away
    raise MeasureAgain(interruption)


def run_group_job(
    trial: TrialRun, points: Sequence[Point], pod_ip: str
) -> list[PerfMeasurement | PointMeasurementError]:
    """Models measured together: one Job runs a perf_analyzer for each over the same windows (objects.
    load_generator_group_job) and returns each one's numbers. A pod deleted or evicted mid-point measures the
    group again, once, as a single point's Job does."""
    first = points[0]
    trial.point_runs[first.key] = runs = trial.point_runs.get(first.key, 0) + 1
    trial.check_server(first, pod_ip)
    run = trial.run
    manifest = objects.load_generator_group_job(
        run.name, run.namespace, run.generation, trial.spec, points, pod_ip, run.settings,
        server_node=trial.server_node, server_tolerations=trial.server_tolerations,
    )  # fmt: skip
    _, message, interruption = run_load_generator(trial, first, pod_ip, manifest)
    if interruption is None:
        try:
            found = json.loads(message)
        except ValueError:
            trial.check_server(first, pod_ip)
            return [PointMeasurementError(message) for _ in points]
        if isinstance(found, list) and len(found) == len(points):
            return [_member_result(entry) for entry in found]
        return [PointMeasurementError(f"the load generator's result could not be read: {message[:200]!r}")
                for _ in points]  # fmt: skip
    trial.check_server(first, pod_ip)
    decision = after_interruption(first.key, runs, interruption)
    if not decision.rerun:
        return [PointMeasurementError(decision.error or interruption) for _ in points]
    if decision.event is not None:
        trial.run.event(decision.event.type, decision.event.reason, decision.event.message)
    trial.run.check_generation()
    raise MeasureAgain(interruption)


def _member_result(entry: object) -> PerfMeasurement | PointMeasurementError:
    if isinstance(entry, dict) and "error" in entry:
        return PointMeasurementError(str(entry["error"]))
    try:
        return PerfMeasurement.model_validate(entry)
    except ValidationError:
        return PointMeasurementError(f"the load generator's result could not be read: {str(entry)[:200]!r}")


def run_load_generator(
    trial: TrialRun, point: Point, pod_ip: str, manifest: dict[str, Any] | None = None
) -> tuple[int | None, str, str | None]:
    """Run the point's Job (or the given one) to its end: (exit code, termination message or why it failed, why
    it was interrupted from outside if it was). The Job and its pods are gone when this returns."""
    run, spec = trial.run, trial.spec
    manifest = manifest or objects.load_generator_job(
        run.name, run.namespace, run.generation, spec, point, pod_ip, run.settings,
        server_node=trial.server_node, server_tolerations=trial.server_tolerations,
    )  # fmt: skip
    job_name = manifest["metadata"]["name"]
    trial.load_generator_node = None
    job = run.create_child(manifest)  # after an operator restart: the Job it had started, adopted
    # This Job's pods only, by its uid: a pod of an earlier Job of the same name may still be going.
    job_uid = job["metadata"]["uid"]
    pod_selector = f"batch.kubernetes.io/controller-uid={job_uid}"
    deadline = Deadline(spec.measurement.point_timeout_seconds + POINT_JOB_GRACE_SECONDS)
    seen_pod = False
    while True:
        # The container's end is the point's end: its result is in the termination message as soon as
        # the kubelet records it, a moment before the Job controller marks the Job finished.
        pods = run.api.list("Pod", run.namespace, pod_selector)
        seen_pod = seen_pod or bool(pods)
        trial.load_generator_node = next(
            (p["spec"]["nodeName"] for p in pods if p["spec"].get("nodeName")), trial.load_generator_node
        )
        exit_code, message = termination_message(pods)
        if exit_code == 0:
            break
        interrupted = load_generator_interruption(job, pods, seen_pod) is not None
        if interrupted or exit_code is not None or job_outcome(job) is not None or deadline.passed:
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
        wait_gone(trial, job_name, pod_selector)
    return (
        exit_code,
        message or unscheduled(pods) or f"load-generator Job {job_name} did not complete",
        interruption,
    )


def wait_gone(trial: TrialRun, job_name: str, pod_selector: str, timeout: float = JOB_GONE_SECONDS) -> None:
    run = trial.run
    deadline = Deadline(timeout)
    while run.read_child("Job", job_name) is not None or run.api.list("Pod", run.namespace, pod_selector):
        if deadline.passed:
            run.logger.warning("Job %s or its pods still there after %.0f s; going on", job_name, timeout)
            return
        run.sleep(run.settings.poll_interval_seconds)
