"""The operator's own metrics (kube/telemetry.py): what each records, and that the endpoint serves them in the
Prometheus text format, read back with prometheus_client's own parser."""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from modelanalysis.core.load import Load
from modelanalysis.core.results import PointResult, PointStatus
from modelanalysis.kube.telemetry import OperatorMetrics


def value(metrics: OperatorMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels or None)


def test_analyses_are_counted_by_namespace_and_phase_as_their_events_say() -> None:
    m = OperatorMetrics()
    m.saw("u1", "team-a", None)
    m.saw("u2", "team-a", "Running")
    m.saw("u3", "team-b", "Queued")
    assert value(m, "modelanalysis_analyses", namespace="team-a", phase="Pending") == 1
    m.saw("u1", "team-a", "Running")
    assert value(m, "modelanalysis_analyses", namespace="team-a", phase="Running") == 2
    assert value(m, "modelanalysis_analyses", namespace="team-a", phase="Pending") is None  # no stale series
    assert value(m, "modelanalysis_analyses_waiting_for_triton") == 1
    m.forgot("u3")
    assert value(m, "modelanalysis_analyses_waiting_for_triton") == 0


def test_points_and_their_durations_are_recorded() -> None:
    m = OperatorMetrics()
    identity = {"model": "add_sub", "batch_size": 1, "load": Load.concurrency(2)}
    m.point(PointResult(**identity, status=PointStatus.MEASURED, started_at=10.0, finished_at=14.0))
    m.point(PointResult(**identity, status=PointStatus.FAILED, started_at=20.0, finished_at=21.0))
    assert value(m, "modelanalysis_points_total", result="measured") == 1
    assert value(m, "modelanalysis_points_total", result="failed") == 1
    assert value(m, "modelanalysis_point_duration_seconds_count") == 2
    assert value(m, "modelanalysis_point_duration_seconds_sum") == 5.0


def test_the_endpoint_serves_every_metric_in_the_text_format() -> None:
    m = OperatorMetrics()
    held = {"n": 3}
    m.watch_slots(lambda: held["n"], limit=8)
    m.run_errors.labels(kind="other").inc()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    m.serve(port)
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"modelanalysis_analyses", "modelanalysis_points", "modelanalysis_point_duration_seconds",
            "modelanalysis_triton_pods_held", "modelanalysis_triton_pods_limit", "modelanalysis_leader",
            "modelanalysis_run_errors", "modelanalysis_analyses_waiting_for_triton"} <= set(families)  # fmt: skip
    assert families["modelanalysis_triton_pods_held"].samples[0].value == 3
    assert families["modelanalysis_triton_pods_limit"].samples[0].value == 8
    assert families["modelanalysis_points"].type == "counter"
