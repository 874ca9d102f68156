"""Faults the run meets mid-sweep, decided as pure checks: the Triton pod gone, going, replaced or crashed
fails the analysis saying at which point; a load-generator pod deleted mid-point runs the point once more
(the e2e tests do both for real)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from modelanalysis import job_commands
from modelanalysis.core.perf import MeasureAgain, PointMeasurementError
from modelanalysis.core.sweep import Point
from modelanalysis.core.trials import Trial, plan_trials
from modelanalysis.core.variants import plan_variants
from modelanalysis.kube import journal, point_jobs
from modelanalysis.kube.failures import AnalysisFailed
from modelanalysis.kube.reconcile import AnalysisRun
from modelanalysis.kube.resource import ModelAnalysisSpec, TrialStatus
from modelanalysis.kube.slots import TritonSlots
from modelanalysis.kube.transitions import (
    MAX_POINT_RUNS,
    after_interruption,
    load_generator_interruption,
    results_write_failure,
)
from modelanalysis.kube.trial_run import TrialRun
from tests.fakes import DEFAULTS, NS, SPEC, RecordingApi
from tests.unit.test_kube_status import perf_row


class PodApi(RecordingApi):
    def __init__(self, body: dict[str, Any], pod: dict[str, Any] | None) -> None:
        super().__init__(body)
        self.pod = pod

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.pod if kind == "Pod" else None


def the_only_trial(run: AnalysisRun) -> Trial:
    """The analysis' one trial, with its entry in status.trials (as a run writes it when it starts)."""
    run.spec = ModelAnalysisSpec.model_validate(SPEC)
    [trial] = run.plan(run.spec)
    run.status.trials = [TrialStatus(name=trial.name)]
    return trial


def only_trial(run: AnalysisRun) -> TrialRun:
    """The one trial of an analysis that runs on one Triton pod (core/trials.py)."""
    run.spec = ModelAnalysisSpec.model_validate(SPEC)
    return TrialRun(run, plan_trials(plan_variants(run.spec), [], 1)[0], trial_count=1)


def server_check(pod: dict[str, Any] | None) -> str | None:
    body = {"metadata": {"name": "example", "namespace": NS, "uid": "u-1", "generation": 1}, "spec": SPEC}
    run = AnalysisRun(
        PodApi(body, pod),
        body,
        DEFAULTS,
        TritonSlots(1),
        threading.Event(),
        lambda *event: None,
        logging.getLogger("test"),
    )
    try:
        only_trial(run).check_server(Point(model="add_sub", batch_size=4, concurrency=2), "10.0.0.7")
        return None
    except AnalysisFailed as failure:
        assert failure.condition == "ServerReady"
        return f"{failure.reason}: {failure.message}"


def test_a_triton_pod_gone_mid_sweep_fails_the_run_saying_at_which_point() -> None:
    running = {"metadata": {"name": "example-g1-triton"}, "status": {"phase": "Running", "podIP": "10.0.0.7"}}
    assert server_check(running) is None
    gone = server_check(None)
    assert gone is not None and gone.startswith("ServerGone: Triton pod example-g1-triton was deleted")
    assert "add_sub" in gone and "kept in status" in gone
    terminating = {**running, "metadata": {**running["metadata"], "deletionTimestamp": "2025-01-01T00:00:00Z"}}
    assert (server_check(terminating) or "").startswith("ServerGone")
    replaced = {**running, "status": {"phase": "Running", "podIP": "10.0.0.8"}}
    assert (server_check(replaced) or "").startswith("ServerGone")
    crashed = {
        **running,
        "status": {
            "phase": "Failed",
            "podIP": "10.0.0.7",
            "containerStatuses": [{"state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}],
        },
    }
    assert (server_check(crashed) or "").startswith("ServerCrashed: Triton exited with code 137")


def test_the_journal_writes_the_best_point_to_status_for_kubectl_gets_best_column() -> None:
    """status.best (and bestPerModel) come from the engine's result; the CRD's Best column reads its summary."""
    from modelanalysis.core.objectives import choose_best
    from modelanalysis.core.results import AnalysisResult
    from modelanalysis.core.spec import Constraints, Objective
    from modelanalysis.engine import EngineEvent, EventKind
    from modelanalysis.kube.crd import crd
    from tests.unit.test_objectives import POINTS

    body = {"metadata": {"name": "example", "namespace": NS, "uid": "u-1", "generation": 1}, "spec": SPEC}
    api = PodApi(body, None)
    run = AnalysisRun(api, body, DEFAULTS, TritonSlots(1), threading.Event(), lambda *e: None,
                      logging.getLogger("test"))  # fmt: skip
    budget = Constraints.model_validate({"p99LatencyMs": {"max": 2}})
    result = AnalysisResult(triton_version="x", points=list(POINTS), constraints=budget)
    result.best = choose_best(result.points, Objective.MAXIMIZE_THROUGHPUT, budget)
    journal.record(run, EngineEvent(EventKind.POINT_MEASURED, 5, 5, "add_sub"), result, the_only_trial(run))
    wire = run.status.wire()["best"]
    assert {k: wire[k] for k in ("model", "batch", "concurrency", "throughput", "throughputCI", "p99")} == {
        "model": "add_sub", "batch": 1, "concurrency": 4, "throughput": 4420.0, "throughputCI": [4301.0, 4539.0],
        "p99": 1.61,
    }  # fmt: skip
    assert wire["satisfiesConstraints"] is True and "highest throughput" in wire["why"]
    assert wire["summary"] == "add_sub/b1/c4 4,420.0 infer/s p99 1.61 ms"
    assert run.status.wire()["bestPerModel"][0]["concurrency"] == 4
    columns = crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    assert {"name": "Best", "type": "string", "jsonPath": ".status.best.summary"}.items() <= next(
        c for c in columns if c["name"] == "Best"
    ).items()


# ---- a load-generator pod stopped from outside mid-point --------------------------------------------------


def lg_pod(name: str = "lg-1", *, deleting: bool = False, **status: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": "node-1"}, "status": {"phase": "Running", **status}}


def test_a_load_generator_pod_deleted_evicted_or_vanished_is_an_interruption() -> None:
    running_job: dict[str, Any] = {"status": {"active": 1}}
    assert load_generator_interruption(running_job, [lg_pod()], seen_pod=True) is None
    assert load_generator_interruption(running_job, [], seen_pod=False) is None  # not started yet
    assert load_generator_interruption(running_job, [lg_pod(deleting=True)], True) == "its pod lg-1 was deleted"
    evicted = lg_pod(conditions=[{"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                                  "message": "Eviction API: evicting"}])  # fmt: skip
    assert (
        load_generator_interruption(running_job, [evicted], True) == "its pod lg-1 was stopped (Eviction API: evicting)"
    )
    assert load_generator_interruption(running_job, [], seen_pod=True) == "its pod was deleted"


def test_a_point_past_its_deadline_is_not_an_interruption_though_its_pods_are_deleted() -> None:
    """The Job controller deletes the pods of a Job past activeDeadlineSeconds: that is the point timing out."""
    past_deadline = {
        "status": {"conditions": [{"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded"}]}
    }
    assert load_generator_interruption(past_deadline, [lg_pod(deleting=True)], True) is None
    assert load_generator_interruption(past_deadline, [], True) is None


def test_an_interrupted_point_is_measured_once_more_then_recorded_failed_with_what_to_do() -> None:
    first = after_interruption("add_sub/b1/c1", 1, "its pod lg-1 was deleted")
    assert first.rerun and first.event is not None and first.error is None
    assert first.event.type == "Warning" and first.event.reason == "PointInterrupted"
    assert "add_sub/b1/c1" in first.event.message and "its pod lg-1 was deleted" in first.event.message
    second = after_interruption("add_sub/b1/c1", MAX_POINT_RUNS, "its pod lg-2 was deleted")
    assert not second.rerun and second.event is None
    assert second.error is not None and "interrupted on each of its 2 runs" in second.error
    assert "its pod lg-2 was deleted" in second.error and "kubectl get events" in second.error


class JobScriptApi(RecordingApi):
    """The API as run_point_job sees it: each Job created gets the next script, a list of pod lists that
    successive looks at its pods return (the last one repeats)."""

    def __init__(self, body: dict[str, Any], scripts: list[list[list[dict[str, Any]]]]) -> None:
        super().__init__(body)
        self.triton = {"metadata": {"name": "example-g1-triton"}, "status": {"phase": "Running", "podIP": "10.0.0.7"}}
        self.scripts = scripts
        self.jobs: dict[str, list[list[dict[str, Any]]]] = {}  # uid -> its pod lists still to come
        self.live_jobs: set[str] = set()
        self.deleted: list[tuple[str, str]] = []

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        uid = f"job-{len(self.created)}"
        self.created.append(manifest)
        self.jobs[uid] = list(self.scripts[len(self.jobs)])
        self.live_jobs.add(manifest["metadata"]["name"])
        return {**manifest, "metadata": {**manifest["metadata"], "uid": uid}}

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        if kind == "Pod":
            return self.triton
        return {"metadata": {"name": name}, "status": {}} if name in self.live_jobs else None

    def list(self, kind: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        looks = self.jobs[selector.split("=", 1)[1]]
        return looks.pop(0) if len(looks) > 1 else looks[0]

    def delete(self, kind: str, namespace: str, name: str, owner_uid: str) -> None:
        self.deleted.append((kind, name))
        self.live_jobs.discard(name)
        if kind == "Pod":
            for looks in self.jobs.values():
                looks[:] = [[p for p in look if p["metadata"]["name"] != name] for look in looks]


def finished_pod(name: str, exit_code: int, message: str, *, deleting: bool = False) -> dict[str, Any]:
    state = {"terminated": {"exitCode": exit_code, "message": message}}
    return lg_pod(name, deleting=deleting, containerStatuses=[{"state": state}])


def point_runner(
    scripts: list[list[list[dict[str, Any]]]],
) -> tuple[TrialRun, JobScriptApi, list[tuple[str, str, str]]]:
    body = {"metadata": {"name": "example", "namespace": NS, "uid": "u-1", "generation": 1}, "spec": SPEC}
    api = JobScriptApi(body, scripts)
    events: list[tuple[str, str, str]] = []
    settings = DEFAULTS.model_copy(update={"poll_interval_seconds": 0.001})
    run = AnalysisRun(api, body, settings, TritonSlots(1), threading.Event(), lambda *e: events.append(e),
                      logging.getLogger("test"))  # fmt: skip
    trial = only_trial(run)
    trial.server_node = "node-1"  # the Triton pod is scheduled: its Jobs go beside it
    return trial, api, events


POINT = Point(model="add_sub", batch_size=1, concurrency=1)


def test_a_point_whose_load_generator_pod_is_deleted_is_run_again_and_measured() -> None:
    measured = perf_row(1).model_dump_json()
    run, api, events = point_runner([
        [[lg_pod("lg-1")], [finished_pod("lg-1", 143, "Terminated", deleting=True)], []],
        [[lg_pod("lg-2")], [finished_pod("lg-2", 0, measured)]],
    ])  # fmt: skip
    with pytest.raises(MeasureAgain, match="its pod lg-1 was deleted"):  # the engine opens a fresh window
        point_jobs.run_point_job(run, POINT, "10.0.0.7")
    perf = point_jobs.run_point_job(run, POINT, "10.0.0.7")
    assert perf.model_dump_json() == measured
    assert len(api.created) == 2 and api.created[0]["metadata"]["name"] == api.created[1]["metadata"]["name"]
    # The interrupted Job and its pod were removed before the rerun, the finished Job after it.
    assert api.deleted == [("Job", api.created[0]["metadata"]["name"]), ("Pod", "lg-1"),
                           ("Job", api.created[1]["metadata"]["name"])]  # fmt: skip
    assert [(t, r) for t, r, _ in events] == [("Warning", "PointInterrupted")]
    assert "its pod lg-1 was deleted" in events[0][2]


def test_a_point_interrupted_twice_is_recorded_failed_saying_why() -> None:
    run, api, events = point_runner([
        [[lg_pod("lg-1", deleting=True)], []],
        [[lg_pod("lg-2")], []],  # gone between two looks
    ])  # fmt: skip
    with pytest.raises(MeasureAgain):
        point_jobs.run_point_job(run, POINT, "10.0.0.7")
    with pytest.raises(PointMeasurementError, match=r"interrupted on each of its 2 runs \(last: its pod was deleted\)"):
        point_jobs.run_point_job(run, POINT, "10.0.0.7")
    assert len(api.created) == 2 and [r for _, r, _ in events] == ["PointInterrupted"]


def test_a_measurement_that_fails_on_its_own_is_not_run_again() -> None:
    run, api, events = point_runner([[[finished_pod("lg-1", 1, "perf_analyzer failed (exit 99): no requests")]]])
    with pytest.raises(PointMeasurementError, match="perf_analyzer failed"):
        point_jobs.run_point_job(run, POINT, "10.0.0.7")
    assert len(api.created) == 1 and events == []


# ---- a results claim that cannot be written ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        ("Read-only file system", "give results.pvc a claim that is mounted writable"),
        ("Permission denied", "writable by user 10001"),
        ("No space left on device", "Free space on the claim"),
        ("Input/output error", "Fix the claim"),
    ],
)
def test_a_results_claim_that_cannot_be_written_says_what_to_fix_and_where_the_results_are(
    error: str, fix: str
) -> None:
    message = results_write_failure(
        "results", "runs/example", f"error: cannot write /results/runs/example/report.html: {error}\n",
        "example-results", "example",
    )  # fmt: skip
    assert message.startswith("could not write the result files to claim results (folder runs/example): cannot write ")
    assert error in message and fix in message
    assert "ConfigMap example-results" in message and "model-analyzer results example" in message
    assert "every point is in status" in message


def test_copy_results_says_in_one_line_which_file_it_could_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "metrics-model-inference.csv").write_text("Model\n")
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")  # a file where the folder should be: the write fails whoever runs it
    assert job_commands.run("copy-results", [str(source), str(blocked / "example")]) == 1
    error = capsys.readouterr().err
    assert error == f"error: cannot write {blocked / 'example' / 'metrics-model-inference.csv'}: Not a directory\n"
