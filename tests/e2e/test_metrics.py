"""The operator's own metrics scraped by a real Prometheus (Debian's `prometheus`, as the DCGM tests run it): the
operator pod installed by the chart serves them on its metrics port, Prometheus scrapes its pod IP every second,
and the phase gauge and the points counter move as an analysis runs."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelanalysis.adapters.triton_server import free_port
from tests.e2e.conftest import OPERATOR_NAMESPACE, Analyses, Kubectl, Volumes, analysis_manifest
from tests.integration.test_prometheus_dcgm import prometheus_binary

pytestmark = pytest.mark.cluster
METRICS_PORT = 8081  # the chart's default metrics.port


def query(url: str, promql: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}", timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def scalar(url: str, promql: str) -> float:
    found = query(url, promql)
    return float(found[0]["value"][1]) if found else 0.0  # type: ignore[index]


@pytest.fixture
def prometheus(kubectl: Kubectl, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping the operator pod's metrics port."""
    pods = kubectl.get("pods", "-n", OPERATOR_NAMESPACE, "-l", "app.kubernetes.io/name=model-analyzer")["items"]
    pod_ip = pods[0]["status"]["podIP"]
    target = f"[{pod_ip}]:{METRICS_PORT}" if ":" in pod_ip else f"{pod_ip}:{METRICS_PORT}"
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: model-analyzer\n    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [prometheus_binary(), f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while scalar_or_none(url, 'up{job="model-analyzer"}') != 1.0:
            assert process.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, f"Prometheus did not scrape {target}: {log.read_text()[-2000:]}"
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def scalar_or_none(url: str, promql: str) -> float | None:
    try:
        found = query(url, promql)
    except (urllib.error.URLError, OSError):
        return None
    return float(found[0]["value"][1]) if found else None  # type: ignore[index]


def test_prometheus_sees_the_phase_gauge_and_the_points_counter_move(
    prometheus: str, analyses: Analyses, volumes: Volumes
) -> None:
    measured_before = scalar(prometheus, 'sum(modelanalysis_points_total{result="measured"})')
    analyses.apply(analysis_manifest("watched", models=["add_sub"], batch_sizes=[1], concurrency=[1, 2]))
    obj = analyses.wait_finished("watched")
    assert obj["status"]["phase"] == "Succeeded", obj["status"].get("message")
    deadline = time.monotonic() + 30
    while True:
        measured = scalar(prometheus, 'sum(modelanalysis_points_total{result="measured"})')
        succeeded = scalar(prometheus, 'sum(modelanalysis_analyses{phase="Succeeded"})')
        if (measured >= measured_before + 2 and succeeded >= 1) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert measured >= measured_before + 2 and succeeded >= 1, (measured_before, measured, succeeded)
    assert scalar(prometheus, "modelanalysis_triton_pods_limit") >= 1
    assert scalar(prometheus, "modelanalysis_point_duration_seconds_count") >= 2
