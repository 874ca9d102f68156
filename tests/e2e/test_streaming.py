"""A streaming (decoupled) model through the operator, as a user runs it: examples/models/llm_stream (the vLLM
backend's interface, on the CPU) with its prompts from an input-data file on the model claim, under a p99 TTFT
budget, judged by output tokens per second. The load-generator Job streams over gRPC, reduces perf_analyzer's
per-request export itself and sends back only the numbers."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import Analyses, Kubectl, Volumes, analysis_manifest, conditions

pytestmark = pytest.mark.cluster

PROMPTS = Path(__file__).resolve().parents[2] / "examples" / "inputs" / "llm_stream.json"
TTFT_BUDGET_MS = 500  # far above what it takes here (~7 ms): every point holds it


def test_a_streaming_model_is_measured_by_ttft_itl_and_tokens_per_second_in_status_and_csv(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str
) -> None:
    (volumes.models / "inputs").mkdir()
    shutil.copy(PROMPTS, volumes.models / "inputs" / "llm_stream.json")
    manifest = analysis_manifest("stream", models=["llm_stream"], batch_sizes=[1], concurrency=[1, 2])
    spec = manifest["spec"]
    spec["models"][0]["inputs"] = {"data": "inputs/llm_stream.json"}
    spec["measurement"]["measurementIntervalMs"] = 500
    spec["objective"] = "maximize-output-tokens"
    spec["constraints"] = {"ttftP99Ms": {"max": TTFT_BUDGET_MS}}
    analyses.apply(manifest)

    obj = analyses.wait_finished("stream")
    status = obj["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    assert conditions(obj)["Ready"]["status"] == "True"
    points = sorted(status["points"], key=lambda p: p["concurrency"])
    assert [(p["concurrency"], p["status"]) for p in points] == [(1, "Measured"), (2, "Measured")]
    for p in points:
        assert p["tokensPerRequest"] == 16  # the prompts ask for 16; the empty final response is no token
        assert 0 < p["ttftP50"] <= p["ttftP99"] < TTFT_BUDGET_MS
        assert 0 < p["itlP50"] <= p["itlP99"]
        low, high = p["tokensPerSecCI"]
        assert low <= p["tokensPerSec"] <= high
        assert p["p50"] > p["ttftP50"]  # a whole request, 16 tokens, not its first response
    best = status["best"]
    assert best["concurrency"] == 2 and "tok/s p99 TTFT" in best["summary"]
    _, rows = analyses.table()
    assert "tok/s p99 TTFT" in rows["stream"]["BEST"]

    inference = kubectl.get("configmap", "stream-results", "-n", namespace)["data"]["metrics-model-inference.csv"]
    rows_csv = list(csv.DictReader(io.StringIO(inference)))
    assert [r["Concurrency"] for r in rows_csv] == ["1", "2"]
    for row in rows_csv:
        assert float(row["p99 Time To First Token (ms)"]) < TTFT_BUDGET_MS
        assert float(row["Output Token Throughput (infer/sec)"]) > 0
        assert row["Satisfies Constraints"] == "Yes"
