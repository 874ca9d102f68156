"""One acting operator among several replicas: a Lease (coordination.k8s.io) names the leader.

Every replica watches analyses through kopf, but only the one holding the Lease runs them; the others remember
what they see and start it all when they take the Lease over. The rules (pure, below, unit-tested):

- a free Lease (none, or no holder) is taken;
- the holder renews it every third of its duration;
- another holder's Lease has expired when its renewTime has not changed for the whole duration *by this
  replica's own clock* (from when this replica last saw it change): clocks of different nodes never compare;
- a leader that has not renewed for half the duration steps down by exiting the process, before any follower
  can take over, so that no run of the old leader is still going when the new one starts (a run may be inside
  a slow call that no stop signal reaches in time; exiting reaches it). Kubernetes restarts the pod, which comes
  back as a follower. Controllers built on client-go's leader election exit the same way.

Writes use the Lease's resourceVersion, so when two followers take over at once only one succeeds.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)


class Act(StrEnum):
    TAKE = "take"
    RENEW = "renew"
    WAIT = "wait"


@dataclass(frozen=True)
class LeaseView:
    holder: str | None
    renew_time: str | None  # as the holder wrote it: compared for change only, never with a clock
    duration_s: float


@dataclass(frozen=True)
class Observation:
    """A Lease's holder and renewTime as this replica last saw them change, and when (its own monotonic clock)."""

    holder: str | None
    renew_time: str | None
    seen_at: float


def observe(lease: LeaseView | None, last: Observation | None, now: float) -> Observation | None:
    """The observation to keep after reading `lease`: the old one while nothing changed, else a new one."""
    if lease is None:
        return None
    if last is not None and (last.holder, last.renew_time) == (lease.holder, lease.renew_time):
        return last
    return Observation(lease.holder, lease.renew_time, now)


def next_act(lease: LeaseView | None, me: str, seen: Observation | None, now: float) -> Act:
    """What this replica does about the Lease it just read (and observed)."""
    if lease is None or not lease.holder:
        return Act.TAKE
    if lease.holder == me:
        return Act.RENEW
    if seen is not None and now - seen.seen_at >= lease.duration_s:
        return Act.TAKE  # not renewed for a whole duration, as far as this replica has seen
    return Act.WAIT


def must_step_down(last_renewed: float, now: float, duration_s: float) -> bool:
    """A leader that has not renewed for half the duration stops acting (followers wait for all of it)."""
    return now - last_renewed >= duration_s / 2


def _now_micro() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Holds the Lease for this replica in a background thread; `on_elected` runs once it is taken, `on_lost`
    when it could not be renewed in time (by default: exit the process)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        duration_s: float = 15.0,
        on_elected: Callable[[], None] = lambda: None,
        on_lost: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api: Any = client.CoordinationV1Api(api_client)  # takes plain dicts (see kube/api.py)
        self.namespace, self.name, self.identity, self.duration_s = namespace, name, identity, duration_s
        self.on_elected, self.on_lost = on_elected, on_lost or self._exit
        self.clock = clock
        self.leading = threading.Event()
        self.stopped = threading.Event()
        self.seen: Observation | None = None
        self.last_renewed = 0.0

    def _exit(self) -> None:
        log.error("Lost the leader Lease %s/%s (not renewed in %.1f s): exiting so another replica takes over.",
                  self.namespace, self.name, self.duration_s / 2)  # fmt: skip
        logging.shutdown()
        os._exit(1)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._loop, name="leader-election", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopped.set()

    def _read(self) -> tuple[Any, LeaseView | None]:
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None, None
            raise
        spec = lease.spec
        renew = spec.renew_time.isoformat() if spec.renew_time else None
        return lease, LeaseView(spec.holder_identity, renew, float(spec.lease_duration_seconds or self.duration_s))

    def _write(self, lease: Any, transitions: int) -> None:
        now = _now_micro()
        spec = {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.duration_s), "renewTime": now,
                "leaseTransitions": transitions}  # fmt: skip
        if lease is None:
            spec["acquireTime"] = now
            body = {"metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec}
            self.api.create_namespaced_lease(self.namespace, body)
            return
        if lease.spec.holder_identity != self.identity:
            spec["acquireTime"] = now
        body = {"metadata": {"name": self.name, "namespace": self.namespace,
                             "resourceVersion": lease.metadata.resource_version}, "spec": spec}  # fmt: skip
        self.api.replace_namespaced_lease(self.name, self.namespace, body)

    def attempt(self) -> Act:
        """One look at the Lease and what follows from it; returns what was done (or WAIT)."""
        lease, view = self._read()
        now = self.clock()
        self.seen = observe(view, self.seen, now)
        act = next_act(view, self.identity, self.seen, now)
        if act == Act.WAIT:
            return act
        transitions = int(lease.spec.lease_transitions or 0) if lease is not None else 0
        if act == Act.TAKE and view is not None and view.holder:
            transitions += 1
        try:
            self._write(lease, transitions)
        except ApiException as exc:
            if exc.status in (404, 409):  # another replica wrote it first: look again next time
                return Act.WAIT
            raise
        self.last_renewed = now
        return act

    def _loop(self) -> None:
        while not self.stopped.is_set():
            try:
                act = self.attempt()
            except Exception as exc:  # the API server unreachable: a leader counts the time without renewal
                log.warning("Leader Lease %s/%s: %s", self.namespace, self.name, exc)
                act = Act.WAIT
            if act in (Act.TAKE, Act.RENEW) and not self.leading.is_set():
                log.info("Took the leader Lease %s/%s as %s.", self.namespace, self.name, self.identity)
                self.leading.set()
                self.on_elected()
            elif act == Act.WAIT and self.leading.is_set():
                taken = self.seen is not None and self.seen.holder not in (None, self.identity)
                if taken or must_step_down(self.last_renewed, self.clock(), self.duration_s):
                    self.leading.clear()
                    self.on_lost()
            self.stopped.wait(self.duration_s / 3 if self.leading.is_set() else 1.0)
