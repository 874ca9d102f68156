"""Triton /metrics parsing and window aggregation, on real pages captured from Triton (tests/data/README.md).

Units as NVIDIA Model Analyzer: utilization % = ratio * 100, memory MB = bytes / 1e6 (not MiB), power W.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from modelanalysis.core.report import GPU_CSV, INFERENCE_CSV, SERVER_ONLY_CSV, csv_files
from modelanalysis.core.results import AnalysisResult, ModelOutcome, ModelStatus, PointResult, PointStatus
from modelanalysis.core.server_metrics import (
    ServerSample,
    aggregate_window,
    inference_rate,
    inferences_counted,
    parse_triton_metrics,
    server_inference_rate,
)

DATA = Path(__file__).resolve().parents[1] / "data"
H100 = "GPU-0da54fef-9077-a528-5552-2c32d8979b02"
PUBLIC_4_GPUS = {
    "GPU-71ce41fd-3ac0-afe7-c995-21119f1e984a",
    "GPU-8674351b-fff7-56c3-f545-26313154b8ed",
    "GPU-4bb61721-0ae2-9004-636f-e73bab9ef8e0",
    "GPU-7a9c9f44-ff57-1177-e21a-1740a8cf1a65",
}


def page(name: str) -> str:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{path} is not in the checkout (captured test data, see tests/data/README.md)")
    return path.read_text()


def parsed(name: str, timestamp: float = 0.0) -> ServerSample:
    return parse_triton_metrics(page(name), timestamp)


# --- one scrape -------------------------------------------------------------------------------------------


def test_h100_page_gives_one_gpu_keyed_by_its_uuid() -> None:
    sample = parsed("triton-2.51-h100-metrics.txt", timestamp=12.5)
    assert sample.timestamp == 12.5
    assert list(sample.gpus) == [H100]
    gpu = sample.gpus[H100]
    assert gpu.utilization_ratio == pytest.approx(0.99)
    assert gpu.memory_used_bytes == 1809842176
    assert gpu.memory_total_bytes == 85520809984
    assert gpu.power_watts == pytest.approx(701.902)  # above the 700 W limit: reported as is
    assert sample.cpu_utilization_ratio == pytest.approx(0.06242197253433208)
    assert sample.cpu_memory_used_bytes == 1532116992
    assert sample.inference_count == {}  # no model loaded: no nv_inference_* families at all


def test_h100_idle_page_reports_zero_utilization_as_zero_not_missing() -> None:
    gpu = parsed("triton-2.51-h100-metrics-idle.txt").gpus[H100]
    assert gpu.utilization_ratio == 0
    assert gpu.utilization_ratio is not None
    assert gpu.memory_used_bytes == 618659840


def test_cpu_only_page_has_no_gpus_and_cpu_values() -> None:
    sample = parsed("triton-2.51-cpu-metrics.txt")
    assert sample.gpus == {}
    assert sample.cpu_utilization_ratio == pytest.approx(0.9900990099009901)
    assert sample.cpu_memory_used_bytes == 1131339776


def test_public_four_gpu_page_keys_every_gpu_and_sums_inferences_over_instances() -> None:
    sample = parsed("triton-multi-gpu-metrics-public.txt")
    assert set(sample.gpus) == PUBLIC_4_GPUS
    assert sample.gpus["GPU-71ce41fd-3ac0-afe7-c995-21119f1e984a"].memory_used_bytes == 7451181056
    assert sample.gpus["GPU-4bb61721-0ae2-9004-636f-e73bab9ef8e0"].power_watts == pytest.approx(60.32)
    # Older Triton: no CPU families; they stay unknown rather than 0.
    assert sample.cpu_utilization_ratio is None
    assert sample.cpu_memory_used_bytes is None
    # distilgpt2_cola has one instance per GPU (151 each); inference series with a gpu_uuid label are
    # per-instance counts, not GPUs: they must not create GPU entries.
    assert sample.inference_count["distilgpt2_cola"] == 4 * 151
    assert sample.inference_count["gpt_neo_cola_ensemble"] == 1208
    assert sample.inference_count["gpt_neo_cola_part0"] == 1208


def test_public_single_gpu_page_with_sampleless_families_parses() -> None:
    sample = parsed("triton-single-gpu-metrics-public.txt")
    assert len(sample.gpus) == 1
    assert sample.inference_count["gnn"] == 101
    assert sample.inference_count["exatrkx"] == 0


def test_loaded_model_page_counts_inferences_not_requests() -> None:
    before = parsed("triton-2.51-cpu-metrics-add_sub-before.txt")
    after = parsed("triton-2.51-cpu-metrics-add_sub-after.txt")
    assert before.inference_count == {"add_sub": 5}  # 5 requests of batch 1
    assert after.inference_count == {"add_sub": 45}  # then 10 requests of batch 4
    assert after.gpus == {}


def test_an_empty_page_is_an_empty_sample() -> None:
    sample = parse_triton_metrics("", 1.0)
    assert sample.gpus == {}
    assert sample.cpu_utilization_ratio is None
    assert sample.inference_count == {}


# --- a window of scrapes ----------------------------------------------------------------------------------


def test_units_percent_is_ratio_times_100_and_mb_is_bytes_over_1e6() -> None:
    window = aggregate_window([parsed("triton-2.51-h100-metrics.txt")])
    assert window.sample_count == 1
    [gpu] = window.gpus
    assert gpu.gpu_uuid == H100
    assert gpu.max_utilization_pct == pytest.approx(99.0)
    assert gpu.max_memory_used_mb == pytest.approx(1809.842176)  # 1726 MiB would be 1726
    assert gpu.max_power_watts == pytest.approx(701.902)
    assert gpu.max_memory_utilization_pct is None  # Triton does not export it
    assert window.max_cpu_utilization_pct == pytest.approx(6.242197253433208)
    assert window.max_cpu_memory_used_mb == pytest.approx(1532.116992)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_window_takes_the_maximum_of_each_series(order: tuple[int, int]) -> None:
    samples = [parsed("triton-2.51-h100-metrics-idle.txt", 1.0), parsed("triton-2.51-h100-metrics.txt", 2.0)]
    window = aggregate_window([samples[i] for i in order])
    [gpu] = window.gpus
    assert gpu.max_utilization_pct == pytest.approx(99.0)
    assert gpu.max_memory_used_mb == pytest.approx(1809.842176)
    assert gpu.max_power_watts == pytest.approx(701.902)
    # CPU maxima come from whichever scrape had them highest (here: the loaded one).
    idle_cpu = samples[0].cpu_utilization_ratio
    loaded_cpu = samples[1].cpu_utilization_ratio
    assert idle_cpu is not None and loaded_cpu is not None
    assert window.max_cpu_utilization_pct == pytest.approx(100 * max(idle_cpu, loaded_cpu))
    assert window.sample_count == 2


def test_idle_window_keeps_zero_utilization() -> None:
    [gpu] = aggregate_window([parsed("triton-2.51-h100-metrics-idle.txt")]).gpus
    assert gpu.max_utilization_pct == 0.0
    assert gpu.max_memory_used_mb == pytest.approx(618.65984)


def test_a_gpu_missing_from_some_scrapes_keeps_the_maximum_of_the_others() -> None:
    samples = [parsed("triton-2.51-cpu-metrics.txt", 1.0), parsed("triton-2.51-h100-metrics.txt", 2.0)]
    window = aggregate_window(samples)
    assert [g.gpu_uuid for g in window.gpus] == [H100]
    assert window.gpus[0].max_utilization_pct == pytest.approx(99.0)
    assert window.max_cpu_utilization_pct == pytest.approx(99.00990099009901)  # the CPU page's 0.990...


def test_four_gpus_are_reported_separately_in_uuid_order() -> None:
    window = aggregate_window([parsed("triton-multi-gpu-metrics-public.txt")])
    assert [g.gpu_uuid for g in window.gpus] == sorted(PUBLIC_4_GPUS)
    by_uuid = {g.gpu_uuid: g for g in window.gpus}
    assert by_uuid["GPU-7a9c9f44-ff57-1177-e21a-1740a8cf1a65"].max_memory_used_mb == pytest.approx(7329.54624)
    assert all(g.max_utilization_pct == 0.0 for g in window.gpus)
    assert window.max_cpu_utilization_pct is None


def test_cpu_only_window_has_no_gpus() -> None:
    window = aggregate_window([parsed("triton-2.51-cpu-metrics.txt")])
    assert window.gpus == []
    assert window.max_cpu_utilization_pct == pytest.approx(99.00990099009901)
    assert window.max_cpu_memory_used_mb == pytest.approx(1131.339776)


def test_empty_window() -> None:
    window = aggregate_window([])
    assert window.gpus == []
    assert window.max_cpu_utilization_pct is None
    assert window.max_cpu_memory_used_mb is None
    assert window.sample_count == 0


# --- Triton's own inference rate --------------------------------------------------------------------------


def test_inference_rate_from_two_real_scrapes() -> None:
    before = parsed("triton-2.51-cpu-metrics-add_sub-before.txt", timestamp=100.0)
    after = parsed("triton-2.51-cpu-metrics-add_sub-after.txt", timestamp=104.0)
    assert inference_rate([before, after], "add_sub") == pytest.approx(40 / 4)
    assert inference_rate([before, after], "matmul") is None


def test_inference_rate_needs_two_scrapes_apart_in_time() -> None:
    one = ServerSample(timestamp=1.0, inference_count={"m": 10})
    assert inference_rate([one], "m") is None
    assert inference_rate([one, ServerSample(timestamp=1.0, inference_count={"m": 20})], "m") is None
    assert inference_rate([], "m") is None
    # Scrapes that lack the model (it was not loaded yet) do not count.
    window = [ServerSample(timestamp=0.0), one, ServerSample(timestamp=3.0, inference_count={"m": 70})]
    assert inference_rate(window, "m") == pytest.approx(30.0)


# --- from real CPU-only text to the CSV cells -------------------------------------------------------------


def cells(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_cpu_only_text_gives_empty_not_zero_gpu_cells() -> None:
    window = aggregate_window([parsed("triton-2.51-cpu-metrics.txt", 1.0), parsed("triton-2.51-cpu-metrics.txt", 2.0)])
    result = AnalysisResult(
        triton_version="24.08-py3",
        baseline=window,
        models=[ModelOutcome(name="add_sub", status=ModelStatus.PROFILED, max_batch_size=8)],
        points=[
            PointResult(model="add_sub", batch_size=1, concurrency=1, status=PointStatus.MEASURED, resources=window)
        ],
    )
    files = csv_files(result)
    [row] = cells(files[INFERENCE_CSV])
    for column in ("Max GPU Utilization (%)", "Max GPU Memory (MB)", "Max Memory Utilization (%)", "Max GPU Power (W)"):
        assert row[column] == "", column
    assert row["Max CPU Utilization (%)"] == "99.010"
    assert row["Max CPU Memory (MB)"] == "1131.340"
    [gpu_row] = cells(files[GPU_CSV])
    assert gpu_row["GPU UUID"] == ""
    for column in ("GPU Memory Usage (MB)", "GPU Utilization (%)", "GPU Power Usage (W)", "Memory Utilization (%)"):
        assert gpu_row[column] == "", column
    [server_row] = cells(files[SERVER_ONLY_CSV])
    assert server_row["Model"] == "triton-server"
    assert server_row["GPU UUID"] == ""
    assert server_row["GPU Memory Usage (MB)"] == ""
    assert server_row["GPU Utilization (%)"] == ""
    assert server_row["CPU Utilization (%)"] == "99.010"


def test_gpu_text_fills_the_gpu_cells_in_model_analyzer_units() -> None:
    window = aggregate_window(
        [parsed("triton-2.51-h100-metrics-idle.txt", 1.0), parsed("triton-2.51-h100-metrics.txt", 2.0)]
    )
    result = AnalysisResult(
        triton_version="24.08-py3",
        baseline=aggregate_window([parsed("triton-2.51-h100-metrics-idle.txt")]),
        points=[
            PointResult(model="resnet", batch_size=1, concurrency=1, status=PointStatus.MEASURED, resources=window)
        ],
    )
    files = csv_files(result)
    [row] = cells(files[INFERENCE_CSV])
    assert row["Max GPU Utilization (%)"] == "99.000"
    assert row["Max GPU Memory (MB)"] == "1809.842"
    assert row["Max GPU Power (W)"] == "701.902"
    assert row["Max Memory Utilization (%)"] == ""
    [gpu_row] = cells(files[GPU_CSV])
    assert gpu_row["GPU UUID"] == H100
    assert gpu_row["GPU Memory Usage (MB)"] == "1809.842"
    [server_row] = cells(files[SERVER_ONLY_CSV])
    assert server_row["GPU UUID"] == H100
    assert server_row["GPU Utilization (%)"] == "0.000"
    assert server_row["GPU Memory Usage (MB)"] == "618.660"


def counts(*pairs: tuple[float, float]) -> list[ServerSample]:
    return [ServerSample(timestamp=t, inference_count={"m": c}) for t, c in pairs]


def test_inference_rate_ignores_idle_samples_before_and_after_the_load() -> None:
    # perf_analyzer starts after the first scrape and has exited before the last two.
    window = counts((0.0, 0), (1.0, 0), (2.0, 100), (3.0, 200), (4.0, 300), (5.0, 300), (6.0, 300))
    assert inference_rate(window, "m") == pytest.approx(100.0)


def test_inference_rate_over_the_last_seconds_matches_perf_analyzers_stable_windows() -> None:
    # Slow warm-up, then a steady 200/s over the last 3 s (perf_analyzer reports its last 3 windows).
    window = counts((0.0, 0), (1.0, 50), (2.0, 100), (3.0, 300), (4.0, 500), (5.0, 700))
    assert inference_rate(window, "m", last_seconds=3.0) == pytest.approx(200.0)
    assert inference_rate(window, "m") == pytest.approx(140.0)
    # A window longer than the samples uses them all.
    assert inference_rate(window, "m", last_seconds=60.0) == pytest.approx(140.0)


def test_the_servers_rate_over_several_runs_leaves_out_the_gaps_between_them() -> None:
    # Two perf_analyzer runs of 1.5 s each at 200/s, with a 1 s gap between them (the next process starting).
    # Over the whole point the count moves 600 in 4 s; over the load it is 600 in 3 s.
    point = counts((0.0, 0), (0.5, 0), (1.0, 100), (1.5, 200), (2.0, 300), (2.5, 300), (3.0, 300),
                   (3.5, 400), (4.0, 500), (4.5, 600), (5.0, 600))  # fmt: skip
    assert server_inference_rate(point, "m", load_seconds=3.0, fallback_window_ms=500) == pytest.approx(200.0)
    assert inferences_counted(point, "m") == 600
    assert server_inference_rate(point, "other", load_seconds=3.0, fallback_window_ms=500) is None


def test_a_result_without_its_load_time_falls_back_to_the_last_runs_span() -> None:
    window = counts((0.0, 0), (1.0, 50), (2.0, 100), (3.0, 300), (4.0, 500), (5.0, 700))
    assert server_inference_rate(window, "m", load_seconds=None, fallback_window_ms=1000) == pytest.approx(200.0)
