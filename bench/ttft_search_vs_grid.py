"""Benchmark: time to a TTFT-budget answer, the concurrency search against a grid over the same concurrencies.

A streaming model (examples/models/llm_stream, the vLLM backend's interface on the CPU) that generates for at most
MAX_IN_FLIGHT requests at once: past that many concurrent users a request waits for a slot and its time to first
token grows, as on a server whose KV cache is full. The question a team asks: how many concurrent users hold a p99
TTFT budget? Two ways to the answer, each a whole `model-analyzer profile` command that starts its own Triton:

  search  --concurrency auto --max-concurrency N --ttft-budget MS: climbs 1, 2, 4, ... and bisects where the budget
          is surely broken (core/search.py).
  grid    --concurrency 1,2,3,...,N --ttft-budget MS: every concurrency the search could have visited, measured.

Interleaved (search first on even repeats), never both at once; the same measurement settings. Recorded per run:
wall time, points measured, the answer (the highest concurrency surely under the budget, from analysis.json's
boundary) and, for the grid, where the boundary lies on it. Summary: median wall ratio search / grid, and whether
the answers agree. See bench/README.md.

    .venv/bin/python bench/ttft_search_vs_grid.py --repeats 3
    .venv/bin/python bench/ttft_search_vs_grid.py --summarize-only
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

from common import REPO, git_facts, interleaved, log, machine_facts, median, ratio, resummarize, write_results
from ours_vs_model_analyzer import OURS, run_ours_and_read

DEFAULT_OUT = REPO / "bench" / "results" / "ttft-search-vs-grid.json"
PROMPTS = REPO / "examples" / "inputs" / "llm_stream.json"
# The model's delays: ~3 ms to the first token, 1 ms a token, 16 tokens (the prompts' max_tokens): ~20 ms a request.
MODEL_PARAMETERS = {"PREFILL_MS": "3", "PREFILL_MS_PER_WORD": "0", "TOKEN_MS": "1"}


def model_copy(folder: Path, in_flight: int) -> Path:
    shutil.copytree(REPO / "examples" / "models" / "llm_stream", folder / "llm_stream")
    config = folder / "llm_stream" / "config.pbtxt"
    text = config.read_text()
    for key, value in {**MODEL_PARAMETERS, "MAX_IN_FLIGHT": str(in_flight)}.items():
        text = re.sub(rf'(key: "{key}" value: {{ string_value: )"[^"]*"', rf'\1"{value}"', text)
    config.write_text(text)
    return folder


def run_side(side: str, args: argparse.Namespace, keep: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"ttft-{side}-") as tmp:
        root = Path(tmp)
        models = model_copy(root / "models", args.in_flight)
        export = root / "export"
        load = (["--concurrency", "auto", "--max-concurrency", str(args.max_concurrency)] if side == "search"
                else ["--concurrency", ",".join(str(c) for c in range(1, args.max_concurrency + 1))])  # fmt: skip
        cmd = [
            str(OURS), "profile", "--model-folder", str(models), "-m", "llm_stream", "--input-data", str(PROMPTS),
            *load, "--ttft-budget", f"{args.ttft_budget:g}", "--objective", "maximize-output-tokens",
            "--measurement-interval", str(args.measurement_interval), "--export", "--export-path", str(export),
        ]  # fmt: skip
        rc, wall, _, _, analysis = run_ours_and_read(cmd, root, export, keep / side if keep else None)
    best = analysis.get("best") or {}
    boundaries = best.get("boundaries") or [{}]
    found = boundaries[0]
    return {
        "side": side,
        "rc": rc,
        "wall_s": wall,
        "points": len(analysis.get("points") or []),
        "surely_under": found.get("surely_under"),
        "surely_over": found.get("surely_over"),
        "undecided": found.get("undecided", []),
        "ttft_p99_ms": {p["concurrency"]: (p.get("perf") or {}).get("ttft_p99_ms") for p in analysis.get("points", [])},
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    by_side = {s: [r for r in runs if r["side"] == s and r["rc"] == 0] for s in ("search", "grid")}
    search_wall = median([r["wall_s"] for r in by_side["search"]])
    grid_wall = median([r["wall_s"] for r in by_side["grid"]])
    paired = list(zip(by_side["search"], by_side["grid"], strict=False))
    return {
        "median_wall_s": {"search": search_wall, "grid": grid_wall},
        "median_wall_ratio_search_over_grid": ratio(search_wall, grid_wall),
        "median_points": {s: median([r["points"] for r in rs]) for s, rs in by_side.items()},
        "answers": {s: [r["surely_under"] for r in rs] for s, rs in by_side.items()},
        "answers_agree_per_repeat": [a["surely_under"] == b["surely_under"] for a, b in paired],
    }


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    lines = [
        "# Time to a TTFT-budget answer: concurrency search vs. a grid", "",
        f"{result['when']}, commit {result['git'].get('commit', '?')}; llm_stream generating for at most "
        f"{result['settings']['in_flight']} requests at once, p99 TTFT budget {result['settings']['ttft_budget']} ms, "
        f"concurrency 1..{result['settings']['max_concurrency']}, windows of "
        f"{result['settings']['measurement_interval']} ms.", "",
        "| | search | grid |", "|---|---|---|",
        f"| median wall (s) | {s['median_wall_s']['search']:.1f} | {s['median_wall_s']['grid']:.1f} |",
        f"| median points | {s['median_points']['search']} | {s['median_points']['grid']} |",
        f"| highest concurrency surely under the budget, per repeat | {s['answers']['search']} | "
        f"{s['answers']['grid']} |", "",
        f"Median wall ratio search / grid: **{s['median_wall_ratio_search_over_grid']:.2f}**; answers agree"
        f" per repeat: {s['answers_agree_per_repeat']}.", "",
        *[f"- {n}" for n in result.get("notes", [])],
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ttft-budget", type=float, default=12.0, metavar="MS")
    parser.add_argument("--in-flight", type=int, default=4, help="the model's MAX_IN_FLIGHT (default 4)")
    parser.add_argument("--max-concurrency", type=int, default=16)
    parser.add_argument("--measurement-interval", type=int, default=1000, metavar="MS")
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--summarize-only", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.summarize_only:
        resummarize(args.out, summarize, markdown, args.note)
        return 0
    runs = []
    for repeat in range(args.repeats):
        for side in interleaved(repeat, ("search", "grid")):  # search first on even repeats, grid first on odd
            log(f"repeat {repeat + 1}/{args.repeats}: {side}")
            run = run_side(side, args, args.keep / f"{repeat:02d}-{side}" if args.keep else None)
            log(f"  {side}: {run['wall_s']:.1f} s, {run['points']} points, surely under: {run['surely_under']}")
            runs.append({**run, "repeat": repeat})
    result = {
        "benchmark": "ttft-search-vs-grid",
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git": git_facts(),
        "machine": machine_facts(),
        "settings": {
            k: getattr(args, k)
            for k in ("ttft_budget", "in_flight", "max_concurrency", "measurement_interval", "repeats")
        },
        "runs": runs,
        "notes": args.note,
    }
    result["summary"] = summarize(runs)
    write_results(result, args.out, markdown)
    print(json.dumps(result["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
