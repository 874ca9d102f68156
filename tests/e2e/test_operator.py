"""The operator end to end, as a user runs it: `helm install` the chart (default values), `kubectl apply` a
ModelAnalysis, `kubectl get modelanalyses`, the CSV files on the results volume, `model-analyzer results`.

The cluster is the real control plane of tests/cluster; Triton pods are real tritonserver processes and each
point is a real perf_analyzer Job (see docs/test-cluster.md). Sweeps are small and windows short to keep the
file within a few minutes; every wait has a generous timeout and no test asserts a duration.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.cluster.controlplane import Cluster
from tests.e2e.conftest import (
    FINISHED,
    MODEL_ANALYZER,
    OPERATOR_NAMESPACE,
    RESULTS_CLAIM,
    Analyses,
    Json,
    Kubectl,
    Operator,
    Volumes,
    analysis_manifest,
    conditions,
    point_keys,
)

pytestmark = pytest.mark.cluster

# The user-visible contract of the files, written out rather than imported from the code under test.
INFERENCE_CSV = "metrics-model-inference.csv"
GPU_CSV = "metrics-model-gpu.csv"
SERVER_ONLY_CSV = "metrics-server-only.csv"
REPORT_HTML = "report.html"
INFERENCE_HEADER = (
    "Model,Batch,Concurrency,Model Config Path,Instance Group,Max Batch Size,Satisfies Constraints,"
    "Throughput (infer/sec),p99 Latency (ms),p50 Latency (ms),p90 Latency (ms),p95 Latency (ms),Avg Latency (ms),"
    "Server Throughput (infer/sec),Max GPU Utilization (%),Max GPU Memory (MB),Max Memory Utilization (%),"
    "Max GPU Power (W),Max CPU Utilization (%),Max CPU Memory (MB),Status,Error,"
    "Throughput 95% CI Low (infer/sec),Throughput 95% CI High (infer/sec),p99 Latency 95% CI Low (ms),"
    "p99 Latency 95% CI High (ms),Measurement Windows,Requests,Converged,Convergence,"
    "Server Node,Load Generator Node,Load Generator Placement,Load Generator CPU (cores),"
    "Load Generator CPU Budget (cores),Load Generator Bottleneck,Triton Version"
)
GPU_HEADER = (
    "Model,GPU UUID,Batch,Concurrency,Model Config Path,Instance Group,Satisfies Constraints,"
    "GPU Memory Usage (MB),GPU Utilization (%),GPU Power Usage (W),Memory Utilization (%),Triton Version"
)
SERVER_ONLY_HEADER = (
    "Model,GPU UUID,GPU Memory Usage (MB),GPU Utilization (%),GPU Power Usage (W),Memory Utilization (%),"
    "CPU Utilization (%),CPU Memory Usage (MB)"
)

# add_sub (max_batch_size 8) x batch [1, 4] x concurrency [1, 2], and matmul (max_batch_size 0) at batch 1 only.
EXAMPLE_PLAN = sorted(
    [("add_sub", 1, 1), ("add_sub", 1, 2), ("add_sub", 4, 1), ("add_sub", 4, 2), ("matmul", 1, 1), ("matmul", 1, 2)]
)

# A Python-backend model whose initialize() raises: Triton reports it as a load failure with this text.
BROKEN_CONFIG = """name: "broken"
backend: "python"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
instance_group [ { count: 1 kind: KIND_CPU } ]
"""
BROKEN_ERROR = "broken on purpose: its weights are missing"
BROKEN_MODEL = f"""class TritonPythonModel:
    def initialize(self, args):
        raise RuntimeError("{BROKEN_ERROR}")

    def execute(self, requests):
        return []
"""


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def result_files(folder: Path) -> dict[str, str]:
    """The result files in a folder of the results claim, less the operator's hidden record of whose they are."""
    return {path.name: path.read_text() for path in sorted(folder.iterdir()) if not path.name.startswith(".")}


def assert_measured(status: Json) -> None:
    """Each point has perf_analyzer's numbers, or (rarely, on a busy machine) is recorded as failed with its
    reason; the analysis needs at least one measured point to succeed."""
    for point in status["points"]:
        if point["status"] == "Measured":
            assert point["throughput"] > 0, point
            assert 0 < point["p50"] <= point["p99"], point
        else:
            assert point["status"] == "Failed" and point["error"] and "throughput" not in point, point
    assert any(point["status"] == "Measured" for point in status["points"])


def event_reasons(events: list[Json], type_: str | None = None) -> list[str]:
    return [e["reason"] for e in events if type_ is None or e["type"] == type_]


def test_profiles_the_example_models_and_writes_the_results(
    cluster: Cluster, kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str
) -> None:
    analyses.apply(analysis_manifest("example"))

    # Follow it as a user does, with `kubectl get modelanalyses`.
    progress_seen = []
    deadline = time.monotonic() + 300
    while True:
        columns, rows = analyses.table()
        row = rows.get("example", {})
        if row.get("PROGRESS") and row["PROGRESS"] not in progress_seen:
            progress_seen.append(row["PROGRESS"])
        if row.get("PHASE") in FINISHED:
            break
        assert time.monotonic() < deadline, f"not finished after 300 s: {row}"
        time.sleep(1.0)
    assert columns == ["NAME", "PHASE", "PROGRESS", "BEST THROUGHPUT", "BEST", "AGE"]
    assert row["PHASE"] == "Succeeded", row
    assert row["PROGRESS"] == "6/6", row

    obj = analyses.get("example")
    assert obj is not None
    status = obj["status"]
    assert float(row["BEST THROUGHPUT"]) == pytest.approx(status["bestThroughput"])
    # The answer: the best point under the (default) objective, with no constraints every point qualifies.
    best = status["best"]
    assert row["BEST"] == best["summary"] and best["summary"].startswith(f"{best['model']}/b{best['batch']}/")
    assert best["throughput"] == pytest.approx(status["bestThroughput"])

    # One row per planned point, each exactly once; matmul only at batch 1, its batch-4 points listed as skipped.
    assert sorted(point_keys(status)) == EXAMPLE_PLAN
    assert_measured(status)
    assert status["pointsDone"] == status["pointsTotal"] == 6
    assert status["bestThroughput"] == max(p.get("throughput", 0) for p in status["points"])
    models = {m["name"]: m for m in status["models"]}
    assert models["add_sub"]["status"] == "Profiled" and models["add_sub"]["maxBatchSize"] == 8
    assert not models["add_sub"].get("skipped")
    assert models["matmul"]["status"] == "Profiled" and models["matmul"]["maxBatchSize"] == 0
    skipped = models["matmul"]["skipped"]
    assert sorted((s["batch"], s["concurrency"]) for s in skipped) == [(4, 1), (4, 2)]
    assert all("max_batch_size 0" in s["reason"] for s in skipped), skipped
    assert "baseline" in status and status["serverVersion"]

    # The status describes this spec, and says so.
    generation = obj["metadata"]["generation"]
    assert status["observedGeneration"] == generation
    ready = conditions(obj)["Ready"]
    assert ready["status"] == "True" and ready["reason"] == "Succeeded" and ready["observedGeneration"] == generation
    assert conditions(obj)["SpecValid"]["status"] == "True"
    assert status["results"] == f"pvc://{RESULTS_CLAIM}/example"

    # The CSV files and report.html on the results volume under <analysis name>/, the same as in the ConfigMap
    # <name>-results.
    files = result_files(volumes.results / "example")
    assert set(files) == {INFERENCE_CSV, GPU_CSV, SERVER_ONLY_CSV, REPORT_HTML}
    assert kubectl.get("configmap", "example-results", "-n", namespace)["data"] == files
    assert files[INFERENCE_CSV].splitlines()[0] == INFERENCE_HEADER
    assert files[GPU_CSV].splitlines()[0] == GPU_HEADER
    assert files[SERVER_ONLY_CSV].splitlines()[0] == SERVER_ONLY_HEADER
    inference = csv_rows(files[INFERENCE_CSV])
    assert {r["Triton Version"] for r in inference} == {"24.08-py3"}  # the analysis' one version
    assert sorted((r["Model"], int(r["Batch"]), int(r["Concurrency"])) for r in inference) == EXAMPLE_PLAN
    by_key = {(p["model"], p["batch"], p["concurrency"]): p for p in status["points"]}
    for r in inference:
        point = by_key[(r["Model"], int(r["Batch"]), int(r["Concurrency"]))]
        assert r["Status"] == point["status"], (r, point)
        # Noise never empties a cell: every point is measured, with how sure it is.
        assert point["status"] == "Measured", point
        assert r["Satisfies Constraints"] == "Yes", r
        assert float(r["Throughput (infer/sec)"]) == pytest.approx(point["throughput"], abs=1e-3)
        low, high = point["throughputCI"]
        assert low <= point["throughput"] <= high, point
        assert float(r["Throughput 95% CI Low (infer/sec)"]) == pytest.approx(low, abs=1e-3)
        assert point["windows"] >= 3 and int(r["Measurement Windows"]) == point["windows"]
        assert r["Converged"] == ("Yes" if point["converged"] else "No") and r["Convergence"], r
        assert r["Max Batch Size"] == ("8" if r["Model"] == "add_sub" else "0")
    gpu_points = {(r["Model"], int(r["Batch"]), int(r["Concurrency"])) for r in csv_rows(files[GPU_CSV])}
    assert sorted(gpu_points) == EXAMPLE_PLAN
    assert [r["Model"] for r in csv_rows(files[SERVER_ONLY_CSV])] == ["triton-server"]
    report = files[REPORT_HTML]
    assert "<title>Model analysis: example: add_sub, matmul</title>" in report
    assert report.count("<tr class=best data-point=") == 2  # one best point per model
    found = re.search(r"<script type=application/json id=data>(.*?)</script>", report, re.S)
    assert found, "report.html carries no data"
    data = json.loads(found[1])
    column = data["columns"].index("Throughput (infer/sec)")
    shown = sorted(row[column] for row in data["rows"])
    assert shown == pytest.approx(sorted(float(r["Throughput (infer/sec)"]) for r in inference), abs=1e-3)

    # The story in events.
    events = analyses.wait_events(
        "example", {"Started", "PodCreated", "ServerReady", "BaselineMeasured", "ModelLoaded", "ModelProfiled",
                    "Succeeded"})  # fmt: skip
    loaded = sorted(e["message"] for e in events if e["reason"] == "ModelLoaded")
    assert loaded == ["Loaded add_sub", "Loaded matmul"], loaded
    failed_points = [p for p in status["points"] if p["status"] == "Failed"]
    assert event_reasons(events, "Warning") == ["PointFailed"] * len(failed_points)

    # The Triton pod and every Job (and their pods) are gone; the results ConfigMap stays with the analysis.
    analyses.wait_children_gone("example", kinds="pods,jobs")
    assert analyses.children("example") == ["ConfigMap/example-results"]

    # `model-analyzer results` prints the same CSV.
    cli = subprocess.run(
        [str(MODEL_ANALYZER), "results", "example", "-n", namespace, "--format", "csv"],
        env=cluster.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout == files[INFERENCE_CSV]
    page = subprocess.run(
        [str(MODEL_ANALYZER), "results", "example", "-n", namespace, "--format", "html"],
        env=cluster.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert page.returncode == 0, page.stderr
    assert page.stdout == report
    table = subprocess.run(
        [str(MODEL_ANALYZER), "results", "example", "-n", namespace],
        env=cluster.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert f"Best: {best['summary']}" in table.stdout
    # `model-analyzer report --name` renders the page again from the resource itself.
    again = subprocess.run(
        [str(MODEL_ANALYZER), "report", "--name", "example", "-n", namespace, "-o", "-"],
        env=cluster.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout.lstrip().lower().startswith("<!doctype html") and "</html>" in again.stdout
    def page_data(page: str) -> Json:
        found = re.search(r'<script[^>]*id="?data"?[^>]*>(.*?)</script>', page, re.S)
        assert found, page[:500]
        return dict(json.loads(found[1]))

    written, rendered = page_data(report), page_data(again.stdout)
    for key in ("rows", "best", "baseline"):  # the same points, the same best, the same baseline
        assert rendered[key] == written[key], key

    # Deleting the analysis takes its ConfigMap along; the files on the user's volume stay.
    uid = obj["metadata"]["uid"]
    kubectl("delete", "modelanalysis", "example", "-n", namespace, "--timeout=120s")
    analyses.wait_children_gone("example", uid)
    assert result_files(volumes.results / "example") == files


def test_a_model_that_fails_to_load_is_recorded_and_the_others_are_measured(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str
) -> None:
    broken = volumes.models / "broken"
    (broken / "1").mkdir(parents=True)
    (broken / "config.pbtxt").write_text(BROKEN_CONFIG)
    (broken / "1" / "model.py").write_text(BROKEN_MODEL)
    analyses.apply(analysis_manifest("partly", models=["broken", "add_sub"], batch_sizes=[1], concurrency=[1, 2]))

    obj = analyses.wait_finished("partly")
    status = obj["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    models = {m["name"]: m for m in status["models"]}
    assert models["broken"]["status"] == "LoadFailed"
    assert BROKEN_ERROR in models["broken"]["error"]  # Triton's own error, with the model's exception
    assert models["add_sub"]["status"] == "Profiled"
    assert sorted(point_keys(status)) == [("add_sub", 1, 1), ("add_sub", 1, 2)]
    assert_measured(status)
    assert status["progress"] == "2/2"
    assert "failed to load: broken" in status["message"]
    assert conditions(obj)["Ready"]["status"] == "True"

    events = analyses.wait_events("partly", {"ModelLoadFailed", "Succeeded"})
    (failed,) = [e for e in events if e["reason"] == "ModelLoadFailed"]
    assert failed["type"] == "Warning" and "broken" in failed["message"], failed
    inference = csv_rows(kubectl.get("configmap", "partly-results", "-n", namespace)["data"][INFERENCE_CSV])
    assert sorted((r["Model"], r["Batch"], r["Concurrency"]) for r in inference) == [
        ("add_sub", "1", "1"),
        ("add_sub", "1", "2"),
    ]


def test_deleting_an_analysis_mid_run_removes_everything_it_owns(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str
) -> None:
    analyses.apply(analysis_manifest("doomed", models=["add_sub"]))
    obj = analyses.wait_points("doomed", 1)
    uid = obj["metadata"]["uid"]
    assert obj["status"]["pointsDone"] < obj["status"]["pointsTotal"], "finished before it could be deleted"
    owned = analyses.children("doomed", uid)
    assert f"Pod/{obj['status']['tritonPod']}" in owned, owned

    kubectl("delete", "modelanalysis", "doomed", "-n", namespace, "--timeout=120s")
    assert analyses.get("doomed") is None
    analyses.wait_children_gone("doomed", uid)
    # Nothing comes back: no run of the deleted analysis goes on creating Jobs or pods.
    time.sleep(5)
    assert analyses.children("doomed", uid) == []
    assert kubectl("get", "pods,jobs", "-n", namespace, "-o", "name").split() == []


def test_an_operator_killed_mid_sweep_resumes_without_measuring_a_point_twice(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, operator: Operator
) -> None:
    analyses.apply(analysis_manifest("resilient"))
    obj = analyses.wait_points("resilient", 1)
    old_pod = operator.wait_ready()
    kubectl("delete", "pod", old_pod, "-n", OPERATOR_NAMESPACE, "--grace-period=0", "--force")
    killed_at = obj["status"]["pointsDone"]
    assert killed_at < 6, "the sweep finished before the operator could be killed"
    operator.wait_ready(exclude={old_pod})

    obj = analyses.wait_finished("resilient")
    status = obj["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    keys = point_keys(status)
    assert sorted(keys) == EXAMPLE_PLAN, keys  # every planned point, each exactly once
    assert_measured(status)
    assert status["pointsDone"] == status["pointsTotal"] == 6
    files = result_files(volumes.results / "resilient")
    inference = csv_rows(files[INFERENCE_CSV])
    assert sorted((r["Model"], int(r["Batch"]), int(r["Concurrency"])) for r in inference) == EXAMPLE_PLAN
    analyses.wait_children_gone("resilient", kinds="pods,jobs")


def test_a_triton_pod_deleted_mid_point_fails_the_analysis_saying_why_and_keeps_what_was_measured(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str
) -> None:
    """Decided (README): no new Triton pod mid-sweep. The analysis fails with reason ServerGone, the
    interrupted point is not recorded as a failure of its own, every point measured before stays in status
    once, and nothing is left running."""
    analyses.apply(analysis_manifest("orphaned"))
    analyses.wait_points("orphaned", 1)

    def point_job_running() -> bool:
        jobs = kubectl.get("jobs", "-n", namespace, "-l", "modelanalyzer.dev/analysis=orphaned")["items"]
        return any(not (job.get("status") or {}).get("conditions") for job in jobs)

    deadline = time.monotonic() + 120
    while not point_job_running():  # mid-point: a load-generator Job is running
        assert time.monotonic() < deadline, "no point Job started"
        time.sleep(0.1)
    before = analyses.get("orphaned")
    assert before is not None
    kubectl("delete", "pod", "orphaned-g1-triton", "-n", namespace, "--wait=false")

    obj = analyses.wait_finished("orphaned")
    status = obj["status"]
    assert status["phase"] == "Failed", status
    ready = conditions(obj)["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "ServerGone", ready
    assert "orphaned-g1-triton" in ready["message"], ready
    assert conditions(obj)["ServerReady"]["reason"] == "ServerGone"
    keys = point_keys(status)
    assert len(keys) == len(set(keys)), keys  # none measured twice
    assert len(keys) >= before["status"]["pointsDone"]  # none lost
    assert len(keys) < 6, "the sweep finished before the pod could be deleted"
    for point in status.get("points") or []:  # no point failed because the server was gone
        assert point["status"] == "Measured", point
    analyses.wait_children_gone("orphaned", kinds="pods,jobs")


@pytest.mark.parametrize("claim_of", ["modelRepository", "results"])
def test_a_claim_that_does_not_exist_fails_the_analysis_and_creates_nothing(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str, claim_of: str
) -> None:
    """The schema admits any claim name; the operator refuses one that is not there, before starting Triton
    (a missing results claim must not cost a whole sweep first)."""
    manifest = analysis_manifest("misnamed")
    manifest["spec"][claim_of]["pvc"]["claimName"] = "no-such-claim"
    analyses.apply(manifest)

    obj = analyses.wait_finished("misnamed")
    status = obj["status"]
    assert status["phase"] == "Failed"
    assert "no-such-claim" in status["message"]
    ready = conditions(obj)["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec" and "no-such-claim" in ready["message"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert not status.get("points")
    events = analyses.wait_events("misnamed", {"InvalidSpec"})
    assert all(e["type"] == "Warning" for e in events if e["reason"] == "InvalidSpec")
    assert analyses.children("misnamed", obj["metadata"]["uid"]) == []
    assert kubectl("get", "pods,jobs", "-n", namespace, "-o", "name").split() == []


def test_an_image_outside_the_allowlist_fails_the_analysis_and_creates_no_pod(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str
) -> None:
    """Creating a ModelAnalysis is creating a pod: with the chart's default allowlist (only
    nvcr.io/nvidia/tritonserver), an analysis that names another image fails before any pod exists, with a
    condition that says which value to change."""
    manifest = analysis_manifest("foreign", models=["add_sub"], batch_sizes=[1], concurrency=[1])
    manifest["spec"]["triton"] = {"image": "docker.io/attacker/tritonserver:24.08-py3"}
    analyses.apply(manifest)

    obj = analyses.wait_finished("foreign")
    status = obj["status"]
    assert status["phase"] == "Failed", status
    for type_ in ("SpecValid", "Ready"):
        condition = conditions(obj)[type_]
        assert condition["status"] == "False" and condition["reason"] == "ImageNotAllowed", condition
        assert "docker.io/attacker/tritonserver" in condition["message"], condition
        assert "triton.allowedImageRepositories" in condition["message"], condition
    assert not status.get("points")
    events = analyses.wait_events("foreign", {"ImageNotAllowed"})
    assert all(e["type"] == "Warning" for e in events if e["reason"] == "ImageNotAllowed")
    assert analyses.children("foreign", obj["metadata"]["uid"]) == []
    assert kubectl("get", "pods,jobs", "-n", namespace, "-o", "name").split() == []


def test_a_triton_pod_that_cannot_be_scheduled_is_reported_then_fails_as_unschedulable(
    analyses: Analyses, volumes: Volumes
) -> None:
    """The node has one nvidia.com/gpu and the Triton pod asks for two. The operator reads the pod's
    PodScheduled condition and says so at once (a GPU may still free up, so it waits until the ready
    timeout), then fails with reason Unschedulable rather than a generic ServerTimeout."""
    manifest = analysis_manifest("too-big", models=["add_sub"], batch_sizes=[1], concurrency=[1])
    manifest["spec"]["triton"].update({"resources": {"limits": {"nvidia.com/gpu": "2"}}, "readyTimeoutSeconds": 20})
    analyses.apply(manifest)

    # Reported while it waits, not only when the timeout expires.
    waiting = analyses.wait(
        "too-big",
        lambda o: conditions(o).get("ServerReady", {}).get("reason") == "Unschedulable",
        "ServerReady=False/Unschedulable",
    )
    assert waiting["status"]["phase"] == "Starting", waiting["status"]
    assert "nvidia.com/gpu" in conditions(waiting)["ServerReady"]["message"]
    events = analyses.wait_events("too-big", {"Unschedulable"})
    assert all(e["type"] == "Warning" for e in events if e["reason"] == "Unschedulable"), events

    obj = analyses.wait_finished("too-big")
    status = obj["status"]
    assert status["phase"] == "Failed"
    ready = conditions(obj)["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "Unschedulable", ready
    assert "nvidia.com/gpu" in ready["message"], ready
    server = conditions(obj)["ServerReady"]
    assert server["status"] == "False" and server["reason"] == "Unschedulable", server
    assert not status.get("points")
    analyses.wait_children_gone("too-big", obj["metadata"]["uid"])


def test_a_changed_spec_starts_a_new_run_and_observed_generation_follows(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str
) -> None:
    first = analysis_manifest("evolving", models=["add_sub"])
    analyses.apply(first)
    obj = analyses.wait_points("evolving", 1)
    assert obj["metadata"]["generation"] == 1 and obj["status"]["observedGeneration"] == 1
    assert obj["status"]["pointsDone"] < obj["status"]["pointsTotal"], "finished before the spec could change"

    # Mid-run, change the sweep to one point that generation 1 does not plan: nothing of its run may remain.
    second = analysis_manifest("evolving", models=["add_sub"], batch_sizes=[2], concurrency=[3])
    analyses.apply(second)
    obj = analyses.wait_finished("evolving")
    status = obj["status"]
    assert obj["metadata"]["generation"] == 2
    assert status["observedGeneration"] == 2
    assert status["phase"] == "Succeeded", status.get("message")
    assert point_keys(status) == [("add_sub", 2, 3)]
    assert_measured(status)
    assert status["progress"] == "1/1"
    assert conditions(obj)["Ready"]["observedGeneration"] == 2
    assert status["tritonPod"] == "evolving-g2-triton"

    events = analyses.wait_events("evolving", {"Started", "Succeeded"})
    started = sorted(e["message"] for e in events if e["reason"] == "Started")
    assert any("generation 1" in m for m in started) and any("generation 2" in m for m in started), started
    inference = csv_rows(kubectl.get("configmap", "evolving-results", "-n", namespace)["data"][INFERENCE_CSV])
    assert [(r["Model"], r["Batch"], r["Concurrency"]) for r in inference] == [("add_sub", "2", "3")]
    assert csv_rows((volumes.results / "evolving" / INFERENCE_CSV).read_text()) == inference
    # Generation 1's Triton pod and Jobs are gone, as are generation 2's once it finished.
    analyses.wait_children_gone("evolving", kinds="pods,jobs")

    # A finished analysis whose spec changes runs again too (the usual edit-and-apply after a result).
    third = analysis_manifest("evolving", models=["matmul"], batch_sizes=[1], concurrency=[1])
    analyses.apply(third)
    obj = analyses.wait_finished("evolving")
    status = obj["status"]
    assert obj["metadata"]["generation"] == status["observedGeneration"] == 3
    assert status["phase"] == "Succeeded", status.get("message")
    assert point_keys(status) == [("matmul", 1, 1)]
    assert_measured(status)
    inference = csv_rows((volumes.results / "evolving" / INFERENCE_CSV).read_text())
    assert [(r["Model"], r["Batch"], r["Concurrency"]) for r in inference] == [("matmul", "1", "1")]
