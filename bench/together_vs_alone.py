"""Benchmark: two CPU-bound models measured alone and measured together (issue 24's concurrent mode).

bench/models/spin_2ms keeps a core busy for 2 ms of CPU time per execution; it is loaded under two names, spin_a
and spin_b, so the two compete for this machine's cores. Each side is one run of our CLI, starting its own Triton,
with `--instance-counts 2 --concurrency C --export` (variants: each model's own config, 1 instance, and
`_config_0`, 2 instances):

  alone     `-m spin_a,spin_b`: each variant measured by itself, one after the other.
  together  `-m spin_a,spin_b --concurrent`: every combination of one variant per model (2 x 2) measured with both
            models under load over the same windows.

Recorded per variant: its throughput and 95% interval alone, and in each combination; whether together is lower
than alone with the intervals apart; each run's wall time, points, and the `Best together` answer.

    .venv/bin/python bench/together_vs_alone.py
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from common import PERF_ANALYZER, REPO, git_facts, log, machine_facts, run_timed, write_results
from ours_vs_model_analyzer import OURS

DEFAULT_OUT = REPO / "bench" / "results" / "together-vs-alone.json"
MODEL, NAMES = "spin_2ms", ("spin_a", "spin_b")


def repository(where: Path) -> Path:
    """spin_2ms under each of the two names (a model's config names its folder)."""
    for name in NAMES:
        shutil.copytree(REPO / "bench" / "models" / MODEL, where / name)
        config = where / name / "config.pbtxt"
        config.write_text(config.read_text().replace(f'name: "{MODEL}"', f'name: "{name}"'))
    return where


def run_side(side: str, models: Path, export: Path, concurrency: int, budget_ms: float) -> dict[str, Any]:
    cmd = [str(OURS), "profile", "--model-folder", str(models), "-m", ",".join(NAMES), "--instance-counts", "2",
           "--concurrency", str(concurrency), "--latency-budget", f"{budget_ms:g}",
           "--perf-analyzer-path", str(PERF_ANALYZER), "--export", "--export-path", str(export)]  # fmt: skip
    if side == "together":
        cmd.append("--concurrent")
    rc, wall, _, lines = run_timed(cmd, dict(os.environ), export.parent)
    rows = []
    with contextlib.suppress(OSError, ValueError):
        for p in json.loads((export / "analysis.json").read_text())["points"]:
            perf = p.get("perf") or {}
            if perf:
                rows.append({
                    "variant": p.get("variant") or p["model"], "with": " ".join(p.get("measured_with") or []),
                    "throughput": perf["throughput_infer_per_sec"],
                    "ci": [perf["throughput_ci_low"], perf["throughput_ci_high"]], "p99_ms": perf["latency_p99_ms"],
                    "cpu_util": (p.get("resources") or {}).get("max_cpu_utilization_pct"),
                })  # fmt: skip
    text = "\n".join(line for _, line in lines)
    best = re.search(r"^(Best together|Together, closest): (.*)$", text, re.M)
    return {"side": side, "rc": rc, "wall_s": wall, "rows": rows, "best_together": best[0] if best else None,
            "tail": [line for _, line in lines[-8:]]}  # fmt: skip


def compare(alone: dict[str, Any], together: dict[str, Any]) -> list[dict[str, Any]]:
    """Each variant's throughput together (in each company) against alone, and whether the intervals are apart."""
    by_alone = {r["variant"]: r for r in alone["rows"]}
    out = []
    for r in together["rows"]:
        a = by_alone.get(r["variant"])
        if a is None:
            continue
        out.append({
            "variant": r["variant"], "with": r["with"], "alone": a["throughput"], "alone_ci": a["ci"],
            "together": r["throughput"], "together_ci": r["ci"],
            "together_over_alone": r["throughput"] / a["throughput"],
            "surely_lower": r["ci"][1] < a["ci"][0],
        })  # fmt: skip
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Two CPU-bound models alone and together (issue 24)",
        "",
        f"{result['when']}, commit {result['git']['commit'][:10]}, {result['machine'].get('nproc')} cores. "
        f"`{MODEL}` (2 ms of CPU per execution) as spin_a and spin_b, `--instance-counts 2 --concurrency "
        f"{result['concurrency']} --latency-budget {result['budget_ms']:g}`; alone, then `--concurrent`. Written by "
        "bench/together_vs_alone.py.",
        "",
        "| variant | measured with | alone (infer/s, 95% CI) | together (infer/s, 95% CI) | together / alone "
        "| surely lower |",
        "|---|---|---|---|---|---|",
    ]
    for c in result["comparison"]:
        alone_ci, together_ci = c["alone_ci"], c["together_ci"]
        lines.append(f"| {c['variant']} | {c['with']} | {c['alone']:.0f} ({alone_ci[0]:.0f}-{alone_ci[1]:.0f}) "
                     f"| {c['together']:.0f} ({together_ci[0]:.0f}-{together_ci[1]:.0f}) | "
                     f"{c['together_over_alone']:.2f} | {'yes' if c['surely_lower'] else 'no'} |")  # fmt: skip
    for run in result["runs"]:
        lines.append("")
        lines.append(
            f"- {run['side']}: {run['wall_s']:.0f} s, {len(run['rows'])} points, rc {run['rc']}"
            + (f"; {run['best_together']}" if run["best_together"] else "")
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency-budget", type=float, default=50.0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="together-vs-alone-") as tmp:
        models = repository(Path(tmp) / "models")
        for side in ("alone", "together"):
            log(f"{side}")
            (Path(tmp) / side).mkdir()
            runs.append(run_side(side, models, Path(tmp) / side / "export", args.concurrency, args.latency_budget))
            log(f"  {runs[-1]['wall_s']:.0f} s, rc {runs[-1]['rc']}, {runs[-1]['best_together']}")
    result = {"when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "git": git_facts(),
              "machine": machine_facts(), "concurrency": args.concurrency, "budget_ms": args.latency_budget,
              "runs": runs, "comparison": compare(runs[0], runs[1])}  # fmt: skip
    write_results(result, args.out, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
