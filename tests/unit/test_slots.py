"""Fair Triton slots (kube/slots.py): a freed slot goes to the namespace holding the fewest, then by age."""

from __future__ import annotations

from collections import Counter

from modelanalysis.kube.slots import TritonSlots, Waiter, fair_order, queued_message


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
