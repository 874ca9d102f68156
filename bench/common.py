"""Helpers every benchmark here shares: logging, rounding, medians and ratios, free ports, timed commands, the
order of interleaved repeats, and the facts recorded beside the figures (the commit, the machine)."""

from __future__ import annotations

import contextlib
import csv
import importlib.metadata
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from modelanalysis import __version__
from modelanalysis.adapters.local_triton import find_local_triton
from modelanalysis.adapters.triton_server import port_in_use

REPO = Path(__file__).resolve().parent.parent
PERF_ANALYZER = REPO / ".venv" / "bin" / "perf_analyzer"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def spread(values: list[float | None]) -> tuple[float, float] | None:
    present = [v for v in values if v is not None]
    return (min(present), max(present)) if present else None


def rounded(value: Any, digits: int = 4) -> Any:
    """Round floats everywhere in a JSON-able value, so the file stays readable."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


def interleaved(repeat: int, sides: Sequence[str]) -> list[str]:
    """The order the sides run in on this repeat: as given on even repeats, reversed on odd ones, so neither
    always runs first on a machine that warms up or tires."""
    return list(sides) if repeat % 2 == 0 else list(reversed(sides))


def consecutive_free_ports(host: str = "127.0.0.1", count: int = 3) -> int:
    """A port P with P..P+count-1 all free: `--triton-url host:P` implies gRPC on P+1 and metrics on P+2."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            base = int(s.getsockname()[1])
        if base + count < 65535 and not any(port_in_use(host, base + i) for i in range(count)):
            return base
    raise RuntimeError("no run of free consecutive ports found")


def run_timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[int, float, float, list[tuple[float, str]]]:
    """Run `cmd`, its stdout and stderr merged, and note the time each line arrived (seconds since launch)."""
    lines: list[tuple[float, str]] = []
    launched_at = time.time()
    started = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.perf_counter() - started, line.rstrip("\n")))
        rc = proc.wait()
    return rc, time.perf_counter() - started, launched_at, lines


def git_facts() -> dict[str, Any]:
    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return proc.stdout.rstrip()  # porcelain lines start with a space

    return {
        "commit": git("rev-parse", "HEAD"),
        # Our CLI runs from the working tree, which others change: which files differed from the commit.
        "dirty_files": git("status", "--porcelain", "--", "operator").splitlines(),
    }


def machine_facts(perf_binary: Path = PERF_ANALYZER) -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), "")  # fmt: skip

    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "nproc": os.cpu_count(),
        "sched_affinity": len(os.sched_getaffinity(0)),
        "cpu_model": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "modelanalysis": __version__,
        "tritonclient": version("tritonclient"),  # the perf_analyzer binary both sides run ships with it
        "nvidia_pytriton": version("nvidia-pytriton"),
        "perf_analyzer": str(perf_binary),
        "tritonserver": str(find_local_triton().binary),
    }


def write_results(result: dict[str, Any], out: Path, markdown: Callable[[dict[str, Any]], str]) -> None:
    """The figures as JSON at `out` and their summary as markdown beside it (`out` with .md)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rounded(result), indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    log(f"wrote {out} and {out.with_suffix('.md').name}")


def resummarize(
    out: Path,
    summarize: Callable[[list[dict[str, Any]]], dict[str, Any]],
    markdown: Callable[[dict[str, Any]], str],
    notes: list[str],
) -> None:
    """--summarize-only: recompute an existing results file's summary (and add notes) from its runs."""
    result = json.loads(out.read_text())
    result["summary"] = summarize(result["runs"])
    result["notes"] = result.get("notes", []) + notes
    write_results(result, out, markdown)


def csv_rows_of(path: Path, model: str) -> list[dict[str, str]]:
    """A Model Analyzer CSV's rows for `model`, in its order ([] when the file is missing)."""
    try:
        rows = list(csv.DictReader(path.read_text().splitlines()))
    except OSError:
        return []
    return [row for row in rows if row.get("Model") == model]


def cell_number(row: dict[str, str], column: str) -> float | None:
    """A CSV cell as a number (None when empty or absent)."""
    with contextlib.suppress(KeyError, TypeError, ValueError):
        return float(row[column])
    return None

