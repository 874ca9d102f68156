"""The kopf handlers, called directly: the daemon's filter, and the Triton slot it gives back when it ends."""

from __future__ import annotations

import logging
import threading
from typing import Any

import kopf
import pytest

from modelanalysis.kube import handlers
from modelanalysis.kube.reconcile import TritonSlots
from modelanalysis.kube.settings import OperatorSettings

# kopf's decorator types the daemon as a DaemonFn that takes every keyword kopf can pass; it takes a few.
run_analysis: Any = handlers.run_analysis

BODY = {"metadata": {"name": "example", "namespace": "team-a", "uid": "u-1", "generation": 1}, "spec": {}}


class FakeApi:
    def __init__(self, *answers: dict[str, Any] | None) -> None:
        self.answers = list(answers)

    def get_analysis(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def memo(api: FakeApi, slots: TritonSlots) -> kopf.Memo:
    m = kopf.Memo()
    m.api, m.slots, m.settings = api, slots, OperatorSettings()
    return m


def test_a_daemon_stopped_mid_sweep_gives_its_slot_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deleting an analysis mid-sweep: its run stops holding the slot (its pod was alive), then kopf stops the
    daemon. The slot must come back, or after max_triton_pods such deletions every analysis queues forever."""
    slots = TritonSlots(1)
    stopped = threading.Event()
    runs: list[str] = []

    class StoppedMidSweep:
        def __init__(self, api: Any, body: dict[str, Any], settings: Any, s: TritonSlots, *_: Any) -> None:
            self.key = f"{body['metadata']['namespace']}/{body['metadata']['name']}"
            self.slots = s

        def run(self) -> None:
            assert self.slots.acquire(self.key, already_running=False)
            runs.append(self.key)
            stopped.set()  # the analysis was deleted: kopf stops the daemon

    monkeypatch.setattr(handlers, "AnalysisRun", StoppedMidSweep)
    run_analysis(
        name="example",
        namespace="team-a",
        memo=memo(FakeApi(BODY), slots),
        stopped=stopped,
        logger=logging.getLogger("test"),
    )
    assert runs == ["team-a/example"]
    assert slots.holders == set()
    assert slots.acquire("team-a/next", already_running=False)


def test_a_daemon_for_a_vanished_analysis_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "AnalysisRun", None)  # never reached
    slots = TritonSlots(1)
    assert slots.acquire("team-a/other", already_running=False)
    run_analysis(
        name="example",
        namespace="team-a",
        memo=memo(FakeApi(None), slots),
        stopped=threading.Event(),
        logger=logging.getLogger("test"),
    )
    assert slots.holders == {"team-a/other"}  # another analysis' slot is untouched


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
def test_the_daemon_runs_while_the_generation_is_unfinished(
    meta: dict[str, Any], status: dict[str, Any], unfinished: bool
) -> None:
    assert handlers.unfinished(meta=meta, status=status) is unfinished  # type: ignore[arg-type]
