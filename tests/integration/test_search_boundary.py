"""Issue 21 on the real local Triton: a concurrency search under a p99 budget answers with a boundary (the load
surely under the budget, the one surely over it, the undecided ones between) that brackets the true crossing of
a model whose latency is known by construction (tests/data/models/sleep_10ms: one request at a time, 10 ms each)."""

from __future__ import annotations

import shutil
from pathlib import Path

from modelanalysis.core.results import AnalysisResult
from tests.integration.conftest import RunCli, wait_until_gone

SLEEP_MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "sleep_10ms"
SLEEP_MS = 10.0
# 1200 ms windows hold ~100 requests at ~90 infer/sec: enough for a p99 interval in each window.
WINDOWS = ["--measurement-interval", "1200", "--max-trials", "12", "--baseline-duration", "300"]


def test_the_boundary_brackets_the_true_crossing_of_a_model_that_sleeps(
    run_cli: RunCli, no_leftover_triton: Path, tmp_path: Path
) -> None:
    shutil.copytree(SLEEP_MODEL, no_leftover_triton / "sleep_10ms")
    common = ["profile", "--model-folder", no_leftover_triton, "--model-names", "sleep_10ms", *WINDOWS]
    # By construction a request at concurrency c waits for the c - 1 ahead of it: p99(c) ~ (c - 1) x S + p99(1),
    # S being one request's time (the 10 ms sleep plus the server's overhead, p50 at concurrency 1). Measure S
    # and p99(1) first, and put the budget where the crossing falls half-way between concurrency 3 and 4.
    alone = run_cli(*common, "--concurrency", "1", "--export", "--export-path", tmp_path / "alone")
    assert alone.returncode == 0, alone.stderr
    [one] = AnalysisResult.model_validate_json((tmp_path / "alone" / "analysis.json").read_text()).points
    assert one.perf is not None and SLEEP_MS <= one.perf.latency_p50_ms < 2 * SLEEP_MS
    service, p99_alone = one.perf.latency_p50_ms, one.perf.latency_p99_ms
    crossing = 3.5
    budget = round(p99_alone + (crossing - 1) * service, 1)

    export = tmp_path / "search"
    proc = run_cli(*common, "--concurrency", "auto", "--max-concurrency", "16", "--latency-budget", str(budget),
                   "--export", "--export-path", export, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = AnalysisResult.model_validate_json((export / "analysis.json").read_text())
    assert result.best is not None
    [boundary] = result.best.boundaries
    assert boundary.surely_under is not None and boundary.surely_over is not None, boundary
    assert boundary.surely_under < crossing < boundary.surely_over, (budget, boundary)
    assert all(boundary.surely_under < c < boundary.surely_over for c in boundary.undecided)
    # It decided on intervals, not on point values: the windows held enough requests.
    assert boundary.on_point_value == [], boundary
    under = next(p for p in result.points if p.load.value == boundary.surely_under)
    assert under.perf is not None and under.perf.latency_p99_ci_high_ms is not None
    assert under.perf.latency_p99_ci_high_ms <= budget
    # The answer is stated where a user reads it: the CLI's output and the best point.
    assert f"Boundary: sleep_10ms batch 1: concurrency {boundary.surely_under} is the highest surely under" in (
        proc.stdout
    )
    assert result.best.overall is not None and result.best.overall.load.value <= boundary.surely_under
    assert wait_until_gone(no_leftover_triton) == {}
