"""What is the analysis's own (kube/ownership.py), decided without a cluster: a child name held by an object the
analysis does not own fails it before anything is created, naming the object, and results already on the claim
are moved beside, never written over. tests/e2e/test_malformed.py and tests/test_kube_apply.py check it against
the real API server."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from modelanalysis import job_commands
from modelanalysis.adapters.files import RESULTS_OWNER_FILE, set_aside_earlier_results
from modelanalysis.core.sweep import Point
from modelanalysis.kube import names, reconcile
from modelanalysis.kube.ownership import NameTaken, collision_message, first_collision, holder, owned_by
from modelanalysis.kube.readings import copied_results
from modelanalysis.kube.reconcile import AnalysisRun
from modelanalysis.kube.slots import TritonSlots
from tests.fakes import DEFAULTS, NS, SPEC, RecordingApi

UID = "u-1"


def obj(name: str, *owners: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name, "ownerReferences": list(owners)}}


ANALYSIS = {"kind": "ModelAnalysis", "name": "example", "uid": UID, "controller": True}


def test_only_an_owner_reference_with_the_analysis_uid_makes_an_object_its_own() -> None:
    assert owned_by(obj("a", ANALYSIS), UID)
    assert not owned_by(obj("a"), UID)
    assert not owned_by({"metadata": {"name": "a"}}, UID)
    # The same name and kind, another uid: an earlier analysis of that name, deleted and created again.
    assert not owned_by(obj("a", {**ANALYSIS, "uid": "u-0"}), UID)


def test_whose_an_object_is_reads_as_words() -> None:
    assert holder(obj("a")) == "it has no owner (made by hand or by another tool)"
    assert holder(obj("a", {"kind": "Deployment", "name": "web", "uid": "x"})) == "it belongs to Deployment web"


def test_the_first_collision_is_a_wanted_name_someone_else_holds() -> None:
    existing = [obj("mine", ANALYSIS), obj("theirs"), obj("unrelated")]
    assert first_collision(existing, {"mine"}, "Job", ANALYSIS) is None
    taken = first_collision(existing, {"mine", "theirs"}, "Job", ANALYSIS)
    assert taken is not None and (taken.kind, taken.name, taken.leftover) == ("Job", "theirs", False)


def test_a_child_of_a_deleted_analysis_of_the_same_name_is_a_leftover_the_garbage_collector_takes() -> None:
    """Names are unique in a namespace: a ModelAnalysis of this name with another uid was deleted."""
    earlier = {**ANALYSIS, "uid": "u-0"}
    [taken] = [first_collision([obj("example-results", earlier)], {"example-results"}, "ConfigMap", ANALYSIS)]
    assert taken is not None and taken.leftover
    other_name = {**earlier, "name": "other"}
    taken = first_collision([obj("example-results", other_name)], {"example-results"}, "ConfigMap", ANALYSIS)
    assert taken is not None and not taken.leftover


def test_the_collision_sentence_names_the_object_and_both_ways_out() -> None:
    message = collision_message(NameTaken("ConfigMap", "victim-results", "it has no owner"))
    assert message.startswith("ConfigMap victim-results already exists and is not this analysis's (it has no owner)")
    assert "left it untouched" in message and "rename the analysis" in message
    assert "kubectl delete configmap victim-results" in message and "\n" not in message


def run_with(api: RecordingApi, body: dict[str, Any]) -> tuple[AnalysisRun, list[tuple[str, str, str]]]:
    events: list[tuple[str, str, str]] = []
    run = AnalysisRun(api, body, DEFAULTS, TritonSlots(1), threading.Event(), lambda *e: events.append(e),
                      logging.getLogger("test"))  # fmt: skip
    return run, events


class JobsApi(RecordingApi):
    def __init__(self, body: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
        super().__init__(body)
        self.jobs = jobs

    def list(self, kind: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        return self.jobs if kind == "Job" and not selector else []


SPEC_WITH_CLAIM = {**SPEC, "results": {"pvc": {"claimName": "results"}}}
BODY = {"metadata": {"name": "example", "namespace": NS, "uid": UID, "generation": 1}, "spec": SPEC_WITH_CLAIM}
POINT_JOB = names.point_job_name("example", 1, Point(model="add_sub", batch_size=1, concurrency=1))


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("Pod", "example-g1-triton"),
        ("ConfigMap", "example-results"),
        ("Job", POINT_JOB),
        ("Job", "example-g1-results"),
    ],
)
def test_a_child_name_someone_else_holds_fails_the_analysis_before_anything_is_created(kind: str, name: str) -> None:
    if kind == "Job":
        api: RecordingApi = JobsApi(BODY, [obj(name)])
    else:
        api = RecordingApi(BODY)
        api.foreign.add((kind, name))
    run, events = run_with(api, BODY)
    run.run()
    assert api.created == []
    status = api.statuses[-1]
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert status["phase"] == "Failed" and (ready["status"], ready["reason"]) == ("False", "NameInUse")
    assert ready["message"].startswith(f"{kind} {name} already exists and is not this analysis's")
    assert ("Warning", "NameInUse") in [(t, r) for t, r, _ in events]


def test_every_listed_step_s_job_name_is_checked_and_the_analysis_s_own_jobs_are_not_collisions() -> None:
    spec = {**SPEC_WITH_CLAIM, "batchSizes": [1, 4], "concurrency": [1, 2]}
    body = {**BODY, "spec": spec}
    last = names.point_job_name("example", 1, Point(model="add_sub", batch_size=4, concurrency=2))
    api = JobsApi(body, [obj(POINT_JOB, ANALYSIS), obj(last)])  # the first its own (before a restart)
    run, _ = run_with(api, body)
    run.run()
    ready = {c["type"]: c for c in api.statuses[-1]["conditions"]}["Ready"]
    assert ready["reason"] == "NameInUse" and ready["message"].startswith(f"Job {last} already exists")
    assert api.created == []


class LeftoverPodApi(RecordingApi):
    """The Triton pod's name held by the pod of a deleted analysis of the same name, for `looks` reads."""

    def __init__(self, body: dict[str, Any], looks: int) -> None:
        super().__init__(body)
        self.looks = looks

    def read_owned(self, kind: str, namespace: str, name: str, owner: dict[str, Any]) -> dict[str, Any] | None:
        if kind == "Pod" and self.looks > 0:
            self.looks -= 1
            raise NameTaken(kind, name, "it belongs to ModelAnalysis example", leftover=True)
        return None

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return {"metadata": {"name": name}} if kind == "PersistentVolumeClaim" else None


def test_a_namesakes_leftover_child_is_waited_for_until_the_garbage_collector_takes_it() -> None:
    """Deleted and applied again at once: the earlier analysis's pod is still going. The new one waits for it
    rather than failing, then creates its own."""
    api = LeftoverPodApi(BODY, looks=3)
    run, _ = run_with(api, BODY)
    run.settings = run.settings.model_copy(update={"poll_interval_seconds": 0.01})
    run.run()
    assert api.looks == 0
    assert [m["kind"] for m in api.created][:1] == ["Pod"]  # its own Triton pod, once the name was free


def test_a_leftover_that_does_not_go_ends_the_analysis_as_any_collision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconcile, "LEFTOVER_WAIT_SECONDS", 0.05)
    api = LeftoverPodApi(BODY, looks=10**6)
    run, _ = run_with(api, BODY)
    run.settings = run.settings.model_copy(update={"poll_interval_seconds": 0.01})
    run.run()
    assert api.created == []
    ready = {c["type"]: c for c in api.statuses[-1]["conditions"]}["Ready"]
    assert ready["reason"] == "NameInUse" and "it belongs to ModelAnalysis example" in ready["message"]


# ---- results on the claim -------------------------------------------------------------------------------------


def results_source(tmp_path: Path) -> Path:
    source = tmp_path / "in"
    source.mkdir()
    (source / "metrics-model-inference.csv").write_text("Model\nnew\n")
    return source


def copy(source: Path, destination: Path, uid: str, generation: int, log: Path) -> dict[str, Any]:
    owner = json.dumps({"name": "example", "namespace": NS, "uid": uid, "generation": generation})
    args = [str(source), str(destination), "--owner", owner, "--termination-log", str(log)]
    assert job_commands.run("copy-results", args) == 0
    return copied_results(log.read_text())


def test_results_of_an_earlier_analysis_of_the_same_name_are_moved_beside_never_written_over(tmp_path: Path) -> None:
    source, destination, log = results_source(tmp_path), tmp_path / "out" / "example", tmp_path / "log"
    said = copy(source, destination, "u-0", 1, log)
    assert "setAside" not in said
    first = json.loads((destination / RESULTS_OWNER_FILE).read_text())
    assert (first["uid"], first["generation"]) == ("u-0", 1)
    (destination / "metrics-model-inference.csv").write_text("Model\nearlier\n")

    said = copy(source, destination, UID, 1, log)  # the analysis deleted and created again: a new uid
    kept = destination.parent / said["setAside"]
    stamp = first["writtenAt"].replace("-", "").replace(":", "")
    assert kept.name == f"example.earlier-{stamp}"
    assert (kept / "metrics-model-inference.csv").read_text() == "Model\nearlier\n"
    assert (destination / "metrics-model-inference.csv").read_text() == "Model\nnew\n"

    said = copy(source, destination, UID, 1, log)  # a retried results Job of the same generation: its own files
    assert "setAside" not in said and sorted(p.name for p in destination.parent.iterdir()) == sorted(
        ["example", kept.name]
    )
    said = copy(source, destination, UID, 2, log)  # a new generation keeps the last one's results too
    assert said["setAside"].startswith("example.earlier-") and said["setAside"] != kept.name


def test_files_put_there_by_hand_are_kept_too_under_the_time_they_were_written(tmp_path: Path) -> None:
    folder = tmp_path / "example"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    os.utime(folder, (1_700_000_000, 1_700_000_000))
    moved = set_aside_earlier_results(folder, UID, 1)
    assert moved is not None and moved.name == "example.earlier-20231114T221320Z"
    assert (moved / "notes.txt").read_text() == "mine" and not folder.exists()
    # Twice in the same second: the second gets a number, nothing is replaced.
    folder.mkdir()
    (folder / "notes.txt").write_text("again")
    os.utime(folder, (1_700_000_000, 1_700_000_000))
    again = set_aside_earlier_results(folder, UID, 1)
    assert again is not None and again.name == "example.earlier-20231114T221320Z-2"


def test_an_empty_or_missing_folder_is_simply_written(tmp_path: Path) -> None:
    assert set_aside_earlier_results(tmp_path / "missing", UID, 1) is None
    (tmp_path / "empty").mkdir()
    assert set_aside_earlier_results(tmp_path / "empty", UID, 1) is None


def test_an_owner_record_written_by_anyone_never_puts_a_path_into_the_new_name(tmp_path: Path) -> None:
    folder = tmp_path / "example"
    folder.mkdir()
    (folder / RESULTS_OWNER_FILE).write_text(json.dumps({"uid": "x", "writtenAt": "../../etc"}))
    moved = set_aside_earlier_results(folder, UID, 1)
    assert moved is not None and moved.parent == tmp_path
    assert moved.name.startswith("example.earlier-") and moved.name.removeprefix("example.earlier-")[:8].isdigit()
