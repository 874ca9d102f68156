"""Benchmark: an ensemble's config search, ours against NVIDIA Model Analyzer 1.58's quick search for ensembles.

Issue 24: on examples/models/pipeline (preprocess, 1 ms an execution, feeding classify, 4 ms), both sides search
the composing models' configs and the concurrency for the highest throughput under a p99 budget, each starting its
own Triton, and answer "which config of each composing model, at which concurrency":

  ma    Model Analyzer 1.58 (the venv of bench/ours_vs_model_analyzer.py), `run_config_search_mode: quick`: for an
        ensemble its only search over composing models (a hill climb over each one's instance count and max batch
        size, concurrency chosen by it), `cpu_only_composing_models`, local launch mode with our tritonserver.
  ours  `model-analyzer profile -m pipeline --instance-counts 1,2 --dynamic-batching off,on --concurrency auto
        --latency-budget MS --export`: the composing-model walk (README: Searching a pipeline's config); `--space`
        gives it other config-search flags, and `--ours-only` runs this side alone.

Each whole command is timed; interleaved (MA first on even repeats). Recorded: wall time, points, variants, each
side's answer (what it sets for each composing model, concurrency, throughput, p99) and the load average.

    .venv/bin/python bench/ensemble_search_vs_model_analyzer.py --latency-budget 20 --repeats 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import PERF_ANALYZER, REPO, git_facts, interleaved, log, machine_facts, ratio, run_timed, write_results
from ours_vs_model_analyzer import MA_VENV, MA_VERSION, OURS, ensure_model_analyzer, run_ours_and_read
from search_vs_model_analyzer import best_under_budget, load_now, ma_config, ma_process_env, parse_ma_results

DEFAULT_OUT = REPO / "bench" / "results" / "ensemble-search-vs-model-analyzer.json"
PIPELINE, STEPS = "pipeline", ("preprocess", "classify")
DEFAULT_SPACE = ("--instance-counts", "1,2", "--dynamic-batching", "off,on")
NOT_RUN: dict[str, Any] = {"wall_s": float("nan"), "exit_code": "-", "points_measured": "-", "variants_profiled": [],
                           "winner": None}  # fmt: skip
_MA_POINT = re.compile(r"Profiling (\S+): (?:client batch size=(\d+), )?concurrency=(\d+)")


def composing_settings(repository: Path) -> dict[str, str]:
    """What each composing-model variant Model Analyzer wrote sets (instances, max batch, dynamic batching)."""
    out = {}
    for config in sorted(repository.glob("*_config_*/config.pbtxt")):
        text = config.read_text(errors="replace")
        count = re.search(r"count:\s*(\d+)", text)
        batch = re.search(r"max_batch_size:\s*(\d+)", text)
        out[config.parent.name] = (f"{count[1] if count else '?'} instances, max batch {batch[1] if batch else '?'}"
                                   f"{', dynamic batching' if 'dynamic_batching' in text else ''}")  # fmt: skip
    return out


def run_ma(binary: Path, folder: Path, budget_ms: float, keep: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-ma-ensemble-") as tmp:
        run = Path(tmp)
        shutil.copytree(folder, run / "models")
        config = ma_config(run, PIPELINE, [], [], budget_ms, quick=True)
        config["cpu_only_composing_models"] = list(STEPS)
        (run / "config.yaml").write_text(json.dumps(config, indent=2) + "\n")
        cmd = [str(binary), "profile", "-f", str(run / "config.yaml")]
        before = load_now()
        rc, wall, _, lines = run_timed(cmd, ma_process_env(), run)
        after = load_now()
        (run / "model-analyzer.log").write_text("".join(f"{t:9.3f} {line}\n" for t, line in lines))
        csv_path = run / "export" / "results" / "metrics-model-inference.csv"
        points = parse_ma_results(csv_path, PIPELINE) if csv_path.exists() else []
        raw_rows = csv_path.read_text(errors="replace").splitlines()[:40] if csv_path.exists() else []
        settings = composing_settings(run / "output_model_repository")
        if keep is not None:
            shutil.copytree(run, keep / "ma", ignore=shutil.ignore_patterns("plots", "models"), dirs_exist_ok=True)
    attempted = [(m[1], int(m[3])) for _, line in lines if (m := _MA_POINT.search(line))]
    result: dict[str, Any] = {
        "wall_s": wall, "exit_code": rc, "command": cmd, "config": config,
        "points_attempted": len(attempted), "points_measured": len(points),
        "variants_profiled": sorted({v for v, _ in attempted}),
        "composing_variant_settings": settings, "points": points, "csv_head": raw_rows,
        "winner": best_under_budget(points, budget_ms), "loadavg": [before, after],
    }  # fmt: skip
    if rc != 0 or not points:
        result["log_tail"] = [line for _, line in lines[-40:]]
    return result


def run_ours(folder: Path, budget_ms: float, keep: Path | None, space: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-ours-ensemble-") as tmp:
        models, export = Path(tmp) / "models", Path(tmp) / "out"
        shutil.copytree(folder, models)
        cmd = [str(OURS), "profile", "--model-folder", str(models), "-m", PIPELINE, *space,
               "--concurrency", "auto", "--latency-budget", f"{budget_ms:g}",
               "--perf-analyzer-path", str(PERF_ANALYZER), "--export", "--export-path", str(export)]  # fmt: skip
        before = load_now()
        rc, wall, _, lines, analysis = run_ours_and_read(cmd, Path(tmp), export, keep / "ours" if keep else None)
        after = load_now()
    models_out = {m["name"]: m for m in analysis.get("models", [])}
    points = [{"variant": p.get("variant"), "concurrency": p.get("concurrency"),
               "throughput_infer_per_sec": (p.get("perf") or {}).get("throughput_infer_per_sec"),
               "throughput_ci": [(p.get("perf") or {}).get("throughput_ci_low"),
                                 (p.get("perf") or {}).get("throughput_ci_high")],
               "latency_p99_ms": (p.get("perf") or {}).get("latency_p99_ms")}
              for p in analysis.get("points", [])]  # fmt: skip
    best = (analysis.get("best") or {}).get("overall") or {}
    winner = models_out.get(best.get("variant", ""), {})
    return {
        "wall_s": wall, "exit_code": rc, "command": cmd,
        "points_measured": sum(p["throughput_infer_per_sec"] is not None for p in points),
        "variants_profiled": sorted({str(p["variant"]) for p in points}),
        "walk": [{"variant": m["name"], "status": m.get("status"), "changes": m.get("changes"),
                  "reason": m.get("reason")} for m in analysis.get("models", [])],
        "points": points,
        "winner": None if not best else {
            "variant": best.get("variant"), "changes": winner.get("changes"), "concurrency": best.get("concurrency"),
            "throughput_infer_per_sec": best.get("throughput_infer_per_sec"),
            "throughput_ci": [best.get("throughput_ci_low"), best.get("throughput_ci_high")],
            "latency_p99_ms": best.get("latency_p99_ms"), "satisfies_constraints": best.get("satisfies_constraints"),
        },
        "loadavg": [before, after],
        **({"log_tail": [line for _, line in lines[-40:]]} if rc != 0 else {}),
    }


def _two(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def markdown(result: dict[str, Any]) -> str:
    c = result["config"]
    lines = [
        f"# An ensemble's config search: ours vs NVIDIA Model Analyzer {MA_VERSION}'s quick search",
        "",
        f"{result['created_at']}, {result['machine']['nproc']} cores. `examples/models/pipeline` (preprocess 1 ms an "
        f"execution feeding classify 4 ms), p99 budget **{c['latency_budget_ms']:g} ms**, objective throughput; "
        "each side starts its own Triton.",
        "",
        "| repeat | first | MA quick wall (s) | ours wall (s) | ours / MA | points MA / ours | variants MA / ours |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["per_repeat"]:
        ma, ours = r.get("ma") or NOT_RUN, r["ours"]
        lines.append(f"| {r['repeat']} | {r['first']} | {ma['wall_s']:.1f} (exit {ma['exit_code']}) | "
                     f"{ours['wall_s']:.1f} | {_two(ratio(ours['wall_s'], ma['wall_s']))} | "
                     f"{ma['points_measured']} / {ours['points_measured']} | "
                     f"{len(ma['variants_profiled'])} / {len(ours['variants_profiled'])} |")  # fmt: skip
    lines += ["", "Answers (highest throughput with p99 within the budget):", ""]
    for r in result["per_repeat"]:
        ma, ours = (r.get("ma") or NOT_RUN)["winner"], r["ours"]["winner"]
        ma_text = "-" if ma is None else (f"{ma['variant']} c{ma['concurrency']}: {ma['throughput_infer_per_sec']:.0f}"
                                          f"/s, p99 {ma['latency_p99_ms']:.2f} ms")  # fmt: skip
        ci = (ours or {}).get("throughput_ci") or [None, None]
        ours_text = "-" if ours is None else (
            f"{ours['variant']} ({ours['changes']}) c{ours['concurrency']}: {ours['throughput_infer_per_sec']:.0f}/s"
            f" (CI {ci[0]:.0f}-{ci[1]:.0f}), p99 {ours['latency_p99_ms']:.2f} ms")  # fmt: skip
        lines.append(f"- repeat {r['repeat']}: MA quick: {ma_text}; ours: {ours_text}")
        if r.get("ma"):
            lines.append(f"  - MA's composing variants: {r['ma']['composing_variant_settings']}")
        lines.append("  - our walk: " + "; ".join(f"{w['variant']} {w['changes'] or w['status']}"
                                                 for w in r["ours"]["walk"]))  # fmt: skip
    lines += ["", f"Full figures: `{DEFAULT_OUT.relative_to(REPO)}`.", ""]
    lines += [f"- {n}" for n in result.get("notes", [])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--latency-budget", type=float, default=20.0, metavar="MS")
    parser.add_argument("--ma-venv", type=Path, default=MA_VENV)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--space", default=" ".join(DEFAULT_SPACE), help="our config search's flags")
    parser.add_argument("--ours-only", action="store_true", help="run our side only (Model Analyzer's answer is "
                        "then the one recorded in an earlier run: say so with --note)")
    args = parser.parse_args(argv)
    binary = None if args.ours_only else ensure_model_analyzer(args.ma_venv)
    with tempfile.TemporaryDirectory(prefix="bench-ensemble-models-") as tmp:
        folder = Path(tmp) / "models"
        for model in (PIPELINE, *STEPS):
            shutil.copytree(REPO / "examples" / "models" / model, folder / model)
        per_repeat = []
        for repeat in range(args.repeats):
            order = ["ours"] if binary is None else interleaved(repeat, ["ma", "ours"])
            row: dict[str, Any] = {"repeat": repeat, "first": order[0]}
            for side in order:
                log(f"repeat {repeat}: {side}")
                keep = args.keep / f"r{repeat}" if args.keep else None
                row[side] = run_ma(binary, folder, args.latency_budget, keep) if binary and side == "ma" else run_ours(
                    folder, args.latency_budget, keep, args.space.split())  # fmt: skip
                log(f"  {side}: {row[side]['wall_s']:.1f} s, exit {row[side]['exit_code']}")
            per_repeat.append(row)
    result = {
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": {"latency_budget_ms": args.latency_budget, "repeats": args.repeats, "space": args.space},
        "machine": machine_facts(), "git": git_facts(), "per_repeat": per_repeat, "notes": args.note,
    }  # fmt: skip
    write_results(result, args.out, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
