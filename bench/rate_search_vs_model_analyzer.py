"""Benchmark: time to the answer of a request-rate search, ours against NVIDIA Model Analyzer 1.58 itself.

The question both tools answer: on bench/models/wait_3ms (its own config: one CPU instance, no dynamic batching;
each request waits 3 ms + 0.1 ms per request of a batch, so it saturates near 300 requests/s), at batch 1, what is
the highest offered request rate (open loop) that is delivered with p99 within --latency-budget (default 20 ms)?
One local Triton (SharedServer of bench/ours_vs_model_analyzer.py: explicit model control, a copy of bench/models)
serves both tools, which run one after the other, never together, interleaved over --repeats (Model Analyzer first
on even repeats, ours first on odd ones):

  ma    NVIDIA Model Analyzer (`triton-model-analyzer==1.58.0`, its own venv from ensure_model_analyzer) in remote
        launch mode against that server, `profile -f config.yaml` with `request_rate_search_enable: true`,
        `run_config_search_min_request_rate` / `_max_request_rate` (--min-rate / --max-rate, its defaults 16 and
        8192), `constraints: {perf_latency_p99: {max: MS}}`, `objectives: {perf_throughput: 10}`, brute mode. It
        doubles the rate from the minimum until the best throughput of the last 4 rates is less than 5% above
        the first of them, then bisects (at most 5 steps) between the last rate within the constraint and the
        first beyond it. That bisection runs only for an automatic search (run_config_search_disable off, no
        rate list), and an automatic search also searches model configs; so the config restates the model's own
        instance group as its only `model_config_parameters` entry: Model Analyzer then profiles the model's own
        config twice, as `wait_3ms_config_default` and as `wait_3ms_config_0` (same settings, another name; it
        always profiles the default config besides its search space). Both are real work it does; the summary
        also gives its wall time less the second copy's points. `--ma-search sweep` instead:
        `run_config_search_disable: true` with `request_rate:` the same doubled list (with the search disabled
        and no list it measures rate 1 only): one copy, the doubling with the same 5% plateau stop, no bisection.
  ours  `model-analyzer profile --triton-url H:P -m wait_3ms --request-rate auto --latency-budget MS
        --min-request-rate 16 --max-request-rate 8192 --export` from the working tree: it doubles from the
        minimum until a rate is not delivered (throughput's 95% interval below 98% of it) or p99 is surely over
        the budget, then bisects to within 5% of the rate.

Each side at its own default measurement settings (Model Analyzer: perf_analyzer's count windows of 50 requests
and its stability rule, retried with larger counts; ours: 250 ms windows until a +-10% interval), with the same
perf_analyzer (.venv/bin/perf_analyzer). Before each run the model is put in the state --model-state asks for
(untimed): `unloaded` (default: each tool loads it) or `loaded` (Model Analyzer gets `reload_model_disable`).
Each whole command is timed.

The answers:
  ours  analysis.json's best.boundaries[0] (load_kind request_rate): surely_under (the highest rate surely
        delivered and surely under the budget), surely_over (the lowest surely not), the undecided rates
        between; and best.overall (its request_rate, throughput, p99).
  ma    the highest Request Rate row of its results/metrics-model-inference.csv (any variant: both are the
        model's own config) whose p99 is within the budget and whose throughput is within 5% of the offered rate
        (Model Analyzer has no notion of delivery: a row beyond saturation can satisfy its constraint while the
        server answers less than was offered). Its own pick (the first CSV row that satisfies the constraints,
        ranked by throughput) is kept beside it, and every rate it measured.

Recorded per run: wall seconds, points measured, the answer, the load average before and after; for Model Analyzer
also each point's time from its log. Summary: median wall ratio ours / MA, and whether Model Analyzer's answer lies
within our band [surely_under, surely_over] in each repeat. See bench/README.md.

    .venv/bin/python bench/rate_search_vs_model_analyzer.py                     # 3 repeats, 20 ms budget
    .venv/bin/python bench/rate_search_vs_model_analyzer.py --repeats 1 --keep /tmp/rate-runs
    .venv/bin/python bench/rate_search_vs_model_analyzer.py --ma-search sweep --out FILE
    .venv/bin/python bench/rate_search_vs_model_analyzer.py --summarize-only    # recompute the file's summary
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    PERF_ANALYZER,
    REPO,
    cell_number,
    csv_rows_of,
    git_facts,
    interleaved,
    log,
    machine_facts,
    median,
    ratio,
    resummarize,
    rounded,
    run_timed,
    write_results,
)
from ours_vs_model_analyzer import (
    MA_VENV,
    MA_VERSION,
    OURS,
    SharedServer,
    ensure_model_analyzer,
    ma_environment,
    run_ours_and_read,
)
from search_vs_model_analyzer import load_now, own_config

from modelanalysis.adapters.perf_analyzer import perf_analyzer_env

MODEL = "wait_3ms"
MODELS = REPO / "bench" / "models"
DEFAULT_OUT = REPO / "bench" / "results" / "rate-search-vs-model-analyzer.json"
SIDES = ("ma", "ours")
MA_DELIVERY_TOLERANCE = 0.05  # a Model Analyzer row counts as delivered within 5% of the offered rate

# Model Analyzer's log lines: one per point it profiles (batch 1 leaves the batch out), e.g.
#   "Profiling wait_3ms_config_default: request-rate-range=64"
_MA_POINT = re.compile(r"Profiling (\S+): (?:client batch size=(\d+), )?request-rate-range=(\d+)")
_MA_ADJUST = re.compile(r"perf_analyzer's (?:request count|measurement window) is too small, increased to")
_MA_GAVE_UP = "Ran perf_analyzer 10 times"  # its default --perf-analyzer-max-auto-adjusts, then the point fails
_MA_REUSED = "Existing measurement found"  # a run config it measured already (its bisection starts with these)
# Lines that end a point: the next point, a reused one, a new variant, the end of a phase.
_MA_MARKS = (_MA_REUSED, "Creating model config", "Done with brute mode search", "Done gathering",
             "Profile complete", "Terminating request rate sweep", "No longer increasing")  # fmt: skip
_MA_PHASES = {
    "server_only": "Profiling server only metrics",
    "brute_done": "Done with brute mode search",
    "bisection_done": "Done gathering concurrency sweep measurements",  # its words, for a rate search too
    "profile_complete": "Profile complete",
}


def doubled(low: int, high: int) -> list[int]:
    """low, 2 low, 4 low, ... up to high: Model Analyzer's list of rates (generate_doubled_list)."""
    out = [low]
    while out[-1] * 2 <= high:
        out.append(out[-1] * 2)
    return out


# ---------------------------------------------------------------- Model Analyzer's side


def ma_config(
    run: Path, server: SharedServer, model: str, folder: Path, args: argparse.Namespace, reload: bool
) -> dict[str, Any]:
    """Model Analyzer's YAML config (written as JSON, which is YAML) for one rate search in remote mode."""
    endpoints = server.endpoints
    spec: dict[str, Any] = {"cpu_only": True}  # wait_3ms is KIND_CPU; no GPU metrics to collect
    config: dict[str, Any] = {
        "triton_launch_mode": "remote",
        "triton_http_endpoint": endpoints.http,
        "triton_grpc_endpoint": endpoints.grpc,
        "triton_metrics_url": endpoints.metrics_url,
        "perf_analyzer_path": str(PERF_ANALYZER),
        # Everything it writes goes to this run's folder: a checkpoint left from an earlier run would make it
        # skip every point it finds there ("Existing measurement found for run config").
        "checkpoint_directory": str(run / "checkpoints"),
        "output_model_repository_path": str(run / "output_model_repository"),
        "override_output_model_repository": True,
        "export_path": str(run / "export"),
        "objectives": {"perf_throughput": 10},
        "constraints": {"perf_latency_p99": {"max": args.latency_budget}},
    }
    if args.ma_search == "search":
        instances, _ = own_config(folder, model)
        config.update(
            run_config_search_mode="brute",
            request_rate_search_enable=True,
            run_config_search_min_request_rate=args.min_rate,
            run_config_search_max_request_rate=args.max_rate,
        )
        # Without model_config_parameters its automatic search would also try instance counts 1-5 and max batch
        # sizes 1-128 with dynamic batching: restate the model's own instance group as the only entry.
        spec["model_config_parameters"] = {"instance_group": [[{"kind": "KIND_CPU", "count": [instances]}]]}
    else:
        config.update(run_config_search_disable=True, request_rate=doubled(args.min_rate, args.max_rate))
    if not reload:
        config["reload_model_disable"] = True
    config["profile_models"] = {model: spec}
    return config


def parse_ma_rows(path: Path, model: str) -> list[dict[str, Any]]:
    """Model Analyzer's metrics-model-inference.csv, in its order (best first, its ranking), one row a point."""
    num = cell_number
    out = []
    for row in csv_rows_of(path, model):
        rate, tp = num(row, "Request Rate"), num(row, "Throughput (infer/sec)")
        batch = int(num(row, "Batch") or 1)
        out.append({
            "variant": row.get("Model Config Path", ""),
            "batch_size": batch,
            "request_rate": rate,
            "throughput_infer_per_sec": tp,
            "latency_p99_ms": num(row, "p99 Latency (ms)"),
            "satisfies_constraints": row.get("Satisfies Constraints"),
            "delivered_ratio": ratio(tp, None if rate is None else rate * batch),
        })  # fmt: skip
    return out


def ma_answer(rows: list[dict[str, Any]], budget_ms: float) -> dict[str, Any] | None:
    """The highest rate whose p99 is within the budget and whose throughput is within 5% of what was offered."""
    floor = 1 - MA_DELIVERY_TOLERANCE
    ok = [r for r in rows if r["request_rate"] is not None and r["latency_p99_ms"] is not None
          and r["latency_p99_ms"] <= budget_ms and (r["delivered_ratio"] or 0) >= floor]  # fmt: skip
    return max(ok, key=lambda r: (r["request_rate"], r["throughput_infer_per_sec"] or 0)) if ok else None


def ma_timeline(lines: list[tuple[float, str]], wall: float) -> tuple[dict[str, float | None], list[dict[str, Any]]]:
    """From the times Model Analyzer's log lines arrived: its phases, and each point it profiled, in order, with its
    time (its 'Profiling' line to the next line that ends a point: the perf_analyzer runs and retries, the
    checkpoint), how often it reran perf_analyzer with a larger request count, and whether it gave up."""
    first: dict[str, float] = {}
    for t, line in lines:
        for name, marker in _MA_PHASES.items():
            if marker in line and name not in first:
                first[name] = t
    marks = [(t, line) for t, line in lines if _MA_POINT.search(line) or any(m in line for m in _MA_MARKS)]
    points: list[dict[str, Any]] = []
    for (t, line), (t_next, _) in zip(marks, [*marks[1:], (wall, "")], strict=True):
        if m := _MA_POINT.search(line):
            points.append({"variant": m[1], "batch_size": int(m[2] or 1), "request_rate": int(m[3]),
                           "started_s": t, "wall_s": t_next - t, "auto_adjusts": 0, "gave_up": False})  # fmt: skip
    current: dict[str, Any] | None = None
    seen = 0
    for _, line in lines:  # the k-th 'Profiling' line is points[k]
        if _MA_POINT.search(line):
            current, seen = points[seen], seen + 1
        elif current is not None and _MA_ADJUST.search(line):
            current["auto_adjusts"] += 1
        elif current is not None and _MA_GAVE_UP in line:
            current["gave_up"] = True

    def between(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else b - a

    first_point = points[0]["started_s"] if points else None
    return {
        "startup_s": first.get("server_only"),  # process start, imports, config checks
        "server_only_and_config_s": between(first.get("server_only"), first_point),  # 3 s alone, model config
        "brute_s": between(first_point, first.get("brute_done")),  # the doubling, for each variant
        "bisection_s": between(first.get("brute_done"), first.get("bisection_done")),
        "points_s": sum(p["wall_s"] for p in points) if points else None,
        "reports_s": between(first.get("profile_complete"), wall),  # CSV, plots, summary reports, exit
    }, points


def run_model_analyzer(
    binary: Path, server: SharedServer, folder: Path, args: argparse.Namespace, reload: bool, keep: Path | None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-ma-rate-") as tmp:
        run = Path(tmp)
        config = ma_config(run, server, args.model, folder, args, reload)
        (run / "config.yaml").write_text(json.dumps(config, indent=2) + "\n")
        cmd = [str(binary), "profile", "-f", str(run / "config.yaml")]
        env = perf_analyzer_env()  # perf_analyzer 2.50 links libcudart, which the nvidia-cuda-runtime wheel ships
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("PYTHONPATH", None)  # its own venv only
        load_before = load_now()
        rc, wall, _, lines = run_timed(cmd, env, run)
        load_after = load_now()
        (run / "model-analyzer.log").write_text("".join(f"{t:9.3f} {line}\n" for t, line in lines))
        rows = parse_ma_rows(run / "export" / "results" / "metrics-model-inference.csv", args.model)
        if keep is not None:
            shutil.copytree(run, keep, ignore=shutil.ignore_patterns("plots", "reports"), dirs_exist_ok=True)
    split, attempted = ma_timeline(lines, wall)
    default_variant = f"{args.model}_config_default"
    duplicate_s = sum(p["wall_s"] for p in attempted if p["variant"] != default_variant)
    variants = sorted({str(r["variant"]) for r in rows} | {p["variant"] for p in attempted})
    rates = {v: sorted(r["request_rate"] for r in rows if r["variant"] == v and r["request_rate"] is not None)
             for v in variants}  # fmt: skip
    result: dict[str, Any] = {
        "wall_s": wall,
        "exit_code": rc,
        "command": cmd,
        "config": config,
        "points_attempted": len(attempted),
        "points_measured": len(rows),
        "points_reused": sum(1 for _, line in lines if _MA_REUSED in line),
        "variants": variants,
        "rates_measured": rates,
        # Its time in the points of the second copy of the model's own config (search mode), and its wall less it.
        "duplicate_variant_points_s": duplicate_s,
        "wall_without_duplicate_s": wall - duplicate_s,
        "split": split,
        "attempted": attempted,
        "points": rows,
        "answer": ma_answer(rows, args.latency_budget),
        "answer_as_ma_ranks": next((r for r in rows if r["satisfies_constraints"] == "Yes"), None),
        "auto_adjusts": sum(1 for _, line in lines if _MA_ADJUST.search(line)),
        "warnings": sorted({line.split("WARNING: ", 1)[1][:200] for _, line in lines if "WARNING: " in line}),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }
    if rc != 0 or not rows:
        result["log_tail"] = [line for _, line in lines[-40:]]
    return result


# ---------------------------------------------------------------- our side


def ours_command(server: SharedServer, args: argparse.Namespace, export: Path) -> list[str]:
    return [
        str(OURS), "profile",
        "--triton-url", server.endpoints.http,  # gRPC and metrics: the next two ports, as the server has them
        "-m", args.model,
        "--request-rate", "auto",
        "--latency-budget", f"{args.latency_budget:g}",
        "--min-request-rate", f"{args.min_rate:g}",
        "--max-request-rate", f"{args.max_rate:g}",
        "--perf-analyzer-path", str(PERF_ANALYZER),
        "--export", "--export-path", str(export),
        *args.ours_arg,
    ]  # fmt: skip


def run_ours(server: SharedServer, args: argparse.Namespace, keep: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-ours-rate-") as tmp:
        export = Path(tmp) / "out"
        cmd = ours_command(server, args, export)
        load_before = load_now()
        rc, wall, _, lines, analysis = run_ours_and_read(cmd, Path(tmp), export, keep)
        load_after = load_now()
    points = []
    for p in analysis.get("points", []):
        if p.get("model") != args.model:
            continue
        perf = p.get("perf") or {}
        started, finished = p.get("started_at"), p.get("finished_at")
        rate, tp = p.get("request_rate"), perf.get("throughput_infer_per_sec")
        points.append({
            "variant": p.get("variant") or p.get("model"),
            "batch_size": p.get("batch_size"),
            "request_rate": rate,
            "status": p.get("status"),
            "throughput_infer_per_sec": tp,
            "throughput_ci": [perf.get("throughput_ci_low"), perf.get("throughput_ci_high")],
            "latency_p99_ms": perf.get("latency_p99_ms"),
            "latency_p99_ci_ms": [perf.get("latency_p99_ci_low_ms"), perf.get("latency_p99_ci_high_ms")],
            "delivered_ratio": ratio(tp, None if rate is None else rate * (p.get("batch_size") or 1)),
            "send_rate_per_sec": perf.get("send_rate_per_sec"),
            "delayed_requests_pct": perf.get("delayed_requests_pct"),
            "windows": perf.get("windows"),
            "converged": perf.get("converged"),
            "wall_s": None if started is None or finished is None else finished - started,
        })  # fmt: skip
    best = analysis.get("best") or {}
    overall = best.get("overall")
    boundaries = best.get("boundaries") or []
    rate_boundaries = [b for b in boundaries if b.get("load_kind") == "request_rate"]
    boundary = (rate_boundaries or boundaries or [None])[0]
    band_keys = ("surely_under", "surely_over", "undecided", "on_point_value", "load_kind", "budget_ms", "batch_size",
                 "variant")  # fmt: skip
    measured = [p for p in points if p["throughput_infer_per_sec"] is not None]
    result: dict[str, Any] = {
        "wall_s": wall,
        "exit_code": rc,
        "command": cmd,
        "points_attempted": len(points),
        "points_measured": len(measured),
        "rates_measured": sorted(p["request_rate"] for p in measured if p["request_rate"] is not None),
        "points_s": sum(p["wall_s"] for p in points if p["wall_s"] is not None),
        "points": points,
        "answer": None
        if overall is None
        else {
            "variant": overall.get("variant") or overall.get("model"),
            "batch_size": overall.get("batch_size"),
            "request_rate": overall.get("request_rate"),
            "throughput_infer_per_sec": overall.get("throughput_infer_per_sec"),
            "throughput_ci": [overall.get("throughput_ci_low"), overall.get("throughput_ci_high")],
            "latency_p99_ms": overall.get("latency_p99_ms"),
            "satisfies_constraints": overall.get("satisfies_constraints"),
            "why": overall.get("why"),
        },
        "boundary": None if boundary is None else {k: boundary.get(k) for k in band_keys},
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }
    if rc != 0 or not analysis:
        result["log_tail"] = [line for _, line in lines[-40:]]
    return result


# ---------------------------------------------------------------- summary


def band_check(ma: dict[str, Any] | None, boundary: dict[str, Any] | None) -> dict[str, Any]:
    """Where Model Analyzer's answer lies against our band [surely_under, surely_over] (no surely_under: from 0;
    no surely_over: unbounded above)."""
    if ma is None or boundary is None:
        return {"within": None, "where": "a side has no answer"}
    rate = ma["request_rate"]
    low = boundary.get("surely_under") or 0
    high = boundary.get("surely_over")
    where = "below" if rate < low else "above" if high is not None and rate > high else "within"
    return {"within": where == "within", "where": where, "ma_rate": rate, "band": [low, high]}


def band_sentence(row: dict[str, Any]) -> str:
    check = row["ma_in_our_band"]
    if check["within"] is None:
        return f"repeat {row['repeat']}: {check['where']}."
    low, high = check["band"]
    band = f"[{low:g}, {_num(high)}]"
    verb = "lies within" if check["within"] else f"lies {check['where']}"
    return f"repeat {row['repeat']}: Model Analyzer's answer, {check['ma_rate']:g}/s, {verb} our band {band}."


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    per_repeat = []
    for i in sorted({r["repeat"] for r in runs}):
        by = {r["side"]: r for r in runs if r["repeat"] == i}
        ma, ours = by.get("ma"), by.get("ours")
        if ma is None or ours is None:
            continue
        row: dict[str, Any] = {
            "repeat": i,
            "first": next(r["side"] for r in runs if r["repeat"] == i),
            "ma_wall_s": ma["wall_s"],
            "ours_wall_s": ours["wall_s"],
            "ours_vs_ma": ratio(ours["wall_s"], ma["wall_s"]),
            "ma_wall_without_duplicate_s": ma.get("wall_without_duplicate_s"),
            "ours_vs_ma_without_duplicate": ratio(ours["wall_s"], ma.get("wall_without_duplicate_s")),
            "ma_points": ma["points_measured"],
            "ours_points": ours["points_measured"],
            "ma_exit": ma["exit_code"],
            "ours_exit": ours["exit_code"],
            "ma_answer": ma["answer"],
            "ma_answer_as_ma_ranks": ma.get("answer_as_ma_ranks"),
            "ours_answer": ours["answer"],
            "ours_band": ours["boundary"],
            "ma_in_our_band": band_check(ma["answer"], ours["boundary"]),
            "ma_rates": ma["rates_measured"],
            "ours_rates": ours["rates_measured"],
            "load": {side: [by[side]["loadavg_before"][0], by[side]["loadavg_after"][0]] for side in SIDES},
        }
        row["sentence"] = band_sentence(row)
        per_repeat.append(row)
    ok = [r for r in per_repeat if r["ma_exit"] == 0 and r["ma_points"] and r["ours_points"]]
    checks = [r["ma_in_our_band"]["within"] for r in per_repeat if r["ma_in_our_band"]["within"] is not None]
    sentence = (
        f"Model Analyzer's answer lies within our band [surely_under, surely_over] in {sum(checks)} of "
        f"{len(checks)} repeats."
        if checks
        else "No repeat has an answer on both sides."
    )
    return {
        "median_ours_vs_ma": median([r["ours_vs_ma"] for r in ok]),
        "median_ours_vs_ma_without_duplicate": median([r["ours_vs_ma_without_duplicate"] for r in ok]),
        "median_ma_wall_s": median([r["ma_wall_s"] for r in per_repeat]),
        "median_ours_wall_s": median([r["ours_wall_s"] for r in per_repeat]),
        "ma_in_our_band": {"repeats": len(checks), "within": sum(checks)},
        "sentence": sentence,
        "per_repeat": per_repeat,
    }


def _num(value: Any, spec: str = "g") -> str:
    return "-" if value is None else format(value, spec)


def _answer_text(a: dict[str, Any] | None) -> str:
    if a is None:
        return "-"
    ci = a.get("throughput_ci") or [None, None]
    ci_text = f" (CI {ci[0]:.0f}-{ci[1]:.0f})" if ci[0] is not None and ci[1] is not None else ""
    return (f"{_num(a.get('request_rate'))}/s: {_num(a.get('throughput_infer_per_sec'), '.0f')} infer/s{ci_text}, "
            f"p99 {_num(a.get('latency_p99_ms'), '.2f')} ms")  # fmt: skip


def _band_text(b: dict[str, Any] | None) -> str:
    if b is None:
        return "-"
    undecided = ", ".join(f"{v:g}" for v in b.get("undecided") or []) or "-"
    return f"under {_num(b.get('surely_under'))}, undecided {undecided}, over {_num(b.get('surely_over'))}"


def markdown(result: dict[str, Any]) -> str:
    s, c, m = result["summary"], result["config"], result["machine"]

    def f(v: Any, spec: str = ".2f") -> str:
        return "-" if v is None else format(v, spec)

    lines = [
        f"# Time to the answer: request-rate search, ours vs NVIDIA Model Analyzer {c['model_analyzer_version']}",
        "",
        f"{result['created_at']}, {m['nproc']} cores ({m['cpu_model']}), load average "
        f"{f(m['loadavg_before'][0], '.1f')} before, {f(m['loadavg_after'][0], '.1f')} after. Model `{c['model']}` "
        f"(its own config), batch 1, rates {c['min_rate']:g} to {c['max_rate']:g}/s, p99 budget "
        f"**{c['latency_budget_ms']:g} ms**, one Triton {m.get('tritonserver_version') or ''} for both (Model "
        f"Analyzer in remote mode, `--ma-search {c['ma_search']}`), model state before each run: "
        f"{c['model_state']}. Written by bench/rate_search_vs_model_analyzer.py.",
        "",
        "| repeat | first | MA wall (s) | ours wall (s) | ours / MA | MA wall less 2nd copy (s) | points MA / ours "
        "| load avg MA (before, after) | load avg ours |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in s["per_repeat"]:
        lines.append(
            f"| {r['repeat']} | {r['first']} | {f(r['ma_wall_s'], '.1f')} | {f(r['ours_wall_s'], '.1f')} | "
            f"{f(r['ours_vs_ma'])} | {f(r['ma_wall_without_duplicate_s'], '.1f')} | {r['ma_points']} / "
            f"{r['ours_points']} | {r['load']['ma'][0]:.1f}, {r['load']['ma'][1]:.1f} | "
            f"{r['load']['ours'][0]:.1f}, {r['load']['ours'][1]:.1f} |"
        )
    lines += [
        f"| median | | {f(s['median_ma_wall_s'], '.1f')} | {f(s['median_ours_wall_s'], '.1f')} | "
        f"**{f(s['median_ours_vs_ma'])}** | (ours / it: {f(s['median_ours_vs_ma_without_duplicate'])}) | | | |",
        "",
        f"Answers (MA: the highest rate in its CSV with p99 <= {c['latency_budget_ms']:g} ms and throughput within "
        f"{MA_DELIVERY_TOLERANCE:.0%} of the rate; ours: best.overall and the boundary):",
        "",
        "| repeat | MA | MA's own pick | ours | our band | MA rates measured | our rates measured |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in s["per_repeat"]:
        ma_rates = "; ".join(f"{v}: {', '.join(f'{x:g}' for x in rates)}" for v, rates in r["ma_rates"].items())
        lines.append(
            f"| {r['repeat']} | {_answer_text(r['ma_answer'])} | {_answer_text(r['ma_answer_as_ma_ranks'])} | "
            f"{_answer_text(r['ours_answer'])} | {_band_text(r['ours_band'])} | {ma_rates or '-'} | "
            f"{', '.join(f'{x:g}' for x in r['ours_rates']) or '-'} |"
        )
    lines += ["", f"**{s['sentence']}**", "", *(f"- {r['sentence']}" for r in s["per_repeat"])]
    lines += ["", *(f"- {note}" for note in result.get("notes", [])), "", f"Full figures: `{c['json']}`.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def power_of_two(text: str) -> int:
    value = int(text)
    if value < 1 or value & (value - 1):
        # Model Analyzer's bisection phase sweeps 2**int(log2(min)) .. 2**int(log2(max)): other values would
        # make its two phases disagree.
        raise argparse.ArgumentTypeError(f"{text} is not a power of two")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of both sides (default 3)")
    parser.add_argument("--latency-budget", type=float, default=20.0, metavar="MS", help="p99 budget (default 20)")
    parser.add_argument("--min-rate", type=power_of_two, default=16, help="first rate, both sides (default 16)")
    parser.add_argument("--max-rate", type=power_of_two, default=8192, help="highest rate, both sides (default 8192)")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--model-folder", type=Path, default=MODELS)
    parser.add_argument("--ma-search", choices=("search", "sweep"), default="search",
                        help="search (default): request_rate_search_enable, doubling and bisection, the model's own "
                             "config profiled twice; sweep: run_config_search_disable with the doubled rate list, "
                             "one copy, no bisection")  # fmt: skip
    parser.add_argument("--model-state", choices=("unloaded", "loaded"), default="unloaded",
                        help="the model before each run (untimed): unloaded (each tool loads it; default) or loaded "
                             "(Model Analyzer gets reload_model_disable, ours finds it loaded)")  # fmt: skip
    parser.add_argument(
        "--ours-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for our CLI (repeat the flag: --ours-arg=--convergence --ours-arg=5)",
    )
    parser.add_argument("--ma-venv", type=Path, default=MA_VENV)
    parser.add_argument("--keep", type=Path, help="keep each run's logs and exports under this folder")
    parser.add_argument("--note", action="append", default=[], help="a line for the results' notes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON (a .md beside it)")
    parser.add_argument("--summarize-only", action="store_true", help="recompute an existing --out's summary")
    args = parser.parse_args(argv)
    if args.min_rate > args.max_rate:
        parser.error("--min-rate is above --max-rate")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.summarize_only:
        resummarize(args.out, summarize, markdown, args.note)
        return 0
    folder = args.model_folder.resolve()
    reload = args.model_state == "unloaded"
    ma_binary = ensure_model_analyzer(args.ma_venv)
    created = dt.datetime.now(dt.UTC)
    loadavg_before = load_now()
    git_at_start = git_facts()
    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-rate-vs-ma-") as tmp:
        server = SharedServer(folder, Path(tmp))
        with server.running():
            log(f"Triton {server.version} at {server.endpoints.http}; {args.model}, rates {args.min_rate} to "
                f"{args.max_rate}/s, p99 {args.latency_budget:g} ms, Model Analyzer: {args.ma_search}")  # fmt: skip
            try:
                for i in range(args.repeats):
                    for side in interleaved(i, SIDES):
                        server.put_model_in_state(args.model, loaded=not reload)
                        log(f"repeat {i + 1}/{args.repeats}: {side} ... (load {load_now()})")
                        keep = None if args.keep is None else args.keep / f"repeat{i}-{side}"
                        if side == "ma":
                            run = run_model_analyzer(ma_binary, server, folder, args, reload, keep)
                        else:
                            run = run_ours(server, args, keep)
                        run["models_loaded_after"] = server.loaded_models()
                        answer = run["answer"]
                        log(f"repeat {i + 1}/{args.repeats}: {side} {run['wall_s']:.1f} s, exit {run['exit_code']}, "
                            f"{run['points_measured']} points, answer {_answer_text(answer)}"
                            + (f", band {_band_text(run['boundary'])}" if side == "ours" else ""))  # fmt: skip
                        runs.append({"repeat": i, "side": side, **run})
            except KeyboardInterrupt:
                log("interrupted: writing the runs done so far")
    machine = machine_facts()
    machine.update(
        model_analyzer=ma_environment(args.ma_venv),
        tritonserver_version=server.version,
        git_at_start=git_at_start,
        git_at_end=git_facts(),
        loadavg_before=loadavg_before,
        loadavg_after=load_now(),
        bench_wall_s=time.perf_counter() - started,
    )
    result = {
        "benchmark": "rate-search-vs-model-analyzer",
        "created_at": created.isoformat(timespec="seconds"),
        "config": {
            "model": args.model,
            "model_folder": str(folder),
            "latency_budget_ms": args.latency_budget,
            "min_rate": args.min_rate,
            "max_rate": args.max_rate,
            # Model Analyzer's doubling (its brute phase); its bisection adds rates between two of these.
            "ma_rate_steps": doubled(args.min_rate, args.max_rate),
            "ma_search": args.ma_search,
            "ma_delivery_tolerance": MA_DELIVERY_TOLERANCE,
            "repeats": args.repeats,
            "model_state": args.model_state,
            "model_analyzer_version": MA_VERSION,
            "ours_extra_args": args.ours_arg,
            "order": "repeat 0: ma, ours; repeat 1: ours, ma; and so on",
            "json": str(args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out),
        },
        "notes": args.note,
        "machine": machine,
        "summary": summarize(runs),
        "runs": runs,
    }
    write_results(result, args.out, markdown)
    s = result["summary"]
    print(json.dumps(rounded({k: s[k] for k in ("median_ours_vs_ma", "median_ours_vs_ma_without_duplicate",
                                                 "ma_in_our_band", "sentence")}, 3), indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
