"""Benchmark: the same sweep through `model-analyzer profile` and through plain perf_analyzer calls.

Three ways of running one sweep, interleaved over --repeats (order plain, cli_url, cli_full on even repeats and
the reverse on odd ones, so a linear drift in machine load cancels out across a pair of repeats):

  plain     one Triton started here (explicit model control, the CLI's own server settings), the models
            loaded once; only the perf_analyzer invocations are timed, one per point, with exactly the
            arguments the CLI passes (modelanalysis.core.perf.perf_analyzer_args).
  cli_url   `model-analyzer profile --triton-url` against that same running server: like-for-like sweep time.
  cli_full  the whole `model-analyzer profile --model-folder` command, which starts and stops its own server.

With --paired-repeats N it then runs each point alone, plain and cli_url (one point, no baseline) back to back,
N times, for a per-point throughput comparison that is seconds rather than a sweep apart.

It writes wall times, the CLI's time split, per-point throughputs and the ratios to one JSON file. The targets
(CLI wall <= 1.15x plain; per-point throughput within 3% of plain; within 5% of Triton's nv_inference_count
rate) are reported, never asserted: this is a benchmark, not a test. See bench/README.md.

    .venv/bin/python bench/cli_vs_perf_analyzer.py --repeats 2
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
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

from common import consecutive_free_ports, git_facts, interleaved, log, machine_facts, median, ratio, rounded

from modelanalysis.adapters.local_triton import find_local_triton
from modelanalysis.adapters.metrics_sampler import scrape
from modelanalysis.adapters.perf_analyzer import find_perf_analyzer, perf_analyzer_env
from modelanalysis.adapters.triton_control import TritonControl
from modelanalysis.adapters.triton_server import TritonServerProcess
from modelanalysis.core.perf import parse_perf_analyzer_csv, perf_analyzer_args
from modelanalysis.core.spec import MeasurementSettings, ModelTarget, Protocol, SweepSpec
from modelanalysis.core.sweep import Point, plan_model_points

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "results" / "cli-vs-perf-analyzer.json"
SIDES = ("plain", "cli_url", "cli_full")
TARGET_WALL_RATIO = 1.15
TARGET_PLAIN_THROUGHPUT = 0.03
TARGET_SERVER_RATE = 0.05


# ---------------------------------------------------------------- plain side


class PlainServer:
    """One Triton, started the way the CLI starts it, with every model loaded once."""

    def __init__(self, model_folder: Path, spec: SweepSpec, log_path: Path) -> None:
        base = consecutive_free_ports()
        self.server = TritonServerProcess(
            find_local_triton(),
            model_folder,
            log_path=log_path,
            http_port=base,
            grpc_port=base + 1,
            metrics_port=base + 2,
            metrics_interval_ms=spec.measurement.metrics_interval_ms,
        )
        self.spec = spec
        self.points: list[Point] = []
        self.server_version = ""

    @contextlib.contextmanager
    def running(self) -> Iterator[PlainServer]:
        endpoints = self.server.start()
        control = TritonControl(endpoints.http)
        try:
            control.wait_ready()
            self.server_version = control.server_version()
            for model in self.spec.model_names:
                control.load(model)
                config = control.model_config(model)
                self.points += plan_model_points(self.spec, model, config.max_batch_size).points
            yield self
        finally:
            control.close()  # an open keep-alive connection holds Triton's shutdown for up to 30 s
            self.server.stop()

    def sweep(
        self, perf_binary: Path, settings: MeasurementSettings, only: list[Point] | None = None
    ) -> dict[str, Any]:
        """Run each point's perf_analyzer once (all points, or `only`); time only the invocations."""
        endpoints = self.server.endpoints
        env = perf_analyzer_env()
        points = []
        load_before = os.getloadavg()
        with tempfile.TemporaryDirectory(prefix="bench-plain-") as tmp:
            for point in self.points if only is None else only:
                report = Path(tmp) / f"{point.model}-b{point.batch_size}-c{point.concurrency}.csv"
                cmd = [str(perf_binary), *perf_analyzer_args(point, settings, endpoints.grpc, endpoints.http,
                                                             str(report))]  # fmt: skip
                count_before = scrape(endpoints.metrics_url)
                started = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False,
                                      timeout=settings.point_timeout_seconds)  # fmt: skip
                wall = time.perf_counter() - started
                count_after = scrape(endpoints.metrics_url)
                entry: dict[str, Any] = {
                    "model": point.model,
                    "batch_size": point.batch_size,
                    "concurrency": point.concurrency,
                    "wall_s": wall,
                    "exit_code": proc.returncode,
                    "throughput_infer_per_sec": None,
                    # nv_inference_count delta over the scrape before and after the process: the same window
                    # definition as the CLI's server_throughput (its sampler scrapes at the point's start and end).
                    "server_throughput_infer_per_sec": ratio(
                        count_after.inference_count.get(point.model, 0.0)
                        - count_before.inference_count.get(point.model, 0.0),
                        count_after.timestamp - count_before.timestamp,
                    ),
                }
                if proc.returncode == 0 and report.exists():
                    perf = parse_perf_analyzer_csv(report.read_text(), point.concurrency)
                    entry["throughput_infer_per_sec"] = perf.throughput_infer_per_sec
                    entry["latency_p50_ms"] = perf.latency_p50_ms
                else:
                    entry["error"] = (proc.stderr or proc.stdout).strip()[-400:]
                points.append(entry)
        return {
            "wall_s": sum(p["wall_s"] for p in points),
            "points": points,
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        }


# ---------------------------------------------------------------- CLI side

_TRITON_LOG_TIME = re.compile(r"^[IWE]\d{4} (\d\d):(\d\d):(\d\d\.\d+) ")


def _log_seconds(line: str) -> float | None:
    m = _TRITON_LOG_TIME.match(line)
    return None if m is None else int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])


def triton_log_timings(log_path: Path) -> dict[str, Any]:
    """From a Triton log: seconds from its first line to 'Started Metrics Service', and each model's load time."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    first = next((t for t in map(_log_seconds, lines) if t is not None), None)
    out: dict[str, Any] = {"model_load_s": {}}
    loading: dict[str, float] = {}
    for line in lines:
        t = _log_seconds(line)
        if t is None:
            continue
        if "Started Metrics Service" in line and first is not None:
            out["server_start_logged_s"] = (t - first) % 86400
        if m := re.search(r'"loading: ([^:"]+):', line):
            loading[m[1]] = t
        elif (m := re.search(r"successfully loaded '([^']+)'", line)) and m[1] in loading:
            out["model_load_s"][m[1]] = (t - loading[m[1]]) % 86400
    return out


def cli_split(
    analysis: dict[str, Any], launched_at: float, ended_at: float, log_info: dict[str, Any]
) -> dict[str, Any]:
    """Where the CLI's wall time went, from analysis.json's timestamps (and the Triton log for load times)."""
    started, finished = analysis.get("started_at"), analysis.get("finished_at")
    points = sorted(analysis.get("points", []), key=lambda p: p["started_at"])
    if started is None or finished is None or not points:
        return {}
    points_s = sum(p["finished_at"] - p["started_at"] for p in points)
    between_points_s = 0.0  # CLI work between two points of one model: events, CSV/JSON export
    model_switch_s = 0.0  # between the last point of a model and the first of the next: unload + load + config
    for prev, cur in itertools.pairwise(points):
        gap = cur["started_at"] - prev["finished_at"]
        if cur["model"] == prev["model"]:
            between_points_s += gap
        else:
            model_switch_s += gap
    before_first_point_s = points[0]["started_at"] - started
    loads = log_info.get("model_load_s", {})
    first_load = loads.get(points[0]["model"], 0.0)
    return {
        "startup_s": started - launched_at,  # process start, imports, server start (cli_full), readiness
        "server_start_logged_s": log_info.get("server_start_logged_s"),
        "baseline_and_first_model_s": before_first_point_s,
        "baseline_s_approx": before_first_point_s - first_load,
        "model_load_s": loads,
        "model_switch_s": model_switch_s,
        "points_s": points_s,
        "between_points_s": between_points_s,
        "after_last_point_s": finished - points[-1]["finished_at"],  # unload request
        "teardown_s": ended_at - finished,  # server stop (cli_full), export, printing the table, exit
    }


def run_cli(
    spec: SweepSpec, perf_binary: Path, model_folder: Path, triton_url: str | None, metrics_url: str | None
) -> dict[str, Any]:
    m = spec.measurement
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        export = Path(tmp) / "out"
        cmd = [
            str(Path(sys.executable).parent / "model-analyzer"), "profile",
            "--model-names", ",".join(spec.model_names),
            "--batch", ",".join(map(str, spec.batch_sizes)),
            "--concurrency", ",".join(map(str, spec.concurrency)),
            "--perf-analyzer-path", str(perf_binary),
            "--protocol", m.protocol.value,
            "--measurement-interval", str(m.measurement_interval_ms),
            "--stability-percentage", str(m.stability_percentage),
            "--max-trials", str(m.max_trials),
            "--point-timeout", str(m.point_timeout_seconds),
            "--metrics-interval", str(m.metrics_interval_ms),
            "--baseline-duration", str(m.baseline_duration_ms),
            "--export", "--export-path", str(export),
        ]  # fmt: skip
        if triton_url is not None:
            cmd += ["--triton-url", triton_url, "--triton-metrics-url", str(metrics_url)]
        else:
            cmd += ["--model-folder", str(model_folder)]
        load_before = os.getloadavg()
        launched_at = time.time()
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        ended_at = launched_at + wall
        try:
            analysis = json.loads((export / "analysis.json").read_text())
        except (OSError, ValueError):
            analysis = {}
        log_info = triton_log_timings(export / "triton-server.log")
    points = [
        {
            "model": p["model"],
            "batch_size": p["batch_size"],
            "concurrency": p["concurrency"],
            "wall_s": p["finished_at"] - p["started_at"],
            "status": p["status"],
            "throughput_infer_per_sec": (p.get("perf") or {}).get("throughput_infer_per_sec"),
            "latency_p50_ms": (p.get("perf") or {}).get("latency_p50_ms"),
            "server_throughput_infer_per_sec": p.get("server_throughput_infer_per_sec"),
        }
        for p in analysis.get("points", [])
    ]
    out: dict[str, Any] = {
        "wall_s": wall,
        "exit_code": proc.returncode,
        "split": cli_split(analysis, launched_at, ended_at, log_info),
        "points": points,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    if proc.returncode != 0:
        out["stderr_tail"] = proc.stderr.strip()[-800:]
    return out


# ---------------------------------------------------------------- summary


def paired_points(
    plain: PlainServer, spec: SweepSpec, perf_binary: Path, model_folder: Path, repeats: int
) -> list[dict[str, Any]]:
    """Each point alone, plain and `model-analyzer --triton-url` back to back (order alternating), so the two
    throughputs of a pair are seconds apart rather than a sweep apart. The CLI runs here skip the baseline."""
    endpoints = plain.server.endpoints
    pairs = []
    for i in range(repeats):
        for n, point in enumerate(plain.points):
            one = SweepSpec(
                models=[ModelTarget(name=point.model)],
                batch_sizes=[point.batch_size],
                concurrency=[point.concurrency],
                measurement=spec.measurement.model_copy(update={"baseline_duration_ms": 0}),
            )
            measured: dict[str, dict[str, Any]] = {}
            order = interleaved(i + n, ("plain", "cli_url"))
            for side in order:
                if side == "plain":
                    measured[side] = plain.sweep(perf_binary, spec.measurement, only=[point])["points"][0]
                else:
                    run = run_cli(one, perf_binary, model_folder, endpoints.http, endpoints.metrics_url)
                    measured[side] = run["points"][0] if run["points"] else {}
            pair: dict[str, Any] = {
                "repeat": i,
                "model": point.model,
                "batch_size": point.batch_size,
                "concurrency": point.concurrency,
                "first": order[0],
            }
            for side in ("plain", "cli_url"):
                pair[f"{side}_throughput"] = measured[side].get("throughput_infer_per_sec")
                pair[f"{side}_server_rate"] = measured[side].get("server_throughput_infer_per_sec")
            pair["cli_url_vs_plain"] = ratio(pair["cli_url_throughput"], pair["plain_throughput"])
            pair["cli_url_vs_server_rate"] = ratio(pair["cli_url_throughput"], pair["cli_url_server_rate"])
            log(f"paired {point.key} (repeat {i + 1}/{repeats}): cli/plain {pair['cli_url_vs_plain']}")
            pairs.append(pair)
    return pairs


def summarize_pairs(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    values = [p["cli_url_vs_plain"] for p in pairs if p["cli_url_vs_plain"] is not None]
    first_cli = [p["cli_url_vs_plain"] for p in pairs if p["cli_url_vs_plain"] is not None and p["first"] == "cli_url"]
    first_plain = [p["cli_url_vs_plain"] for p in pairs if p["cli_url_vs_plain"] is not None and p["first"] == "plain"]
    return {
        "target": f"within {TARGET_PLAIN_THROUGHPUT:.0%}",
        "pairs": len(values),
        "within": sum(1 for v in values if abs(v - 1) <= TARGET_PLAIN_THROUGHPUT),
        "median": median(list(values)),
        "min": min(values, default=None),
        "max": max(values, default=None),
        # Whichever runs second in a pair may be favoured or hurt by what the machine does meanwhile.
        "median_when_cli_first": median(list(first_cli)),
        "median_when_plain_first": median(list(first_plain)),
        "server_rate": summarize_server_rates(pairs),
    }


def summarize_server_rates(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Target (c) over the pairs: the CLI's throughput over its server-counter rate, and plain's as reference."""
    out: dict[str, Any] = {"target": f"within {TARGET_SERVER_RATE:.0%}"}
    for side in ("cli_url", "plain"):
        values = [v for p in pairs if (v := ratio(p[f"{side}_throughput"], p[f"{side}_server_rate"])) is not None]
        out[side] = {
            "points": len(values),
            "within": sum(1 for v in values if abs(v - 1) <= TARGET_SERVER_RATE),
            "median": median(list(values)),
            "min": min(values, default=None),
            "max": max(values, default=None),
        }
    return out


def point_key(p: dict[str, Any]) -> tuple[str, int, int]:
    return (p["model"], p["batch_size"], p["concurrency"])


def summarize(runs: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    if repeats == 0:
        return {}
    by = {(r["repeat"], r["side"]): r for r in runs}
    # --- sweep wall time (target a)
    wall: dict[str, Any] = {}
    for side in SIDES:
        wall[f"{side}_s"] = [by[(i, side)]["wall_s"] for i in range(repeats)]
    per_repeat = []
    for i in range(repeats):
        plain = by[(i, "plain")]["wall_s"]
        row: dict[str, Any] = {"repeat": i, "failed_points": {side: by[(i, side)]["failed_points"] for side in SIDES}}
        for side in ("cli_url", "cli_full"):
            run = by[(i, side)]
            split = run.get("split", {})
            row[f"{side}_vs_plain"] = ratio(run["wall_s"], plain)
            row[f"{side}_points_vs_plain"] = ratio(split.get("points_s"), plain)
            # The CLI's own cost (wall minus its perf_analyzer windows) on top of the plain side's perf_analyzer
            # time: the ratio with perf_analyzer's run-to-run spread (stability retries) taken out.
            overhead = run["wall_s"] - split["points_s"] if "points_s" in split else None
            row[f"{side}_overhead_s"] = overhead
            row[f"{side}_overhead_vs_plain"] = None if overhead is None else (plain + overhead) / plain
        per_repeat.append(row)
    for name in per_repeat[0]:
        if name not in ("repeat", "failed_points"):
            wall[f"median_{name}"] = median([r[name] for r in per_repeat])
    wall["per_repeat"] = per_repeat

    # --- per point (targets b and c)
    keys = sorted({point_key(p) for r in runs for p in r["points"]})
    points = []
    for pk in keys:
        entry: dict[str, Any] = {"model": pk[0], "batch_size": pk[1], "concurrency": pk[2]}
        found: dict[tuple[int, str], dict[str, Any]] = {}
        for r in runs:
            for p in r["points"]:
                if point_key(p) == pk:
                    found[(r["repeat"], r["side"])] = p

        def get(i: int, side: str, field: str, found: dict[tuple[int, str], dict[str, Any]] = found) -> float | None:
            p = found.get((i, side))
            return None if p is None else p.get(field)

        for side in SIDES:
            entry[f"{side}_throughput"] = [get(i, side, "throughput_infer_per_sec") for i in range(repeats)]
            entry[f"{side}_server_rate"] = [get(i, side, "server_throughput_infer_per_sec") for i in range(repeats)]
            entry[f"{side}_wall_s"] = [get(i, side, "wall_s") for i in range(repeats)]
        for side in ("cli_url", "cli_full"):
            entry[f"{side}_vs_plain"] = [
                ratio(get(i, side, "throughput_infer_per_sec"), get(i, "plain", "throughput_infer_per_sec"))
                for i in range(repeats)
            ]
        # The noise floor: the plain side against itself, a later repeat over the first.
        first = get(0, "plain", "throughput_infer_per_sec")
        entry["plain_vs_plain"] = [ratio(get(i, "plain", "throughput_infer_per_sec"), first) for i in range(1, repeats)]
        for side in SIDES:
            entry[f"{side}_vs_server_rate"] = [
                ratio(get(i, side, "throughput_infer_per_sec"), get(i, side, "server_throughput_infer_per_sec"))
                for i in range(repeats)
            ]
        for name in [k for k in entry if k.endswith(("_vs_plain", "_vs_server_rate"))]:
            entry[f"median_{name}"] = median(entry[name])
        points.append(entry)

    def within(name: str, tolerance: float) -> dict[str, Any]:
        values = [(p, p[f"median_{name}"]) for p in points if p[f"median_{name}"] is not None]
        missed = [f"{p['model']}/b{p['batch_size']}/c{p['concurrency']}" for p, v in values if abs(v - 1) > tolerance]
        return {
            "points": len(values),
            "within": len(values) - len(missed),
            "missed": missed,
            "median": median([v for _, v in values]),
            "min": min((v for _, v in values), default=None),
            "max": max((v for _, v in values), default=None),
        }

    targets = {
        "a_wall_cli_url_vs_plain": {
            "target": f"<= {TARGET_WALL_RATIO}",
            "median": wall["median_cli_url_vs_plain"],
            "met": (wall["median_cli_url_vs_plain"] or 99) <= TARGET_WALL_RATIO,
        },
        "a_wall_cli_full_vs_plain": {
            "target": f"<= {TARGET_WALL_RATIO}",
            "median": wall["median_cli_full_vs_plain"],
            "met": (wall["median_cli_full_vs_plain"] or 99) <= TARGET_WALL_RATIO,
        },
        "b_throughput_cli_url_vs_plain": {"target": f"within {TARGET_PLAIN_THROUGHPUT:.0%}",
                                          **within("cli_url_vs_plain", TARGET_PLAIN_THROUGHPUT)},
        "b_throughput_cli_full_vs_plain": {"target": f"within {TARGET_PLAIN_THROUGHPUT:.0%}",
                                           **within("cli_full_vs_plain", TARGET_PLAIN_THROUGHPUT)},
        "b_reference_plain_vs_plain": {"target": "(reference, not a target: run-to-run noise of plain itself)",
                                       **within("plain_vs_plain", TARGET_PLAIN_THROUGHPUT)},
        "c_cli_url_vs_server_rate": {"target": f"within {TARGET_SERVER_RATE:.0%}",
                                     **within("cli_url_vs_server_rate", TARGET_SERVER_RATE)},
        "c_cli_full_vs_server_rate": {"target": f"within {TARGET_SERVER_RATE:.0%}",
                                      **within("cli_full_vs_server_rate", TARGET_SERVER_RATE)},
        "c_reference_plain_vs_server_rate": {"target": "(reference, not a target)",
                                             **within("plain_vs_server_rate", TARGET_SERVER_RATE)},
    }  # fmt: skip
    return {"targets": targets, "sweep_wall": wall, "points": points}


# ---------------------------------------------------------------- machine facts


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="add_sub,matmul")
    parser.add_argument("--model-folder", type=Path, default=REPO / "examples" / "models")
    parser.add_argument("--batch", default="1,4,8")
    parser.add_argument("--concurrency", default="1,2,4")
    parser.add_argument("--measurement-interval", type=int, default=1000, help="ms (the CLI's default)")
    parser.add_argument("--stability-percentage", type=float, default=10.0, help="(the CLI's default)")
    parser.add_argument("--max-trials", type=int, default=10, help="(the CLI's default)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--paired-repeats",
        type=int,
        default=0,
        help="then run each point alone, plain and CLI back to back, this many times (default 0: skip)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--summarize-only", action="store_true", help="recompute `summary` of an existing --out from its runs"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    result: dict[str, Any]
    args = parse_args(argv)
    if args.summarize_only:
        result = json.loads(args.out.read_text())
        result["summary"] = summarize(result["runs"], result["config"]["repeats"])
        if result.get("paired_points"):
            result["paired_points"]["summary"] = summarize_pairs(result["paired_points"]["pairs"])
        args.out.write_text(json.dumps(rounded(result), indent=2) + "\n")
        print(json.dumps(rounded(result["summary"].get("targets"), 3), indent=2))
        return 0
    spec = SweepSpec(
        models=[ModelTarget(name=n.strip()) for n in args.models.split(",") if n.strip()],
        batch_sizes=[int(b) for b in args.batch.split(",")],
        concurrency=[int(c) for c in args.concurrency.split(",")],
        measurement=MeasurementSettings(
            protocol=Protocol.GRPC,
            measurement_interval_ms=args.measurement_interval,
            stability_percentage=args.stability_percentage,
            max_trials=args.max_trials,
        ),
    )
    perf_binary = find_perf_analyzer()
    model_folder = args.model_folder.resolve()
    created = dt.datetime.now(dt.UTC)
    loadavg_before = os.getloadavg()
    git_at_start = git_facts()  # others commit while this runs: the CLI runs from the working tree
    bench_started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        plain = PlainServer(model_folder, spec, work / "plain-triton.log")
        with plain.running():
            endpoints = plain.server.endpoints
            log(f"plain server {endpoints.http} ({plain.server_version}); {len(plain.points)} points per sweep")
            for i in range(args.repeats):
                order = interleaved(i, SIDES)
                for side in order:
                    log(f"repeat {i + 1}/{args.repeats}: {side} ...")
                    if side == "plain":
                        run = plain.sweep(perf_binary, spec.measurement)
                    elif side == "cli_url":
                        run = run_cli(spec, perf_binary, model_folder, endpoints.http, endpoints.metrics_url)
                    else:
                        run = run_cli(spec, perf_binary, model_folder, None, None)
                    run["failed_points"] = sum(1 for p in run["points"] if p["throughput_infer_per_sec"] is None)
                    log(f"repeat {i + 1}/{args.repeats}: {side} {run['wall_s']:.1f} s, {run['failed_points']} failed")
                    runs.append({"repeat": i, "side": side, **run})
            pairs = paired_points(plain, spec, perf_binary, model_folder, args.paired_repeats)
            server_version = plain.server_version
    finally:
        shutil.rmtree(work, ignore_errors=True)

    machine = {**machine_facts(perf_binary), "git_at_end": git_facts()}
    machine.update(
        git_at_start=git_at_start,
        tritonserver_version=server_version,
        loadavg_before=loadavg_before,
        loadavg_after=os.getloadavg(),
        bench_wall_s=time.perf_counter() - bench_started,
    )
    result = {
        "benchmark": "cli-vs-perf-analyzer",
        "created_at": created.isoformat(timespec="seconds"),
        "config": {
            "models": spec.model_names,
            "batch_sizes": spec.batch_sizes,
            "concurrency": spec.concurrency,
            "measurement": spec.measurement.model_dump(mode="json"),
            "repeats": args.repeats,
            "paired_repeats": args.paired_repeats,
            "order": "repeat 0: plain, cli_url, cli_full; repeat 1: reversed; and so on",
        },
        "machine": machine,
        "summary": summarize(runs, args.repeats),
        "paired_points": {"summary": summarize_pairs(pairs), "pairs": pairs},
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rounded(result), indent=2) + "\n")
    log(f"wrote {args.out}")
    print(json.dumps(rounded(result["summary"].get("targets"), 3), indent=2))
    if pairs:
        print(json.dumps(rounded(result["paired_points"]["summary"], 3), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
