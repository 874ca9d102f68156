"""Max Memory Utilization from DCGM through a REAL Prometheus server (Debian's `prometheus` package).

There is no GPU here, so NVIDIA's dcgm-exporter cannot run: a small exporter served by this test with
`prometheus_client` stands in for it, exposing `DCGM_FI_DEV_MEM_COPY_UTIL` with dcgm-exporter's labels (gpu,
UUID, pci_bus_id, device, modelName, Hostname). The Prometheus server is the real one, scraping that exporter
every second, and the product's `DcgmMemoryUtilization` queries it over its real HTTP API.
"""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from modelanalysis.adapters.dcgm_prometheus import MEMORY_COPY_UTIL, DcgmMemoryUtilization, PrometheusQueryError
from modelanalysis.adapters.triton_control import TritonControl
from modelanalysis.adapters.triton_server import free_port
from modelanalysis.core.results import AnalysisResult
from modelanalysis.core.server_metrics import aggregate_window, parse_triton_metrics
from modelanalysis.core.spec import MeasurementSettings, ModelTarget, SweepSpec
from modelanalysis.engine import NO_MEMORY_UTILIZATION_NOTE, SweepEngine, add_memory_utilization

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

DATA = Path(__file__).resolve().parents[1] / "data"
H100 = "GPU-0da54fef-9077-a528-5552-2c32d8979b02"  # the GPU of tests/data/triton-2.51-h100-metrics.txt
OTHER = "GPU-7a9c9f44-ff57-1177-e21a-1740a8cf1a65"
GPUS = {H100: ("0", "00000000:18:00.0"), OTHER: ("1", "00000000:2A:00.0")}


def prometheus_binary() -> str:
    found = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
    if found is None:
        pytest.skip("no Prometheus server on this machine: `apt-get install prometheus` (Debian) provides one")
    return found


@dataclass
class FakeDcgmExporter:
    url: str
    gauge: Gauge

    def set(self, values: dict[str, float]) -> None:
        for uuid, value in values.items():
            gpu, bus = GPUS[uuid]
            self.gauge.labels(
                gpu=gpu, UUID=uuid, pci_bus_id=bus, device=f"nvidia{gpu}",
                modelName="NVIDIA H100 80GB HBM3", Hostname="node-1",
            ).set(value)  # fmt: skip


@dataclass
class PrometheusServer:
    url: str
    exporter: FakeDcgmExporter
    log: Path

    def query(self, promql: str) -> list[dict[str, object]]:
        address = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(address, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def current(self) -> dict[str, float]:
        return {str(s["metric"]["UUID"]): float(s["value"][1]) for s in self.query(MEMORY_COPY_UTIL)}  # type: ignore[index]

    def wait_scraped(self, values: dict[str, float], within_s: float = 60) -> float:
        """Wait until Prometheus's latest samples are exactly `values`; return the time it was seen."""
        deadline = time.monotonic() + within_s
        seen: dict[str, float] = {}
        while time.monotonic() < deadline:
            seen = self.current()
            if seen == values:
                return time.time()
            time.sleep(0.1)
        pytest.fail(f"Prometheus did not scrape {values} (last seen {seen}); its log: {self.log}")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    binary = prometheus_binary()
    base = tmp_path_factory.mktemp("prometheus")
    registry = CollectorRegistry()
    gauge = Gauge(
        MEMORY_COPY_UTIL,
        "Memory utilization (in %).",
        ["gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname"],
        registry=registry,
    )
    exporter_server, exporter_thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    exporter = FakeDcgmExporter(url=f"127.0.0.1:{exporter_server.server_port}", gauge=gauge)
    (base / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: dcgm-exporter\n    scrape_interval: 1s\n    static_configs:\n"
        f"      - targets: ['{exporter.url}']\n"
    )
    port = free_port()
    log = base / "prometheus.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [binary, f"--config.file={base / 'prometheus.yml'}", f"--storage.tsdb.path={base / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"],
            stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = PrometheusServer(url=f"http://127.0.0.1:{port}", exporter=exporter, log=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"prometheus exited: {log.read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, f"prometheus not ready: {log.read_text()[-2000:]}"
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        exporter_server.shutdown()
        exporter_server.server_close()
        exporter_thread.join(timeout=5)


@dataclass
class History:
    """Values the exporter served over time, and when Prometheus was seen to have each set."""

    start: float
    first_seen: float
    end: float


@pytest.fixture(scope="module")
def history(prometheus: PrometheusServer) -> History:
    exporter = prometheus.exporter
    start = time.time()
    exporter.set({H100: 10.0, OTHER: 5.0})
    first_seen = prometheus.wait_scraped({H100: 10.0, OTHER: 5.0})
    exporter.set({H100: 73.0, OTHER: 20.0})  # H100's peak
    prometheus.wait_scraped({H100: 73.0, OTHER: 20.0})
    exporter.set({H100: 30.0, OTHER: 45.0})  # the other GPU's peak
    end = prometheus.wait_scraped({H100: 30.0, OTHER: 45.0})
    return History(start=start, first_seen=first_seen, end=end)


def test_max_by_gpu_is_the_maximum_over_the_window_per_uuid(prometheus: PrometheusServer, history: History) -> None:
    dcgm = DcgmMemoryUtilization(prometheus.url)
    assert dcgm.max_by_gpu(history.start, history.end) == {H100: 73.0, OTHER: 45.0}


def test_a_window_that_ends_before_the_peaks_does_not_see_them(prometheus: PrometheusServer, history: History) -> None:
    dcgm = DcgmMemoryUtilization(prometheus.url)
    assert dcgm.max_by_gpu(history.start, history.first_seen) == {H100: 10.0, OTHER: 5.0}


def test_a_metric_prometheus_does_not_have_gives_no_gpus(prometheus: PrometheusServer, history: History) -> None:
    dcgm = DcgmMemoryUtilization(prometheus.url, metric="DCGM_FI_DEV_NO_SUCH_FIELD")
    assert dcgm.max_by_gpu(history.start, history.end) == {}


def test_a_query_prometheus_refuses_is_a_prometheus_query_error(prometheus: PrometheusServer) -> None:
    dcgm = DcgmMemoryUtilization(prometheus.url, metric="not a metric{")
    now = time.time()
    with pytest.raises(PrometheusQueryError, match=f"Prometheus at {prometheus.url} did not answer"):
        dcgm.max_by_gpu(now - 5, now)


def test_an_unreachable_prometheus_is_a_clear_prometheus_query_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"  # closed once the block ends
    now = time.time()
    with pytest.raises(PrometheusQueryError) as caught:
        DcgmMemoryUtilization(url).max_by_gpu(now - 5, now)
    message = str(caught.value)
    assert message.startswith(
        f"Prometheus at {url} did not answer 'max by (UUID) (max_over_time({MEMORY_COPY_UTIL}[5s]))'"
    )
    assert "Connection refused" in message


def test_a_prometheus_that_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections (the kernel does), never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        now = time.time()
        with pytest.raises(PrometheusQueryError, match="timed out"):
            DcgmMemoryUtilization(url, timeout_s=0.3).max_by_gpu(now - 5, now)


# --- merged into what Triton reported -----------------------------------------------------------------------


def test_add_memory_utilization_merges_into_triton_gpus_and_adds_the_others(
    prometheus: PrometheusServer, history: History
) -> None:
    # Triton's real H100 page knows one GPU; DCGM, through Prometheus, reports two.
    resources = aggregate_window([parse_triton_metrics((DATA / "triton-2.51-h100-metrics.txt").read_text(), 1.0)])
    add_memory_utilization(resources, DcgmMemoryUtilization(prometheus.url).max_by_gpu(history.start, history.end))
    by_uuid = {g.gpu_uuid: g for g in resources.gpus}
    assert list(by_uuid) == [H100, OTHER]
    assert by_uuid[H100].max_memory_utilization_pct == 73.0
    assert by_uuid[H100].max_utilization_pct == pytest.approx(99.0)  # Triton's values kept
    assert by_uuid[H100].max_memory_used_mb == pytest.approx(1809.842176)
    assert by_uuid[OTHER].max_memory_utilization_pct == 45.0
    assert by_uuid[OTHER].max_utilization_pct is None  # Triton said nothing about it


class _TritonMetricsPage(http.server.BaseHTTPRequestHandler):
    """Serves the real captured H100 Triton /metrics page: Triton's side of the baseline, without a GPU."""

    body = (DATA / "triton-2.51-h100-metrics.txt").read_bytes()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def triton_metrics_page() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TritonMetricsPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def profiler(metrics_url: str, prometheus_url: str, baseline_ms: int) -> SweepEngine:
    spec = SweepSpec(
        models=[ModelTarget(name="add_sub")],
        measurement=MeasurementSettings(baseline_duration_ms=baseline_ms, metrics_interval_ms=200),
    )
    engine = SweepEngine(
        spec,
        TritonControl("127.0.0.1:9"),  # never called by the baseline; closed by the test
        metrics_url,
        run_point=lambda *args: pytest.fail("no point is run here"),
        journal=lambda event, result: None,
        memory_utilization=DcgmMemoryUtilization(prometheus_url, timeout_s=5),
    )
    engine.result = AnalysisResult(triton_version="24.08-py3")
    return engine


def test_profiler_baseline_merges_dcgm_values_from_prometheus(
    prometheus: PrometheusServer, history: History, triton_metrics_page: str
) -> None:
    # Above every value served before, so an older sample at the window's edge cannot change the maxima.
    values = {H100: 88.0, OTHER: 50.0}
    prometheus.exporter.set(values)
    prometheus.wait_scraped(values)
    # A baseline of 2.5 s spans at least two 1 s scrapes.
    p = profiler(triton_metrics_page, prometheus.url, baseline_ms=2500)
    try:
        p.measure_baseline()
    finally:
        p.control.close()
    baseline = p.result.baseline
    assert baseline is not None
    by_uuid = {g.gpu_uuid: g for g in baseline.gpus}
    assert by_uuid[H100].max_utilization_pct == pytest.approx(99.0)  # from Triton's page
    assert by_uuid[H100].max_memory_utilization_pct == 88.0  # from DCGM via Prometheus
    assert by_uuid[OTHER].max_memory_utilization_pct == 50.0
    assert p.result.notes == []


def test_profiler_notes_an_unreachable_prometheus_and_goes_on(triton_metrics_page: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    p = profiler(triton_metrics_page, url, baseline_ms=0)
    try:
        p.measure_baseline()
    finally:
        p.control.close()
    baseline = p.result.baseline
    assert baseline is not None
    [gpu] = baseline.gpus
    assert gpu.gpu_uuid == H100
    assert gpu.max_memory_utilization_pct is None  # empty, not 0
    [note] = p.result.notes
    assert note.startswith("Max Memory Utilization is empty from here on")
    assert p.memory_utilization is None  # not asked again for the rest of the run
    assert note != NO_MEMORY_UTILIZATION_NOTE
