"""The leader Lease's rules (kube/leader.py) and the runs of a follower (kube/handlers.py), without a cluster."""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from modelanalysis.kube.handlers import Runs
from modelanalysis.kube.leader import Act, LeaseView, Observation, must_step_down, next_act, observe
from modelanalysis.kube.settings import OperatorSettings
from modelanalysis.kube.slots import TritonSlots

HELD = LeaseView(holder="pod-a", renew_time="2026-12-01T10:00:00.000000Z", duration_s=15)


def test_a_free_lease_is_taken_and_ones_own_is_renewed() -> None:
    assert next_act(None, "pod-b", None, 0.0) == Act.TAKE
    assert next_act(LeaseView(None, None, 15), "pod-b", None, 0.0) == Act.TAKE
    assert next_act(HELD, "pod-a", None, 0.0) == Act.RENEW


def test_anothers_lease_expires_only_after_a_whole_duration_unchanged_by_ones_own_clock() -> None:
    seen = observe(HELD, None, now=100.0)
    assert seen == Observation("pod-a", HELD.renew_time, 100.0)
    assert next_act(HELD, "pod-b", seen, 114.9) == Act.WAIT
    assert next_act(HELD, "pod-b", observe(HELD, seen, 115.0), 115.0) == Act.TAKE
    # A renewal restarts the count, whatever the times written in the Lease say.
    renewed = LeaseView("pod-a", "2026-12-01T09:00:00.000000Z", 15)  # an earlier clock on the holder's node
    again = observe(renewed, seen, 114.0)
    assert again is not None and again.seen_at == 114.0
    assert next_act(renewed, "pod-b", again, 120.0) == Act.WAIT


def test_a_leader_steps_down_before_any_follower_may_take_over() -> None:
    assert not must_step_down(last_renewed=100.0, now=107.4, duration_s=15)
    assert must_step_down(last_renewed=100.0, now=107.5, duration_s=15)


KOPF_CONTEXT: contextvars.ContextVar[str] = contextvars.ContextVar("kopf_context")


class Recorded(Runs):
    """Runs that record what they would start instead of starting it."""

    def __init__(self) -> None:
        super().__init__(None, OperatorSettings(), TritonSlots(1))  # type: ignore[arg-type]
        self.started: list[str] = []
        self.contexts: list[str | None] = []

    def notice(self, event_type: str | None, body: Any, logger: Any) -> None:
        before = set(self.runs)
        super().notice(event_type, body, logger)
        new = [uid for uid in self.runs if uid not in before]
        self.started += new
        self.contexts += [KOPF_CONTEXT.get(None) for _ in new]
        self.runs.clear()

    def work(self, *_: Any) -> None:
        pass


def analysis(uid: str, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"uid": uid, "namespace": "ns", "name": uid, "generation": 1}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T10:00:00Z"
    return {"metadata": meta, "status": {}}


def test_a_follower_runs_nothing_and_starts_what_it_followed_once_it_leads() -> None:
    runs, log = Recorded(), logging.getLogger("test")
    runs.follow()
    KOPF_CONTEXT.set("kopf's event context")  # what kopf sets around each handler call
    runs.notice("ADDED", analysis("a"), log)
    runs.notice("ADDED", analysis("b"), log)
    runs.notice("MODIFIED", analysis("b", deleting=True), log)
    assert runs.started == []
    KOPF_CONTEXT.set("the elector thread")
    runs.lead(log)
    assert runs.started == ["a"]  # b went while this replica followed
    assert runs.contexts == ["kopf's event context"]  # a run posts Events through kopf's context
    runs.notice("ADDED", analysis("c"), log)
    assert runs.started == ["a", "c"]
    runs.executor.shutdown()
