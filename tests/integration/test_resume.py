"""A CLI run killed mid-sweep (SIGKILL: no chance to tidy up) and resumed with --resume, on the real local Triton:
every point once, those measured before the kill kept as they were, the rest measured; another analysis refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.integration.conftest import RunCli, cli_env

SWEEP = ["--concurrency", "1,2,4,8"]


def test_a_killed_run_resumes_measuring_only_what_it_lacked(
    cli: Path, run_cli: RunCli, no_leftover_triton: Path, tmp_path: Path, fast_flags: list[str]
) -> None:
    export = tmp_path / "out"
    args = ["profile", "--model-folder", str(no_leftover_triton), "-m", "add_sub", *SWEEP, *fast_flags,
            "--export", "--export-path", str(export)]  # fmt: skip
    first = subprocess.Popen([str(cli), *args], env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    points: list[dict[str, object]] = []
    while time.monotonic() < deadline and len(points) < 2:
        time.sleep(0.3)
        try:
            points = json.loads((export / "analysis.json").read_text())["points"]
        except (OSError, ValueError, KeyError):
            continue
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    before = json.loads((export / "analysis.json").read_text())
    assert 2 <= len(before["points"]) < 4 and before["finished_at"] is None

    other = run_cli(*args[:-3], "--batch", "1,2", "--export", "--export-path", export, "--resume")
    assert other.returncode == 1 and "it is another analysis (batchSizes" in other.stderr
    assert "Traceback" not in other.stderr

    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"the {len(before['points'])} points measured before are kept" in resumed.stdout + resumed.stderr
    after = json.loads((export / "analysis.json").read_text())
    assert [p["concurrency"] for p in after["points"]] == [1, 2, 4, 8]  # each once
    kept = {p["concurrency"]: p["started_at"] for p in before["points"]}
    assert all(after["points"][i]["started_at"] == kept[c] for i, c in enumerate([1, 2, 4, 8]) if c in kept)
    assert after["finished_at"] is not None
    rows = (export / "metrics-model-inference.csv").read_text().splitlines()
    assert len(rows) == 1 + 4
