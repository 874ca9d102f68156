"""The kopf handlers' run bookkeeping, driven directly: which watch events start, re-check and stop a run,
the Triton slot a run gives back when it ends, and the look through the API that backs up a missed event.

AnalysisRun is replaced by a stand-in (reconcile.AnalysisRun has its own tests, and the cluster tests run the
real thing); the API by a fake that answers from a dict of analyses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from kubernetes.client.exceptions import ApiException

from modelanalysis.kube import handlers
from modelanalysis.kube.settings import OperatorSettings
from modelanalysis.kube.slots import TritonSlots

LOG = logging.getLogger("test")
WAIT_S = 10.0  # guards against hanging, never a performance assertion


def analysis(name: str = "example", uid: str = "u-1", generation: int = 1, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelanalyzer.dev/v1alpha1",
        "kind": "ModelAnalysis",
        "metadata": {"name": name, "namespace": "team-a", "uid": uid, "generation": generation},
        "spec": {},
        "status": status,
    }


class FakeApi:
    """get_analysis from a dict that the test edits, as the API server's current state."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}
        self.gets = 0

    def get_analysis(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.gets += 1
        return self.objects.get((namespace, name))

    def put(self, obj: dict[str, Any]) -> None:
        self.objects[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj

    def remove(self, name: str) -> None:
        self.objects.pop(("team-a", name), None)


class StandIn:
    """Stands in for AnalysisRun: records each run, takes a slot, and runs `behaviour` (by default: wait
    until stopped, as a run mid-sweep does)."""

    started: ClassVar[list[tuple[str, int]]]
    behaviour: ClassVar[Callable[[StandIn], None]]

    def __init__(self, api: Any, body: dict[str, Any], settings: Any, slots: TritonSlots, stopped: Any, *_: Any):
        self.api, self.body, self.slots, self.stopped = api, body, slots, stopped
        self.key = f"{body['metadata']['namespace']}/{body['metadata']['name']}"

    def run(self) -> None:
        assert self.slots.acquire(self.key, already_running=False)
        type(self).started.append((self.body["metadata"]["name"], self.body["metadata"]["generation"]))
        type(self).behaviour(self)

    def finish(self) -> None:
        """What a run that completes does: status says this generation is done."""
        self.body["status"] = {"observedGeneration": self.body["metadata"]["generation"], "phase": "Succeeded"}
        self.api.put(self.body)
        self.slots.release(self.key)

    def until_stopped(self) -> None:
        while not self.stopped.wait(0.05):
            pass


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> type[StandIn]:
    class Recorded(StandIn):
        started: ClassVar[list[tuple[str, int]]] = []
        behaviour: ClassVar[Callable[[StandIn], None]] = StandIn.until_stopped

    monkeypatch.setattr(handlers, "AnalysisRun", Recorded)
    monkeypatch.setattr(handlers, "event_sink", lambda body: lambda *args: None)  # no kopf event queue here
    return Recorded


def make_runs(api: FakeApi, slots: TritonSlots | None = None, retry_s: float = 0.05) -> handlers.Runs:
    return handlers.Runs(api, OperatorSettings(), slots or TritonSlots(1), retry_s=retry_s)  # type: ignore[arg-type]


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {WAIT_S} s"
        time.sleep(0.01)


def test_a_deleted_analysis_stops_its_run_and_gives_its_slot_back(stand_in: type[StandIn]) -> None:
    """No finalizer holds the object: the DELETED watch event is what stops the run. Its Triton slot must come
    back, or after max_triton_pods such deletions every analysis would queue for ever."""
    body = analysis()
    api, slots = FakeApi(body), TritonSlots(1)
    runs = make_runs(api, slots)
    runs.notice("ADDED", body, LOG)
    eventually(lambda: stand_in.started == [("example", 1)], "the run starting")
    assert slots.holders == {"team-a/example"}

    api.remove("example")
    runs.notice("DELETED", body, LOG)
    eventually(lambda: not runs.runs, "the run ending")
    assert slots.holders == set()
    assert slots.acquire("team-a/next", already_running=False)


def test_a_deletion_timestamp_stops_the_run_too(stand_in: type[StandIn]) -> None:
    """`kubectl delete --cascade=foreground` (or someone else's finalizer) keeps the object a while with a
    deletionTimestamp: the run stops at once rather than go on creating children for an object on its way out."""
    body = analysis()
    runs = make_runs(FakeApi(body))
    runs.notice(None, body, LOG)
    eventually(lambda: bool(stand_in.started), "the run starting")
    deleting = analysis()
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    runs.notice("MODIFIED", deleting, LOG)
    eventually(lambda: not runs.runs, "the run ending")


def test_a_missed_deleted_event_is_made_up_for_by_looking(stand_in: type[StandIn]) -> None:
    """A watch that reconnects does not replay a deletion: the run looks its analysis up every so often."""
    body = analysis()
    api = FakeApi(body)
    runs = make_runs(api)
    runs.notice("ADDED", body, LOG)
    eventually(lambda: bool(stand_in.started), "the run starting")
    (run,) = runs.runs.values()
    run.stop.look_again_s = 0.05
    run.stop.next_look = 0.0
    api.remove("example")  # and no event says so
    eventually(lambda: not runs.runs, "the run ending")


def test_an_analysis_recreated_under_the_same_name_is_not_mistaken_for_the_old_one(stand_in: type[StandIn]) -> None:
    stop = handlers.StopSignal(FakeApi(analysis(uid="u-2")), "team-a", "example", "u-1")
    assert stop.gone()
    assert not handlers.StopSignal(FakeApi(analysis()), "team-a", "example", "u-1").gone()


def test_a_finished_analysis_starts_nothing_and_a_changed_spec_starts_a_new_run(stand_in: type[StandIn]) -> None:
    stand_in.behaviour = StandIn.finish
    done = analysis(observedGeneration=1, phase="Succeeded")
    api = FakeApi(done)
    runs = make_runs(api)
    runs.notice(None, done, LOG)
    assert runs.runs == {} and stand_in.started == []

    changed = analysis(generation=2, observedGeneration=1, phase="Succeeded")
    api.put(changed)
    runs.notice("MODIFIED", changed, LOG)
    eventually(lambda: not runs.runs, "the run finishing")
    assert stand_in.started == [("example", 2)]


def test_events_during_a_run_start_no_second_one(stand_in: type[StandIn]) -> None:
    """Every status patch is a watch event: they must not start a second run of the same analysis."""
    body = analysis()
    runs = make_runs(FakeApi(body))
    for _ in range(5):
        runs.notice("MODIFIED", body, LOG)
    eventually(lambda: bool(stand_in.started), "the run starting")
    time.sleep(0.1)
    assert stand_in.started == [("example", 1)]
    runs.shutdown(timeout=WAIT_S)


def test_a_spec_change_that_lands_as_a_run_ends_is_not_lost(stand_in: type[StandIn]) -> None:
    """The run has just read its analysis finished when a new spec arrives: the event sees a run still going
    (so starts none), and the ending run must look again rather than leave the new spec unhandled."""
    stand_in.behaviour = StandIn.finish
    runs: handlers.Runs

    class SpecChangesRightAfterThisRead(FakeApi):
        def get_analysis(self, namespace: str, name: str) -> dict[str, Any] | None:
            current = super().get_analysis(namespace, name)
            if current is not None and current["status"].get("phase") == "Succeeded" and self.gets < 10:
                self.gets = 10  # once
                changed = analysis(generation=2, observedGeneration=1, phase="Succeeded")
                self.put(changed)
                runs.notice("MODIFIED", changed, LOG)
            return current

    api = SpecChangesRightAfterThisRead(analysis())
    runs = make_runs(api)
    runs.notice("ADDED", analysis(), LOG)
    eventually(lambda: api.gets >= 10 and not runs.runs, "the runs finishing")
    assert stand_in.started == [("example", 1), ("example", 2)]


def test_a_run_that_fails_unexpectedly_is_retried(stand_in: type[StandIn]) -> None:
    failures: list[int] = []

    def flaky(run: StandIn) -> None:
        if not failures:
            failures.append(1)
            run.slots.release(run.key)
            raise RuntimeError("the API server went away for a moment")
        run.finish()

    stand_in.behaviour = flaky
    runs = make_runs(FakeApi(analysis()))
    runs.notice("ADDED", analysis(), LOG)
    eventually(lambda: len(stand_in.started) == 2 and not runs.runs, "the retry finishing")


def test_a_refused_call_is_one_warning_line_and_a_retry(
    stand_in: type[StandIn], caplog: pytest.LogCaptureFixture
) -> None:
    """`helm uninstall` removes the RBAC a moment before the operator pod stops: a run then meets 403s."""

    def refused_once(run: StandIn) -> None:
        if len(stand_in.started) == 1:
            run.slots.release(run.key)
            raise ApiException(status=403, reason="Forbidden")
        run.finish()

    stand_in.behaviour = refused_once
    runs = make_runs(FakeApi(analysis()))
    with caplog.at_level(logging.WARNING, logger="test"):
        runs.notice("ADDED", analysis(), LOG)
        eventually(lambda: len(stand_in.started) == 2 and not runs.runs, "the retry finishing")
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "403" in record.getMessage() and record.exc_info is None


def test_kopfs_line_per_watch_event_is_dropped_and_nothing_else() -> None:
    quiet = handlers.QuietWatchHandler()

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, message, None, None)

    assert not quiet.filter(record("Handler 'analysis_event' succeeded."))
    assert quiet.filter(record("Handler 'analysis_event' failed with an exception. Will ignore."))
    assert quiet.filter(record("Run stopped; it resumes from status when the analysis is next reconciled."))


def test_operator_exit_stops_every_run(stand_in: type[StandIn]) -> None:
    bodies = [analysis(name=f"a{i}", uid=f"u-{i}") for i in range(3)]
    slots = TritonSlots(3)
    runs = make_runs(FakeApi(*bodies), slots)
    for body in bodies:
        runs.notice(None, body, LOG)
    eventually(lambda: len(stand_in.started) == 3, "the runs starting")
    runs.shutdown(timeout=WAIT_S)
    assert runs.runs == {} and slots.holders == set()


@pytest.mark.parametrize(
    ("meta", "status", "unfinished"),
    [
        ({"generation": 1}, {}, True),
        ({"generation": 1}, {"observedGeneration": 1, "phase": "Profiling"}, True),
        ({"generation": 1}, {"observedGeneration": 1, "phase": "Succeeded"}, False),
        ({"generation": 1}, {"observedGeneration": 1, "phase": "Failed"}, False),
        ({"generation": 2}, {"observedGeneration": 1, "phase": "Succeeded"}, True),  # the spec changed
    ],
)
def test_a_run_goes_while_the_generation_is_unfinished(
    meta: dict[str, Any], status: dict[str, Any], unfinished: bool
) -> None:
    assert handlers.unfinished(meta, status) is unfinished
