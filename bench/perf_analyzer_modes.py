"""Benchmark: why our throughput and Model Analyzer's differ at some points. A check, not a comparison of tools.

bench/ours_vs_model_analyzer.py found ours 8 to 17 % above Model Analyzer's at concurrency 2 and 4 on add_sub, and
4 to 6 % below at concurrency 1, over 4 repeats, with ours within its CI or 5 % of Triton's own count at every
point. This runs, on one local Triton and with the same perf_analyzer, the same points three ways, interleaved:

  ma            perf_analyzer as Model Analyzer 1.58 runs it (from its --perf-output): count windows, its stability
                rule, --collect-metrics scraping Triton's metrics every second;
  ma-no-metrics the same without --collect-metrics;
  ours          `model-analyzer perf-point` at the engine's defaults (250 ms windows until a +-10 % interval).

and counts Triton's own nv_inference_count every 100 ms while each runs. Per run: perf_analyzer's throughput and
the server's: for ours the engine's rule (the count over the point per second of perf_analyzer's load); for the
other two, one perf_analyzer process each, the count's rate over the middle of the run (its first 0.6 s and last
0.2 s left out: start-up and drain). Written to bench/results/perf-analyzer-modes.json (.md beside it).

    .venv/bin/python bench/perf_analyzer_modes.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import PERF_ANALYZER, REPO, git_facts, log
from ours_vs_model_analyzer import SharedServer

from modelanalysis.adapters.metrics_sampler import MetricsSampler
from modelanalysis.adapters.perf_analyzer import perf_analyzer_env
from modelanalysis.core.server_metrics import ServerSample

MODEL_ANALYZER = REPO / ".venv" / "bin" / "model-analyzer"
OUT = REPO / "bench" / "results" / "perf-analyzer-modes.json"
MODES = ("ma", "ma-no-metrics", "ours")
_THROUGHPUT = re.compile(r"Throughput: ([0-9.]+) infer/sec")


def ma_args(server: SharedServer, model: str, batch: int, concurrency: int, metrics: bool) -> list[str]:
    args = [str(PERF_ANALYZER), "-m", model, "-b", str(batch), "-u", server.endpoints.grpc, "-i", "grpc",
            "--concurrency-range", str(concurrency), "--measurement-mode", "count_windows"]  # fmt: skip
    if metrics:
        args += ["--collect-metrics", "--metrics-url", server.endpoints.metrics_url, "--metrics-interval", "1000"]
    return args


def steady_rate(samples: list[ServerSample], model: str, start: float, end: float) -> float | None:
    inside = [s for s in samples if start + 0.6 <= s.timestamp <= end - 0.2 and model in s.inference_count]
    if len(inside) < 2 or inside[-1].timestamp <= inside[0].timestamp:
        return None
    first, last = inside[0], inside[-1]
    return (last.inference_count[model] - first.inference_count[model]) / (last.timestamp - first.timestamp)


def run_mode(server: SharedServer, mode: str, model: str, batch: int, concurrency: int) -> dict[str, Any]:
    sampler = MetricsSampler(server.endpoints.metrics_url, 0.1)
    if mode == "ours":
        cmd = [str(MODEL_ANALYZER), "perf-point", f"--model={model}", f"--batch={batch}",
               f"--concurrency={concurrency}", f"--grpc-url={server.endpoints.grpc}",
               f"--http-url={server.endpoints.http}"]  # fmt: skip
    else:
        cmd = ma_args(server, model, batch, concurrency, metrics=mode == "ma")
    env = perf_analyzer_env()
    sampler.start()
    start = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    end = time.time()
    samples = sampler.stop()
    counted = [s.inference_count[model] for s in samples if model in s.inference_count]
    total = counted[-1] - counted[0] if len(counted) > 1 else None
    run: dict[str, Any] = {"mode": mode, "batch": batch, "concurrency": concurrency, "exit_code": done.returncode,
                           "wall_s": round(end - start, 3), "inferences_counted": total}  # fmt: skip
    if mode == "ours" and done.returncode == 0:
        perf = json.loads(done.stdout.strip().splitlines()[-1])
        run["throughput"] = perf["throughput_infer_per_sec"]
        run["ci"] = [perf.get("throughput_ci_low"), perf.get("throughput_ci_high")]
        load = perf.get("load_seconds")
        run["server_rate"] = total / load if total is not None and load else None
    elif done.returncode == 0:
        found = _THROUGHPUT.findall(done.stdout)
        run["throughput"] = float(found[-1]) if found else None
        run["server_rate"] = steady_rate(samples, model, start, end)
    if done.returncode != 0:
        run["error"] = (done.stderr or done.stdout)[-400:]
    return run


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for (batch, concurrency) in sorted({(r["batch"], r["concurrency"]) for r in runs}):
        row: dict[str, Any] = {"batch": batch, "concurrency": concurrency}
        for mode in MODES:
            mine = [r for r in runs if (r["batch"], r["concurrency"], r["mode"]) == (batch, concurrency, mode)]
            for field in ("throughput", "server_rate"):
                values = [r[field] for r in mine if r.get(field) is not None]
                row[f"{mode}_{field}"] = [round(v, 1) for v in values]
                row[f"{mode}_{field}_median"] = round(statistics.median(values), 1) if values else None
        rows.append(row)
    return rows


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# perf_analyzer as Model Analyzer runs it, without its metrics collection, and as ours runs it",
        "",
        f"{result['created_at']}, load average {result['loadavg_before']} before, {result['loadavg_after']} after; "
        f"add_sub on one local Triton, {result['repeats']} interleaved repeats. Medians of perf_analyzer's "
        "throughput and of Triton's own count over the same run (infer/sec):",
        "",
        "| batch | conc | ma | ma server | ma-no-metrics | its server | ours | ours server |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["summary"]:
        cells = [r[f"{m}_{f}_median"] for m in MODES for f in ("throughput", "server_rate")]
        lines.append(f"| {r['batch']} | {r['concurrency']} | " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--points", default="1x1,1x4,4x2", help="batch x concurrency, comma-separated")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    points = [tuple(int(n) for n in p.split("x")) for p in args.points.split(",")]
    created, loadavg_before = time.strftime("%Y-%m-%dT%H:%M:%S%z"), [round(v, 2) for v in os.getloadavg()]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-pa-modes-") as tmp:
        server = SharedServer(REPO / "examples" / "models", Path(tmp))
        with server.running():
            server.put_model_in_state("add_sub", loaded=True)
            for repeat in range(args.repeats):
                order = MODES[repeat % len(MODES):] + MODES[: repeat % len(MODES)]  # each mode first in turn
                for batch, concurrency in points:
                    for mode in order:
                        run = run_mode(server, mode, "add_sub", batch, concurrency)
                        runs.append({"repeat": repeat, **run})
                        log(f"repeat {repeat + 1}: b{batch} c{concurrency} {mode}: {run.get('throughput')} infer/s, "
                            f"server {run.get('server_rate')}")  # fmt: skip
    result = {
        "benchmark": "perf-analyzer-modes", "created_at": created, "repeats": args.repeats,
        "loadavg_before": loadavg_before, "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "git": git_facts(), "summary": summarize(runs), "runs": runs,
    }  # fmt: skip
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
