"""Analyses to render reports from: two real ones (a CPU run captured here, the H100 run in bench/results) and a
synthetic one as large as the CRD allows."""

from __future__ import annotations

import random
from pathlib import Path

from modelanalysis.core.perf import PerfMeasurement
from modelanalysis.core.results import (
    AnalysisResult,
    ModelOutcome,
    ModelStatus,
    Placement,
    PointResult,
    PointStatus,
)
from modelanalysis.core.server_metrics import GpuMetrics, ResourceMetrics
from modelanalysis.core.sweep import Point, SkippedPoint

ROOT = Path(__file__).resolve().parent.parent
CPU_ANALYSIS = ROOT / "tests" / "data" / "cli-cpu-add_sub-matmul-analysis.json"
STREAMING_ANALYSIS = ROOT / "tests" / "data" / "cli-cpu-llm_stream-analysis.json"  # a decoupled model, streamed
H100_FOLDER = ROOT / "bench" / "results" / "gpu-h100-cli"
H100_ANALYSIS = H100_FOLDER / "analysis.json"


def load(path: Path) -> AnalysisResult:
    return AnalysisResult.model_validate_json(path.read_text())


def synthetic_analysis(models: int = 10, batches: int = 10, concurrencies: int = 10, gpus: int = 1) -> AnalysisResult:
    """models x batches x concurrencies points with every field filled as a real GPU run fills it (long model
    names and config paths, per-point convergence sentences, one failed point, one skipped), seeded."""
    rng = random.Random(10)
    uuids = [f"GPU-5eb94c5c-fe31-bce0-4297-5ba904d0{i:04x}" for i in range(gpus)]
    result = AnalysisResult(
        triton_version="24.08-py3", server_version="2.51.0", started_at=1_795_418_614.9, finished_at=1_795_428_614.9,
        baseline=ResourceMetrics(
            gpus=[GpuMetrics(gpu_uuid=u, max_utilization_pct=0.0, max_memory_used_mb=618.66, max_power_watts=120.33)
                  for u in uuids],
            max_cpu_utilization_pct=0.48, max_cpu_memory_used_mb=1039.05, sample_count=3,
        ),
    )  # fmt: skip
    t = 1_795_418_620.0
    placement = Placement(server_node="gpu-node-h100-01", load_generator_node="gpu-node-h100-01",
                          load_generator_placement="SameNodeAsServer")  # fmt: skip
    for m in range(models):
        name = f"resnet50_onnx_variant_{m:02d}"
        result.models.append(
            ModelOutcome(name=name, status=ModelStatus.PROFILED, max_batch_size=2 ** (batches - 1),
                         instance_group="2:GPU", config_path=f"/models/{name}/config.pbtxt")
        )  # fmt: skip
        for b in (2**i for i in range(batches)):
            for c in range(1, concurrencies + 1):
                throughput = rng.uniform(100, 40_000)
                p99 = rng.uniform(0.5, 400)
                half = rng.uniform(0.005, 0.08)
                windows = rng.randrange(6, 30)
                perf = PerfMeasurement(
                    throughput_infer_per_sec=throughput, latency_p50_ms=p99 * 0.5, latency_p90_ms=p99 * 0.8,
                    latency_p95_ms=p99 * 0.9, latency_p99_ms=p99, latency_avg_ms=p99 * 0.55,
                    throughput_ci_low=throughput * (1 - half), throughput_ci_high=throughput * (1 + half),
                    latency_p99_ci_low_ms=p99 * 0.93, latency_p99_ci_high_ms=p99 * 1.07, windows=windows,
                    window_ms=1000, requests=int(throughput * windows / b), converged=half <= 0.05,
                    load_generator_cpu_cores=rng.uniform(0.1, 1.9), load_generator_cpu_budget_cores=2.0,
                    load_generator_bottleneck=False,
                    convergence=(f"converged: +-{100 * half:.1f}% over {windows} windows" if half <= 0.05 else
                                 f"not converged: +-{100 * half:.1f}% after {windows} windows in 30 s (the per-point "
                                 "cap is 30 s); target +-5%"),
                )  # fmt: skip
                resources = ResourceMetrics(
                    gpus=[GpuMetrics(gpu_uuid=u, max_utilization_pct=rng.uniform(0, 100),
                                     max_memory_used_mb=rng.uniform(1_000, 80_000),
                                     max_power_watts=rng.uniform(100, 700)) for u in uuids],
                    max_cpu_utilization_pct=rng.uniform(1, 60), max_cpu_memory_used_mb=rng.uniform(1_000, 4_000),
                    sample_count=20,
                )  # fmt: skip
                result.points.append(
                    PointResult(model=name, batch_size=b, concurrency=c, status=PointStatus.MEASURED, perf=perf,
                                resources=resources, server_throughput_infer_per_sec=throughput * 0.99,
                                placement=placement,
                                started_at=t, finished_at=t + 9.5)
                )  # fmt: skip
                t += 10
    failed = result.points[7]
    failed.status, failed.perf = PointStatus.FAILED, None
    failed.error = "perf_analyzer exited with 99: Failed to retrieve results from inference request."
    result.models[0].skipped.append(
        SkippedPoint(point=Point(model=result.models[0].name, batch_size=4096, concurrency=1),
                     reason="batch 4096 is above the model's max_batch_size 512")
    )  # fmt: skip
    return result
