"""Open-loop load end to end on the real local Triton and perf_analyzer: a rate the machine sustains is
delivered within its interval; a rate far above what one perf_analyzer process can send says it was not."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from modelanalysis.core.budget import DELIVERY_TOLERANCE
from modelanalysis.core.load import LoadKind
from modelanalysis.core.results import AnalysisResult
from tests.integration.conftest import RunCli, wait_until_gone

# 50 requests a second is a small share of what add_sub serves here (thousands); no machine sends a million.
SUSTAINED, IMPOSSIBLE = 50, 1_000_000


def test_a_request_rate_sweep_measures_each_rate_and_says_which_was_not_delivered(
    run_cli: RunCli, no_leftover_triton: Path, tmp_path: Path, fast_flags: list[str]
) -> None:
    export = tmp_path / "rates"
    proc = run_cli("profile", "--model-folder", no_leftover_triton, "--model-names", "add_sub", "--request-rate",
                   f"{IMPOSSIBLE},{SUSTAINED}", *fast_flags, "--export", "--export-path", export)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with (export / "metrics-model-inference.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["Request Rate"] for r in rows] == [str(SUSTAINED), str(IMPOSSIBLE)]  # ascending, whatever was typed
    assert "Concurrency" not in rows[0]
    sustained, impossible = rows
    low = float(sustained["Throughput 95% CI Low (infer/sec)"])
    high = float(sustained["Throughput 95% CI High (infer/sec)"])
    # Delivered, as the product judges it: the interval reaches the offered rate within DELIVERY_TOLERANCE (a window
    # that starts or ends between two requests of a constant rate reads a little under it: 99.76 to 99.93 seen).
    tolerance = max(DELIVERY_TOLERANCE, 1 / (SUSTAINED * 0.3))  # one request of a 300 ms window, as the product
    assert high >= SUSTAINED * (1 - tolerance) and low <= SUSTAINED * (1 + tolerance), (low, high)
    assert sustained["Delivered"] == "Yes" and sustained["Satisfies Constraints"] == "Yes"
    assert impossible["Delivered"] == "No" and impossible["Satisfies Constraints"] == "No"
    assert float(impossible["Throughput (infer/sec)"]) < IMPOSSIBLE / 10
    assert "points did not get the rate they offered" in proc.stderr
    result = AnalysisResult.model_validate_json((export / "analysis.json").read_text())
    assert [p.key for p in result.points] == [f"add_sub/b1/r{SUSTAINED}", f"add_sub/b1/r{IMPOSSIBLE}"]
    assert all(p.load.kind == LoadKind.REQUEST_RATE for p in result.points)
    assert result.best is not None and result.best.overall is not None
    assert result.best.overall.load.value == SUSTAINED
    assert f"Best: add_sub batch 1 request rate {SUSTAINED}/s" in proc.stdout
    assert wait_until_gone(no_leftover_triton) == {}


def test_a_rate_and_a_concurrency_together_are_refused_before_anything_starts(
    run_cli: RunCli, model_repo: Path
) -> None:
    proc = run_cli("profile", "--model-folder", model_repo, "--model-names", "add_sub", "--request-rate", "100",
                   "--concurrency", "2")  # fmt: skip
    assert proc.returncode == 1
    assert "give either --request-rate (open loop) or --concurrency (closed loop), not both" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_rate_that_is_not_a_number_is_refused_in_one_sentence(run_cli: RunCli, model_repo: Path) -> None:
    proc = run_cli("profile", "--model-folder", model_repo, "--model-names", "add_sub", "--request-rate", "100,fast")
    assert proc.returncode == 1
    assert "'fast' is not a positive number of requests per second" in proc.stderr


SLEEP_MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "sleep_10ms"


def test_a_rate_search_finds_the_capacity_of_a_model_that_serves_one_request_each_10_ms(
    run_cli: RunCli, no_leftover_triton: Path, tmp_path: Path
) -> None:
    """sleep_10ms answers one request at a time, each in 10 ms plus the server's overhead: it cannot deliver more
    than 100 requests a second, whatever is offered. The search must say the highest rate it surely delivers is
    below that, the lowest it surely does not deliver at most a little above it."""
    shutil.copytree(SLEEP_MODEL, no_leftover_triton / "sleep_10ms")
    export = tmp_path / "search"
    proc = run_cli("profile", "--model-folder", no_leftover_triton, "--model-names", "sleep_10ms",
                   "--request-rate", "auto", "--min-request-rate", "20", "--max-request-rate", "640",
                   "--measurement-interval", "1000", "--max-trials", "6", "--baseline-duration", "300",
                   "--export", "--export-path", export, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = AnalysisResult.model_validate_json((export / "analysis.json").read_text())
    assert result.best is not None
    [boundary] = result.best.boundaries
    assert boundary.load_kind == LoadKind.REQUEST_RATE and boundary.budget_ms is None
    assert boundary.surely_under is not None and boundary.surely_over is not None, boundary
    # Never more than 100/s; how much less depends on how busy this machine is, so the bracket is checked against
    # what the server delivered in this run: the lowest rate surely not delivered is near the most it delivered.
    assert 40 <= boundary.surely_under < boundary.surely_over and boundary.surely_under < 100, boundary
    delivered = max(p.perf.throughput_infer_per_sec for p in result.points if p.perf is not None)
    assert delivered < boundary.surely_over <= 1.2 * delivered, (boundary, delivered)
    rates = [p.load.value for p in result.points]
    assert rates[:3] == [20, 40, 80] and 640 not in rates  # the climb stopped once a rate was not delivered
    assert f"Boundary: sleep_10ms batch 1: request rate {boundary.surely_under}/s is the highest surely delivered" in (
        proc.stdout
    )
    assert wait_until_gone(no_leftover_triton) == {}
