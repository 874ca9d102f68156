"""The CSV files: Model Analyzer's file names and columns first, integers as integers, empty cells for
what was not measured (never 0)."""

from __future__ import annotations

import csv
import io

import pytest

from modelanalysis.core.perf import PerfMeasurement
from modelanalysis.core.report import (
    GPU_COLUMNS,
    GPU_CSV,
    INFERENCE_COLUMNS,
    INFERENCE_CSV,
    INPUTS_COLUMN,
    MEASURED_WITH_COLUMN,
    OPEN_LOOP_COLUMNS,
    SERVER_ONLY_COLUMNS,
    SERVER_ONLY_CSV,
    STREAMING_COLUMNS,
    STREAMING_SURENESS_COLUMNS,
    csv_files,
)
from modelanalysis.core.results import AnalysisResult, ModelOutcome, ModelStatus, PointResult, PointStatus
from modelanalysis.core.server_metrics import GpuMetrics, ResourceMetrics
from modelanalysis.core.spec import Constraints

MA_INFERENCE_HEADER = (
    "Model,Batch,Concurrency,Model Config Path,Instance Group,Max Batch Size,Satisfies Constraints,"
    "Throughput (infer/sec),p99 Latency (ms)"
)
MA_GPU_HEADER = (
    "Model,GPU UUID,Batch,Concurrency,Model Config Path,Instance Group,Satisfies Constraints,"
    "GPU Memory Usage (MB),GPU Utilization (%),GPU Power Usage (W)"
)
MA_SERVER_ONLY_HEADER = "Model,GPU UUID,GPU Memory Usage (MB),GPU Utilization (%),GPU Power Usage (W)"

PERF_METRIC_COLUMNS = [
    "Throughput (infer/sec)", "p99 Latency (ms)", "p50 Latency (ms)", "p90 Latency (ms)", "p95 Latency (ms)",
    "Avg Latency (ms)",
]  # fmt: skip
RESOURCE_METRIC_COLUMNS = [
    "Server Throughput (infer/sec)", "Max GPU Utilization (%)", "Max GPU Memory (MB)", "Max Memory Utilization (%)",
    "Max GPU Power (W)", "Max CPU Utilization (%)", "Max CPU Memory (MB)",
]  # fmt: skip

PERF = PerfMeasurement(
    throughput_infer_per_sec=2620.35,
    latency_p50_ms=0.263,
    latency_p90_ms=0.361,
    latency_p95_ms=0.399,
    latency_p99_ms=2.603,
    latency_avg_ms=0.375,
)

# A concurrency analysis's columns: the open-loop ones appear only when the load is a request rate.
CLOSED_LOOP_COLUMNS = [
    c for c in INFERENCE_COLUMNS
    if c not in (*OPEN_LOOP_COLUMNS, INPUTS_COLUMN, MEASURED_WITH_COLUMN, *STREAMING_COLUMNS,
                 *STREAMING_SURENESS_COLUMNS)
]  # fmt: skip
CPU_ONLY = ResourceMetrics(max_cpu_utilization_pct=62.5, max_cpu_memory_used_mb=810.14, sample_count=3)
TWO_GPUS = ResourceMetrics(
    gpus=[
        GpuMetrics(gpu_uuid="GPU-a", max_utilization_pct=40.0, max_memory_used_mb=1000.5, max_power_watts=100.0),
        GpuMetrics(gpu_uuid="GPU-b", max_utilization_pct=90.0, max_memory_used_mb=500.25, max_power_watts=250.125,
                   max_memory_utilization_pct=33.0),
    ],
    max_cpu_utilization_pct=12.0,
    max_cpu_memory_used_mb=700.0,
)  # fmt: skip


def outcome(name: str = "add_sub", max_batch_size: int = 8) -> ModelOutcome:
    return ModelOutcome(
        name=name,
        status=ModelStatus.PROFILED,
        max_batch_size=max_batch_size,
        instance_group="1:CPU",
        config_path=f"/models/{name}/config.pbtxt",
    )


def measured(
    batch: int = 1, concurrency: int = 1, resources: ResourceMetrics = CPU_ONLY, model: str = "add_sub"
) -> PointResult:
    return PointResult(
        model=model,
        batch_size=batch,
        concurrency=concurrency,
        status=PointStatus.MEASURED,
        perf=PERF,
        resources=resources,
        server_throughput_infer_per_sec=2600.0,
    )


def failed(batch: int = 8, concurrency: int = 4, resources: ResourceMetrics | None = None) -> PointResult:
    return PointResult(
        model="add_sub",
        batch_size=batch,
        concurrency=concurrency,
        status=PointStatus.FAILED,
        error="perf_analyzer failed (exit 2): Failed to obtain stable measurement",
        resources=resources,
    )


def result(*points: PointResult, baseline: ResourceMetrics | None = CPU_ONLY) -> AnalysisResult:
    models = [outcome(m) for m in dict.fromkeys(p.model for p in points)]
    return AnalysisResult(triton_version="24.08-py3", baseline=baseline, models=models, points=list(points))


def lines(text: str) -> list[str]:
    return text.splitlines()


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_file_names_are_model_analyzers() -> None:
    assert set(csv_files(result(measured()))) == {
        "metrics-model-inference.csv",
        "metrics-model-gpu.csv",
        "metrics-server-only.csv",
    }


@pytest.mark.parametrize(
    ("name", "ma_header", "columns"),
    [
        (INFERENCE_CSV, MA_INFERENCE_HEADER, CLOSED_LOOP_COLUMNS),
        (GPU_CSV, MA_GPU_HEADER, GPU_COLUMNS),
        (SERVER_ONLY_CSV, MA_SERVER_ONLY_HEADER, SERVER_ONLY_COLUMNS),
    ],
)
def test_headers_start_with_model_analyzers_columns(name: str, ma_header: str, columns: list[str]) -> None:
    for res in (result(measured(), failed()), result()):  # with rows, and with none at all
        header = lines(csv_files(res)[name])[0]
        assert header.startswith(ma_header + ","), header
        assert header == ",".join(columns)
        assert len(set(columns)) == len(columns)


def test_integers_print_as_integers_and_floats_with_three_decimals() -> None:
    text = csv_files(result(measured(1, 1), measured(8, 4), failed(8, 8)))[INFERENCE_CSV]
    first = lines(text)[1]
    assert first.startswith("add_sub,1,1,/models/add_sub/config.pbtxt,1:CPU,8,Yes,2620.350,2.603,0.263,")
    parsed = rows(text)
    assert [(r["Batch"], r["Concurrency"], r["Max Batch Size"]) for r in parsed] == [
        ("1", "1", "8"),
        ("8", "4", "8"),
        ("8", "8", "8"),
    ]
    gpu = rows(csv_files(result(measured(4, 2)))[GPU_CSV])
    assert (gpu[0]["Batch"], gpu[0]["Concurrency"]) == ("4", "2")


def test_max_batch_size_0_prints_as_0_and_an_unknown_one_is_empty() -> None:
    res = AnalysisResult(
        triton_version="x",
        models=[outcome("matmul", max_batch_size=0)],
        points=[measured(model="matmul"), measured(model="unknown")],
    )
    parsed = rows(csv_files(res)[INFERENCE_CSV])
    assert parsed[0]["Max Batch Size"] == "0"
    assert parsed[1]["Max Batch Size"] == ""
    assert parsed[1]["Model Config Path"] == ""


def test_failed_point_has_empty_metric_cells_and_says_why() -> None:
    [ok, bad] = rows(csv_files(result(measured(), failed()))[INFERENCE_CSV])
    assert ok["Status"] == "Measured"
    assert ok["Satisfies Constraints"] == "Yes"
    assert ok["Error"] == ""
    assert bad["Status"] == "Failed"
    assert bad["Satisfies Constraints"] == "No"
    assert "Failed to obtain stable measurement" in bad["Error"]
    for column in PERF_METRIC_COLUMNS + RESOURCE_METRIC_COLUMNS:
        assert bad[column] == "", column
    # The failed point is still one whole row: model, batch, concurrency and config are there.
    assert (bad["Model"], bad["Batch"], bad["Concurrency"], bad["Max Batch Size"]) == ("add_sub", "8", "4", "8")
    [_, gpu_bad] = rows(csv_files(result(measured(), failed()))[GPU_CSV])
    assert gpu_bad["Satisfies Constraints"] == "No"
    assert gpu_bad["GPU Memory Usage (MB)"] == gpu_bad["GPU Utilization (%)"] == ""


def test_failed_point_with_resources_sampled_keeps_perf_cells_empty() -> None:
    [bad] = rows(csv_files(result(failed(resources=CPU_ONLY)))[INFERENCE_CSV])
    for column in PERF_METRIC_COLUMNS:
        assert bad[column] == "", column
    assert bad["Max CPU Utilization (%)"] == "62.500"


def test_all_failed_sweep_still_writes_whole_rows() -> None:
    parsed = rows(csv_files(result(failed(1, 1), failed(1, 2)))[INFERENCE_CSV])
    assert [(r["Batch"], r["Concurrency"]) for r in parsed] == [("1", "1"), ("1", "2")]
    assert all(r["Throughput (infer/sec)"] == "" for r in parsed)


def test_no_gpu_means_empty_gpu_cells_never_zero() -> None:
    files = csv_files(result(measured()))
    [row] = rows(files[INFERENCE_CSV])
    for column in ("Max GPU Utilization (%)", "Max GPU Memory (MB)", "Max Memory Utilization (%)", "Max GPU Power (W)"):
        assert row[column] == "", column
    assert row["Max CPU Utilization (%)"] == "62.500"
    [gpu_row] = rows(files[GPU_CSV])  # one row per point even without a GPU
    assert gpu_row["GPU UUID"] == gpu_row["GPU Utilization (%)"] == gpu_row["Memory Utilization (%)"] == ""
    [server] = rows(files[SERVER_ONLY_CSV])
    assert server["Model"] == "triton-server"
    assert server["GPU UUID"] == server["GPU Memory Usage (MB)"] == ""
    assert (server["CPU Utilization (%)"], server["CPU Memory Usage (MB)"]) == ("62.500", "810.140")


def test_multi_gpu_point_gives_one_gpu_row_per_gpu_and_the_max_over_gpus_in_the_inference_file() -> None:
    files = csv_files(result(measured(resources=TWO_GPUS), baseline=TWO_GPUS))
    [row] = rows(files[INFERENCE_CSV])
    assert row["Max GPU Utilization (%)"] == "90.000"
    assert row["Max GPU Memory (MB)"] == "1000.500"
    assert row["Max GPU Power (W)"] == "250.125"
    assert row["Max Memory Utilization (%)"] == "33.000"  # the one GPU that has it
    gpu_rows = rows(files[GPU_CSV])
    assert [r["GPU UUID"] for r in gpu_rows] == ["GPU-a", "GPU-b"]
    assert gpu_rows[0]["Memory Utilization (%)"] == ""
    assert gpu_rows[1]["GPU Power Usage (W)"] == "250.125"
    assert [r["GPU UUID"] for r in rows(files[SERVER_ONLY_CSV])] == ["GPU-a", "GPU-b"]


def test_no_baseline_and_no_points_give_header_only_files() -> None:
    files = csv_files(AnalysisResult(triton_version="x"))
    for name, text in files.items():
        assert len(lines(text)) == 1, name


def test_rows_keep_the_measured_order_and_text_with_commas_is_quoted() -> None:
    res = result(measured(4, 1), measured(1, 2))
    res.points.append(failed(8, 1).model_copy(update={"error": 'perf_analyzer failed: "a, b" | c'}))
    text = csv_files(res)[INFERENCE_CSV]
    parsed = rows(text)
    assert [(r["Batch"], r["Concurrency"]) for r in parsed] == [("4", "1"), ("1", "2"), ("8", "1")]
    assert parsed[2]["Error"] == 'perf_analyzer failed: "a, b" | c'
    assert all(len(r) == len(CLOSED_LOOP_COLUMNS) for r in parsed)


def test_satisfies_constraints_is_judged_against_the_results_constraints() -> None:
    # PERF's p99 is 2.603 ms; TWO_GPUS' busiest GPU used 1000.5 MB.
    res = result(measured(concurrency=1), measured(concurrency=2, resources=TWO_GPUS), failed())
    res.constraints = Constraints.model_validate({"p99LatencyMs": {"max": 3}, "gpuMemoryMB": {"max": 1000}})
    assert [r["Satisfies Constraints"] for r in rows(csv_files(res)[INFERENCE_CSV])] == ["Yes", "No", "No"]
    # The GPU file judges the point, not each GPU: both of the second point's rows say No.
    assert [r["Satisfies Constraints"] for r in rows(csv_files(res)[GPU_CSV])] == ["Yes", "No", "No", "No"]
    res.constraints = Constraints.model_validate({"p99LatencyMs": {"max": 2}})
    assert [r["Satisfies Constraints"] for r in rows(csv_files(res)[INFERENCE_CSV])] == ["No", "No", "No"]
