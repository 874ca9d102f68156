"""Benchmark: our `model-analyzer profile` against NVIDIA Model Analyzer 1.58 itself, on one running Triton.

One local Triton (explicit model control, a copy of examples/models) serves both tools, which run one after the
other, never together, interleaved over --repeats (Model Analyzer first on even repeats, ours first on odd ones, so
a linear drift in machine load cancels out across a pair of repeats):

  ma    NVIDIA Model Analyzer (`triton-model-analyzer==1.58.0` from PyPI, installed here into a virtual environment
        of its own under ~/.cache/modelanalysis/bench/, not a project dependency) in remote mode against that server:
        `--run-config-search-disable`, the model's own config, the batch x concurrency grid given.
  ours  `model-analyzer profile --triton-url` (this project's CLI from the working tree) against the same server.

Both run at their own default measurement settings and use the same perf_analyzer binary (`.venv/bin/perf_analyzer`,
tritonclient 2.50). Each whole command is timed. Per point it records both throughputs (ours with its confidence
interval and convergence fields when the CLI reports them), failed points per side (a point missing from Model
Analyzer's CSV, or one we mark Failed), and Triton's own nv_inference_count rate over each of our points.

Before each run the model is put in the state --model-state asks for (untimed): `unloaded` (default: each tool loads
the model itself, as a user profiling a model on a running server would see it; Model Analyzer loads it, reads its
config, unloads it and loads it again with that config, ours loads it and unloads it at the end) or `loaded` (both
find it loaded: Model Analyzer gets `--reload-model-disable`, ours neither loads nor unloads it).

Targets (reported, never asserted): our wall time <= 0.5x Model Analyzer's (median of the repeats) with 0 failed
points; each of our throughputs within its CI or 5% of the server's count; ours and Model Analyzer's per point
within the spread the repeats show. See bench/README.md.

    .venv/bin/python bench/ours_vs_model_analyzer.py --quick        # smoke run: 2 points, 1 repeat
    .venv/bin/python bench/ours_vs_model_analyzer.py --repeats 3    # the 9 points, 3 interleaved repeats
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import (
    PERF_ANALYZER,
    REPO,
    consecutive_free_ports,
    git_facts,
    interleaved,
    log,
    machine_facts,
    median,
    ratio,
    rounded,
    run_timed,
    spread,
)

from modelanalysis.adapters.local_triton import find_local_triton
from modelanalysis.adapters.perf_analyzer import perf_analyzer_env
from modelanalysis.adapters.triton_control import TritonControl
from modelanalysis.adapters.triton_server import TritonEndpoints, TritonServerProcess

MA_VERSION = "1.58.0"
MA_VENV = Path.home() / ".cache" / "modelanalysis" / "bench" / f"ma-{MA_VERSION}-venv"
OURS = REPO / ".venv" / "bin" / "model-analyzer"
DEFAULT_OUT = REPO / "bench" / "results" / "ours-vs-model-analyzer.json"
QUICK_OUT = REPO / "bench" / "results" / "ours-vs-model-analyzer-quick.json"
SIDES = ("ma", "ours")
TARGET_WALL_RATIO = 0.5
TARGET_SERVER_RATE = 0.05

PointKey = tuple[int, int]  # (batch size, concurrency): one model only


# ---------------------------------------------------------------- Model Analyzer's environment


def ensure_model_analyzer(venv: Path, version: str = MA_VERSION) -> Path:
    """The `model-analyzer` of NVIDIA's package, installed into `venv` once (pip from the configured index)."""
    binary = venv / "bin" / "model-analyzer"
    if binary.exists() and ma_installed_version(venv) == version:
        return binary
    log(f"installing triton-model-analyzer=={version} into {venv} (once; a few minutes)")
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", f"triton-model-analyzer=={version}"], check=True)
    return binary


def ma_installed_version(venv: Path, dist: str = "triton-model-analyzer") -> str | None:
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


def ma_environment(venv: Path) -> dict[str, str | None]:
    """Versions in Model Analyzer's venv that bear on the numbers (its tritonclient is not the one that measures)."""
    return {dist: ma_installed_version(venv, dist) for dist in ("triton-model-analyzer", "tritonclient", "numpy")}


# ---------------------------------------------------------------- the shared server


class SharedServer:
    """One Triton for both tools: explicit model control, a copy of the model folder, consecutive ports."""

    def __init__(self, model_folder: Path, work: Path) -> None:
        self.repository = work / "models"
        shutil.copytree(model_folder, self.repository)
        base = consecutive_free_ports()
        self.server = TritonServerProcess(
            find_local_triton(), self.repository, log_path=work / "triton.log",
            http_port=base, grpc_port=base + 1, metrics_port=base + 2,
        )  # fmt: skip
        self.version = ""

    @property
    def endpoints(self) -> TritonEndpoints:
        return self.server.endpoints

    @contextlib.contextmanager
    def running(self) -> Iterator[SharedServer]:
        self.server.start()
        try:
            with self.control() as control:
                self.version = control.server_version()
            yield self
        finally:
            self.server.stop()

    @contextlib.contextmanager
    def control(self) -> Iterator[TritonControl]:
        control = TritonControl(self.endpoints.http)
        try:
            control.wait_ready()
            yield control
        finally:
            control.close()  # an open keep-alive connection holds Triton's shutdown for up to 30 s

    def put_model_in_state(self, model: str, loaded: bool) -> None:
        """Load or unload `model` (waiting until Triton has finished) so the next run finds it as asked."""
        with self.control() as control:
            if loaded and not control.is_model_ready(model):
                control.load(model)
            elif not loaded and control.is_model_ready(model):
                control.unload(model)

    def loaded_models(self) -> list[str]:
        with self.control() as control:
            index = control.client.get_model_repository_index()
            return sorted(str(e["name"]) for e in index if e.get("state") == "READY")


# ---------------------------------------------------------------- Model Analyzer's side

# Model Analyzer's log lines that mark its phases, e.g.
#   "Profiling add_sub_config_default: client batch size=4, concurrency=1" (batch 1 leaves the batch out)
_MA_POINT = re.compile(r"Profiling (\S+): (?:client batch size=(\d+), )?concurrency=(\d+)")
_MA_ADJUST = re.compile(r"perf_analyzer's (?:request count|measurement window) is too small, increased to")
_MA_GAVE_UP = "Ran perf_analyzer 10 times"  # its default --perf-analyzer-max-auto-adjusts, then the point fails
_MA_PHASES = {
    "server_only": "Profiling server only metrics",
    "search": "Starting manual brute search",
    "config": "Creating model config",
    "profile_complete": "Profile complete",
}


def ma_command(
    binary: Path, server: SharedServer, model: str, batches: list[int], concurrency: list[int], out: Path, reload: bool
) -> list[str]:
    endpoints = server.endpoints
    cmd = [
        str(binary), "profile",
        "--triton-launch-mode", "remote",
        "--triton-http-endpoint", endpoints.http,
        "--triton-grpc-endpoint", endpoints.grpc,
        "--triton-metrics-url", endpoints.metrics_url,
        "--run-config-search-disable",
        "--profile-models", model,
        "--batch-sizes", ",".join(map(str, batches)),
        "--concurrency", ",".join(map(str, concurrency)),
        "--perf-analyzer-path", str(PERF_ANALYZER),
        # Everything it writes goes to this run's folder: a checkpoint left from an earlier run would make it
        # skip every point it finds there ("Existing measurement found for run config").
        "--checkpoint-directory", str(out / "checkpoints"),
        "--output-model-repository-path", str(out / "output_model_repository"),
        "--override-output-model-repository",
        "--export-path", str(out / "export"),
        # perf_analyzer's own output for each point, to count the windows Model Analyzer's points took.
        "--perf-output", "--perf-output-path", str(out / "perf_analyzer_output.txt"),
    ]  # fmt: skip
    return cmd if reload else [*cmd, "--reload-model-disable"]


def parse_ma_csv(path: Path, model: str) -> dict[PointKey, dict[str, float | None]]:
    """Model Analyzer's results/metrics-model-inference.csv: one row per point it measured."""
    out: dict[PointKey, dict[str, float | None]] = {}
    try:
        rows = list(csv.DictReader(path.read_text().splitlines()))
    except OSError:
        return out
    for row in rows:
        if row.get("Model") != model:
            continue

        def num(column: str, row: dict[str, str] = row) -> float | None:
            with contextlib.suppress(TypeError, ValueError):
                return float(row[column])
            return None

        out[(int(row["Batch"]), int(row["Concurrency"]))] = {
            "throughput_infer_per_sec": num("Throughput (infer/sec)"),
            "latency_p99_ms": num("p99 Latency (ms)"),
        }
    return out


def parse_perf_output(path: Path) -> tuple[dict[PointKey, dict[str, int]], str | None]:
    """From perf_analyzer's output as Model Analyzer saved it (the last run of each point it measured): per point,
    how many requests its stable windows held; and the first perf_analyzer command line, to show how it was called."""
    out: dict[PointKey, dict[str, int]] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out, None
    command = re.search(r"^Command: (.+)$", text, re.MULTILINE)
    for run in text.split("*** Measurement Settings ***")[1:]:
        batch = re.search(r"Batch size: (\d+)", run)
        conc = re.search(r"Request concurrency: (\d+)", run)
        if batch is None or conc is None:
            continue
        entry = out.setdefault((int(batch[1]), int(conc[1])), {})
        if requests := re.search(r"^\s+Request count: (\d+)", run, re.MULTILINE):
            entry["requests"] = int(requests[1])
    return out, None if command is None else command[1]


def ma_split(lines: list[tuple[float, str]], wall: float) -> tuple[dict[str, float | None], dict[PointKey, Any]]:
    """Where Model Analyzer's wall time went, from the times its log lines arrived; and per point: its wall time
    (from its 'Profiling ...' line to the next phase line: the point's model load if any, perf_analyzer and its
    retries, the checkpoint; summed when Model Analyzer profiles a point twice), how often it ran perf_analyzer again
    with a larger request count, and how often it gave up on the point."""
    first: dict[str, float] = {}
    for t, line in lines:
        for name, marker in _MA_PHASES.items():
            if marker in line and name not in first:
                first[name] = t
    points: dict[PointKey, Any] = {}
    current: dict[str, Any] | None = None
    marks = [(t, line) for t, line in lines if _MA_POINT.search(line) or "Creating model config" in line
             or "Done with" in line or "Profile complete" in line]  # fmt: skip
    for (t, line), (t_next, _) in zip(marks, [*marks[1:], (wall, "")], strict=True):
        if m := _MA_POINT.search(line):
            entry = points.setdefault((int(m[2] or 1), int(m[3])), {"wall_s": 0.0, "auto_adjusts": 0, "gave_up": 0})
            entry["wall_s"] += t_next - t
    for _, line in lines:  # attribute retries and give-ups to the point being profiled
        if m := _MA_POINT.search(line):
            current = points[(int(m[2] or 1), int(m[3]))]
        elif current is not None and _MA_ADJUST.search(line):
            current["auto_adjusts"] += 1
        elif current is not None and _MA_GAVE_UP in line:
            current["gave_up"] += 1
    first_point = next((t for t, line in marks if _MA_POINT.search(line)), None)
    complete = first.get("profile_complete")

    def between(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else b - a

    return {
        "startup_s": first.get("server_only"),  # process start, imports, config checks
        "server_only_s": between(first.get("server_only"), first.get("config")),  # its --duration-seconds (3 s)
        "model_config_s": between(first.get("config"), first_point),  # load, read the config, unload (remote)
        "points_s": sum(p["wall_s"] for p in points.values()) if points else None,
        "profile_to_complete_s": between(first_point, complete),
        "reports_s": between(complete, wall),  # CSV, plots, HTML summary and detailed reports, exit
    }, points


def run_model_analyzer(
    binary: Path, server: SharedServer, model: str, batches: list[int], concurrency: list[int], reload: bool,
    keep: Path | None,
) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-ma-") as tmp:
        out = Path(tmp)
        cmd = ma_command(binary, server, model, batches, concurrency, out, reload)
        env = perf_analyzer_env()  # perf_analyzer 2.50 links libcudart, which the nvidia-cuda-runtime wheel ships
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("PYTHONPATH", None)  # its own venv only
        load_before = os.getloadavg()
        rc, wall, _, lines = run_timed(cmd, env, out)
        (out / "model-analyzer.log").write_text("".join(f"{t:9.3f} {line}\n" for t, line in lines))
        measured = parse_ma_csv(out / "export" / "results" / "metrics-model-inference.csv", model)
        perf_runs, perf_command = parse_perf_output(out / "perf_analyzer_output.txt")
        if keep is not None:
            shutil.copytree(out, keep, ignore=shutil.ignore_patterns("plots", "reports"), dirs_exist_ok=True)
    split, per_point = ma_split(lines, wall)
    points = []
    for key in [(b, c) for b in batches for c in concurrency]:
        entry: dict[str, Any] = {"batch_size": key[0], "concurrency": key[1]}
        if key in measured:
            entry.update(status="Measured", **measured[key])
        else:  # perf_analyzer failed for it, after Model Analyzer's retries
            entry.update(status="Failed", throughput_infer_per_sec=None)
        # A point never profiled: Model Analyzer stops a batch size's larger values after a failed point.
        entry.update(per_point.get(key, {"attempted": False}))
        entry.update(perf_runs.get(key, {}))
        points.append(entry)
    result: dict[str, Any] = {
        "wall_s": wall,
        "exit_code": rc,
        "command": cmd,
        "perf_analyzer_command": perf_command,  # the first point's, as Model Analyzer ran it
        "split": split,
        "points": points,
        "auto_adjusts": sum(1 for _, line in lines if _MA_ADJUST.search(line)),
        "warnings": sorted({line.split("WARNING: ", 1)[1][:160] for _, line in lines if "WARNING: " in line}),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    if rc != 0 or not measured:
        result["log_tail"] = [line for _, line in lines[-25:]]
    return result


# ---------------------------------------------------------------- our side


def run_ours_and_read(
    cmd: list[str], cwd: Path, export: Path, keep: Path | None
) -> tuple[int, float, float, list[tuple[float, str]], dict[str, Any]]:
    """Run our CLI (timed) and read the analysis.json it exported ({} when there is none); with `keep`, copy its
    log and export folder there."""
    rc, wall, launched_at, lines = run_timed(cmd, dict(os.environ), cwd)
    try:
        analysis = json.loads((export / "analysis.json").read_text())
    except (OSError, ValueError):
        analysis = {}
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        (keep / "model-analyzer.log").write_text("".join(f"{t:9.3f} {line}\n" for t, line in lines))
        if export.is_dir():
            shutil.copytree(export, keep / "export", dirs_exist_ok=True)
    return rc, wall, launched_at, lines, analysis


def perf_confidence_fields(perf: dict[str, Any]) -> dict[str, Any]:
    """The fields of our `perf` that say how sure a point is (CI bounds, windows, convergence), where present."""
    return {k: v for k, v in perf.items()
            if "ci" in k.split("_") or "converge" in k or k in ("windows", "requests")}  # fmt: skip


def ours_command(
    server: SharedServer, model: str, batches: list[int], concurrency: list[int], export: Path, extra: list[str]
) -> list[str]:
    return [
        str(OURS), "profile",
        "--triton-url", server.endpoints.http,  # gRPC and metrics: the next two ports, as the server has them
        "-m", model,
        "-b", ",".join(map(str, batches)),
        "-c", ",".join(map(str, concurrency)),
        "--perf-analyzer-path", str(PERF_ANALYZER),
        "--export", "--export-path", str(export),
        *extra,
    ]  # fmt: skip


def run_ours(
    server: SharedServer, model: str, batches: list[int], concurrency: list[int], extra: list[str], keep: Path | None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-ours-") as tmp:
        export = Path(tmp) / "out"
        cmd = ours_command(server, model, batches, concurrency, export, extra)
        load_before = os.getloadavg()
        rc, wall, launched_at, lines, analysis = run_ours_and_read(cmd, Path(tmp), export, keep)
    found = {(p["batch_size"], p["concurrency"]): p for p in analysis.get("points", []) if p.get("model") == model}
    points = []
    for key in [(b, c) for b in batches for c in concurrency]:
        p = found.get(key, {})
        perf = p.get("perf") or {}
        started, finished = p.get("started_at"), p.get("finished_at")
        points.append({
            "batch_size": key[0],
            "concurrency": key[1],
            "status": p.get("status", "Missing"),
            "throughput_infer_per_sec": perf.get("throughput_infer_per_sec"),
            "latency_p99_ms": perf.get("latency_p99_ms"),
            **perf_confidence_fields(perf),
            "server_throughput_infer_per_sec": p.get("server_throughput_infer_per_sec"),
            "wall_s": None if started is None or finished is None else finished - started,
            **({"error": str(p["error"])[:300]} if p.get("error") else {}),
        })  # fmt: skip
    result: dict[str, Any] = {
        "wall_s": wall,
        "exit_code": rc,
        "command": cmd,
        "split": ours_split(analysis, launched_at, launched_at + wall),
        "points": points,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    if rc != 0 or not analysis:
        result["log_tail"] = [line for _, line in lines[-25:]]
    return result


def ours_split(analysis: dict[str, Any], launched_at: float, ended_at: float) -> dict[str, float | None]:
    """Where our wall time went, from analysis.json's timestamps."""
    started, finished = analysis.get("started_at"), analysis.get("finished_at")
    points = sorted((p for p in analysis.get("points", []) if p.get("started_at") is not None),
                    key=lambda p: p["started_at"])  # fmt: skip
    if started is None or finished is None or not points:
        return {}
    points_s = sum(p["finished_at"] - p["started_at"] for p in points)
    return {
        "startup_s": started - launched_at,  # process start, imports, server readiness
        "baseline_and_load_s": points[0]["started_at"] - started,  # baseline, model load (if not loaded), config
        "points_s": points_s,
        "between_points_s": points[-1]["finished_at"] - points[0]["started_at"] - points_s,
        "after_last_point_s": finished - points[-1]["finished_at"],  # unload (if it loaded the model)
        "teardown_s": ended_at - finished,  # export, the table, exit
    }


# ---------------------------------------------------------------- summary


def summarize(runs: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    by = {(r["repeat"], r["side"]): r for r in runs}
    done = [i for i in range(repeats) if all((i, s) in by for s in SIDES)]
    if not done:
        return {}

    def failed(i: int, side: str) -> int:
        return sum(1 for p in by[(i, side)]["points"] if p["throughput_infer_per_sec"] is None)

    per_repeat = []
    for i in done:
        ma, ours = by[(i, "ma")], by[(i, "ours")]
        per_repeat.append({
            "repeat": i,
            "first": interleaved(i, SIDES)[0],
            "ma_wall_s": ma["wall_s"],
            "ours_wall_s": ours["wall_s"],
            "ours_vs_ma": ratio(ours["wall_s"], ma["wall_s"]),
            # The measuring part only (each side's time inside its points), without start-up, reports, loads.
            "ours_points_vs_ma_points": ratio(ours["split"].get("points_s"), ma["split"].get("points_s")),
            "ma_failed_points": failed(i, "ma"),
            "ours_failed_points": failed(i, "ours"),
            "ours_not_converged_points": sum(1 for p in ours["points"] if p.get("converged") is False),
            "ma_exit_code": ma["exit_code"],
            "ours_exit_code": ours["exit_code"],
        })  # fmt: skip
    wall: dict[str, Any] = {
        "median_ma_wall_s": median([r["ma_wall_s"] for r in per_repeat]),
        "median_ours_wall_s": median([r["ours_wall_s"] for r in per_repeat]),
        "median_ours_vs_ma": median([r["ours_vs_ma"] for r in per_repeat]),
        "median_ours_points_vs_ma_points": median([r["ours_points_vs_ma_points"] for r in per_repeat]),
        "per_repeat": per_repeat,
    }

    keys = [(p["batch_size"], p["concurrency"]) for p in runs[0]["points"]]
    points = []
    for key in keys:

        def get(i: int, side: str, field: str, key: PointKey = key) -> Any:
            found: dict[str, Any] = next(
                (p for p in by[(i, side)]["points"] if (p["batch_size"], p["concurrency"]) == key), {}
            )
            return found.get(field)

        ma_tp = [get(i, "ma", "throughput_infer_per_sec") for i in done]
        ours_tp = [get(i, "ours", "throughput_infer_per_sec") for i in done]
        server = [get(i, "ours", "server_throughput_infer_per_sec") for i in done]
        lows = [get(i, "ours", "throughput_ci_low") for i in done]
        highs = [get(i, "ours", "throughput_ci_high") for i in done]
        entry: dict[str, Any] = {
            "batch_size": key[0],
            "concurrency": key[1],
            "ma_throughput": ma_tp,
            "ours_throughput": ours_tp,
            "ours_ci": [None if lo is None or hi is None else [lo, hi] for lo, hi in zip(lows, highs, strict=True)],
            "ours_converged": [get(i, "ours", "converged") for i in done],
            "ours_windows": [get(i, "ours", "windows") for i in done],
            "ours_requests": [get(i, "ours", "requests") for i in done],
            "ma_requests": [get(i, "ma", "requests") for i in done],
            "ma_auto_adjusts": [get(i, "ma", "auto_adjusts") for i in done],  # reruns with a larger request count
            "ma_gave_up": [get(i, "ma", "gave_up") for i in done],
            "ma_attempted": [get(i, "ma", "attempted") is not False for i in done],
            "ours_server_rate": server,
            "ours_vs_ma": [ratio(o, m) for o, m in zip(ours_tp, ma_tp, strict=True)],
            "ma_wall_s": [get(i, "ma", "wall_s") for i in done],
            "ours_wall_s": [get(i, "ours", "wall_s") for i in done],
        }
        entry["median_ours_vs_ma"] = ratio(median(ours_tp), median(ma_tp))
        # Consistent with Model Analyzer "within the spread the repeats show": the two sides' ranges over the
        # repeats overlap (with one repeat: within 5%).
        ma_range, ours_range = spread(ma_tp), spread(ours_tp)
        if ma_range is None or ours_range is None:
            entry["consistent_with_ma"] = None
        elif len(done) == 1:
            entry["consistent_with_ma"] = abs(ours_range[0] / ma_range[0] - 1) <= TARGET_SERVER_RATE
        else:
            entry["consistent_with_ma"] = ours_range[0] <= ma_range[1] and ma_range[0] <= ours_range[1]
        # Consistent with Triton's own count over the point: within our CI or 5% of it, whichever is wider.
        checks: list[bool | None] = []
        for tp, rate, lo, hi in zip(ours_tp, server, lows, highs, strict=True):
            if tp is None or rate is None:
                checks.append(None)
                continue
            half_width = (hi - lo) / 2 if lo is not None and hi is not None else 0.0
            checks.append(abs(tp - rate) <= max(half_width, TARGET_SERVER_RATE * rate))
        entry["ours_vs_server_rate"] = [ratio(tp, rate) for tp, rate in zip(ours_tp, server, strict=True)]
        entry["consistent_with_server_rate"] = checks
        points.append(entry)

    ours_failed = sum(r["ours_failed_points"] for r in per_repeat)
    ma_failed = sum(r["ma_failed_points"] for r in per_repeat)
    server_checks = [c for p in points for c in p["consistent_with_server_rate"] if c is not None]
    ma_checks = [p["consistent_with_ma"] for p in points if p["consistent_with_ma"] is not None]
    targets = {
        "wall_ours_vs_ma": {
            "target": f"<= {TARGET_WALL_RATIO} (median of the repeats) with 0 failed points",
            "median": wall["median_ours_vs_ma"],
            "met": (wall["median_ours_vs_ma"] or 99) <= TARGET_WALL_RATIO and ours_failed == 0,
        },
        "failed_points": {
            "ours": ours_failed,
            "ma": ma_failed,
            "ours_not_converged": sum(r["ours_not_converged_points"] for r in per_repeat),  # measured all the same
            "points_per_side": len(points) * len(done),
        },
        "ours_vs_server_rate": {
            "target": f"within our CI or {TARGET_SERVER_RATE:.0%}, whichever is wider",
            "points": len(server_checks),
            "within": sum(server_checks),
        },
        "ours_vs_ma_throughput": {
            "target": "the two sides' ranges over the repeats overlap",
            "points": len(ma_checks),
            "within": sum(ma_checks),
            "median_ratio": median([p["median_ours_vs_ma"] for p in points]),
        },
    }
    return {"targets": targets, "sweep_wall": wall, "points": points}


def markdown(result: dict[str, Any]) -> str:
    """A short summary table of a result, for bench/results/*.md."""
    s, m = result["summary"], result["machine"]
    wall, t = s["sweep_wall"], s["targets"]

    def f(v: Any, spec: str = ".2f") -> str:
        return "-" if v is None else format(v, spec)

    lines = [
        f"# Ours vs NVIDIA Model Analyzer {result['config']['model_analyzer_version']}",
        "",
        f"{result['created_at']}, {m['nproc']} cores ({m['cpu_model']}), load average "
        f"{f(m['loadavg_before'][0], '.1f')} before, {f(m['loadavg_after'][0], '.1f')} after. Model "
        f"`{result['config']['model']}`, batch {result['config']['batch_sizes']} x concurrency "
        f"{result['config']['concurrency']}, model state before each run: {result['config']['model_state']}. "
        f"Triton {m['tritonserver_version']}, perf_analyzer from tritonclient {m['tritonclient']} for both.",
        "",
        "| repeat | first | MA wall (s) | ours wall (s) | ours / MA | points only, ours / MA | failed: MA | ours "
        "| ours not converged |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in wall["per_repeat"]:
        lines.append(
            f"| {r['repeat']} | {r['first']} | {f(r['ma_wall_s'], '.1f')} | {f(r['ours_wall_s'], '.1f')} | "
            f"{f(r['ours_vs_ma'])} | {f(r['ours_points_vs_ma_points'])} | {r['ma_failed_points']} | "
            f"{r['ours_failed_points']} | {r['ours_not_converged_points']} |"
        )
    lines.append(
        f"| median | | {f(wall['median_ma_wall_s'], '.1f')} | {f(wall['median_ours_wall_s'], '.1f')} | "
        f"**{f(wall['median_ours_vs_ma'])}** (target <= {TARGET_WALL_RATIO}) | "
        f"{f(wall['median_ours_points_vs_ma_points'])} | {t['failed_points']['ma']} | {t['failed_points']['ours']} "
        f"| {t['failed_points']['ours_not_converged']} |"
    )
    lines += [
        "",
        "Throughput (infer/s) per point, one value per repeat; ours with its 95% CI where reported:",
        "",
        "| batch | conc | MA | ours | ours CI | ours / MA (medians) | ours / server count |",
        "|---|---|---|---|---|---|---|",
    ]

    def values(vs: list[Any]) -> str:
        return ", ".join(f(v, ".0f") for v in vs)

    for p in s["points"]:
        ci = ", ".join("-" if c is None else f"{c[0]:.0f}-{c[1]:.0f}" for c in p["ours_ci"])
        lines.append(
            f"| {p['batch_size']} | {p['concurrency']} | {values(p['ma_throughput'])} | {values(p['ours_throughput'])}"
            f" | {ci} | {f(p['median_ours_vs_ma'])} | {', '.join(f(v) for v in p['ours_vs_server_rate'])} |"
        )
    lines += [
        "",
        f"Ours within CI or 5% of Triton's count: {t['ours_vs_server_rate']['within']} of "
        f"{t['ours_vs_server_rate']['points']} points; ours and MA ranges overlap: "
        f"{t['ours_vs_ma_throughput']['within']} of {t['ours_vs_ma_throughput']['points']}. "
        f"Full figures: `{result['config']['json']}`.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- machine facts


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of both sides (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: batch 1,8 x concurrency 1, 1 repeat, to {QUICK_OUT.name}")  # fmt: skip
    parser.add_argument("--model", default="add_sub")
    parser.add_argument("--model-folder", type=Path, default=REPO / "examples" / "models")
    parser.add_argument("--batch", default="1,4,8")
    parser.add_argument("--concurrency", default="1,2,4")
    parser.add_argument("--model-state", choices=("unloaded", "loaded"), default="unloaded",
                        help="the model before each run (untimed): unloaded (each tool loads it; default) or loaded "
                             "(Model Analyzer gets --reload-model-disable, ours finds it loaded)")  # fmt: skip
    parser.add_argument(
        "--ours-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for our CLI (repeat the flag: --ours-arg=--convergence --ours-arg=5)",
    )
    parser.add_argument("--ma-venv", type=Path, default=MA_VENV)
    parser.add_argument("--keep", type=Path, help="keep each run's logs and exports under this folder")
    parser.add_argument("--out", type=Path, help=f"default {DEFAULT_OUT.relative_to(REPO)} (.md beside it)")
    parser.add_argument("--summarize-only", action="store_true", help="recompute an existing --out's summary")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.concurrency, args.repeats = "1,8", "1", 1
    args.out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    return args


def write(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rounded(result), indent=2) + "\n")
    if result.get("summary"):
        out.with_suffix(".md").write_text(markdown(result))
    log(f"wrote {out} and {out.with_suffix('.md').name}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.summarize_only:
        result = json.loads(args.out.read_text())
        result["summary"] = summarize(result["runs"], result["config"]["repeats"])
        write(result, args.out)
        return 0
    batches = [int(b) for b in args.batch.split(",")]
    concurrency = [int(c) for c in args.concurrency.split(",")]
    reload = args.model_state == "unloaded"
    ma_binary = ensure_model_analyzer(args.ma_venv)
    created = dt.datetime.now(dt.UTC)
    loadavg_before = os.getloadavg()
    git_at_start = git_facts()
    bench_started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ma-vs-ours-") as tmp:
        server = SharedServer(args.model_folder.resolve(), Path(tmp))
        with server.running():
            log(f"Triton {server.version} at {server.endpoints.http}; {len(batches) * len(concurrency)} points a side")
            try:
                for i in range(args.repeats):
                    for side in interleaved(i, SIDES):
                        server.put_model_in_state(args.model, loaded=not reload)
                        log(f"repeat {i + 1}/{args.repeats}: {side} ...")
                        keep = None if args.keep is None else args.keep / f"repeat{i}-{side}"
                        if side == "ma":
                            run = run_model_analyzer(ma_binary, server, args.model, batches, concurrency, reload, keep)
                        else:
                            run = run_ours(server, args.model, batches, concurrency, args.ours_arg, keep)
                        run["models_loaded_after"] = server.loaded_models()
                        failed = sum(1 for p in run["points"] if p["throughput_infer_per_sec"] is None)
                        log(f"repeat {i + 1}/{args.repeats}: {side} {run['wall_s']:.1f} s, exit {run['exit_code']}, "
                            f"{failed} of {len(run['points'])} points failed")  # fmt: skip
                        runs.append({"repeat": i, "side": side, **run})
            except KeyboardInterrupt:
                log("interrupted: writing the repeats done so far")
    machine = machine_facts()
    machine.update(
        model_analyzer=ma_environment(args.ma_venv),
        tritonserver_version=server.version,
        git_at_start=git_at_start,
        git_at_end=git_facts(),
        loadavg_before=loadavg_before,
        loadavg_after=os.getloadavg(),
        bench_wall_s=time.perf_counter() - bench_started,
    )
    result = {
        "benchmark": "ours-vs-model-analyzer",
        "created_at": created.isoformat(timespec="seconds"),
        "config": {
            "model": args.model,
            "batch_sizes": batches,
            "concurrency": concurrency,
            "repeats": args.repeats,
            "model_state": args.model_state,
            "model_analyzer_version": MA_VERSION,
            "ours_extra_args": args.ours_arg,
            "order": "repeat 0: ma, ours; repeat 1: ours, ma; and so on",
            "json": str(args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out),
        },
        "machine": machine,
        "summary": summarize(runs, args.repeats),
        "runs": runs,
    }
    write(result, args.out)
    if result["summary"]:
        print(json.dumps(rounded(result["summary"]["targets"], 3), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
