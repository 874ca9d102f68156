"""Faults the run meets mid-sweep, decided as pure checks: the Triton pod gone, going, replaced or crashed
fails the analysis saying at which point (the e2e test does it for real)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from modelanalysis.core.sweep import Point
from modelanalysis.kube.reconcile import AnalysisFailed, AnalysisRun, TritonSlots
from tests.unit.test_kube_policy import DEFAULTS, NS, SPEC, RecordingApi


class PodApi(RecordingApi):
    def __init__(self, body: dict[str, Any], pod: dict[str, Any] | None) -> None:
        super().__init__(body)
        self.pod = pod

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.pod if kind == "Pod" else None


def server_check(pod: dict[str, Any] | None) -> str | None:
    body = {"metadata": {"name": "example", "namespace": NS, "uid": "u-1", "generation": 1}, "spec": SPEC}
    run = AnalysisRun(
        PodApi(body, pod),  # type: ignore[arg-type]
        body,
        DEFAULTS,
        TritonSlots(1),
        threading.Event(),
        lambda *event: None,
        logging.getLogger("test"),
    )
    try:
        run.check_server(Point(model="add_sub", batch_size=4, concurrency=2), "10.0.0.7")
        return None
    except AnalysisFailed as failure:
        assert failure.condition == "ServerReady"
        return f"{failure.reason}: {failure.message}"


def test_a_triton_pod_gone_mid_sweep_fails_the_run_saying_at_which_point() -> None:
    running = {"metadata": {"name": "example-g1-triton"}, "status": {"phase": "Running", "podIP": "10.0.0.7"}}
    assert server_check(running) is None
    gone = server_check(None)
    assert gone is not None and gone.startswith("ServerGone: Triton pod example-g1-triton was deleted")
    assert "add_sub" in gone and "kept in status" in gone
    terminating = {**running, "metadata": {**running["metadata"], "deletionTimestamp": "2025-01-01T00:00:00Z"}}
    assert (server_check(terminating) or "").startswith("ServerGone")
    replaced = {**running, "status": {"phase": "Running", "podIP": "10.0.0.8"}}
    assert (server_check(replaced) or "").startswith("ServerGone")
    crashed = {
        **running,
        "status": {
            "phase": "Failed",
            "podIP": "10.0.0.7",
            "containerStatuses": [{"state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}],
        },
    }
    assert (server_check(crashed) or "").startswith("ServerCrashed: Triton exited with code 137")


def test_the_journal_writes_the_best_point_to_status_for_kubectl_gets_best_column() -> None:
    """status.best (and bestPerModel) come from the engine's result; the CRD's Best column reads its summary."""
    from modelanalysis.core.objectives import choose_best
    from modelanalysis.core.results import AnalysisResult
    from modelanalysis.core.spec import Constraints, Objective
    from modelanalysis.engine import EngineEvent, EventKind
    from modelanalysis.kube.crd import crd
    from tests.unit.test_objectives import POINTS

    body = {"metadata": {"name": "example", "namespace": NS, "uid": "u-1", "generation": 1}, "spec": SPEC}
    api = PodApi(body, None)
    run = AnalysisRun(api, body, DEFAULTS, TritonSlots(1), threading.Event(), lambda *e: None,  # type: ignore[arg-type]
                      logging.getLogger("test"))  # fmt: skip
    budget = Constraints.model_validate({"p99LatencyMs": {"max": 2}})
    result = AnalysisResult(triton_version="x", points=list(POINTS), constraints=budget)
    result.best = choose_best(result.points, Objective.MAXIMIZE_THROUGHPUT, budget)
    run.record(EngineEvent(EventKind.POINT_MEASURED, 5, 5, "add_sub"), result)
    wire = run.status.wire()["best"]
    assert {k: wire[k] for k in ("model", "batch", "concurrency", "throughput", "throughputCI", "p99")} == {
        "model": "add_sub", "batch": 1, "concurrency": 4, "throughput": 4420.0, "throughputCI": [4301.0, 4539.0],
        "p99": 1.61,
    }  # fmt: skip
    assert wire["satisfiesConstraints"] is True and "highest throughput" in wire["why"]
    assert wire["summary"] == "add_sub/b1/c4 4,420.0 infer/s p99 1.61 ms"
    assert run.status.wire()["bestPerModel"][0]["concurrency"] == 4
    columns = crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    assert {"name": "Best", "type": "string", "jsonPath": ".status.best.summary"}.items() <= next(
        c for c in columns if c["name"] == "Best"
    ).items()
