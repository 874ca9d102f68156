"""Benchmark: time to the answer of a config + concurrency search, ours against NVIDIA Model Analyzer 1.58.

Issue 9's "Time to the answer": on one model (add_sub), the search space instance count 1,2 x dynamic batching
off,on (plus the model's own config), concurrency searched, a p99 latency budget, objective throughput. Each side
starts its own Triton and answers "which variant, at which concurrency":

  ma    NVIDIA Model Analyzer (`triton-model-analyzer==1.58.0`, installed by ensure_model_analyzer of
        bench/ours_vs_model_analyzer.py into a venv of its own) in `--triton-launch-mode local`: it starts the
        tritonserver that our find_local_triton() finds, with that server's environment, once per variant, and
        runs its brute search over a manual `model_config_parameters` space (instance_group count [1,2] kind
        KIND_CPU, dynamic_batching off/on) with its automatic concurrency sweep, `constraints: perf_latency_p99
        max`, `objectives: perf_throughput`, `cpu_only: true`. With --ma-quick, also its quick search once per
        repeat (its own space: it chooses the instance counts, max batch sizes and concurrencies).
  ours  `model-analyzer profile --model-folder COPY -m add_sub --instance-counts 1,2 --dynamic-batching off,on
        --concurrency auto --latency-budget MS --export`: the answer is analysis.json's best.overall.

Both sides at their own default measurement settings, the same perf_analyzer (.venv/bin/perf_analyzer), the same
tritonserver; interleaved (Model Analyzer first on even repeats, ours first on odd), never both at once. Each whole
command is timed. Recorded per run: wall time, points and variants measured, the winner (variant, concurrency,
throughput, p99), the load average before and after. Summary: median wall ratio ours / MA (target <= 0.4) and
whether the winners agree. See bench/README.md.

    .venv/bin/python bench/search_vs_model_analyzer.py --latency-budget 4 --repeats 3
    .venv/bin/python bench/search_vs_model_analyzer.py --summarize-only      # recompute the file's summary
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
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
    consecutive_free_ports,
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
from ours_vs_model_analyzer import MA_VENV, MA_VERSION, OURS, ensure_model_analyzer, ma_environment, run_ours_and_read

from modelanalysis.adapters.local_triton import find_local_triton
from modelanalysis.adapters.perf_analyzer import perf_analyzer_env

DEFAULT_OUT = REPO / "bench" / "results" / "search-vs-model-analyzer.json"
TARGET_WALL_RATIO = 0.4

# "Profiling add_sub_config_1: concurrency=8" (batch 1 leaves the batch out), as Model Analyzer logs each point.
_MA_POINT = re.compile(r"Profiling (\S+): (?:client batch size=(\d+), )?concurrency=(\d+)")


def load_now() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def on_off(values: str) -> list[bool]:
    return [v.strip().lower() in ("on", "true", "1") for v in values.split(",")]


# ---------------------------------------------------------------- Model Analyzer's side


def ma_config(
    run: Path, model: str, counts: list[int], dynamic: list[bool], budget_ms: float, quick: bool
) -> dict[str, Any]:
    """Model Analyzer's YAML config (written as JSON, which is YAML) for one search in local launch mode."""
    triton = find_local_triton()
    server_env = triton.env(perf_analyzer_env())
    base = consecutive_free_ports()
    model_spec: dict[str, Any] = {"cpu_only": True}
    if not quick:
        # Its manual (brute) search: every combination of these, after the model's own config (_config_default).
        # A null dynamic_batching is left out of the variant's config (base_model_config_generator skips None
        # values): that is "off"; {} is "on" with Triton's defaults. "on" goes first: Model Analyzer reads the
        # first entry's keys (search_parameters.py, `"max_queue_delay_microseconds" in ...["dynamic_batching"][0]`)
        # and fails with a TypeError on a null there.
        model_spec["model_config_parameters"] = {
            "instance_group": [[{"kind": "KIND_CPU", "count": counts}]],
            "dynamic_batching": sorted(({} if on else None for on in dynamic), key=lambda v: v is None),
        }
    config: dict[str, Any] = {
        "model_repository": str(run / "models"),
        "triton_launch_mode": "local",
        "triton_server_path": str(triton.binary),
        "triton_server_flags": {} if triton.backend_dir is None else {"backend-directory": str(triton.backend_dir)},
        # What our LocalTriton.env() adds (its bundled libraries, the python3 the Python backend stub runs).
        "triton_server_environment": {k: server_env[k] for k in ("LD_LIBRARY_PATH", "PATH") if server_env.get(k)},
        "triton_http_endpoint": f"127.0.0.1:{base}",
        "triton_grpc_endpoint": f"127.0.0.1:{base + 1}",
        "triton_metrics_url": f"http://127.0.0.1:{base + 2}/metrics",
        "triton_output_path": str(run / "triton.log"),
        "perf_analyzer_path": str(PERF_ANALYZER),
        "run_config_search_mode": "quick" if quick else "brute",
        "checkpoint_directory": str(run / "checkpoints"),  # fresh: a checkpoint found would skip its points
        "output_model_repository_path": str(run / "output_model_repository"),
        "override_output_model_repository": True,
        "export_path": str(run / "export"),
        "objectives": {"perf_throughput": 10},
        "constraints": {"perf_latency_p99": {"max": budget_ms}},
        "profile_models": {model: model_spec},
    }
    return config


def parse_ma_results(path: Path, model: str) -> list[dict[str, Any]]:
    """Model Analyzer's metrics-model-inference.csv, in its order (best first, its ranking), one row a point."""
    num = cell_number
    return [
        {
            "variant": row.get("Model Config Path", ""),
            "batch_size": int(row["Batch"]),
            "concurrency": int(row["Concurrency"]),
            "throughput_infer_per_sec": num(row, "Throughput (infer/sec)"),
            "latency_p99_ms": num(row, "p99 Latency (ms)"),
            "satisfies_constraints": row.get("Satisfies Constraints"),
            "instance_group": row.get("Instance Group"),
            "dynamic_batcher": row.get("Dynamic Batcher Sizes") or row.get("Dynamic Batching"),
        }
        for row in csv_rows_of(path, model)
    ]


def ma_variant_settings(repository: Path, model: str) -> dict[str, str]:
    """What each variant Model Analyzer wrote sets, from its config.pbtxt: "instances N, dynamic batching on/off"
    (the two tools number their variants in different orders, so the answers are compared on this)."""
    out: dict[str, str] = {}
    for config in sorted(repository.glob(f"{model}_config_*/config.pbtxt")):
        text = config.read_text(errors="replace")
        count = re.search(r"count:\s*(\d+)", text)
        out[config.parent.name] = settings_text(int(count[1]) if count else 1, "dynamic_batching" in text)
    return out


def settings_text(instances: int, dynamic: bool) -> str:
    return f"instances {instances}, dynamic batching {'on' if dynamic else 'off'}"


def ours_variant_settings(changes: str, own: tuple[int, bool]) -> str:
    """The same text from our variant's `changes` ("2 instances, dynamic batching"; empty: the model's own)."""
    count = re.search(r"(\d+) instances?", changes)
    dynamic = "no dynamic batching" not in changes and "dynamic batching" in changes if changes else own[1]
    return settings_text(int(count[1]) if count else own[0], dynamic)


def best_under_budget(points: list[dict[str, Any]], budget_ms: float) -> dict[str, Any] | None:
    """The same rule for both sides: the highest throughput among points whose p99 is within the budget."""
    ok = [p for p in points if p.get("throughput_infer_per_sec") is not None
          and p.get("latency_p99_ms") is not None and p["latency_p99_ms"] <= budget_ms]  # fmt: skip
    return max(ok, key=lambda p: p["throughput_infer_per_sec"]) if ok else None


def ma_process_env() -> dict[str, str]:
    """Model Analyzer's environment: Triton's libraries, perf_analyzer's libcudart, unbuffered, no PYTHONPATH."""
    env = find_local_triton().env(perf_analyzer_env())
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONPATH", None)
    return env


def run_model_analyzer(
    binary: Path, model_folder: Path, model: str, counts: list[int], dynamic: list[bool], budget_ms: float,
    quick: bool, keep: Path | None,
) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-ma-search-") as tmp:
        run = Path(tmp)
        shutil.copytree(model_folder, run / "models")
        config = ma_config(run, model, counts, dynamic, budget_ms, quick)
        (run / "config.yaml").write_text(json.dumps(config, indent=2) + "\n")
        cmd = [str(binary), "profile", "-f", str(run / "config.yaml")]
        env = ma_process_env()
        load_before = load_now()
        rc, wall, _, lines = run_timed(cmd, env, run)
        load_after = load_now()
        (run / "model-analyzer.log").write_text("".join(f"{t:9.3f} {line}\n" for t, line in lines))
        points = parse_ma_results(run / "export" / "results" / "metrics-model-inference.csv", model)
        settings = ma_variant_settings(run / "output_model_repository", model)
        triton_log_tail = []
        with contextlib.suppress(OSError):
            triton_log_tail = (run / "triton.log").read_text(errors="replace").splitlines()[-15:]
        if keep is not None:
            shutil.copytree(run, keep, ignore=shutil.ignore_patterns("plots", "models"), dirs_exist_ok=True)
    for p in points:
        p["settings"] = settings.get(p["variant"])
    attempted = [(m[1], int(m[2] or 1), int(m[3])) for _, line in lines if (m := _MA_POINT.search(line))]
    ma_pick = next((p for p in points if p["satisfies_constraints"] == "Yes"), None)
    result: dict[str, Any] = {
        "wall_s": wall,
        "exit_code": rc,
        "command": cmd,
        "config": config,
        "points_attempted": len(attempted),
        "points_measured": len(points),
        "variants_profiled": sorted({v for v, _, _ in attempted}),
        "variant_settings": settings,
        "attempted": [{"variant": v, "batch_size": b, "concurrency": c} for v, b, c in attempted],
        "points": points,
        "winner": best_under_budget(points, budget_ms),
        # Its own ranking: the first row of its CSV that satisfies the constraints.
        "winner_as_ma_ranks": ma_pick,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "warnings": sorted({line.split("WARNING: ", 1)[1][:200] for _, line in lines if "WARNING: " in line}),
    }
    if rc != 0 or not points:
        result["log_tail"] = [line for _, line in lines[-40:]]
        result["triton_log_tail"] = triton_log_tail
    return result


# ---------------------------------------------------------------- our side


def ours_command(
    folder: Path, model: str, counts: list[int], dynamic: list[bool], budget_ms: float, export: Path
) -> list[str]:
    return [
        str(OURS), "profile",
        "--model-folder", str(folder),
        "--model-names", model,
        "--instance-counts", ",".join(map(str, counts)),
        "--dynamic-batching", ",".join("on" if d else "off" for d in dynamic),
        "--concurrency", "auto",
        "--latency-budget", f"{budget_ms:g}",
        "--perf-analyzer-path", str(PERF_ANALYZER),
        "--export", "--export-path", str(export),
    ]  # fmt: skip


def own_config(model_folder: Path, model: str) -> tuple[int, bool]:
    """The instance count and dynamic batching of the model's own config.pbtxt."""
    text = (model_folder / model / "config.pbtxt").read_text()
    count = re.search(r"count:\s*(\d+)", text)
    return (int(count[1]) if count else 1), "dynamic_batching" in text


def run_ours(
    model_folder: Path, model: str, counts: list[int], dynamic: list[bool], budget_ms: float, keep: Path | None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-ours-search-") as tmp:
        folder = Path(tmp) / "models"  # a private copy: the repository is never written, but others' runs share it
        shutil.copytree(model_folder, folder)
        export = Path(tmp) / "out"
        cmd = ours_command(folder, model, counts, dynamic, budget_ms, export)
        load_before = load_now()
        rc, wall, _, lines, analysis = run_ours_and_read(cmd, Path(tmp), export, keep)
        load_after = load_now()
    points = []
    for p in analysis.get("points", []):
        perf = p.get("perf") or {}
        started, finished = p.get("started_at"), p.get("finished_at")
        points.append({
            "variant": p.get("variant") or p.get("model"),
            "batch_size": p.get("batch_size"),
            "concurrency": p.get("concurrency"),
            "status": p.get("status"),
            "throughput_infer_per_sec": perf.get("throughput_infer_per_sec"),
            "throughput_ci": [perf.get("throughput_ci_low"), perf.get("throughput_ci_high")],
            "latency_p99_ms": perf.get("latency_p99_ms"),
            "windows": perf.get("windows"),
            "converged": perf.get("converged"),
            "wall_s": None if started is None or finished is None else finished - started,
        })  # fmt: skip
    settings = {str(m.get("name")): ours_variant_settings(m.get("changes") or "", own_config(model_folder, model))
                for m in analysis.get("models", [])}  # fmt: skip
    for p in points:
        p["settings"] = settings.get(str(p["variant"]))
    measured = [p for p in points if p["throughput_infer_per_sec"] is not None]
    best = (analysis.get("best") or {}).get("overall")
    skipped = [{"variant": m.get("name"), **s.get("point", {}), "reason": s.get("reason")}
               for m in analysis.get("models", []) for s in m.get("skipped", [])]  # fmt: skip
    result: dict[str, Any] = {
        "wall_s": wall,
        "exit_code": rc,
        "command": cmd,
        "points_attempted": len(points),
        "points_measured": len(measured),
        "variants_profiled": sorted({str(p["variant"]) for p in points}),
        "variant_settings": settings,
        "points_s": sum(p["wall_s"] for p in points if p["wall_s"] is not None),
        "points": points,
        "skipped": skipped,
        "winner": None
        if best is None
        else {
            "variant": best.get("variant") or best.get("model"),
            "settings": settings.get(str(best.get("variant") or best.get("model"))),
            "batch_size": best.get("batch_size"),
            "concurrency": best.get("concurrency"),
            "throughput_infer_per_sec": best.get("throughput_infer_per_sec"),
            "throughput_ci": [best.get("throughput_ci_low"), best.get("throughput_ci_high")],
            "latency_p99_ms": best.get("latency_p99_ms"),
            "satisfies_constraints": best.get("satisfies_constraints"),
            "why": best.get("why"),
        },
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }
    if rc != 0 or not analysis:
        result["log_tail"] = [line for _, line in lines[-40:]]
    return result


# ---------------------------------------------------------------- summary


def agreement(ours: dict[str, Any] | None, ma: dict[str, Any] | None) -> dict[str, Any]:
    """Do the two answers agree: the same variant and concurrency, or either throughput inside our winner's CI."""
    if ours is None or ma is None:
        return {"agree": None, "why": "a side has no winner"}
    same_variant = ours.get("settings") is not None and ours.get("settings") == ma.get("settings")
    same = same_variant and ours["concurrency"] == ma["concurrency"]
    low, high = ours.get("throughput_ci") or [None, None]
    inside = low is not None and high is not None and low <= ma["throughput_infer_per_sec"] <= high
    how = "same variant and concurrency" if same else "MA's winner's throughput inside our CI" if inside else "no"
    return {"agree": same or inside, "same_variant_and_concurrency": same, "ma_throughput_in_our_ci": inside,
            "same_variant": same_variant, "how": how}  # fmt: skip


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    per_repeat = []
    for i in sorted({r["repeat"] for r in runs}):
        by = {r["side"]: r for r in runs if r["repeat"] == i}
        ma, ours = by.get("ma"), by.get("ours")
        if ma is None or ours is None:
            continue
        ma_per_point = ratio(ma["wall_s"], ma["points_measured"])
        ours_per_point = ratio(ours["wall_s"], ours["points_measured"])
        row: dict[str, Any] = {
            "repeat": i,
            "first": next(r["side"] for r in runs if r["repeat"] == i),
            "ma_wall_s": ma["wall_s"],
            "ours_wall_s": ours["wall_s"],
            "ours_vs_ma": ratio(ours["wall_s"], ma["wall_s"]),
            "ma_points": ma["points_measured"],
            "ours_points": ours["points_measured"],
            "ma_variants": len(ma["variants_profiled"]),
            "ours_variants": len(ours["variants_profiled"]),
            "ma_wall_per_point_s": ma_per_point,
            "ours_wall_per_point_s": ours_per_point,
            # The issue's fallback comparison: MA's points times our time per point, against our wall.
            "ours_vs_ma_points_at_our_rate": ratio(ours["points_measured"], ma["points_measured"]),
            "ma_exit": ma["exit_code"],
            "ours_exit": ours["exit_code"],
            "ma_winner": ma["winner"],
            "ma_winner_as_ma_ranks": ma.get("winner_as_ma_ranks"),
            "ours_winner": ours["winner"],
            "agreement": agreement(ours["winner"], ma["winner"]),
            "load": {side: [by[side]["loadavg_before"][0], by[side]["loadavg_after"][0]] for side in ("ma", "ours")},
        }
        if "ma_quick" in by:
            q = by["ma_quick"]
            row["ma_quick"] = {"wall_s": q["wall_s"], "exit": q["exit_code"], "points": q["points_measured"],
                               "variants": len(q["variants_profiled"]), "winner": q["winner"],
                               "ours_vs_ma_quick": ratio(ours["wall_s"], q["wall_s"])}  # fmt: skip
        per_repeat.append(row)
    med = median([r["ours_vs_ma"] for r in per_repeat if r["ma_exit"] == 0 and r["ma_points"]])
    return {
        "targets": {
            "wall_ours_vs_ma": {
                "median": med,
                "target": TARGET_WALL_RATIO,
                "met": None if med is None else med <= TARGET_WALL_RATIO,
                "per_repeat": [r["ours_vs_ma"] for r in per_repeat],
            },
            "winners_agree": [r["agreement"]["agree"] for r in per_repeat],
        },
        "median_ma_wall_s": median([r["ma_wall_s"] for r in per_repeat]),
        "median_ours_wall_s": median([r["ours_wall_s"] for r in per_repeat]),
        "per_repeat": per_repeat,
    }


def _winner_text(w: dict[str, Any] | None) -> str:
    if w is None:
        return "-"
    ci = w.get("throughput_ci") or [None, None]
    ci_text = f" (CI {ci[0]:.0f}-{ci[1]:.0f})" if ci[0] is not None and ci[1] is not None else ""
    return (f"{w['variant']} ({w.get('settings')}) c{w['concurrency']}: "
            f"{w['throughput_infer_per_sec']:.0f}/s{ci_text}, p99 {w['latency_p99_ms']:.2f} ms")  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    s, c, m = result["summary"], result["config"], result["machine"]

    def f(v: Any, spec: str = ".2f") -> str:
        return "-" if v is None else format(v, spec)

    lines = [
        f"# Time to the answer: config + concurrency search, ours vs NVIDIA Model Analyzer {MA_VERSION}",
        "",
        f"{result['created_at']}, {m['nproc']} cores, machine shared with other sessions' tests. Model `{c['model']}`,"
        f" instance counts {c['instance_counts']} x dynamic batching {c['dynamic_batching']} (+ its own config), "
        f"concurrency searched, p99 budget **{c['latency_budget_ms']:g} ms**, objective throughput. Both start "
        f"their own Triton ({m.get('tritonserver_version') or 'pytriton'}), Model Analyzer in local launch mode.",
        "",
        "| repeat | first | MA wall (s) | ours wall (s) | ours / MA | points MA / ours | variants MA / ours "
        "| load avg MA (before, after) | load avg ours |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in s["per_repeat"]:
        lines.append(
            f"| {r['repeat']} | {r['first']} | {f(r['ma_wall_s'], '.1f')} | {f(r['ours_wall_s'], '.1f')} | "
            f"{f(r['ours_vs_ma'])} | {r['ma_points']} / {r['ours_points']} | {r['ma_variants']} / "
            f"{r['ours_variants']} | {r['load']['ma'][0]:.1f}, {r['load']['ma'][1]:.1f} | "
            f"{r['load']['ours'][0]:.1f}, {r['load']['ours'][1]:.1f} |"
        )
    t = s["targets"]["wall_ours_vs_ma"]
    lines += [
        f"| median | | {f(s['median_ma_wall_s'], '.1f')} | {f(s['median_ours_wall_s'], '.1f')} | "
        f"**{f(t['median'])}** (target <= {TARGET_WALL_RATIO}) | | | | |",
        "",
        "Winners (highest throughput with p99 within the budget; ours: analysis.json's best.overall):",
        "",
        "| repeat | MA | ours | agree |",
        "|---|---|---|---|",
    ]
    for r in s["per_repeat"]:
        lines.append(f"| {r['repeat']} | {_winner_text(r['ma_winner'])} | {_winner_text(r['ours_winner'])} | "
                     f"{r['agreement'].get('how', r['agreement'].get('why'))} |")  # fmt: skip
    quick = [r for r in s["per_repeat"] if "ma_quick" in r]
    if quick:
        lines += ["", "Model Analyzer's quick search (its own space), same repeats:", ""]
        for r in quick:
            q = r["ma_quick"]
            lines.append(f"- repeat {r['repeat']}: {f(q['wall_s'], '.1f')} s, exit {q['exit']}, {q['points']} points "
                         f"in {q['variants']} variants, winner {_winner_text(q['winner'])}")  # fmt: skip
    lines += ["", *(f"- {note}" for note in result.get("notes", [])), "", f"Full figures: `{c['json']}`.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of both sides (default 3)")
    parser.add_argument("--latency-budget", type=float, default=4.0, metavar="MS", help="p99 budget (default 4)")
    parser.add_argument("--model", default="add_sub")
    parser.add_argument("--model-folder", type=Path, default=REPO / "examples" / "models")
    parser.add_argument("--instance-counts", default="1,2")
    parser.add_argument("--dynamic-batching", default="off,on")
    parser.add_argument("--ma-quick", action="store_true", help="also run Model Analyzer's quick search each repeat")
    parser.add_argument("--ma-venv", type=Path, default=MA_VENV)
    parser.add_argument("--keep", type=Path, help="keep each run's logs and exports under this folder")
    parser.add_argument("--note", action="append", default=[], help="a line for the results' notes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON (a .md beside it)")
    parser.add_argument("--summarize-only", action="store_true", help="recompute an existing --out's summary")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.summarize_only:
        resummarize(args.out, summarize, markdown, args.note)
        return 0
    counts = [int(v) for v in args.instance_counts.split(",")]
    dynamic = on_off(args.dynamic_batching)
    folder = args.model_folder.resolve()
    ma_binary = ensure_model_analyzer(args.ma_venv)
    created = dt.datetime.now(dt.UTC)
    loadavg_before = load_now()
    git_at_start = git_facts()
    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    try:
        for i in range(args.repeats):
            sides = interleaved(i, ["ma", "ours"])
            if args.ma_quick:
                sides.append("ma_quick")
            for side in sides:
                log(f"repeat {i + 1}/{args.repeats}: {side} ... (load {load_now()})")
                keep = None if args.keep is None else args.keep / f"repeat{i}-{side}"
                if side == "ours":
                    run = run_ours(folder, args.model, counts, dynamic, args.latency_budget, keep)
                else:
                    run = run_model_analyzer(ma_binary, folder, args.model, counts, dynamic, args.latency_budget,
                                             side == "ma_quick", keep)  # fmt: skip
                log(f"repeat {i + 1}/{args.repeats}: {side} {run['wall_s']:.1f} s, exit {run['exit_code']}, "
                    f"{run['points_measured']} points in {len(run['variants_profiled'])} variants, "
                    f"winner {_winner_text(run['winner'])}")  # fmt: skip
                runs.append({"repeat": i, "side": side, **run})
    except KeyboardInterrupt:
        log("interrupted: writing the runs done so far")
    machine = machine_facts()
    machine.update(
        model_analyzer=ma_environment(args.ma_venv),
        git_at_start=git_at_start,
        git_at_end=git_facts(),
        loadavg_before=loadavg_before,
        loadavg_after=load_now(),
        bench_wall_s=time.perf_counter() - started,
    )
    result = {
        "benchmark": "search-vs-model-analyzer",
        "created_at": created.isoformat(timespec="seconds"),
        "config": {
            "model": args.model,
            "instance_counts": counts,
            "dynamic_batching": ["on" if d else "off" for d in dynamic],
            "latency_budget_ms": args.latency_budget,
            "repeats": args.repeats,
            "ma_quick": args.ma_quick,
            "model_analyzer_version": MA_VERSION,
            "order": "repeat 0: ma, ours; repeat 1: ours, ma; and so on (ma_quick last when asked)",
            "json": str(args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out),
        },
        "notes": args.note,
        "machine": machine,
        "summary": summarize(runs),
        "runs": runs,
    }
    write_results(result, args.out, markdown)
    print(json.dumps(rounded(result["summary"]["targets"], 3), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
