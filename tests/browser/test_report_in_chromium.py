"""The HTML report in a real browser: headless Chromium (Debian's `chromium`, installed by scripts/setup.sh) opens
the file with the network off, and the page must draw its plots and table without a single console message.

Network off: Chromium runs in a new network namespace (`unshare --net`, only a loopback that is down) where that
works (root, as in CI), else behind a proxy address that refuses everything. The page's own script records any
error it meets on <body data-errors> and what it drew on data-charts/data-circles/data-rows; Chromium's
`--enable-logging=stderr` prints every console message (a Content-Security-Policy refusal too) as a CONSOLE line.
A screenshot of the CPU run's report is kept under $MODELANALYSIS_ARTIFACTS_DIR (else the test's tmp folder).
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from modelanalysis.core.html_report import render_html
from modelanalysis.core.report import INFERENCE_CSV, csv_files
from modelanalysis.core.results import AnalysisResult
from modelanalysis.core.spec import Constraints
from tests.report_samples import CPU_ANALYSIS, H100_ANALYSIS, STREAMING_ANALYSIS, load, synthetic_analysis

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(
        "Debian's chromium package is not installed (scripts/setup.sh installs it): the report's browser test "
        "cannot run",
        allow_module_level=True,
    )


def network_off() -> list[str]:
    """A prefix that runs a command with no network, where this machine allows it."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--net", "true"], capture_output=True, check=False).returncode == 0:
        return [unshare, "--net"]
    return []


NO_NETWORK = network_off()
NO_NETWORK_FLAGS = ["--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                    "--host-resolver-rules=MAP * ~NOTFOUND"]  # fmt: skip


def chromium(page: Path, profile: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [
        *NO_NETWORK, CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--disable-extensions", "--disable-background-networking", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0", *NO_NETWORK_FLAGS, *flags, page.as_uri(),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=page.parent)


Open = Callable[[AnalysisResult, str], tuple[str, dict[str, str]]]


@pytest.fixture
def open_report(tmp_path: Path) -> Open:
    """Render `result` to a file, open it, and return the DOM after the script ran and <body>'s attributes."""

    def run(result: AnalysisResult, name: str) -> tuple[str, dict[str, str]]:
        page = tmp_path / f"{name}.html"
        page.write_text(render_html(result))
        done = chromium(page, tmp_path / f"profile-{name}", "--dump-dom")
        assert done.returncode == 0, done.stderr[-3000:]
        # The page's own messages (Chromium's internal chrome:// pages log things of their own).
        console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line and "source: chrome://" not in line]
        assert console == [], console  # no error, no warning, nothing refused by the CSP
        body = re.search(r"<body([^>]*)>", done.stdout)
        assert body, done.stdout[:2000]
        attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', body[1]))
        assert "data-errors" not in attributes, attributes["data-errors"]
        assert attributes.get("data-rendered") == "yes", attributes
        return done.stdout, attributes

    return run


def dom_rows(dom: str) -> list[list[str]]:
    """The table's rows as shown: each <tr id=pN>'s cells after the ★ column."""
    rows = re.findall(r'<tr id="p\d+"[^>]*>(.*?)</tr>', dom, re.S)
    return [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)][1:] for row in rows]


def test_a_cpu_runs_report_draws_its_plots_and_shows_every_csv_row_as_written(open_report: Open) -> None:
    result = load(CPU_ANALYSIS)
    dom, body = open_report(result, "cpu")
    # Per model: throughput vs p99, throughput and p99 vs concurrency, CPU utilization and memory (no GPU).
    assert int(body["data-charts"]) == 2 * 5
    assert int(body["data-circles"]) == 5 * len(result.points)
    assert dom.count('<svg class="chart"') == 10 and "No GPU metrics" in dom
    written = list(csv.reader(io.StringIO(csv_files(result)[INFERENCE_CSV])))[1:]
    assert dom_rows(dom) == written  # cell for cell, the same text as the CSV file
    assert re.findall(r'<tr id="p(\d+)"[^>]*class="best"', dom) == ["4", "7"]  # add_sub b4 c2, matmul b1 c2
    # Error bars in each performance plot, one path per batch series: add_sub (2 batches), matmul (1).
    assert dom.count('class="bars"') == 3 * (2 + 1)


def test_the_latency_budget_is_drawn_where_p99_is_on_an_axis_and_the_best_point_keeps_to_it(
    open_report: Open,
) -> None:
    result = load(CPU_ANALYSIS)
    result.constraints = Constraints.model_validate({"p99LatencyMs": {"max": 5.0}})
    dom, _ = open_report(result, "budget")
    # Per model: a vertical line in throughput vs p99, a horizontal one in p99 vs concurrency.
    assert dom.count('<line class="budget"') == 2 * 2
    best = [result.points[int(i)] for i in re.findall(r'<tr id="p(\d+)"[^>]*class="best"', dom)]
    [add_sub] = [p for p in best if p.model == "add_sub"]
    assert add_sub.perf is not None and add_sub.perf.latency_p99_ms <= 5.0  # b4 c2 at 4.24 ms, not b8's faster ones
    assert [p.model for p in best] == ["add_sub", "matmul"]  # matmul has none under 5 ms: its closest is marked


def test_a_streaming_models_report_draws_ttft_itl_and_tokens_per_second_with_the_ttft_budget(
    open_report: Open,
) -> None:
    result = load(STREAMING_ANALYSIS)
    assert result.constraints.ttft_p99_ms is not None
    dom, body = open_report(result, "streaming")
    # The five plots of any model, and p99 TTFT and ITL vs concurrency and tokens/sec vs p99 TTFT.
    assert int(body["data-charts"]) == 5 + 3
    assert "p99 time to first token vs concurrency" in dom and "Output tokens/sec vs p99 time to first token" in dom
    # The TTFT budget: a horizontal line in TTFT vs concurrency, a vertical one in tokens/sec vs TTFT.
    assert dom.count('<line class="budget"') == 2 and dom.count(">p99 TTFT budget<") == 2
    written = list(csv.reader(io.StringIO(csv_files(result)[INFERENCE_CSV])))[1:]
    assert dom_rows(dom) == written


def test_each_triton_version_gets_plots_of_its_own(open_report: Open) -> None:
    """spec.triton.versions: the same points on two versions are drawn apart (model @ version), not mixed."""
    result = load(CPU_ANALYSIS)
    versions = ("24.08-py3", "25.01-py3")
    result.points = [p.model_copy(update={"triton_version": v}) for v in versions for p in result.points]
    dom, body = open_report(result, "versions")
    assert int(body["data-charts"]) == 2 * 2 * 5  # two models x two versions, five plots each
    assert int(body["data-rows"]) == len(result.points)
    assert "add_sub @ 25.01-py3" in dom


def test_the_h100_runs_report_draws_gpu_plots_with_the_baseline(open_report: Open) -> None:
    result = load(H100_ANALYSIS)
    dom, body = open_report(result, "h100")
    # Per model: 3 performance plots, GPU utilization, memory and power, CPU utilization and memory.
    assert int(body["data-charts"]) == 2 * 8 and int(body["data-rows"]) == 8
    assert dom.count('class="base"') == 2 * 5  # the server-only baseline in every resource plot
    assert "server alone 619" in dom  # GPU memory with no model loaded: 618.66 MB


def test_the_largest_analysis_the_crd_accepts_renders(open_report: Open) -> None:
    result = synthetic_analysis()
    _, body = open_report(result, "large")
    assert int(body["data-rows"]) == 1000
    assert int(body["data-charts"]) == 10 * 8
    assert int(body["data-circles"]) == 8 * 999  # the failed point has no numbers to draw


def test_a_screenshot_of_the_report_is_kept(tmp_path: Path) -> None:
    folder = Path(os.environ.get("MODELANALYSIS_ARTIFACTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page = tmp_path / "report.html"
    page.write_text(render_html(load(CPU_ANALYSIS)))
    shot = folder / "report-cpu.png"
    shot.unlink(missing_ok=True)
    done = chromium(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,2400",
                    "--hide-scrollbars")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert shot.stat().st_size > 20_000  # a drawn page, not a blank one
    print(f"screenshot: {shot}")
