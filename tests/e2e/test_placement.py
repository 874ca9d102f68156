"""Where each point's load generator runs (issue 14), on the real scheduler with several nodes.

The node agent registers two more nodes for this module: `gpu-node-2`, a GPU node tainted
`nvidia.com/gpu=present:NoSchedule` as GPU nodes of most clusters are, and `cpu-node-1`, a node without a GPU
labelled `pool=cpu`. Next to the session's untainted `gpu-node-1`, the scheduler has a real choice for every
load-generator Job: only the placement the operator asks for puts it where these tests expect it.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.controlplane import Cluster
from tests.cluster.node_agent import GPU_TAINT, NodeSpec
from tests.e2e.conftest import FINISHED, Analyses, Json, Kubectl, Operator, Volumes, analysis_manifest

pytestmark = pytest.mark.cluster

TAINTED_GPU_NODE = "gpu-node-2"
CPU_NODE = "cpu-node-1"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
LOAD_GENERATOR = "app.kubernetes.io/component=load-generator"


@pytest.fixture(scope="module")
def more_nodes(cluster: Cluster, operator: Operator) -> Iterator[None]:
    """Two more nodes for this module, removed afterwards (the operator is installed first, so it stays on
    gpu-node-1)."""
    added = [
        NodeSpec(name=TAINTED_GPU_NODE, taints=[GPU_TAINT], labels={"pool": "gpu"}),
        NodeSpec(name=CPU_NODE, gpus=0, labels={"pool": "cpu"}),
    ]
    for node in added:
        cluster.agent.add_node(node)
    try:
        yield
    finally:
        for node in added:
            cluster.agent.remove_node(node.name)


def small_sweep(name: str, triton: Json, load_generator: Json | None = None) -> Json:
    manifest = analysis_manifest(name, models=("add_sub",), batch_sizes=(1,), concurrency=(1, 2))
    manifest["spec"]["triton"].update(triton)
    if load_generator is not None:
        manifest["spec"]["loadGenerator"] = load_generator
    return manifest


def run_and_watch(analyses: Analyses, kubectl: Kubectl, manifest: Json) -> tuple[Json, dict[str, str]]:
    """Apply, wait until finished, and note the node of every load-generator pod seen meanwhile (the Jobs are
    deleted after each point, so they are watched while they exist)."""
    name = manifest["metadata"]["name"]
    analyses.apply(manifest)
    seen: dict[str, str] = {}
    deadline = time.monotonic() + 300
    while True:
        pods = kubectl.get("pods", "-n", analyses.namespace, "-l", LOAD_GENERATOR)["items"]
        for pod in pods:
            if pod["spec"].get("nodeName"):
                seen[pod["metadata"]["name"]] = pod["spec"]["nodeName"]
        obj = analyses.get(name)
        status = (obj or {}).get("status") or {}
        if (
            obj
            and status.get("phase") in FINISHED
            and status.get("observedGeneration") == obj["metadata"]["generation"]
        ):
            return obj, seen
        assert time.monotonic() < deadline, f"{name} did not finish: {status}"
        time.sleep(0.3)


def csv_rows(kubectl: Kubectl, namespace: str, name: str) -> list[dict[str, str]]:
    text = kubectl.get("configmap", f"{name}-results", "-n", namespace)["data"]["metrics-model-inference.csv"]
    return list(csv.DictReader(io.StringIO(text)))


def test_by_default_every_job_runs_beside_triton_also_on_a_tainted_node(
    more_nodes: None, analyses: Analyses, kubectl: Kubectl, volumes: Volumes, namespace: str
) -> None:
    # Triton goes to the tainted GPU node, which the spec tolerates; the Jobs carry no toleration of their own.
    triton: dict[str, Any] = {
        "nodeSelector": {"kubernetes.io/hostname": TAINTED_GPU_NODE},
        "tolerations": [GPU_TOLERATION],
    }
    obj, seen = run_and_watch(analyses, kubectl, small_sweep("beside", triton))
    status = obj["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    assert status["loadGeneratorPlacement"] == "SameNodeAsServer"
    assert len(status["points"]) == 2
    for point in status["points"]:
        assert (point["serverNode"], point["loadGeneratorNode"]) == (TAINTED_GPU_NODE, TAINTED_GPU_NODE), point
        assert point["loadGeneratorCPUBudget"] == 1.0  # the default request at concurrency 1 and 2
        assert point["loadGeneratorCPU"] >= 0
    assert seen and set(seen.values()) == {TAINTED_GPU_NODE}, seen
    rows = csv_rows(kubectl, namespace, "beside")
    assert {(r["Server Node"], r["Load Generator Node"], r["Load Generator Placement"]) for r in rows} == {
        (TAINTED_GPU_NODE, TAINTED_GPU_NODE, "SameNodeAsServer")
    }
    assert all(r["Load Generator Bottleneck"] in ("Yes", "No") for r in rows), rows


def test_placement_anywhere_runs_the_jobs_where_the_user_placed_them(
    more_nodes: None, analyses: Analyses, kubectl: Kubectl, volumes: Volumes, namespace: str
) -> None:
    triton = {"nodeSelector": {"kubernetes.io/hostname": "gpu-node-1"}}
    load_generator = {"placement": "Anywhere", "nodeSelector": {"pool": "cpu"},
                      "resources": {"requests": {"cpu": "2", "memory": "128Mi"}}}  # fmt: skip
    obj, seen = run_and_watch(analyses, kubectl, small_sweep("elsewhere", triton, load_generator))
    status = obj["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    assert status["loadGeneratorPlacement"] == "Anywhere"
    for point in status["points"]:
        assert (point["serverNode"], point["loadGeneratorNode"]) == ("gpu-node-1", CPU_NODE), point
        assert point["loadGeneratorCPUBudget"] == 2.0
    assert seen and set(seen.values()) == {CPU_NODE}, seen
    rows = csv_rows(kubectl, namespace, "elsewhere")
    assert {(r["Server Node"], r["Load Generator Node"], r["Load Generator Placement"]) for r in rows} == {
        ("gpu-node-1", CPU_NODE, "Anywhere")
    }
