"""Trials in parallel across GPU nodes (core/trials.py), on the real control plane and scheduler.

An analysis with two config variants and two Triton versions is four trials; with parallelism.maxTrials 2 the
operator runs two at once, each on a Triton pod of its own that asks for one nvidia.com/gpu, so the scheduler
puts them on the two GPU nodes (the session's `gpu-node-1` and `gpu-node-2`, added here and tainted as GPU
nodes usually are). The operator is killed once mid-run: every trial resumes from status, no point twice.

The test cluster maps every nvcr.io/nvidia/tritonserver image to the one local tritonserver, so the two
"versions" run the same server: what is tested is that each version is a trial of its own, on its own pod,
with its points, outcomes and best point labelled by version.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator

import pytest

from tests.cluster.controlplane import Cluster
from tests.cluster.node_agent import GPU_TAINT, NodeSpec
from tests.e2e.conftest import (
    FINISHED,
    OPERATOR_NAMESPACE,
    Analyses,
    Json,
    Kubectl,
    Operator,
    Volumes,
    analysis_manifest,
    conditions,
)
from tests.e2e.test_operator import BROKEN_CONFIG, BROKEN_ERROR, BROKEN_MODEL

pytestmark = pytest.mark.cluster

SECOND_GPU_NODE = "gpu-node-2"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
VERSIONS = ["24.08-py3", "24.09-py3"]
VARIANTS = ["add_sub_config_default", "add_sub_config_0"]


@pytest.fixture(scope="module")
def second_gpu_node(cluster: Cluster, operator: Operator) -> Iterator[None]:
    node = NodeSpec(name=SECOND_GPU_NODE, taints=[GPU_TAINT])
    cluster.agent.add_node(node)
    try:
        yield
    finally:
        cluster.agent.remove_node(node.name)


def trials_manifest(name: str) -> Json:
    manifest = analysis_manifest(name, models=("add_sub",), batch_sizes=(1,), concurrency=(1, 2))
    spec = manifest["spec"]
    spec["models"] = [{"name": "add_sub", "configSearch": {"instanceCounts": [2]}}]
    spec["triton"] = {"versions": VERSIONS, "tolerations": [GPU_TOLERATION]}
    spec["parallelism"] = {"maxTrials": 2}
    return manifest


def test_trials_run_two_at_once_on_two_gpu_nodes_survive_an_operator_restart_and_write_the_best(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, operator: Operator, second_gpu_node: None,
    namespace: str,
) -> None:  # fmt: skip
    analyses.apply(trials_manifest("trials"))
    most_at_once, killed = 0, False
    deadline = time.monotonic() + 600
    while True:
        obj = analyses.get("trials")
        status = (obj or {}).get("status") or {}
        running = [t for t in status.get("trials") or [] if t.get("phase") == "Profiling"]
        most_at_once = max(most_at_once, len(running))
        if not killed and len(running) == 2 and len(status.get("points") or []) >= 1:
            # Two trials mid-sweep: the operator goes; its successor resumes both from status.
            pod = operator.wait_ready()
            kubectl("delete", "pod", pod, "-n", OPERATOR_NAMESPACE, "--grace-period=0", "--force")
            operator.wait_ready(exclude={pod})
            killed = True
        generation = (obj or {}).get("metadata", {}).get("generation")
        if status.get("phase") in FINISHED and status.get("observedGeneration") == generation:
            break
        assert time.monotonic() < deadline, f"not finished in 600 s: {status.get('message')}"
        time.sleep(0.5)
    assert status["phase"] == "Succeeded", status.get("message")
    assert conditions(obj)["Ready"]["reason"] == "Succeeded"
    assert killed, "the operator was never killed mid-run"
    assert most_at_once == 2, "two trials never ran at once"

    # Four trials, each on its own Triton pod, spread over both GPU nodes.
    trials = status["trials"]
    assert [t["name"] for t in trials] == [f"{v}@{version}" for version in VERSIONS for v in VARIANTS]
    assert all(t["phase"] == "Succeeded" and t["pointsDone"] == t["pointsTotal"] == 2 for t in trials), trials
    assert len({t["pod"] for t in trials}) == 4
    assert {t["node"] for t in trials} == {"gpu-node-1", SECOND_GPU_NODE}

    # Every point once, labelled with its version and variant; each variant loaded with its config.
    keys = [(p.get("tritonVersion"), p.get("variant"), p["concurrency"]) for p in status["points"]]
    assert sorted(keys) == sorted((version, v, c) for version in VERSIONS for v in VARIANTS for c in (1, 2)), keys
    assert all(p["status"] == "Measured" for p in status["points"])
    models = {(m["tritonVersion"], m["name"]): m for m in status["models"]}
    assert {k: m["instanceGroup"] for k, m in models.items()} == {
        (version, v): "2:CPU" if v.endswith("_0") else "1:CPU" for version in VERSIONS for v in VARIANTS
    }

    # The answer, overall and per version.
    best = status["best"]
    assert best["tritonVersion"] in VERSIONS and best["variant"] in VARIANTS
    assert best["summary"].startswith(f"{best['tritonVersion']}/{best['variant']}/b1/c{best['concurrency']} ")
    assert [b["tritonVersion"] for b in status["bestPerVersion"]] == VERSIONS

    # The CSV names each point's version; the pods are gone.
    data = kubectl.get("configmap", "trials-results", "-n", namespace)["data"]
    rows = list(csv.DictReader(io.StringIO(data["metrics-model-inference.csv"])))
    assert sorted({r["Triton Version"] for r in rows}) == VERSIONS and len(rows) == 8
    analyses.wait_children_gone("trials", kinds="pods,jobs")


def test_a_trial_whose_model_will_not_load_fails_alone_and_the_other_trial_is_measured(
    kubectl: Kubectl, analyses: Analyses, volumes: Volumes, second_gpu_node: None, namespace: str
) -> None:
    broken = volumes.models / "broken"
    (broken / "1").mkdir(parents=True)
    (broken / "config.pbtxt").write_text(BROKEN_CONFIG)
    (broken / "1" / "model.py").write_text(BROKEN_MODEL)
    manifest = analysis_manifest("one-fails", models=("broken", "add_sub"), batch_sizes=(1,), concurrency=(1,))
    manifest["spec"]["triton"]["tolerations"] = [GPU_TOLERATION]
    manifest["spec"]["parallelism"] = {"maxTrials": 2}
    analyses.apply(manifest)

    obj = analyses.wait_finished("one-fails")
    status = obj["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    assert "trials failed: broken" in status["message"]
    trials = {t["name"]: t for t in status["trials"]}
    assert trials["broken"]["phase"] == "Failed" and trials["broken"]["reason"] == "ModelLoadFailed"
    assert BROKEN_ERROR in trials["broken"]["message"]
    assert trials["add_sub"]["phase"] == "Succeeded" and trials["add_sub"]["pointsDone"] == 1
    assert [(p["model"], p["status"]) for p in status["points"]] == [("add_sub", "Measured")]
    events = analyses.wait_events("one-fails", {"ModelLoadFailed", "Succeeded"})
    assert any(e["reason"] == "ModelLoadFailed" and e["message"].startswith("[broken] ") for e in events), events
    analyses.wait_children_gone("one-fails", kinds="pods,jobs")
