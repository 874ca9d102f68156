"""The CSV files, in NVIDIA Model Analyzer's names and columns, followed by this project's own columns.

A value the machine could not measure (GPU columns without a GPU) is an empty cell, never 0.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from modelanalysis.core.budget import Side, delivery_verdict
from modelanalysis.core.load import CSV_COLUMN
from modelanalysis.core.objectives import satisfies
from modelanalysis.core.results import AnalysisResult, ModelOutcome, PointResult
from modelanalysis.core.server_metrics import GpuMetrics
from modelanalysis.core.spec import Constraints

INFERENCE_CSV = "metrics-model-inference.csv"
GPU_CSV = "metrics-model-gpu.csv"
SERVER_ONLY_CSV = "metrics-server-only.csv"
STEPS_CSV = "metrics-model-steps.csv"  # ensembles only: each composing model's share of each point

SERVER_ONLY_MODEL = "triton-server"
LOAD_COLUMN = "Concurrency"  # the load's column in the lists below; core/load.CSV_COLUMN names it per kind

# Open-loop load: whether the offered rate was delivered, and what perf_analyzer sent where it fell behind (in
# request-rate analyses only).
OPEN_LOOP_COLUMNS = ("Delivered", "Send Rate (req/sec)", "Delayed Requests (%)")
INPUTS_COLUMN = "Inputs"
MEASURED_WITH_COLUMN = "Measured With"  # models measured at the same time (concurrent mode), in such analyses only
# Streaming (decoupled) models, in analyses that measured one: Model Analyzer's LLM columns (its header for output
# token throughput says infer/sec; the unit is tokens per second), then how sure they are and tokens per request.
STREAMING_COLUMNS = (
    "Avg Time To First Token (ms)", "p50 Time To First Token (ms)", "p90 Time To First Token (ms)",
    "p95 Time To First Token (ms)", "p99 Time To First Token (ms)",
    "Avg Inter Token Latency (ms)", "p50 Inter Token Latency (ms)", "p90 Inter Token Latency (ms)",
    "p95 Inter Token Latency (ms)", "p99 Inter Token Latency (ms)",
    "Output Token Throughput (infer/sec)",
)  # fmt: skip
STREAMING_SURENESS_COLUMNS = (
    "p99 Time To First Token 95% CI Low (ms)", "p99 Time To First Token 95% CI High (ms)",
    "p99 Inter Token Latency 95% CI Low (ms)", "p99 Inter Token Latency 95% CI High (ms)",
    "Output Token Throughput 95% CI Low (tokens/sec)", "Output Token Throughput 95% CI High (tokens/sec)",
    "Tokens per Request",
)  # fmt: skip

INFERENCE_COLUMNS = [
    # Model Analyzer's columns
    "Model", "Batch", "Concurrency", "Model Config Path", "Instance Group", "Max Batch Size",
    "Satisfies Constraints", "Throughput (infer/sec)", "p99 Latency (ms)",
    # ours
    "p50 Latency (ms)", "p90 Latency (ms)", "p95 Latency (ms)", "Avg Latency (ms)",
    *STREAMING_COLUMNS,
    "Server Throughput (infer/sec)", "Max GPU Utilization (%)", "Max GPU Memory (MB)",
    "Max Memory Utilization (%)", "Max GPU Power (W)", "Max CPU Utilization (%)", "Max CPU Memory (MB)",
    "Status", "Error",
    # how sure each point is (README: "How sure a number is")
    "Throughput 95% CI Low (infer/sec)", "Throughput 95% CI High (infer/sec)",
    "p99 Latency 95% CI Low (ms)", "p99 Latency 95% CI High (ms)",
    *STREAMING_SURENESS_COLUMNS,
    "Measurement Windows", "Requests", "Converged", "Convergence",
    # where the point ran, and the load generator's own CPU use (README: "Where the load generator runs")
    "Server Node", "Load Generator Node", "Load Generator Placement",
    "Load Generator CPU (cores)", "Load Generator CPU Budget (cores)", "Load Generator Bottleneck",
    *OPEN_LOOP_COLUMNS,
    # what perf_analyzer was given to send the model (its flags), in analyses that gave it any
    INPUTS_COLUMN,
    MEASURED_WITH_COLUMN,
    # the Triton release the point ran on (several when spec.triton.versions compares them)
    "Triton Version",
]  # fmt: skip

GPU_COLUMNS = [
    "Model", "GPU UUID", "Batch", "Concurrency", "Model Config Path", "Instance Group",
    "Satisfies Constraints", "GPU Memory Usage (MB)", "GPU Utilization (%)", "GPU Power Usage (W)",
    "Memory Utilization (%)", "Triton Version",
]  # fmt: skip

STEP_COLUMNS = [
    "Model", "Batch", "Concurrency", "Model Config Path", "Step", "Requests", "Executions", "Avg Queue (ms)",
    "Avg Compute Input (ms)", "Avg Compute Infer (ms)", "Avg Compute Output (ms)", "Avg Request (ms)", "Bottleneck",
    "Triton Version",
]  # fmt: skip

SERVER_ONLY_COLUMNS = [
    "Model", "GPU UUID", "GPU Memory Usage (MB)", "GPU Utilization (%)", "GPU Power Usage (W)",
    "Memory Utilization (%)", "CPU Utilization (%)", "CPU Memory Usage (MB)",
]  # fmt: skip


# Each number of a point's measurement in metrics-model-inference.csv: its column and PerfMeasurement's field
# (INFERENCE_COLUMNS says where the column goes). A new metric is a line here and a place in that list.
PERF_IN_CSV: tuple[tuple[str, str], ...] = (
    ("Throughput (infer/sec)", "throughput_infer_per_sec"),
    ("p99 Latency (ms)", "latency_p99_ms"),
    ("p50 Latency (ms)", "latency_p50_ms"),
    ("p90 Latency (ms)", "latency_p90_ms"),
    ("p95 Latency (ms)", "latency_p95_ms"),
    ("Avg Latency (ms)", "latency_avg_ms"),
    ("Throughput 95% CI Low (infer/sec)", "throughput_ci_low"),
    ("Throughput 95% CI High (infer/sec)", "throughput_ci_high"),
    ("p99 Latency 95% CI Low (ms)", "latency_p99_ci_low_ms"),
    ("p99 Latency 95% CI High (ms)", "latency_p99_ci_high_ms"),
    ("Measurement Windows", "windows"),
    ("Requests", "requests"),
    ("Load Generator CPU (cores)", "load_generator_cpu_cores"),
    ("Load Generator CPU Budget (cores)", "load_generator_cpu_budget_cores"),
    ("Send Rate (req/sec)", "send_rate_per_sec"),
    ("Delayed Requests (%)", "delayed_requests_pct"),
    *zip(STREAMING_COLUMNS + STREAMING_SURENESS_COLUMNS, (
        "ttft_avg_ms", "ttft_p50_ms", "ttft_p90_ms", "ttft_p95_ms", "ttft_p99_ms",
        "itl_avg_ms", "itl_p50_ms", "itl_p90_ms", "itl_p95_ms", "itl_p99_ms",
        "output_tokens_per_sec",
        "ttft_p99_ci_low_ms", "ttft_p99_ci_high_ms", "itl_p99_ci_low_ms", "itl_p99_ci_high_ms",
        "output_tokens_ci_low", "output_tokens_ci_high", "tokens_per_request",
    ), strict=True),
)  # fmt: skip


def _max_over_gpus(gpus: list[GpuMetrics], field: str) -> float | None:
    values = [getattr(g, field) for g in gpus if getattr(g, field) is not None]
    return max(values) if values else None


def _model_columns(outcome: ModelOutcome | None) -> dict[str, Any]:
    return {
        "Model Config Path": outcome.config_path if outcome else "",
        "Instance Group": outcome.instance_group if outcome else "",
    }


def _satisfies(p: PointResult, constraints: Constraints) -> str:
    return "Yes" if satisfies(p, constraints) else "No"


def inference_row(
    p: PointResult, outcome: ModelOutcome | None, constraints: Constraints, triton_version: str = ""
) -> dict[str, Any]:
    """One point as metrics-model-inference.csv's row (the HTML report's table uses it too). `triton_version`:
    the analysis' one version, for points that do not carry theirs."""
    gpus = p.resources.gpus if p.resources else []
    perf = p.perf
    return {
        "Model": p.model,
        "Batch": p.batch_size,
        p.load.csv_column: p.load.value,
        **_model_columns(outcome),
        "Max Batch Size": outcome.max_batch_size if outcome else None,
        "Satisfies Constraints": _satisfies(p, constraints),
        **{column: getattr(perf, field) if perf else None for column, field in PERF_IN_CSV},
        "Server Throughput (infer/sec)": p.server_throughput_infer_per_sec,
        "Max GPU Utilization (%)": _max_over_gpus(gpus, "max_utilization_pct"),
        "Max GPU Memory (MB)": _max_over_gpus(gpus, "max_memory_used_mb"),
        "Max Memory Utilization (%)": _max_over_gpus(gpus, "max_memory_utilization_pct"),
        "Max GPU Power (W)": _max_over_gpus(gpus, "max_power_watts"),
        "Max CPU Utilization (%)": p.resources.max_cpu_utilization_pct if p.resources else None,
        "Max CPU Memory (MB)": p.resources.max_cpu_memory_used_mb if p.resources else None,
        "Status": p.status.value,
        "Error": p.error or "",
        "Converged": _yes_no(perf.converged if perf else None),
        "Convergence": (perf.convergence or "") if perf else "",
        "Server Node": p.placement.server_node or "",
        "Load Generator Node": p.placement.load_generator_node or "",
        "Load Generator Placement": p.placement.load_generator_placement or "",
        "Load Generator Bottleneck": _yes_no(perf.load_generator_bottleneck if perf else None),
        "Delivered": _yes_no(None if (delivery := delivery_verdict(p)) is None else delivery.side != Side.OVER),
        INPUTS_COLUMN: (outcome.inputs or "") if outcome else "",
        MEASURED_WITH_COLUMN: " ".join(p.measured_with or []),
        "Triton Version": p.triton_version or triton_version,
    }


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("Yes" if value else "No")


def _gpu_rows(
    p: PointResult, outcome: ModelOutcome | None, constraints: Constraints, triton_version: str
) -> list[dict[str, Any]]:
    base = {
        "Triton Version": p.triton_version or triton_version,
        "Model": p.model,
        "Batch": p.batch_size,
        p.load.csv_column: p.load.value,
        **_model_columns(outcome),
        "Satisfies Constraints": _satisfies(p, constraints),
    }
    gpus = p.resources.gpus if p.resources else []
    if not gpus:
        # No GPU series: one row whose GPU cells are empty, so each point still appears once.
        return [{**base, "GPU UUID": ""}]
    return [
        {
            **base,
            "GPU UUID": g.gpu_uuid,
            "GPU Memory Usage (MB)": g.max_memory_used_mb,
            "GPU Utilization (%)": g.max_utilization_pct,
            "GPU Power Usage (W)": g.max_power_watts,
            "Memory Utilization (%)": g.max_memory_utilization_pct,
        }
        for g in gpus
    ]


def load_column(result: AnalysisResult) -> str:
    """The load's column: Concurrency, or Request Rate for a rate sweep (an analysis offers one kind of load)."""
    return result.points[0].load.csv_column if result.points else LOAD_COLUMN


def _with_load_column(columns: list[str], result: AnalysisResult) -> list[str]:
    """Model Analyzer's columns with the load's own in Concurrency's place; the open-loop columns only where the
    load is a rate, Inputs only where a model was sent more than made-up data, and the streaming columns only
    where a model streamed."""
    load = load_column(result)
    sent = any(m.inputs for m in result.models)
    streamed = any(p.perf is not None and p.perf.streamed for p in result.points)
    together = any(p.measured_with for p in result.points)
    left_out = {
        *(() if together else (MEASURED_WITH_COLUMN,)),
        *(OPEN_LOOP_COLUMNS if load == LOAD_COLUMN else ()),
        *(() if sent else (INPUTS_COLUMN,)),
        *(() if streamed else STREAMING_COLUMNS + STREAMING_SURENESS_COLUMNS),
    }
    return [load if c == LOAD_COLUMN else c for c in columns if c not in left_out]


def inference_columns(result: AnalysisResult) -> list[str]:
    return _with_load_column(INFERENCE_COLUMNS, result)


def inference_frame(result: AnalysisResult) -> pd.DataFrame:
    rows = [
        inference_row(p, result.outcome(p.variant_name, p.triton_version), result.constraints, result.triton_version)
        for p in result.points
    ]
    return pd.DataFrame(rows, columns=inference_columns(result))


def gpu_frame(result: AnalysisResult) -> pd.DataFrame:
    rows = [
        row
        for p in result.points
        for row in _gpu_rows(p, result.outcome(p.variant_name, p.triton_version), result.constraints,
                             result.triton_version)
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=_with_load_column(GPU_COLUMNS, result))


def steps_frame(result: AnalysisResult) -> pd.DataFrame:
    """An ensemble's points, one row per point and composing model (core/pipeline.py)."""
    rows = []
    for p in result.points:
        outcome = result.outcome(p.variant_name, p.triton_version)
        for s in p.steps or []:
            rows.append({
                "Model": p.model, "Batch": p.batch_size, p.load.csv_column: p.load.value,
                "Model Config Path": outcome.config_path if outcome else "", "Step": s.model,
                "Requests": s.requests, "Executions": s.executions, "Avg Queue (ms)": s.queue_ms,
                "Avg Compute Input (ms)": s.compute_input_ms, "Avg Compute Infer (ms)": s.compute_infer_ms,
                "Avg Compute Output (ms)": s.compute_output_ms, "Avg Request (ms)": s.request_ms,
                "Bottleneck": _yes_no(s.bottleneck), "Triton Version": p.triton_version or result.triton_version,
            })  # fmt: skip
    return pd.DataFrame(rows, columns=_with_load_column(STEP_COLUMNS, result))


def server_only_frame(result: AnalysisResult) -> pd.DataFrame:
    baseline = result.baseline
    if baseline is None:
        return pd.DataFrame([], columns=SERVER_ONLY_COLUMNS)
    cpu = {
        "Model": SERVER_ONLY_MODEL,
        "CPU Utilization (%)": baseline.max_cpu_utilization_pct,
        "CPU Memory Usage (MB)": baseline.max_cpu_memory_used_mb,
    }
    if not baseline.gpus:
        rows = [{**cpu, "GPU UUID": ""}]
    else:
        rows = [
            {
                **cpu,
                "GPU UUID": g.gpu_uuid,
                "GPU Memory Usage (MB)": g.max_memory_used_mb,
                "GPU Utilization (%)": g.max_utilization_pct,
                "GPU Power Usage (W)": g.max_power_watts,
                "Memory Utilization (%)": g.max_memory_utilization_pct,
            }
            for g in baseline.gpus
        ]
    return pd.DataFrame(rows, columns=SERVER_ONLY_COLUMNS)


def _integral(value: Any) -> bool:
    return float(value).is_integer()


def _to_csv(frame: pd.DataFrame) -> str:
    # Integers stay integers when a column has empty cells (pandas would print 8.0 otherwise).
    for column in ("Batch", *CSV_COLUMN.values(), "Max Batch Size", "Measurement Windows", "Requests", "Executions"):
        if column in frame and frame[column].dropna().map(_integral).all():
            frame[column] = frame[column].astype("Int64")
    return frame.to_csv(index=False, float_format="%.3f")


def csv_files(result: AnalysisResult) -> dict[str, str]:
    """Each CSV file's name and whole content (the steps file only where an ensemble was measured)."""
    files = {
        INFERENCE_CSV: _to_csv(inference_frame(result)),
        GPU_CSV: _to_csv(gpu_frame(result)),
        SERVER_ONLY_CSV: _to_csv(server_only_frame(result)),
    }
    if any(p.steps for p in result.points):
        files[STEPS_CSV] = _to_csv(steps_frame(result))
    return files
