"""The operator-wide cap on Triton pods: how many analyses (or trials) hold a Triton pod at once, and who is next.

Slots are shared fairly between namespaces: when one frees, it goes to the namespace holding the fewest slots,
then to the one served longest ago (round-robin: with one slot, where every namespace holds none when it frees,
holdings alone would fall back to first come, first served), then to the one whose oldest waiting analysis came
first; within a namespace to its oldest waiting analysis. A team that applies 50 analyses therefore cannot keep a
second team's single one waiting behind all of them: it waits one slot turn. An optional per-namespace cap bounds
what one namespace may hold at all. Who was served when is kept in memory only: after an operator restart the
first turn goes by holdings and age.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass


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

    def __init__(self, limit: int, per_namespace: int | None = None) -> None:
        self.limit = limit
        self.per_namespace = per_namespace
        self.holders: set[str] = set()
        self.waiters: dict[str, Waiter] = {}
        self.last_served: dict[str, int] = {}  # namespace -> the number of its latest grant
        self.grants = 0
        self.lock = threading.Lock()

    def _held(self) -> Counter[str]:
        return Counter(namespace_of(h) for h in self.holders)

    def _order(self) -> list[str]:
        return fair_order(self.waiters, self._held(), self.per_namespace, self.last_served)

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
            self.waiters.setdefault(key, Waiter(key, since))
            free = self.limit - len(self.holders)
            # The first `free` in the fair order may take one now (each takes its own when it next asks).
            if free <= 0 or key not in self._order()[:free]:
                return False
            self._grant(key)
            return True

    def position(self, key: str) -> tuple[int, int] | None:
        """Where a waiting key stands: (its place in the order, 1 first; how many wait), or None if it does not
        wait (or waits on its namespace's cap, outside the order)."""
        with self.lock:
            order = self._order()
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


def queued_message(place: tuple[int, int] | None, in_use: int, limit: int, per_namespace: int | None) -> str:
    """What a waiting analysis' status says: its place in the queue, and what it waits for."""
    if place is None:
        return f"queued: this namespace holds its {per_namespace} Triton pods, the most one namespace may"
    return f"queued: {ordinal(place[0])} of {place[1]} for a Triton pod, {in_use} of {limit} in use"
