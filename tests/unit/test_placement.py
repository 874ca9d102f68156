"""Where each point's load generator runs, and what it used (issue 14), as pure functions: the Job's placement
and resources from the spec, perf_analyzer's CPU share, the placement kept with each point in status and in
the CSV. The real scheduler places these Jobs in tests/e2e/test_placement.py."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from modelanalysis.adapters.perf_analyzer import available_cpus, measure_point
from modelanalysis.core.perf import PerfMeasurement, PerfRun, PerfWindow, load_generator_cpu
from modelanalysis.core.report import (
    INFERENCE_COLUMNS,
    INFERENCE_CSV,
    INPUTS_COLUMN,
    MEASURED_WITH_COLUMN,
    OPEN_LOOP_COLUMNS,
    csv_files,
)
from modelanalysis.core.results import AnalysisResult, Placement, PointResult, PointStatus, local_placement
from modelanalysis.core.spec import MeasurementSettings
from modelanalysis.core.sweep import Point
from modelanalysis.kube import objects
from modelanalysis.kube.conditions import analysis_result, compact_point, expand_point
from modelanalysis.kube.resource import LoadGeneratorSettings, ModelAnalysisSpec, ModelAnalysisStatus
from modelanalysis.kube.settings import OperatorSettings

SETTINGS = OperatorSettings(load_generator_image="ghcr.io/modelanalysis/modelanalysis:0.1.0")
POINT = Point(model="add_sub", batch_size=1, concurrency=2)
GPU_TAINT = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
SERVER_TOLERATIONS = [
    GPU_TAINT,
    # what the API server's DefaultTolerationSeconds plugin adds to every pod
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
]


def spec(load_generator: dict[str, Any] | None = None) -> ModelAnalysisSpec:
    wire: dict[str, Any] = {
        "models": [{"name": "add_sub"}],
        "concurrency": [1, 2, 16],
        "modelRepository": {"uri": "s3://bucket/models"},
    }
    if load_generator is not None:
        wire["loadGenerator"] = load_generator
    return ModelAnalysisSpec.model_validate(wire)


def job(s: ModelAnalysisSpec, point: Point = POINT, node: str | None = "gpu-node-2") -> dict[str, Any]:
    return objects.load_generator_job(
        "example", "team-a", 1, s, point, "10.1.2.3", SETTINGS, server_node=node, server_tolerations=SERVER_TOLERATIONS
    )


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    return dict(manifest["spec"]["template"]["spec"])


# ---- placement -----------------------------------------------------------------------------------------


def test_by_default_each_job_is_pinned_to_the_triton_pods_node_with_its_tolerations() -> None:
    p = pod_spec(job(spec()))
    assert p["affinity"] == {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gpu-node-2"]}]}
                ]
            }
        }
    }
    assert p["tolerations"] == SERVER_TOLERATIONS
    assert "nodeSelector" not in p


def test_the_users_tolerations_are_added_once() -> None:
    extra = {"key": "dedicated", "operator": "Equal", "value": "bench", "effect": "NoSchedule"}
    p = pod_spec(job(spec({"tolerations": [GPU_TAINT, extra]})))
    assert p["tolerations"] == [*SERVER_TOLERATIONS, extra]


def test_same_node_needs_the_server_node() -> None:
    with pytest.raises(ValueError, match="not known yet"):
        job(spec(), node=None)


def test_anywhere_leaves_placement_to_the_scheduler_within_the_users_rules() -> None:
    affinity = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    toleration = {"key": "spot", "operator": "Exists"}
    p = pod_spec(
        job(
            spec({"placement": "Anywhere", "nodeSelector": {"pool": "cpu"}, "affinity": affinity,
                  "tolerations": [toleration]})
        )
    )  # fmt: skip
    assert p["nodeSelector"] == {"pool": "cpu"}
    assert p["affinity"] == affinity
    assert p["tolerations"] == [toleration]  # not the Triton pod's: the user chose where


def test_anywhere_alone_sets_no_scheduling_fields() -> None:
    p = pod_spec(job(spec({"placement": "Anywhere"}), node=None))
    assert not {"nodeSelector", "affinity", "tolerations"} & set(p)


@pytest.mark.parametrize("field", [{"nodeSelector": {"pool": "cpu"}}, {"affinity": {"nodeAffinity": {}}}])
def test_a_node_selector_or_affinity_needs_placement_anywhere(field: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="placement: Anywhere"):
        spec(field)


def test_an_unknown_placement_is_refused() -> None:
    with pytest.raises(ValidationError):
        spec({"placement": "OnMyLaptop"})


# ---- resources -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("concurrency", "cores"), [(1, 1), (4, 1), (5, 2), (8, 2), (16, 4), (64, 4)])
def test_default_cpu_request_grows_with_the_concurrency(concurrency: int, cores: int) -> None:
    point = Point(model="add_sub", batch_size=1, concurrency=concurrency)
    c = pod_spec(job(spec(), point))["containers"][0]
    assert c["resources"] == {"requests": {"cpu": str(cores), "memory": "256Mi"}}
    assert f"--cpu-budget={cores}" in c["args"]


def test_resources_from_the_spec_replace_the_default_and_set_the_budget() -> None:
    resources = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": 3}}
    c = pod_spec(job(spec({"resources": resources})))["containers"][0]
    assert c["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "3"}}
    assert "--cpu-budget=3" in c["args"]  # the limit caps it; the request only reserves


def test_no_cpu_in_the_resources_means_no_budget_argument() -> None:
    c = pod_spec(job(spec({"resources": {"requests": {"memory": "1Gi"}}})))["containers"][0]
    assert not any(a.startswith("--cpu-budget") for a in c["args"])


@pytest.mark.parametrize(("quantity", "cores"), [("500m", 0.5), ("2", 2.0), (1.5, 1.5), ("0", None), ("x", None)])
def test_cpu_quantities(quantity: object, cores: float | None) -> None:
    assert objects.cpu_cores(quantity) == cores


# ---- the load generator's CPU ----------------------------------------------------------------------------


def test_cpu_share_and_model_analyzers_80_percent_rule() -> None:
    assert load_generator_cpu(3.0, 2.0, 2.0) == (1.5, False)
    assert load_generator_cpu(3.4, 2.0, 2.0) == (1.7, True)  # 85% of 2 cores
    assert load_generator_cpu(1.0, 2.0, None) == (0.5, None)  # no budget: no verdict
    assert load_generator_cpu(1.0, 0.0, 1.0) == (None, None)


class Runs:
    """perf_analyzer runs of 2 s each on a stand-in clock, each using `cpu_per_run` CPU seconds."""

    def __init__(self, cpu_per_run: float) -> None:
        self.now, self.cpu, self.cpu_per_run = 0.0, 0.0, cpu_per_run
        summary = PerfMeasurement(
            throughput_infer_per_sec=1000, latency_p50_ms=1, latency_p90_ms=1, latency_p95_ms=1, latency_p99_ms=1
        )
        self.run = PerfRun(summary, [PerfWindow(1000.0, 1.0)] * 3, 1500)

    def clock(self) -> float:
        return self.now

    def child_cpu(self) -> float:
        return self.cpu

    def __call__(self, *_: object) -> PerfRun:
        self.now += 2.0
        self.cpu += self.cpu_per_run
        return self.run


@pytest.mark.parametrize(("cpu_per_run", "budget", "bottleneck"), [(1.0, 1.0, False), (1.8, 1.0, True)])
def test_measure_point_records_perf_analyzers_cpu(cpu_per_run: float, budget: float, bottleneck: bool) -> None:
    runs = Runs(cpu_per_run)
    m = measure_point(POINT, MeasurementSettings(), "h:8001", "h:8000", Path("perf_analyzer"), runs.clock, runs,
                      cpu_budget_cores=budget, child_cpu=runs.child_cpu)  # fmt: skip
    assert m.load_generator_cpu_cores == pytest.approx(cpu_per_run / 2.0)
    assert m.load_generator_cpu_budget_cores == budget
    assert m.load_generator_bottleneck is bottleneck


def test_available_cpus_reads_the_cgroup_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert available_cpus(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) >= 1  # no quota: the CPUs this process may run on


# ---- recorded with the results ---------------------------------------------------------------------------


def test_cli_runs_both_here_unless_the_server_is_elsewhere() -> None:
    here = local_placement("box", "127.0.0.1")
    assert (here.server_node, here.load_generator_node, here.load_generator_placement) == ("box", "box", "Local")
    assert local_placement("box", "localhost").server_node == "box"
    assert local_placement("box", "triton.example").server_node == "triton.example"


def measured_point() -> PointResult:
    perf = PerfMeasurement(
        throughput_infer_per_sec=900.0, latency_p50_ms=1, latency_p90_ms=2, latency_p95_ms=3, latency_p99_ms=4,
        load_generator_cpu_cores=0.912, load_generator_cpu_budget_cores=1.0, load_generator_bottleneck=True,
    )  # fmt: skip
    return PointResult(
        model="add_sub", batch_size=1, concurrency=2, status=PointStatus.MEASURED, perf=perf,
        placement=Placement(server_node="gpu-node-2", load_generator_node="gpu-node-2",
                            load_generator_placement="SameNodeAsServer"),
    )  # fmt: skip


def test_status_keeps_the_nodes_and_cpu_and_gives_them_back_for_the_csv() -> None:
    compact = compact_point(measured_point())
    wire = compact.model_dump(by_alias=True, exclude_none=True)
    assert wire["serverNode"] == wire["loadGeneratorNode"] == "gpu-node-2"
    assert (wire["loadGeneratorCPU"], wire["loadGeneratorCPUBudget"], wire["loadGeneratorBottleneck"]) == (
        0.912, 1.0, True,
    )  # fmt: skip
    status = ModelAnalysisStatus(points=[compact], load_generator_placement="SameNodeAsServer")
    assert analysis_result(status, "24.08-py3").points[0] == measured_point().model_copy(
        update={"resources": expand_point(compact).resources}
    )


def test_csv_says_where_each_point_ran_after_the_existing_columns() -> None:
    result = AnalysisResult(triton_version="x", points=[measured_point()])
    new = ["Server Node", "Load Generator Node", "Load Generator Placement", "Load Generator CPU (cores)",
           "Load Generator CPU Budget (cores)", "Load Generator Bottleneck"]  # fmt: skip
    closed_loop = [c for c in INFERENCE_COLUMNS if c not in (*OPEN_LOOP_COLUMNS, INPUTS_COLUMN, MEASURED_WITH_COLUMN)]
    assert closed_loop[-len(new) - 1 : -1] == new  # the Triton version is last
    assert INFERENCE_COLUMNS.index("Convergence") < INFERENCE_COLUMNS.index("Server Node")
    [row] = csv.DictReader(io.StringIO(csv_files(result)[INFERENCE_CSV]))
    assert [row[c] for c in new] == ["gpu-node-2", "gpu-node-2", "SameNodeAsServer", "0.912", "1.000", "Yes"]


def test_settings_default_to_same_node_as_server() -> None:
    assert LoadGeneratorSettings().placement == "SameNodeAsServer"
    assert spec().load_generator.placement == "SameNodeAsServer"
