"""The operator-wide cap on Triton pods: how many analyses (or trials) hold a Triton pod at once, and who is next.

Slots are shared fairly between namespaces: when one frees, it goes to the namespace holding the fewest slots,
then to the one served longest ago (round-robin: with one slot, where every namespace holds none when it frees,
holdings alone would fall back to first come, first served), then to the one whose oldest waiting analysis came
first; within a namespace to its oldest waiting analysis. A team that applies 50 analyses therefore cannot keep a
second team's single one waiting behind all of them: it waits one slot turn. An optional per-namespace cap bounds
what one namespace may hold at all. Who was served when is kept in memory only: after an operator restart the
first turn goes by holdings and age.

What is in use is read from the cluster too (`observe`: the Triton pods that exist): after a restart the runs
whose pods live reclaim their slots only as their threads come round, and until then those pods still count, so
the queued analyses cannot take the slots first and pass the cap. For the same reason no new slot is handed out
in the first `settle_s` after a start: the runs are noticed one by one, and the first namespace noticed would
otherwise take every free slot before the others' analyses are in the queue.

A queued analysis's place is rewritten in its status as the queue moves, but for a long queue not at every grant
(that is a status write per waiter per grant): at most every `queue_update_interval_s(waiting)`, which holds the
operator's queue writes to about QUEUE_UPDATES_PER_S whatever the queue's length.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

OBSERVE_EVERY_S = 2.0  # how stale the look at the cluster's Triton pods may be (queued runs ask every 2 s)
QUEUE_UPDATES_PER_S = 10.0  # queued messages rewritten per second, over all waiters (about)
QUEUE_UPDATE_MIN_S = 2.0


def queue_update_interval_s(waiting: int) -> float:
    """How long a waiter keeps its queued message before writing a new place: longer as the queue grows."""
    return max(QUEUE_UPDATE_MIN_S, waiting / QUEUE_UPDATES_PER_S)


def namespace_of(key: str) -> str:
    """A slot key is `<namespace>/<name>` (or `<namespace>/<name>#<trial>`)."""
    return key.split("/", 1)[0]


@dataclass(frozen=True)
class Waiter:
    key: str
    since: str  # the analysis' creationTimestamp (RFC 3339 sorts as text), or when it began to wait


def fair_order(
    waiters: Mapping[str, Waiter],
    held: Counter[str],
    per_namespace: int | None = None,
    last_served: Mapping[str, int] | None = None,
) -> list[str]:
    """The order the waiting keys get slots in: round-robin over namespaces, the namespace holding the fewest
    (counting those granted ahead in this order) first, ties to the one served longest ago (`last_served`: the
    number of its latest grant; never served counts as longest ago), then to the one whose oldest waiter came
    first; within a namespace, oldest first. A namespace at its cap is left out."""
    queues: dict[str, list[Waiter]] = {}
    for waiter in sorted(waiters.values(), key=lambda w: (w.since, w.key)):
        queues.setdefault(namespace_of(waiter.key), []).append(waiter)
    holding = Counter(held)
    served = dict(last_served or {})
    turn = max(served.values(), default=0)
    order: list[str] = []
    while queues:
        namespace = min(queues, key=lambda ns: (holding[ns], served.get(ns, 0), queues[ns][0].since, ns))
        waiter = queues[namespace].pop(0)
        if per_namespace is None or holding[namespace] < per_namespace:
            order.append(waiter.key)
        holding[namespace] += 1
        turn += 1
        served[namespace] = turn
        if not queues[namespace]:
            del queues[namespace]
    return order


class TritonSlots:
    """Caps how many Triton pods this operator runs at once; analyses beyond the cap wait as Queued, and get the
    freed slots in fair_order."""

    def __init__(
        self,
        limit: int,
        per_namespace: int | None = None,
        observe: Callable[[], set[str]] | None = None,
        settle_s: float = 0.0,
    ) -> None:
        self.limit = limit
        self.per_namespace = per_namespace
        self.settled_at = time.monotonic() + settle_s  # no new slot before: the queue is still being rebuilt
        self.observe = observe  # the slot keys of the Triton pods that exist now (readings.triton_slot_key)
        self._observed: set[str] = set()
        self._observed_at = float("-inf")
        self._observe_lock = threading.Lock()
        self.holders: set[str] = set()
        self.waiters: dict[str, Waiter] = {}
        self.last_served: dict[str, int] = {}  # namespace -> the number of its latest grant
        self.grants = 0
        self.lock = threading.Lock()

    @property
    def settling(self) -> bool:
        return time.monotonic() < self.settled_at

    def observed(self) -> set[str]:
        """The slot keys of the Triton pods the cluster holds now (looked at most every OBSERVE_EVERY_S)."""
        if self.observe is None:
            return set()
        with self._observe_lock:
            if time.monotonic() - self._observed_at >= OBSERVE_EVERY_S:
                self._observed, self._observed_at = set(self.observe()), time.monotonic()
            return set(self._observed)

    def _in_use(self, observed: set[str]) -> set[str]:
        return self.holders | observed

    def in_use(self) -> int:
        """How many slots are taken: held by a run here, or by a Triton pod that exists."""
        observed = self.observed()
        with self.lock:
            return len(self._in_use(observed))

    def _held(self, observed: set[str]) -> Counter[str]:
        return Counter(namespace_of(h) for h in self._in_use(observed))

    def _order(self, observed: set[str]) -> list[str]:
        return fair_order(self.waiters, self._held(observed), self.per_namespace, self.last_served)

    def _grant(self, key: str) -> None:
        self.holders.add(key)
        self.waiters.pop(key, None)
        self.grants += 1
        self.last_served[namespace_of(key)] = self.grants

    def acquire(self, key: str, *, already_running: bool, since: str = "") -> bool:
        with self.lock:
            # An analysis whose pod already exists (an operator restart) keeps it, even past the cap.
            if key in self.holders:
                return True
            if already_running:
                self._grant(key)
                return True
        observed = self.observed() - {key}  # outside the lock: it may ask the API
        with self.lock:
            self.waiters.setdefault(key, Waiter(key, since))
            if self.settling:
                return False
            free = self.limit - len(self._in_use(observed))
            # The first `free` in the fair order may take one now (each takes its own when it next asks).
            if free <= 0 or key not in self._order(observed)[:free]:
                return False
            self._grant(key)
            return True

    def position(self, key: str) -> tuple[int, int] | None:
        """Where a waiting key stands: (its place in the order, 1 first; how many wait), or None if it does not
        wait (or waits on its namespace's cap, outside the order)."""
        observed = self.observed()
        with self.lock:
            order = self._order(observed)
            return (order.index(key) + 1, len(self.waiters)) if key in order else None

    def withdraw(self, key: str) -> None:
        """A waiter that stops waiting (its analysis deleted or changed)."""
        with self.lock:
            self.waiters.pop(key, None)

    def release(self, key: str) -> None:
        with self.lock:
            self.holders.discard(key)

    def release_analysis(self, key: str) -> None:
        """Free the analysis' slot and those of its trials (`<key>#<n>`), and stop its waiting."""
        with self.lock:
            self.holders = {h for h in self.holders if h != key and not h.startswith(f"{key}#")}
            self.waiters = {k: w for k, w in self.waiters.items() if k != key and not k.startswith(f"{key}#")}


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


SETTLING_MESSAGE = "queued: the operator has just started and gathers the queue before it hands out Triton pods"


def queued_message(place: tuple[int, int] | None, in_use: int, limit: int, per_namespace: int | None) -> str:
    """What a waiting analysis' status says: its place in the queue, and what it waits for."""
    if place is None:
        return f"queued: this namespace holds its {per_namespace} Triton pods, the most one namespace may"
    return f"queued: {ordinal(place[0])} of {place[1]} for a Triton pod, {in_use} of {limit} in use"
