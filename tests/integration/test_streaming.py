"""Streaming (decoupled) models end to end on the real local Triton and perf_analyzer: examples/models/llm_stream,
a CPU model with the vLLM backend's interface that sleeps known delays, measured through the CLI. Its time to
first token and inter-token latency land on the delays it sleeps, agree with a small gRPC streaming client's own
timestamps, and a search under a TTFT budget finds the most concurrent users that hold it."""

from __future__ import annotations

import csv
import itertools
import json
import queue
import re
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from modelanalysis.adapters.local_triton import LocalTriton
from modelanalysis.core.results import AnalysisResult
from tests.integration.conftest import REPO_ROOT, RunCli, RunningTriton

PREFILL_MS, TOKEN_MS, TOKENS = 20.0, 5.0, 8
PROMPTS_FILE = REPO_ROOT / "examples" / "inputs" / "llm_stream.json"  # 16 tokens a request


def llm_stream(models: Path, **parameters: object) -> Path:
    """A copy of examples/models/llm_stream in `models`, with its delay parameters set."""
    target = models / "llm_stream"
    shutil.copytree(REPO_ROOT / "examples" / "models" / "llm_stream", target)
    config = (target / "config.pbtxt").read_text()
    for key, value in parameters.items():
        config, found = re.subn(rf'(key: "{key}" value: {{ string_value: )"[^"]*"', rf'\1"{value}"', config)
        assert found == 1, key
    (target / "config.pbtxt").write_text(config)
    return target


def prompts(path: Path, max_tokens: int) -> Path:
    entry = {
        "text_input": ["a prompt"],
        "stream": [True],
        "sampling_parameters": [json.dumps({"max_tokens": max_tokens})],
    }
    path.write_text(json.dumps({"data": [entry]}))
    return path


def within(measured: float, expected: float) -> bool:
    """The issue's tolerance: within 10% or 1 ms, whichever is wider."""
    return abs(measured - expected) <= max(0.1 * expected, 1.0)


def on_the_sleep(measured: float, slept: float) -> bool:
    """A delay the model sleeps is a floor: the figure is the sleep plus this machine's scheduling overhead (2 ms
    on a 20 ms prefill seen once in CI with the whole suite running), so it may run 25% over but never under. How
    exactly it is measured is checked against a gRPC client's own timestamps, with the issue's tolerance."""
    return slept - max(0.1 * slept, 1.0) <= measured <= slept * 1.25


def client_timestamps(grpc_url: str, requests: int) -> tuple[list[float], list[float]]:
    """TTFT and each inter-token gap (ms) of `requests` streamed one after another by tritonclient's gRPC stream:
    the cross-check of perf_analyzer's export, timed by this process."""
    arrivals: queue.Queue[tuple[int, bool]] = queue.Queue()
    errors: list[object] = []

    def on_response(result: object, error: object) -> None:
        if error is not None:
            errors.append(error)
            arrivals.put((time.perf_counter_ns(), True))
            return
        final = result.get_response().parameters["triton_final_response"].bool_param  # type: ignore[attr-defined]
        empty = not result.get_response().outputs  # type: ignore[attr-defined]
        arrivals.put((time.perf_counter_ns(), final and empty))

    client = grpcclient.InferenceServerClient(grpc_url)
    client.start_stream(callback=on_response)
    ttft, gaps = [], []
    try:
        for _ in range(requests):
            inputs = [grpcclient.InferInput("text_input", [1], "BYTES"), grpcclient.InferInput("stream", [1], "BOOL"),
                      grpcclient.InferInput("sampling_parameters", [1], "BYTES")]  # fmt: skip
            inputs[0].set_data_from_numpy(np.array([b"a prompt"], dtype=object))
            inputs[1].set_data_from_numpy(np.array([True]))
            inputs[2].set_data_from_numpy(np.array([json.dumps({"max_tokens": TOKENS}).encode()], dtype=object))
            start = time.perf_counter_ns()
            client.async_stream_infer("llm_stream", inputs, enable_empty_final_response=True)
            tokens = []
            while True:
                at, closing = arrivals.get(timeout=10)
                if closing:
                    assert not errors, errors
                    break
                tokens.append(at)
            ttft.append((tokens[0] - start) / 1e6)
            gaps += [(b - a) / 1e6 for a, b in itertools.pairwise(tokens)]
    finally:
        client.stop_stream()
        client.close()
    return ttft, gaps


def test_ttft_and_itl_land_on_the_delays_the_model_sleeps_and_agree_with_a_grpc_client(
    run_cli: RunCli, running_triton: RunningTriton, tmp_path: Path
) -> None:
    llm_stream(running_triton.model_repo, PREFILL_MS=PREFILL_MS, PREFILL_MS_PER_WORD=0, TOKEN_MS=TOKEN_MS)
    export = tmp_path / "out"
    proc = run_cli("profile", "--triton-url", running_triton.url, "--model-names", "llm_stream", "--concurrency", "1",
                   "--input-data", prompts(tmp_path / "prompts.json", TOKENS), "--measurement-interval", "1000",
                   "--max-trials", "6", "--baseline-duration", "300", "--export", "--export-path", export)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "llm_stream is decoupled" in proc.stderr + proc.stdout
    (row,) = list(csv.DictReader((export / "metrics-model-inference.csv").open()))
    ttft, itl = float(row["p50 Time To First Token (ms)"]), float(row["p50 Inter Token Latency (ms)"])
    assert on_the_sleep(ttft, PREFILL_MS), row
    assert on_the_sleep(itl, TOKEN_MS), row
    assert float(row["Tokens per Request"]) == TOKENS
    tokens_per_sec = float(row["Output Token Throughput (infer/sec)"])
    assert within(tokens_per_sec / float(row["Throughput (infer/sec)"]), TOKENS)  # tokens/s = requests/s x 8
    low, high = (
        float(row["Output Token Throughput 95% CI Low (tokens/sec)"]),
        float(row["Output Token Throughput 95% CI High (tokens/sec)"]),
    )
    assert low <= tokens_per_sec <= high
    # The whole request, not perf_analyzer's first-response latency: prefill and 7 gaps, as measured (each gap's
    # scheduling overhead on a loaded machine adds up over 7 of them, so not the nominal sleeps).
    assert within(float(row["p50 Latency (ms)"]), ttft + (TOKENS - 1) * itl), row

    running_triton.control().load("llm_stream")  # the CLI unloads what it loaded on a server it was given
    client_ttft, client_gaps = client_timestamps(running_triton.endpoints.grpc, requests=30)
    assert within(ttft, statistics.median(client_ttft)), (ttft, statistics.median(client_ttft))
    assert within(itl, statistics.median(client_gaps)), (itl, statistics.median(client_gaps))


def test_http_is_refused_for_a_streaming_model_in_one_sentence(
    run_cli: RunCli, running_triton: RunningTriton, tmp_path: Path
) -> None:
    llm_stream(running_triton.model_repo)
    proc = run_cli("profile", "--triton-url", running_triton.url, "--model-names", "llm_stream", "--protocol", "http",
                   "--baseline-duration", "300")  # fmt: skip
    assert "perf_analyzer can only stream over gRPC" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("budget_ms", [12.0])
def test_a_search_under_a_ttft_budget_finds_the_most_concurrent_users_that_hold_it(
    run_cli: RunCli, running_triton: RunningTriton, tmp_path: Path, budget_ms: float
) -> None:
    # Two requests generate at once (MAX_IN_FLIGHT 2), each ~3 ms to its first token and ~10 ms in all: up to 2
    # concurrent users TTFT stays near 3 ms; a third waits for a slot, up to a whole request, and breaks 12 ms.
    llm_stream(running_triton.model_repo, PREFILL_MS=3, PREFILL_MS_PER_WORD=0, TOKEN_MS=1, MAX_IN_FLIGHT=2)
    export = tmp_path / "out"
    proc = run_cli("profile", "--triton-url", running_triton.url, "--model-names", "llm_stream", "--concurrency",
                   "auto", "--max-concurrency", "8", "--ttft-budget", f"{budget_ms:g}", "--objective",
                   "maximize-output-tokens", "--input-data", prompts(tmp_path / "prompts.json", TOKENS),
                   "--measurement-interval", "1000", "--max-trials", "9", "--baseline-duration", "300", "--export",
                   "--export-path", export, timeout=480)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = AnalysisResult.model_validate_json((export / "analysis.json").read_text())
    assert result.best is not None
    (found,) = result.best.boundaries
    assert found.ttft_budget_ms == budget_ms
    assert found.surely_under == 2, found.sentence()
    assert found.surely_over is not None and found.surely_over <= 4, found.sentence()
    best = result.best.overall
    assert best is not None and best.load.value == 2 and best.satisfies_constraints
    chosen = next(p for p in result.points if p.load.value == 2)
    assert chosen.perf is not None and chosen.perf.ttft_p99_ci_high_ms is not None  # decided on its interval
    assert chosen.perf.ttft_p99_ci_high_ms <= budget_ms
    assert f"under the {budget_ms:g} ms p99 TTFT budget" in proc.stdout


ENSEMBLE = """name: "stream_pipeline"
platform: "ensemble"
max_batch_size: 0
input [
  { name: "text_input" data_type: TYPE_STRING dims: [ 1 ] },
  { name: "stream" data_type: TYPE_BOOL dims: [ 1 ] },
  { name: "sampling_parameters" data_type: TYPE_STRING dims: [ 1 ] }
]
output [ { name: "text_output" data_type: TYPE_STRING dims: [ -1 ] } ]
ensemble_scheduling { step [ {
  model_name: "llm_stream" model_version: -1
  input_map { key: "text_input" value: "text_input" }
  input_map { key: "stream" value: "stream" }
  input_map { key: "sampling_parameters" value: "sampling_parameters" }
  output_map { key: "text_output" value: "text_output" }
} ] }
"""


def test_an_ensemble_around_a_streaming_model_streams_and_is_broken_down(
    run_cli: RunCli, local_triton: LocalTriton, tmp_path: Path
) -> None:
    """TensorRT-LLM's shape: an ensemble whose step is decoupled is decoupled too (Triton says so in its config)."""
    models = tmp_path / "models"
    llm_stream(models)
    (models / "stream_pipeline" / "1").mkdir(parents=True)
    (models / "stream_pipeline" / "config.pbtxt").write_text(ENSEMBLE)
    export = tmp_path / "out"
    proc = run_cli("profile", "--model-folder", models, "-m", "stream_pipeline", "--concurrency", "2",
                   "--input-data", PROMPTS_FILE, "--measurement-interval", "500", "--max-trials", "3",
                   "--baseline-duration", "300", "--export", "--export-path", export)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (row,) = list(csv.DictReader((export / "metrics-model-inference.csv").open()))
    assert float(row["Tokens per Request"]) == 16 and float(row["p50 Time To First Token (ms)"]) > 0
    steps = list(csv.DictReader((export / "metrics-model-steps.csv").open()))
    assert [s["Step"] for s in steps] == ["llm_stream"]
