"""Benchmark: does the same search, run again, give the same answer? Issue 21's run, ours now against ours before.

The search: bench/models/wait_3ms (waits 3 ms + 0.1 ms per request of a batch), instance counts 1,2 x dynamic
batching off,on (plus the model's own config), `--concurrency auto --latency-budget MS` (default 20), objective
throughput. Run `--repeats` times (default 5) by each side, interleaved (now first on even repeats, before first
on odd), never two at once, each starting its own Triton:

  now     this checkout's HEAD (run from a git worktree of it): budget decisions on the p99 interval
          (core/budget.py); the answer is a boundary, the highest concurrency surely under the budget at the
          winning variant's batch size.
  before  the CLI of --before (a commit; default: the one before issue 21's change), run from a git worktree of
          it: it decided each bisection step on p99's point value, and answered with one concurrency.

Recorded per run: wall time, points, the winner (variant, concurrency, throughput and its CI, p99 and its CI)
and, for `now`, the winning variant's boundary (surely under, undecided, surely over). Summary: each side's
spread of answers; for `now`, whether every run's surely-under answer lies within every other run's band
[surely under, surely over) (equal to it, or inside its undecided band); the wall-time ratio now / before.

    .venv/bin/python bench/search_stability.py --repeats 5
    .venv/bin/python bench/search_stability.py --summarize-only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import REPO, git_facts, interleaved, log, machine_facts, median, ratio, rounded, run_timed

MODEL = "wait_3ms"
MODELS = REPO / "bench" / "models"
BEFORE = "d5168a6"  # main before issue 21: point-value bisection
OUT = REPO / "bench" / "results" / "search-stability.json"
PYTHON = REPO / ".venv" / "bin" / "python"
CLI = "import sys; from modelanalysis.main import main; sys.argv[0] = 'model-analyzer'; main()"


def cli_command(export: Path, models: Path, budget: float) -> list[str]:
    return [
        str(PYTHON), "-c", CLI, "profile",
        "--model-folder", str(models), "-m", MODEL,
        "--instance-counts", "1,2", "--dynamic-batching", "off,on",
        "--concurrency", "auto", "--latency-budget", f"{budget:g}",
        "--perf-analyzer-path", str(REPO / ".venv" / "bin" / "perf_analyzer"),
        "--export", "--export-path", str(export),
    ]  # fmt: skip


def run_side(source: Path, budget: float, scratch: Path) -> dict[str, Any]:
    """One search by the CLI whose package is under `source` (PYTHONPATH first, so it wins over the venv's)."""
    models = scratch / "models"
    shutil.copytree(MODELS / MODEL, models / MODEL)
    export = scratch / "export"
    env = {**os.environ, "PYTHONPATH": str(source)}
    rc, wall, _, lines = run_timed(cli_command(export, models, budget), env, scratch)
    try:
        analysis = json.loads((export / "analysis.json").read_text())
    except (OSError, ValueError):
        analysis = {}
    best = ((analysis.get("best") or {}).get("overall")) or {}
    points = analysis.get("points") or []
    winner = next((p for p in points if p.get("variant", "") == best.get("variant", "") and
                   p["batch_size"] == best.get("batch_size") and p["concurrency"] == best.get("concurrency")), None)
    perf = (winner or {}).get("perf") or {}
    boundary = next((b for b in (analysis.get("best") or {}).get("boundaries") or []
                     if b.get("variant", "") == best.get("variant", "") and b["batch_size"] == best.get("batch_size")),
                    None)  # fmt: skip
    return {
        "rc": rc,
        "wall_s": wall,
        "points": len(points),
        "winner": {
            "variant": best.get("variant"),
            "batch": best.get("batch_size"),
            "concurrency": best.get("concurrency"),
            "throughput": perf.get("throughput_infer_per_sec"),
            "throughput_ci": [perf.get("throughput_ci_low"), perf.get("throughput_ci_high")],
            "p99_ms": perf.get("latency_p99_ms"),
            "p99_ci_ms": [perf.get("latency_p99_ci_low_ms"), perf.get("latency_p99_ci_high_ms")],
            "windows": perf.get("windows"),
        },
        "boundary": boundary,
        "tail": [line for _, line in lines[-6:]],
    }


def worktree(commit: str, where: Path) -> Path:
    subprocess.run(["git", "worktree", "add", "--detach", str(where), commit], cwd=REPO, check=True,
                   capture_output=True)  # fmt: skip
    return where / "operator"


def summarize(data: dict[str, Any]) -> dict[str, Any]:
    runs = data["runs"]
    now = [r for r in runs if r["side"] == "now" and r["rc"] == 0]
    before = [r for r in runs if r["side"] == "before" and r["rc"] == 0]
    bands = [(r["boundary"]["surely_under"], r["boundary"]["surely_over"]) for r in now if r.get("boundary")]
    answers = [u for u, _ in bands]
    consistent = all(
        u_i is not None and u_j is not None and u_j <= u_i and (o_j is None or u_i < o_j)
        for i, (u_i, _) in enumerate(bands) for j, (u_j, o_j) in enumerate(bands) if i != j
    )  # fmt: skip
    # Weaker, and what a user relies on: no run calls a load surely under the budget that another calls surely over.
    no_contradiction = all(
        u_i is not None and (o_j is None or u_i < o_j)
        for i, (u_i, _) in enumerate(bands) for j, (_, o_j) in enumerate(bands) if i != j
    )  # fmt: skip
    before_answers = [r["winner"]["concurrency"] for r in before]
    return {
        "now_answers_surely_under": answers,
        "now_bands": bands,
        "now_variants": [r["winner"]["variant"] for r in now],
        "now_every_answer_within_every_other_band": consistent if len(bands) == len(now) else None,
        "now_no_run_contradicts_another": no_contradiction if len(bands) == len(now) else None,
        "now_answer_spread": [min(answers), max(answers)] if answers else None,
        "before_answers": before_answers,
        "before_variants": [r["winner"]["variant"] for r in before],
        "before_answer_spread": [min(before_answers), max(before_answers)] if before_answers else None,
        "now_wall_s": [r["wall_s"] for r in now],
        "before_wall_s": [r["wall_s"] for r in before],
        "wall_ratio_now_over_before": ratio(median([r["wall_s"] for r in now]), median([r["wall_s"] for r in before])),
        "points_now": [r["points"] for r in now],
        "points_before": [r["points"] for r in before],
    }


def write_markdown(data: dict[str, Any], path: Path) -> None:
    s = data["summary"]
    lines = [
        f"# Search stability: the same search {data['repeats']} times (issue 21)",
        "",
        f"{data['when']}, commit {data['git']['commit'][:10]} (before: {data['before']}), "
        f"{data['machine'].get('nproc')} cores. `{MODEL}` (3 ms + 0.1 ms per request), instance counts 1,2 x "
        f"dynamic batching off,on, `--concurrency auto --latency-budget {data['budget_ms']:g}`. Written by "
        f"bench/search_stability.py ({path.with_suffix('.json').name}).",
        "",
        "| run | side | wall (s) | points | winner | concurrency | throughput (95% CI) | p99 ms (95% CI) | boundary |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["runs"]:
        w, b = r["winner"], r.get("boundary") or {}
        ci, p99ci = w["throughput_ci"], w["p99_ci_ms"]
        thr = f"{w['throughput']:.0f} ({ci[0]:.0f}-{ci[1]:.0f})" if w["throughput"] and ci[0] else str(w["throughput"])
        p99 = f"{w['p99_ms']:.2f} ({p99ci[0]:.2f}-{p99ci[1]:.2f})" if w["p99_ms"] and p99ci[0] else str(w["p99_ms"])
        band = (f"under {b.get('surely_under')}, undecided {b.get('undecided') or '-'}, over {b.get('surely_over')}"
                if b else "")  # fmt: skip
        lines.append(f"| {r['repeat']} | {r['side']} | {r['wall_s']:.0f} | {r['points']} | {w['variant']} | "
                     f"{w['concurrency']} | {thr} | {p99} | {band} |")  # fmt: skip
    lines += [
        "",
        f"- now: surely-under answers {s['now_answers_surely_under']} (spread {s['now_answer_spread']}); every "
        f"run's answer within every other run's band [surely under, surely over): "
        f"**{s['now_every_answer_within_every_other_band']}**; no run's surely-under answer at or above another "
        f"run's surely-over: **{s.get('now_no_run_contradicts_another')}**.",
        f"- before: answers {s['before_answers']} (spread {s['before_answer_spread']}).",
        f"- wall time now / before (medians): **{s['wall_ratio_now_over_before']:.2f}**"
        if s["wall_ratio_now_over_before"] is not None else "- wall time ratio: n/a",
        f"- points now {s['points_now']}, before {s['points_before']}.",
    ]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--latency-budget", type=float, default=20.0)
    parser.add_argument("--before", default=BEFORE, help="the commit whose search to compare with")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--summarize-only", action="store_true")
    args = parser.parse_args(argv)
    if args.summarize_only:
        data = json.loads(args.out.read_text())
    else:
        data = {"when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "repeats": args.repeats,
                "budget_ms": args.latency_budget, "before": args.before, "git": git_facts(),
                "machine": machine_facts(), "runs": []}  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="search-stability-") as tmp:
            # Both sides run from worktrees of commits, so editing this checkout meanwhile changes neither.
            sources = {side: worktree(commit, Path(tmp) / side) for side, commit in (("now", "HEAD"),
                                                                                     ("before", args.before))}
            try:
                for repeat in range(args.repeats):
                    for side in interleaved(repeat, ("now", "before")):
                        log(f"repeat {repeat + 1}/{args.repeats}: {side}")
                        scratch = Path(tmp) / f"{side}-{repeat}"
                        scratch.mkdir()
                        run = run_side(sources[side], args.latency_budget, scratch)
                        data["runs"].append({"repeat": repeat + 1, "side": side, **run})
                        log(f"  {run['wall_s']:.0f} s, {run['points']} points, winner {run['winner']}")
                        args.out.write_text(json.dumps(rounded(data), indent=1) + "\n")
            finally:
                for side in sources:
                    subprocess.run(["git", "worktree", "remove", "--force", str(Path(tmp) / side)], cwd=REPO,
                                   check=False, capture_output=True)  # fmt: skip
    data["summary"] = summarize(data)
    args.out.write_text(json.dumps(rounded(data), indent=1) + "\n")
    write_markdown(data, args.out.with_suffix(".md"))
    log(json.dumps(data["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
