"""Variable-shape inputs and open-loop load through the operator, as a user runs them: a ModelAnalysis whose
text encoder reads its requests from an input-data file on the model claim, a copy of it with no shape (refused
in one sentence before any of its points), and add_sub, all at a request rate."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import Analyses, Kubectl, Volumes, analysis_manifest, conditions

pytestmark = pytest.mark.cluster

RATE = 50  # requests a second: a small share of what either model serves here


def test_an_input_data_file_on_the_claim_and_a_request_rate_are_measured_and_a_model_without_a_shape_refused(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str
) -> None:
    (volumes.models / "inputs").mkdir()
    # One length only, so that every batch size could be sent (entries of several shapes cannot be batched).
    entries = [{"INPUT_IDS": {"content": list(range(1, 17)), "shape": [16]}} for _ in range(4)]
    (volumes.models / "inputs" / "same_length.json").write_text(json.dumps({"data": entries}))
    copy = volumes.models / "text_encoder_b"
    shutil.copytree(volumes.models / "text_encoder", copy)
    config = copy / "config.pbtxt"
    config.write_text(config.read_text().replace('name: "text_encoder"', 'name: "text_encoder_b"'))

    manifest = analysis_manifest("inputs", models=["text_encoder", "text_encoder_b", "add_sub"], batch_sizes=[1, 2])
    spec = manifest["spec"]
    del spec["concurrency"]
    spec["requestRate"] = [RATE]
    spec["models"][0]["inputs"] = {"data": "inputs/same_length.json"}
    analyses.apply(manifest)

    obj = analyses.wait_finished("inputs")
    status = obj["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    models = {m["name"]: m for m in status["models"]}
    assert models["text_encoder"]["status"] == "Profiled"
    assert models["text_encoder"]["inputs"] == "--input-data inputs/same_length.json"  # as the spec names it
    assert models["text_encoder_b"]["status"] == "Refused"
    assert models["text_encoder_b"]["error"].startswith(
        "text_encoder_b: input INPUT_IDS (TYPE_INT32, dims [-1]) has a variable dimension"
    )
    assert "refused: text_encoder_b" in status["message"]
    points = sorted((p["model"], p["batch"], p.get("requestRate"), p["status"]) for p in status["points"])
    assert points == [(m, b, RATE, "Measured") for m in ("add_sub", "text_encoder") for b in (1, 2)]
    assert all("concurrency" not in p for p in status["points"])
    assert conditions(obj)["Ready"]["status"] == "True"
    events = analyses.wait_events("inputs", {"ModelRefused", "Succeeded"})
    (refused,) = [e for e in events if e["reason"] == "ModelRefused"]
    assert refused["type"] == "Warning" and "text_encoder_b" in refused["message"]

    inference = kubectl.get("configmap", "inputs-results", "-n", namespace)["data"]["metrics-model-inference.csv"]
    rows = list(csv.DictReader(io.StringIO(inference)))
    assert {r["Request Rate"] for r in rows} == {str(RATE)} and "Concurrency" not in rows[0]
    assert {r["Delivered"] for r in rows} == {"Yes"}
    for row in rows:  # the offered rate lies within delivered throughput's interval (x batch: infer/sec)
        offered = RATE * int(row["Batch"])
        low, high = float(row["Throughput 95% CI Low (infer/sec)"]), float(row["Throughput 95% CI High (infer/sec)"])
        assert low <= offered * 1.02 and high >= offered * 0.98, row


SLEEP_MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "sleep_10ms"


def test_a_request_rate_search_ends_with_the_highest_rate_delivered_in_status(
    analyses: Analyses, volumes: Volumes
) -> None:
    """sleep_10ms serves one request at a time, 10 ms each: it cannot deliver 100 requests a second or more."""
    shutil.copytree(SLEEP_MODEL, volumes.models / "sleep_10ms")
    manifest = analysis_manifest("ratesearch", models=["sleep_10ms"], batch_sizes=[1])
    spec = manifest["spec"]
    del spec["concurrency"]
    spec["requestRateSearch"] = {"minRate": 20, "maxRate": 640}
    spec["measurement"] = {**spec["measurement"], "measurementIntervalMs": 1000}
    analyses.apply(manifest)

    status = analyses.wait_finished("ratesearch", timeout=600)["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    [boundary] = status["boundaries"]
    assert boundary["requestRate"] is True
    assert 40 <= boundary["surelyUnder"] < 100 < boundary["surelyOver"] * 1.2, boundary
    assert "is the highest surely delivered" in boundary["summary"]
    rates = [p["requestRate"] for p in status["points"]]
    assert rates[:3] == [20, 40, 80] and 640 not in rates
    skipped = {s["requestRate"] for m in status["models"] for s in m.get("skipped") or []}
    assert 640 in skipped  # the steps the climb left out, with why
