"""The operator's own metrics, for Prometheus (served on MODELANALYSIS_METRICS_PORT, the chart's metrics.port).

Named as Prometheus asks (a `modelanalysis_` prefix, units in the name, `_total` counters) and with bounded labels:
phases and namespaces, never an analysis' or a point's name. What a platform team watches:

| metric | what |
|---|---|
| `modelanalysis_analyses{namespace, phase}` | ModelAnalyses this operator knows of, by phase |
| `modelanalysis_points_total{result}` | points measured (`measured`) or failed (`failed`) |
| `modelanalysis_point_duration_seconds` | how long a point took, from its first window to its last (histogram) |
| `modelanalysis_triton_pods_held` / `_limit` | Triton pods running now, and the cap (maxTritonPods) |
| `modelanalysis_analyses_waiting_for_triton` | analyses queued for a Triton pod |
| `modelanalysis_run_errors_total{kind}` | runs that failed and are retried: `api_refused` (401/403) or `other` |
| `modelanalysis_leader` | 1 while this replica acts (it holds the Lease, or there is none) |
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from modelanalysis.core.results import PointResult, PointStatus

# Points take seconds to minutes; a point Job's deadline is its timeout (default 30 min).
POINT_SECONDS_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
UNSET_PHASE = "Pending"  # an analysis the operator has not written a status to yet


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.analyses = Gauge("modelanalysis_analyses", "ModelAnalyses this operator knows of, by phase",
                              ["namespace", "phase"], registry=r)  # fmt: skip
        self.points = Counter("modelanalysis_points", "Points measured or failed", ["result"], registry=r)
        self.point_seconds = Histogram("modelanalysis_point_duration_seconds", "How long a point took",
                                       buckets=POINT_SECONDS_BUCKETS, registry=r)  # fmt: skip
        self.triton_pods = Gauge("modelanalysis_triton_pods_held", "Triton pods running now", registry=r)
        self.triton_limit = Gauge("modelanalysis_triton_pods_limit", "Most Triton pods at once", registry=r)
        self.waiting = Gauge("modelanalysis_analyses_waiting_for_triton", "Analyses queued for a Triton pod",
                             registry=r)  # fmt: skip
        self.run_errors = Counter("modelanalysis_run_errors", "Runs that failed and are retried", ["kind"], registry=r)
        self.leader = Gauge("modelanalysis_leader", "1 while this replica acts", registry=r)
        self.leader.set(1)
        self._lock = threading.Lock()
        self._phases: dict[str, tuple[str, str]] = {}  # uid -> (namespace, phase)

    def saw(self, uid: str, namespace: str, phase: str | None) -> None:
        """An analysis as a watch event shows it (its phase from status; none yet: Pending)."""
        with self._lock:
            self._phases[uid] = (namespace, phase or UNSET_PHASE)
            self._publish()

    def forgot(self, uid: str) -> None:
        with self._lock:
            self._phases.pop(uid, None)
            self._publish()

    def _publish(self) -> None:
        counts = Tally(self._phases.values())
        self.analyses.clear()
        for (namespace, phase), count in counts.items():
            self.analyses.labels(namespace=namespace, phase=phase).set(count)
        self.waiting.set(counts_by_phase(counts, "Queued"))

    def point(self, result: PointResult) -> None:
        self.points.labels(result="measured" if result.status == PointStatus.MEASURED else "failed").inc()
        if result.started_at is not None and result.finished_at is not None:
            self.point_seconds.observe(max(result.finished_at - result.started_at, 0.0))

    def watch_slots(self, held: Callable[[], int], limit: int) -> None:
        self.triton_pods.set_function(lambda: float(held()))
        self.triton_limit.set(limit)

    def serve(self, port: int, address: str = "") -> None:
        """Listen on the pod's own address (as kopf's health endpoint does: replicas sharing a node's network
        must not collide), or on every address where it is not known."""
        start_http_server(port, addr=address or "0.0.0.0", registry=self.registry)


def counts_by_phase(counts: Tally[tuple[str, str]], phase: str) -> int:
    return sum(n for (_, p), n in counts.items() if p == phase)


# The operator process's metrics (one per process, as kopf's handlers are).
METRICS = OperatorMetrics()
