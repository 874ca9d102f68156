"""The HTML report: one self-contained page per analysis, from its AnalysisResult.

The page holds its data once, as JSON, and a small inline script (report_assets/report.js) draws the plots as
SVG and builds the sortable table from it in the browser; the summary on top is plain HTML written here. No
file, font or script is fetched: a Content-Security-Policy in the page forbids it, so the report opens the
same in an air-gapped cluster as anywhere. Why not a plotting library: plotly inlines 4.6 MB of JavaScript,
BokehJS about 1 MB, and matplotlib's SVG writes every point once per figure plus the table again; any of them
would push a 1000-point report past what the results ConfigMap (1 MiB with the CSV files) can hold. Here each
point's numbers appear once, rounded as in the CSV (README: "The HTML report" gives the sizes).

Pure: no I/O beyond reading this package's own two asset files.
"""

from __future__ import annotations

import functools
import html
import json
import math
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from modelanalysis.core.load import Load, number_text
from modelanalysis.core.objectives import choose_best, describe_rule
from modelanalysis.core.report import inference_columns, inference_row, load_column
from modelanalysis.core.results import AnalysisResult, ModelStatus, PointResult, PointStatus
from modelanalysis.core.server_metrics import ResourceMetrics

REPORT_HTML = "report.html"

# What a reader is told instead of an empty axis.
NO_GPU_REASON = (
    "No GPU metrics: Triton exported no nv_gpu_* series while this analysis ran (no GPU visible to the server, "
    "or GPU metrics turned off), so GPU utilization, memory and power are not plotted."
)
NO_MEMORY_UTILIZATION_REASON = (
    "Memory utilization is not plotted: it comes from DCGM through Prometheus, and none was configured "
    "(CLI: --prometheus-url; operator: the chart's prometheusUrl)."
)
NO_CPU_REASON = "No CPU metrics: Triton exported no nv_cpu_* series while this analysis ran."
NO_CI_REASON = (
    "No confidence intervals: these results come from before intervals were measured, so points carry no "
    "error bars."
)
NO_MEASURED_REASON = "No point was measured, so there is nothing to plot."

# Nothing may be fetched: the page works the same with no network, and a test can tell if it ever tried.
CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
DIGITS = 3  # as the CSV's float_format


@functools.cache
def _asset(name: str) -> str:
    return resources.files("modelanalysis.core").joinpath("report_assets", name).read_text(encoding="utf-8")


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, DIGITS)
    return value


def best_points(result: AnalysisResult) -> dict[str, int]:
    """Each model's best point under the analysis's objective and constraints (the same choice the CLI and the
    operator's status report), as an index into result.points."""
    index = {p.point.key: i for i, p in enumerate(result.points)}
    choice = choose_best(result.points, result.objective, result.constraints)
    return {b.model: index[b.key] for b in choice.per_model if b.key in index}


def gpu_uuids(result: AnalysisResult) -> list[str]:
    """Every GPU the analysis saw, in the order first seen (baseline, then points)."""
    seen: dict[str, None] = {}
    for resources_ in [result.baseline, *(p.resources for p in result.points)]:
        for g in resources_.gpus if resources_ else []:
            seen.setdefault(g.gpu_uuid, None)
    return list(seen)


def _resources(result: AnalysisResult) -> list[ResourceMetrics]:
    return [r for r in [result.baseline, *(p.resources for p in result.points)] if r is not None]


def empty_reasons(result: AnalysisResult) -> dict[str, str]:
    """Why a group of plots is left out, by group: gpu, memutil, cpu, ci, measured."""
    all_resources = _resources(result)
    gpus = [g for r in all_resources for g in r.gpus]
    reasons: dict[str, str] = {}
    measured = [p for p in result.points if p.status == PointStatus.MEASURED and p.perf]
    if not measured:
        reasons["measured"] = NO_MEASURED_REASON
    if not any(g.max_utilization_pct is not None or g.max_memory_used_mb is not None for g in gpus):
        reasons["gpu"] = NO_GPU_REASON
    if not any(g.max_memory_utilization_pct is not None for g in gpus):
        # The engine's note says why in this run's own words (no Prometheus, or no DCGM sample in a window).
        note = next((n for n in result.notes if n.startswith("Max Memory Utilization is empty")), None)
        reasons["memutil"] = note or NO_MEMORY_UTILIZATION_REASON
    if not any(r.max_cpu_utilization_pct is not None or r.max_cpu_memory_used_mb is not None for r in all_resources):
        reasons["cpu"] = NO_CPU_REASON
    if measured and all(p.perf and p.perf.throughput_ci_low is None for p in measured):
        reasons["ci"] = NO_CI_REASON
    return reasons


def report_data(result: AnalysisResult) -> dict[str, Any]:
    """What the page's script draws from: the CSV's columns and rows (strings interned), per-GPU numbers,
    the baseline, the best points and the reasons for empty plots."""
    strings: dict[str, int] = {}

    def intern(value: str) -> int:
        return strings.setdefault(value, len(strings))

    table = [
        inference_row(p, result.outcome(p.variant_name, p.triton_version), result.constraints, result.triton_version)
        for p in result.points
    ]
    # Text columns hold indexes into `strings`: model names, config paths and sentences repeat down a column.
    columns = inference_columns(result)
    text_columns = {i for i, c in enumerate(columns) if any(isinstance(row[c], str) for row in table)}
    rows = [
        [intern(row[c] or "") if i in text_columns else _round(row[c]) for i, c in enumerate(columns)]
        for row in table
    ]
    uuids = gpu_uuids(result)

    def gpu_values(r: ResourceMetrics | None) -> list[list[Any]]:
        return [
            [uuids.index(g.gpu_uuid), *(_round(v) for v in (g.max_utilization_pct, g.max_memory_used_mb,
                                                            g.max_power_watts, g.max_memory_utilization_pct))]
            for g in (r.gpus if r else [])
        ]  # fmt: skip

    baseline = result.baseline
    return {
        "columns": columns,
        "text": sorted(text_columns),
        "strings": list(strings),
        "rows": rows,
        "gpus": uuids,
        "pointGpus": [gpu_values(p.resources) for p in result.points],
        "baseline": {
            "gpus": gpu_values(baseline),
            "cpuUtil": _round(baseline.max_cpu_utilization_pct),
            "cpuMem": _round(baseline.max_cpu_memory_used_mb),
        }
        if baseline
        else None,
        "best": sorted(best_points(result).values()),
        "p99Budget": result.constraints.p99_latency_ms.max if result.constraints.p99_latency_ms else None,
        "empty": empty_reasons(result),
        # Streaming models' budgets, only where given (an analysis without them draws as it always did).
        **({"ttftBudget": c.ttft_p99_ms.max} if (c := result.constraints).ttft_p99_ms else {}),
        **({"itlBudget": c.itl_p99_ms.max} if c.itl_p99_ms else {}),
    }


def _json_for_script(data: Any) -> str:
    # Inside <script>, "</script>" or "<!--" in a model name or an error would end or confuse the element.
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


# -- the summary, as HTML ---------------------------------------------------------------------------------------
def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def _when(timestamp: float | None) -> str:
    return "" if timestamp is None else datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _span(result: AnalysisResult) -> tuple[float | None, float | None]:
    """When the analysis started and finished; from its points where the result does not say."""
    starts = [p.started_at for p in result.points if p.started_at is not None]
    ends = [p.finished_at for p in result.points if p.finished_at is not None]
    start = result.started_at if result.started_at is not None else min(starts, default=None)
    end = result.finished_at if result.finished_at is not None else max(ends, default=None)
    return start, end


def _ci(p: PointResult) -> str:
    perf = p.perf
    if perf is None or perf.throughput_ci_low is None or perf.throughput_ci_high is None:
        return ""
    half = (perf.throughput_ci_high - perf.throughput_ci_low) / 2
    return f"±{100 * half / perf.throughput_infer_per_sec:.1f}%" if perf.throughput_infer_per_sec else ""


def model_names(result: AnalysisResult) -> str:
    """The models profiled, each once, with how many config variants it was profiled as."""
    variants: dict[str, int] = {}
    for m in result.models:
        variants[m.model or m.name] = variants.get(m.model or m.name, 0) + (1 if m.model else 0)
    return ", ".join(f"{name} ({n} config variants)" if n else name for name, n in variants.items())


def _facts(result: AnalysisResult) -> str:
    measured = [p for p in result.points if p.status == PointStatus.MEASURED]
    failed = [p for p in result.points if p.status == PointStatus.FAILED]
    skipped = sum(len(m.skipped) for m in result.models)
    unconverged = [p for p in measured if p.perf and p.perf.converged is False]
    start, end = _span(result)
    uuids = gpu_uuids(result)
    versions = result.triton_version + (f" (server {result.server_version})" if result.server_version else "")
    points = f"{len(measured)} measured"
    for count, word in ((len(failed), "failed"), (skipped, "skipped"), (len(unconverged), "not converged")):
        if count:
            points += f", {count} {word}"
    facts = [
        ("Models", model_names(result) or "none"),
        ("Points", points),
        ("Triton", versions),
        ("GPUs", ", ".join(uuids) if uuids else "none seen (CPU only)"),
        ("Started", _when(start)),
        ("Took", _duration(end - start) if start is not None and end is not None else ""),
    ]
    if result.interrupted:
        facts.append(("Interrupted", "yes: stopped before every point was measured"))
    return "<dl class=facts>" + "".join(f"<dt>{_e(k)}<dd>{_e(v)}" for k, v in facts if v) + "</dl>"


def _best_table(result: AnalysisResult) -> str:
    best = best_points(result)
    if not best:
        return f"<p class=empty>{_e(NO_MEASURED_REASON)}</p>"
    choice = choose_best(result.points, result.objective, result.constraints)
    chosen = choice.overall
    overall = next((i for i, p in enumerate(result.points) if chosen and p.point.key == chosen.key), None)
    rows = []
    for model, index in best.items():
        p = result.points[index]
        outcome = result.outcome(p.variant_name, p.triton_version) if p.variant else None
        if outcome is not None:
            model = f"{model} ({p.variant}: {outcome.changes})"
        perf = p.perf
        assert perf is not None
        gpus = p.resources.gpus if p.resources else []
        util = max((g.max_utilization_pct for g in gpus if g.max_utilization_pct is not None), default=None)
        mem = max((g.max_memory_used_mb for g in gpus if g.max_memory_used_mb is not None), default=None)
        mark = "★ overall" if index == overall and len(best) > 1 else "★"
        load = number_text(p.load.value)
        rows.append(
            f"<tr class=best data-point={index}><td>{mark}<td>{_e(model)}<td>{p.batch_size}<td>{load}"
            f"<td>{_num(perf.throughput_infer_per_sec)}<td>{_e(_ci(p))}<td>{_num(perf.latency_p99_ms, 3)}"
            f"<td>{_num(util)}<td>{_num(mem)}"
        )
    head = "".join(
        f"<th>{c}"
        for c in ("", "Model", "Batch", load_column(result), "Throughput (infer/sec)", "95% CI", "p99 Latency (ms)",
                  "Max GPU Util (%)", "Max GPU Mem (MB)")
    )  # fmt: skip
    # Beside the answer: a better-ranked point only probably within the constraints, and where the p99 budget
    # falls at each batch size (core/budget.py).
    beside = [f"<li>{_e(chosen.probably_within)} ranks higher but is only probably within the constraints (a 95% "
              "interval straddles a bound): not chosen"] if chosen and chosen.probably_within else []  # fmt: skip
    beside += [f"<li class=boundary>{_e(b.sentence())}" for b in choice.boundaries]
    if choice.together is not None:  # models measured together: their best combination
        label = "Best together" if choice.together.satisfies_constraints else "Together, closest"
        beside.append(f"<li class=together>{label}: {_e(choice.together.where)}: {_e(choice.together.why)}")
    return (
        f"<table class=summary id=best><thead><tr>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
        f"<p class=hint>{_e(describe_rule(result.objective, result.constraints))}</p>"
        + (f"<ul class=boundaries>{''.join(beside)}</ul>" if beside else "")
    )


MAX_LISTED = 50  # failed or skipped points listed one by one; past that the table's Error column has the rest


def _capped(items: list[str], what: str) -> list[str]:
    if len(items) <= MAX_LISTED:
        return items
    rest = len(items) - MAX_LISTED
    return [*items[:MAX_LISTED], f"<li>... and {rest} more {what} (every point is in the table below)"]


def _problems(result: AnalysisResult) -> str:
    items: list[str] = []
    for m in result.models:
        if m.status == ModelStatus.LOAD_FAILED:
            items.append(f"<li class=failed><b>{_e(m.name)}</b> failed to load: {_e(m.error or '')}")
        elif m.status == ModelStatus.REFUSED:
            items.append(f"<li class=failed><b>{_e(m.name)}</b> was refused: {_e(m.error or '')}")
        elif m.status == ModelStatus.INTERRUPTED:
            items.append(f"<li class=failed><b>{_e(m.name)}</b> was interrupted before all its points were measured")
    failed = [
        f"<li class=failed><b>{_e(p.point.key)}</b> failed: {_e(p.error or '')}"
        for p in result.points
        if p.status == PointStatus.FAILED
    ]
    items += _capped(failed, "failed points")
    # One line per model (or variant), batch size and reason: a search that stops early skips many steps.
    grouped: dict[tuple[str, int, str], list[Load]] = {}
    for m in result.models:
        for s in m.skipped:
            grouped.setdefault((m.name, s.point.batch_size, s.reason), []).append(s.point.load)
    skipped = [
        f"<li class=skipped><b>{_e(name)} b{batch} {_e(', '.join(load.key_part for load in steps))}</b> skipped: "
        f"{_e(reason)}"
        for (name, batch, reason), steps in grouped.items()
    ]
    items += _capped(skipped, "skipped points")
    # Not converged: one line per model (a large sweep on a busy machine may have hundreds); each point's
    # reason is in the table's Convergence column.
    by_model: dict[str, list[PointResult]] = {}
    for p in result.points:
        if p.perf is not None and p.perf.converged is False:
            by_model.setdefault(p.variant_name, []).append(p)
    for model, points in by_model.items():
        first = points[0].perf.convergence if points[0].perf else None
        where = ", ".join(f"b{p.batch_size}/{p.load.key_part}" for p in points)
        items.append(
            f"<li class=unconverged><b>{_e(model)}</b>: {len(points)} point{'s' if len(points) > 1 else ''} did not "
            f"converge ({_e(where)}); their numbers stand with the wider interval. First: "
            f"{_e(first or 'no reason recorded')}; each point's reason is in the Convergence column."
        )
    notes = [f"<li class=note>{_e(n)}" for n in result.notes]
    # A pipeline's config search: what each step of its walk set, and why (core/composing.py).
    notes += [f"<li class=note>Walk: <b>{_e(m.name)}</b> ({_e(m.changes or 'not measured')}): {_e(m.reason)}"
              for m in result.models if m.reason]  # fmt: skip
    out = ""
    if items:
        out += f"<h3>Failed, skipped, not converged</h3><ul class=problems>{''.join(items)}</ul>"
    else:
        out += "<p>Every planned point was measured and converged.</p>"
    if notes:
        out += f"<h3>Notes</h3><ul>{''.join(notes)}</ul>"
    return out


def _baseline(result: AnalysisResult) -> str:
    b = result.baseline
    if b is None:
        return "<p class=empty>No baseline: the server alone was not measured (the run stopped before it).</p>"
    rows = [
        f"<tr><td>{_e(g.gpu_uuid)}<td>{_num(g.max_utilization_pct)}<td>{_num(g.max_memory_used_mb)}"
        f"<td>{_num(g.max_power_watts)}"
        for g in b.gpus
    ]
    gpu = (
        "<table class=summary><thead><tr><th>GPU<th>Utilization (%)<th>Memory (MB)<th>Power (W)</thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else ""
    )
    cpu = (
        f"<p>CPU utilization {_num(b.max_cpu_utilization_pct)}%, CPU memory {_num(b.max_cpu_memory_used_mb)} MB.</p>"
        if b.max_cpu_utilization_pct is not None or b.max_cpu_memory_used_mb is not None
        else ""
    )
    return (
        "<p>The server with no model loaded (maxima over the baseline window); the resource plots draw it as a "
        f"dashed line.</p>{gpu}{cpu}"
    )


def render_html(result: AnalysisResult, title: str | None = None) -> str:
    """The whole report page for `result`; `title` names the analysis (the operator's resource name)."""
    models = model_names(result) or "no models"
    heading = f"{title}: {models}" if title else models
    data = _json_for_script(report_data(result))
    return f"""<!doctype html>
<html lang=en>
<head>
<meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<meta http-equiv=Content-Security-Policy content="{CSP}">
<meta name=generator content="model-analyzer">
<title>Model analysis: {_e(heading)}</title>
<style>{_asset("report.css")}</style>
</head>
<body>
<header><h1>Model analysis: {_e(heading)}</h1>{_facts(result)}</header>
<section id=summary><h2>Best configuration per model</h2>{_best_table(result)}{_problems(result)}</section>
<section id=baseline><h2>Server-only baseline</h2>{_baseline(result)}</section>
<section id=plots><h2>Plots</h2><p class=hint>Error bars: 95% confidence intervals (README, "How sure a number is").
Hover a point for its numbers; ★ marks each model's best point.</p><div id=charts></div></section>
<section id=points><h2>Every point</h2><p class=hint>The columns of metrics-model-inference.csv. Click a column to
sort.</p><input id=filter type=search placeholder="Filter rows" aria-label="Filter rows"><div class=scroll>
<table id=table></table></div></section>
<noscript><p class=empty>The plots and the table are drawn by the page's own inline script; allow scripts for
this file to see them.</p></noscript>
<script type=application/json id=data>{data}</script>
<script>{_asset("report.js")}</script>
</body>
</html>
"""
