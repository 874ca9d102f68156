"""Fair Triton slots (kube/slots.py): a freed slot goes to the namespace holding the fewest, then by age."""

from __future__ import annotations

from collections import Counter

from modelanalysis.kube import names
from modelanalysis.kube.readings import triton_slot_key
from modelanalysis.kube.slots import TritonSlots, Waiter, fair_order, queue_update_interval_s, queued_message


def test_a_busy_namespace_does_not_keep_another_waiting_behind_all_its_analyses() -> None:
    slots = TritonSlots(2)
    for i in range(50):  # team-a applies 50 analyses first
        slots.acquire(f"team-a/a{i:02d}", already_running=False, since=f"2026-12-02T10:00:{i:02d}Z")
    assert slots.holders == {"team-a/a00", "team-a/a01"}
    assert not slots.acquire("team-b/b0", already_running=False, since="2026-12-02T10:05:00Z")
    assert slots.position("team-b/b0") == (1, 49)  # next, though 48 of team-a's came before it
    slots.release("team-a/a00")
    assert not slots.acquire("team-a/a02", already_running=False)  # not its turn
    assert slots.acquire("team-b/b0", already_running=False)
    slots.release("team-a/a01")
    assert slots.acquire("team-a/a02", already_running=False)  # then team-a again, oldest first


def test_the_order_is_round_robin_over_namespaces_and_oldest_first_within_one() -> None:
    waiters = {k: Waiter(k, t) for k, t in [("a/1", "1"), ("a/2", "2"), ("a/3", "3"), ("b/1", "4"), ("c/1", "5")]}
    assert fair_order(waiters, Counter()) == ["a/1", "b/1", "c/1", "a/2", "a/3"]
    assert fair_order(waiters, Counter({"a": 2})) == ["b/1", "c/1", "a/1", "a/2", "a/3"]
    assert fair_order(waiters, Counter({"a": 2}), per_namespace=2) == ["b/1", "c/1"]  # a is at its cap


def test_a_namespace_cap_and_a_pod_that_already_runs() -> None:
    slots = TritonSlots(4, per_namespace=1)
    assert slots.acquire("a/1", already_running=False)
    assert not slots.acquire("a/2", already_running=False)
    assert slots.position("a/2") is None  # waits on its namespace's cap, not in the order
    assert "holds its 1 Triton pods" in queued_message(None, 1, 4, 1)
    assert slots.acquire("a/3", already_running=True)  # after an operator restart: its pod keeps its slot
    slots.withdraw("a/2")
    assert slots.waiters == {}


def test_the_queued_message_says_the_place_and_what_it_waits_for() -> None:
    assert queued_message((3, 5), 8, 8, None) == "queued: 3rd of 5 for a Triton pod, 8 of 8 in use"
    assert queued_message((1, 1), 4, 4, None).startswith("queued: 1st of 1")
    assert queued_message((12, 20), 4, 4, None).startswith("queued: 12th")


def test_with_one_slot_a_freed_slot_alternates_between_namespaces() -> None:
    """With one slot every namespace holds none whenever it frees: the turn goes to the one served longest ago,
    not to the oldest waiter (which would be first come, first served)."""
    slots = TritonSlots(1)
    for i in range(4):
        slots.acquire(f"busy/b{i}", already_running=False, since=f"2026-12-02T10:00:0{i}Z")
    assert not slots.acquire("quiet/q0", already_running=False, since="2026-12-02T10:01:00Z")
    assert slots.position("quiet/q0") == (1, 4)
    started = ["busy/b0"]
    for holder in started:
        slots.release(holder)
        for key in sorted(slots.waiters):
            if slots.acquire(key, already_running=False):
                started.append(key)
                break
    assert started == ["busy/b0", "quiet/q0", "busy/b1", "busy/b2", "busy/b3"]


def test_after_a_restart_live_triton_pods_count_until_their_runs_reclaim_them() -> None:
    """The cap holds across an operator restart: the pods of the runs that were going still take their slots
    while those runs wait for a thread, so queued analyses do not start past the cap."""
    pods = {"a/one", "b/two"}
    slots = TritonSlots(2, observe=lambda: set(pods))
    assert not slots.acquire("c/three", already_running=False, since="t1")  # both slots are the live pods'
    assert slots.in_use() == 2
    assert slots.acquire("a/one", already_running=True)  # its run comes round and keeps its pod
    assert not slots.acquire("c/three", already_running=False, since="t1")
    pods.discard("b/two")  # that analysis finished: its pod is gone
    slots._observed_at = float("-inf")  # the next ask looks again (it looks at most every 2 s)
    assert slots.acquire("c/three", already_running=False, since="t1")


def test_a_pod_is_a_slot_of_the_analysis_that_owns_it() -> None:
    owner = [{"kind": "ModelAnalysis", "name": "a-very-long-name"}]
    pod = {"metadata": {"namespace": "team", "ownerReferences": owner, "labels": {}}}
    assert triton_slot_key(pod) == "team/a-very-long-name"
    trial = {"metadata": {"namespace": "team", "ownerReferences": owner, "labels": {names.LABEL_TRIAL: "2"}}}
    assert triton_slot_key(trial) == "team/a-very-long-name#2"
    going = {"metadata": {**pod["metadata"], "deletionTimestamp": "2026-12-03T00:00:00Z"}}
    assert triton_slot_key(going) is None
    assert triton_slot_key({"metadata": {"namespace": "team", "ownerReferences": []}}) is None


def test_no_new_slot_is_handed_out_while_the_queue_is_gathered_after_a_start() -> None:
    slots = TritonSlots(2, settle_s=60)
    assert slots.settling
    assert not slots.acquire("a/one", already_running=False, since="t1")  # queued, not granted
    assert slots.acquire("b/two", already_running=True)  # a run whose pod lives keeps it
    slots.settled_at = 0.0
    assert slots.acquire("a/one", already_running=False, since="t1")


def test_a_long_queue_rewrites_each_place_less_often() -> None:
    assert queue_update_interval_s(3) == 2.0
    assert queue_update_interval_s(1000) == 100.0  # 1000 waiters, about 10 status writes a second in all
