"""Status bookkeeping (conditions.py) and the pure helpers of reconcile.py that read pods and Jobs.

Pod and Job dicts are written as the kubelet, the scheduler and the Job controller write them (the field
names, reasons and message styles of Kubernetes 1.31+), since the operator reads nothing else."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from modelanalysis.cli_cluster import result_from_body
from modelanalysis.core.html_report import report_data
from modelanalysis.core.load import Load
from modelanalysis.core.perf import parse_perf_analyzer_csv
from modelanalysis.core.report import csv_files
from modelanalysis.core.results import AnalysisResult, ModelOutcome, ModelStatus, PointResult, PointStatus
from modelanalysis.core.server_metrics import (
    ResourceMetrics,
    aggregate_window,
    parse_triton_metrics,
)
from modelanalysis.core.spec import SweepSpec
from modelanalysis.core.sweep import Point, SkippedPoint
from modelanalysis.kube import names
from modelanalysis.kube.conditions import (
    MAX_MESSAGE,
    analysis_result,
    compact_baseline,
    compact_point,
    expand_point,
    model_entry,
    set_condition,
)
from modelanalysis.kube.readings import (
    job_outcome,
    owner_reference,
    pod_failure,
    pod_ready,
    stale_children,
    termination_message,
)
from modelanalysis.kube.resource import API_VERSION, KIND, ConditionType, ModelAnalysisStatus, Reason
from modelanalysis.kube.slots import TritonSlots

DATA = Path(__file__).resolve().parents[1] / "data"
H100 = "GPU-0da54fef-9077-a528-5552-2c32d8979b02"
T0, T1, T2 = "2025-03-01T10:00:00Z", "2025-03-01T10:05:00Z", "2025-03-01T10:09:00Z"


def data(name: str) -> str:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{path} is not in the checkout (captured test data, see tests/data/README.md)")
    return path.read_text()


def window(name: str) -> ResourceMetrics:
    """The server's resource use as the operator aggregates it, from a real Triton /metrics page."""
    return aggregate_window([parse_triton_metrics(data(name), 1_740_823_200.0)])


# ---- conditions -----------------------------------------------------------------------------------------


def test_set_condition_adds_a_condition_with_its_generation() -> None:
    [ready] = set_condition(None, ConditionType.READY, False, Reason.QUEUED, "waiting", 3, now=T0)
    assert ready.model_dump(by_alias=True) == {
        "type": "Ready",
        "status": "False",
        "reason": "Queued",
        "message": "waiting",
        "lastTransitionTime": T0,
        "observedGeneration": 3,
    }


def test_set_condition_keeps_the_transition_time_while_the_status_holds() -> None:
    conditions = set_condition(None, ConditionType.SERVER_READY, False, Reason.POD_CREATED, "pod created", 1, now=T0)
    conditions = set_condition(conditions, ConditionType.SERVER_READY, False, Reason.QUEUED, "queued", 2, now=T1)
    [c] = conditions
    assert (c.status, c.reason, c.message, c.last_transition_time, c.observed_generation) == (
        "False",
        "Queued",
        "queued",
        T0,
        2,
    )


def test_set_condition_moves_the_transition_time_when_the_status_flips() -> None:
    conditions = set_condition(None, ConditionType.SERVER_READY, False, Reason.POD_CREATED, "created", 1, now=T0)
    conditions = set_condition(conditions, ConditionType.SERVER_READY, True, Reason.SERVER_READY, "up", 1, now=T1)
    assert conditions[0].status == "True"
    assert conditions[0].last_transition_time == T1
    conditions = set_condition(conditions, ConditionType.SERVER_READY, False, Reason.SERVER_GONE, "gone", 1, now=T2)
    assert (conditions[0].status, conditions[0].last_transition_time) == ("False", T2)


def test_set_condition_without_now_uses_the_current_time_in_rfc3339() -> None:
    [c] = set_condition(None, ConditionType.READY, True, Reason.SUCCEEDED, "done", 1)
    assert len(c.last_transition_time) == 20 and c.last_transition_time.endswith("Z")


def test_set_condition_leaves_other_conditions_in_place() -> None:
    conditions = set_condition(None, ConditionType.SPEC_VALID, True, Reason.VALID, "ok", 1, now=T0)
    conditions = set_condition(conditions, ConditionType.READY, False, Reason.QUEUED, "q", 1, now=T0)
    conditions = set_condition(conditions, ConditionType.SPEC_VALID, True, Reason.VALID, "still ok", 2, now=T1)
    assert [(c.type, c.message, c.last_transition_time) for c in conditions] == [
        ("SpecValid", "still ok", T0),
        ("Ready", "q", T0),
    ]


def test_set_condition_caps_the_message() -> None:
    [c] = set_condition(None, ConditionType.READY, False, Reason.SERVER_CRASHED, "E" * 50_000, 1, now=T0)
    assert len(c.message) == MAX_MESSAGE
    assert c.message.endswith("...")


# ---- the compact point form ---------------------------------------------------------------------------


def perf_row(concurrency: int) -> Any:
    return parse_perf_analyzer_csv(data("perf-analyzer-2.50-add_sub.csv"), Load.concurrency(concurrency))


def gpu_point(concurrency: int = 1) -> PointResult:
    resources = window("triton-2.51-h100-metrics.txt")
    resources.gpus[0].max_memory_utilization_pct = 41.375  # from DCGM via Prometheus, when configured
    return PointResult(
        model="add_sub",
        batch_size=1,
        concurrency=concurrency,
        status=PointStatus.MEASURED,
        perf=perf_row(concurrency),
        resources=resources,
        server_throughput_infer_per_sec=2598.123456,
        started_at=1_740_823_200.4567,
        finished_at=1_740_823_212.9876,
    )


def cpu_point(model: str = "matmul", batch: int = 4, concurrency: int = 2) -> PointResult:
    return PointResult(
        model=model,
        batch_size=batch,
        concurrency=concurrency,
        status=PointStatus.MEASURED,
        perf=perf_row(2),
        resources=window("triton-2.51-cpu-metrics-add_sub-after.txt"),
        server_throughput_infer_per_sec=None,
        started_at=1_740_823_300.0,
        finished_at=1_740_823_310.0,
    )


def failed_point(batch: int = 8, concurrency: int = 4) -> PointResult:
    return PointResult(
        model="add_sub",
        batch_size=batch,
        concurrency=concurrency,
        status=PointStatus.FAILED,
        error=(
            "perf_analyzer failed (exit 99): Failed to obtain stable measurement within 10 measurement windows "
            f"for concurrency {concurrency}. Please try to increase the --measurement-interval."
        ),
        resources=window("triton-2.51-h100-metrics.txt"),
        started_at=1_740_823_400.0,
        finished_at=1_740_823_700.0,
    )


@pytest.mark.parametrize("point", [gpu_point(), cpu_point(), failed_point()], ids=["gpu", "cpu-only", "failed"])
def test_compact_then_expand_gives_the_point_back(point: PointResult) -> None:
    compact = compact_point(point)
    back = expand_point(compact)
    assert back.status == point.status and back.error == point.error
    assert (back.model, back.batch_size, back.load.value) == (point.model, point.batch_size, point.load.value)
    assert (back.perf is None) == (point.perf is None)
    if point.perf and back.perf:
        for field, value in point.perf.model_dump().items():
            assert getattr(back.perf, field) == pytest.approx(value, abs=5e-4), field
    assert back.resources is not None and point.resources is not None
    assert [g.gpu_uuid for g in back.resources.gpus] == [g.gpu_uuid for g in point.resources.gpus]
    for got, want in zip(back.resources.gpus, point.resources.gpus, strict=True):
        for field, value in want.model_dump(exclude={"gpu_uuid"}).items():
            assert getattr(got, field) == (None if value is None else pytest.approx(value, abs=5e-4)), field
    for field in ("max_cpu_utilization_pct", "max_cpu_memory_used_mb"):
        value = getattr(point.resources, field)
        assert getattr(back.resources, field) == (None if value is None else pytest.approx(value, abs=5e-4)), field
    assert back.started_at == pytest.approx(point.started_at, abs=0.05)
    assert back.finished_at == pytest.approx(point.finished_at, abs=0.05)
    # And the compact form survives the trip through the API (JSON, camelCase) unchanged.
    wire = ModelAnalysisStatus(points=[compact]).wire()
    assert ModelAnalysisStatus.model_validate(json.loads(json.dumps(wire))).points == [compact]


def test_compact_point_has_short_keys_and_no_nulls() -> None:
    wire = ModelAnalysisStatus(points=[compact_point(failed_point())]).wire()["points"][0]
    assert "perf" not in wire and "throughput" not in wire and None not in wire.values()
    assert set(wire) >= {"model", "batch", "concurrency", "status", "error", "gpus", "cpuUtil", "cpuMemMB"}
    assert set(wire["gpus"][0]) == {"uuid", "util", "memMB", "powerW"}


def test_a_point_with_partial_latencies_has_no_perf() -> None:
    compact = compact_point(gpu_point())
    compact.p95 = None
    assert expand_point(compact).perf is None


# ---- the CSV files from status equal the CLI's ----------------------------------------------------------


def original_result() -> AnalysisResult:
    """A sweep as the CLI's profiler records it, on real captured numbers (no model config path: the operator
    has no local file to name, and the CLI writes one only when it reads a local repository)."""
    return AnalysisResult(
        triton_version="24.08-py3",
        server_version="2.51.0",
        baseline=window("triton-2.51-h100-metrics-idle.txt"),
        models=[
            ModelOutcome(
                name="add_sub",
                status=ModelStatus.PROFILED,
                max_batch_size=8,
                instance_group="1:KIND_GPU",
                skipped=[
                    SkippedPoint(
                        point=Point(model="add_sub", batch_size=16, concurrency=1),
                        reason="batch 16 exceeds add_sub's max_batch_size 8",
                    )
                ],
            ),
            ModelOutcome(name="matmul", status=ModelStatus.PROFILED, max_batch_size=0, instance_group="2:KIND_CPU"),
            ModelOutcome(
                name="broken",
                status=ModelStatus.LOAD_FAILED,
                error="load failed for model 'broken': version 1 is at UNAVAILABLE state: Internal: no such file",
            ),
        ],
        points=[gpu_point(1), gpu_point(2), failed_point(8, 4), cpu_point("matmul", 1, 2)],
        notes=["Max Memory Utilization (%) needs DCGM; it is empty without a Prometheus URL."],
    )


def status_of(result: AnalysisResult) -> ModelAnalysisStatus:
    """What the operator keeps in status for this sweep, as read back from the API server after a restart."""
    assert result.baseline is not None
    status = ModelAnalysisStatus(
        server_version=result.server_version,
        baseline=compact_baseline(result.baseline),
        models=[model_entry(m) for m in result.models],
        points=[compact_point(p) for p in result.points],
        notes=result.notes,
    )
    return ModelAnalysisStatus.model_validate(json.loads(json.dumps(status.wire())))


def test_csv_files_from_status_equal_the_clis() -> None:
    """The operator writes its CSV files from status; for the same points they are the CLI's, byte for byte."""
    original = original_result()
    from_status = analysis_result(status_of(original), original.triton_version)
    want, got = csv_files(original), csv_files(from_status)
    assert set(got) == set(want)
    for name in want:
        assert got[name] == want[name], f"{name} differs:\n--- CLI\n{want[name]}\n--- operator\n{got[name]}"


def test_analysis_result_keeps_model_outcomes() -> None:
    original = original_result()
    back = analysis_result(status_of(original), "24.08-py3")
    assert [(m.name, m.status, m.max_batch_size, m.instance_group, m.error) for m in back.models] == [
        (m.name, m.status, m.max_batch_size, m.instance_group, m.error) for m in original.models
    ]
    assert back.models[0].skipped == original.models[0].skipped
    assert back.notes == original.notes
    assert back.server_version == "2.51.0"


# ---- status size ------------------------------------------------------------------------------------------


def big_status(models: int, batches: int, concurrencies: int, gpus: int) -> ModelAnalysisStatus:
    gpu_window = window("triton-2.51-h100-metrics.txt")
    template = gpu_window.gpus[0]
    resources = gpu_window.model_copy(
        update={
            "gpus": [
                template.model_copy(update={"gpu_uuid": f"GPU-{i:08x}-9077-a528-5552-2c32d8979b02"})
                for i in range(gpus)
            ]
        }
    )
    points = []
    for m in range(models):
        for b in range(1, batches + 1):
            for c in range(1, concurrencies + 1):
                p = gpu_point(1).model_copy(
                    update={
                        "model": f"resnet50_onnx_variant_{m}",
                        "batch_size": b * 8,
                        "concurrency": c * 16,
                        "resources": resources,
                    }
                )
                if (b + c) % 10 == 0:  # some failed points, with perf_analyzer's usual message
                    failed = failed_point(b * 8, c * 16)
                    p = failed.model_copy(update={"model": p.model, "resources": resources})
                points.append(compact_point(p))
    status = status_of(original_result())
    status.points = points
    status.points_done = status.points_total = len(points)
    status.progress = f"{len(points)}/{len(points)}"
    return status


def test_a_500_point_status_is_well_under_the_object_size_limit() -> None:
    status = big_status(models=5, batches=10, concurrencies=10, gpus=1)
    assert len(status.points or []) == 500
    size = len(json.dumps(status.wire(), separators=(",", ":")))
    assert size < 1_500_000 / 3, f"500 points (1 GPU each) take {size:,} bytes of status"


def test_a_500_point_status_on_an_8_gpu_server_still_fits() -> None:
    status = big_status(models=5, batches=10, concurrencies=10, gpus=8)
    size = len(json.dumps(status.wire(), separators=(",", ":")))
    assert size < 1_500_000 * 0.75, f"500 points (8 GPUs each) take {size:,} bytes of status"


# The API server stores an object of at most this many bytes (etcd's default request limit, 1.5 MiB).
OBJECT_LIMIT = 1_572_864
# What the coming per-point figures add to each point in status (TTFT, ITL, output tokens per second: p50 and p99
# and their intervals; a request rate and what was delivered): a dozen numbers, each as `"key":123.456,`.
COMING_METRICS_PER_POINT = 12


def test_the_largest_admitted_analysis_leaves_status_room_for_more_metrics() -> None:
    """What status keeps per point is what `kubectl get`, a resumed run and the best choice need: one compact
    record (CompactPoint: the numbers of one row of the CSV, each GPU's maxima). The full record (every column,
    the report) lives in the results ConfigMaps and the claim. The largest analysis admission accepts (1000
    points on an 8-GPU server) must fit under the object limit with a dozen more numbers per point, and a
    boundary per batch size, to spare."""
    status = big_status(models=10, batches=10, concurrencies=10, gpus=8)
    assert len(status.points or []) == 1000
    size = len(json.dumps(status.wire(), separators=(",", ":")))
    extra = len(status.points or []) * COMING_METRICS_PER_POINT * len('"ttftP99CIHigh":1234.567,')
    assert size < OBJECT_LIMIT * 0.7, f"1000 points x 8 GPUs take {size:,} bytes of the {OBJECT_LIMIT:,} limit"
    assert size + extra < OBJECT_LIMIT * 0.9, (
        f"{size:,} bytes now plus {extra:,} for {COMING_METRICS_PER_POINT} more numbers per point leaves too little "
        f"of the {OBJECT_LIMIT:,}-byte limit: keep the new figures in the results ConfigMaps, not in status"
    )


def test_point_errors_are_capped_in_status() -> None:
    point = failed_point().model_copy(update={"error": "x" * 10_000})
    error = compact_point(point).error
    assert error is not None and len(error) == MAX_MESSAGE


# ---- reading pods: why a Triton pod cannot become ready ---------------------------------------------------

POD_NAME = "example-g1-triton"
IMAGE = "nvcr.io/nvidia/tritonserver:24.08-py3"


def pod(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": POD_NAME, "namespace": "team-a", "uid": "5f1c7d1e-0b7c-4a4c-9a51-3d0b2f6f2c11"},
        "spec": {"containers": [{"name": "triton", "image": IMAGE}], "restartPolicy": "Never"},
        "status": status,
    }


def cond(type_: str, status: str, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": T0}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def scheduled_conditions(ready: bool) -> list[dict[str, Any]]:
    value = "True" if ready else "False"
    not_ready = None if ready else "ContainersNotReady"
    message = None if ready else "containers with unready status: [triton]"
    return [
        cond("PodReadyToStartContainers", "True"),
        cond("Initialized", "True"),
        cond("Ready", value, not_ready, message),
        cond("ContainersReady", value, not_ready, message),
        cond("PodScheduled", "True"),
    ]


def container_status(state: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": "triton",
        "state": state,
        "lastState": {},
        "ready": False,
        "restartCount": 0,
        "image": IMAGE,
        "imageID": "",
        "started": False,
        **extra,
    }


def started(**status: Any) -> dict[str, Any]:
    return {
        "hostIP": "10.0.3.17",
        "hostIPs": [{"ip": "10.0.3.17"}],
        "startTime": T0,
        "qosClass": "BestEffort",
        **status,
    }


UNSCHEDULABLE = pod(
    {
        "phase": "Pending",
        "conditions": [
            cond(
                "PodScheduled",
                "False",
                "Unschedulable",
                "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
                "2 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for "
                "scheduling, 2 No preemption victims found for incoming pod.",
            )
        ],
        "qosClass": "BestEffort",
    }
)
ERR_IMAGE_PULL = pod(
    started(
        phase="Pending",
        conditions=scheduled_conditions(ready=False),
        podIP="10.244.1.7",
        containerStatuses=[
            container_status(
                {
                    "waiting": {
                        "reason": "ErrImagePull",
                        "message": 'rpc error: code = NotFound desc = failed to pull and unpack image "nvcr.io/nvidia/'
                        'tritonserver:99.99-py3": failed to resolve reference "nvcr.io/nvidia/tritonserver:99.99-py3"'
                        ": nvcr.io/nvidia/tritonserver:99.99-py3: not found",
                    }
                },
                image="nvcr.io/nvidia/tritonserver:99.99-py3",
            )
        ],
    )
)
IMAGE_PULL_BACK_OFF = pod(
    started(
        phase="Pending",
        conditions=scheduled_conditions(ready=False),
        podIP="10.244.1.7",
        containerStatuses=[
            container_status(
                {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{IMAGE}"'}}
            )
        ],
    )
)
CRASH_LOOP = pod(
    started(
        phase="Running",
        conditions=scheduled_conditions(ready=False),
        podIP="10.244.1.7",
        containerStatuses=[
            container_status(
                {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off 40s restarting failed container=triton pod={POD_NAME}_team-a(5f1c7d1e)",
                    }
                },
                lastState={"terminated": {"exitCode": 1, "reason": "Error", "startedAt": T0, "finishedAt": T0}},
                restartCount=3,
            )
        ],
    )
)
TRITON_LOG_TAIL = (
    "I0301 10:00:01.123 1 server.cc:674] \n+---------+---------+--------+\n"
    "E0301 10:00:01.456 1 model_repository_manager.cc:1460] Poll failed for model directory 'add_sub': "
    "failed to open text file for read /models/add_sub/config.pbtxt: No such file or directory\n"
    "error: creating server: Internal - failed to load all models\n"
)
TERMINATED = pod(
    started(
        phase="Failed",
        conditions=scheduled_conditions(ready=False),
        podIP="10.244.1.7",
        containerStatuses=[
            container_status(
                {
                    "terminated": {
                        "exitCode": 1,
                        "reason": "Error",
                        "message": TRITON_LOG_TAIL,  # FallbackToLogsOnError: the log's tail
                        "startedAt": T0,
                        "finishedAt": T1,
                        "containerID": "containerd://9b1f3c",
                    }
                }
            )
        ],
    )
)
OOM_KILLED = pod(
    started(
        phase="Failed",
        conditions=scheduled_conditions(ready=False),
        podIP="10.244.1.7",
        containerStatuses=[
            container_status(
                {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": T0, "finishedAt": T1}}
            )
        ],
    )
)
EVICTED = pod(
    started(
        phase="Failed",
        reason="Evicted",
        message="The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, available: 9Gi.",
        conditions=scheduled_conditions(ready=False),
    )
)


@pytest.mark.parametrize(
    ("manifest", "reason", "words"),
    [
        (UNSCHEDULABLE, Reason.UNSCHEDULABLE, ["cannot be scheduled", "Insufficient nvidia.com/gpu"]),
        (ERR_IMAGE_PULL, Reason.IMAGE_PULL_FAILED, ["tritonserver:99.99-py3 cannot be pulled", "not found"]),
        (IMAGE_PULL_BACK_OFF, Reason.IMAGE_PULL_FAILED, ["Back-off pulling image"]),
        (CRASH_LOOP, Reason.SERVER_CRASHED, ["keeps crashing", "back-off 40s"]),
        (TERMINATED, Reason.SERVER_CRASHED, ["exited with code 1", "failed to load all models"]),
        (OOM_KILLED, Reason.SERVER_CRASHED, ["exited with code 137: OOMKilled"]),
        (EVICTED, Reason.SERVER_CRASHED, ["phase Failed", "low on resource"]),
    ],
    ids=["unschedulable", "err-image-pull", "image-pull-back-off", "crash-loop", "terminated", "oom", "evicted"],
)
def test_pod_failure_says_why(manifest: dict[str, Any], reason: Reason, words: list[str]) -> None:
    failure = pod_failure(manifest)
    assert failure is not None
    assert failure[0] == reason
    for word in words:
        assert word in failure[1]
    assert not pod_ready(manifest)


def test_pod_failure_keeps_the_end_of_a_long_log() -> None:
    long_log = "I0301 loading...\n" * 500 + "error: creating server: Internal - failed to load all models\n"
    manifest = json.loads(json.dumps(TERMINATED))
    manifest["status"]["containerStatuses"][0]["state"]["terminated"]["message"] = long_log
    failure = pod_failure(manifest)
    assert failure is not None
    assert failure[1].endswith("failed to load all models")
    assert len(failure[1]) < 700


JUST_CREATED = pod({"phase": "Pending", "qosClass": "BestEffort"})
CREATING = pod(
    started(
        phase="Pending",
        conditions=scheduled_conditions(ready=False),
        containerStatuses=[container_status({"waiting": {"reason": "ContainerCreating"}})],
    )
)
STARTING = pod(
    started(
        phase="Running",
        conditions=scheduled_conditions(ready=False),
        podIP="10.244.1.7",
        containerStatuses=[container_status({"running": {"startedAt": T0}}, started=True)],
    )
)
READY = pod(
    started(
        phase="Running",
        conditions=scheduled_conditions(ready=True),
        podIP="10.244.1.7",
        podIPs=[{"ip": "10.244.1.7"}],
        containerStatuses=[container_status({"running": {"startedAt": T0}}, started=True, ready=True)],
    )
)


@pytest.mark.parametrize(
    ("manifest", "ready"),
    [(JUST_CREATED, False), (CREATING, False), (STARTING, False), (READY, True)],
    ids=["just-created", "creating", "starting", "ready"],
)
def test_a_pod_on_its_way_up_is_no_failure(manifest: dict[str, Any], ready: bool) -> None:
    assert pod_failure(manifest) is None
    assert pod_ready(manifest) is ready


def test_a_pod_with_no_status_yet_is_neither() -> None:
    bare = {"metadata": {"name": POD_NAME}}
    assert pod_failure(bare) is None
    assert not pod_ready(bare)


# ---- Jobs ---------------------------------------------------------------------------------------------


def job(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "example-g1-add-sub-b1-c1-1a2b", "namespace": "team-a"},
        "status": status,
    }


def job_cond(type_: str, reason: str | None = None, message: str | None = None, status: str = "True") -> dict[str, Any]:
    c = cond(type_, status, reason, message)
    c["lastProbeTime"] = T1
    return c


COMPLETE = job(
    conditions=[
        job_cond("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
        job_cond("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
    ],
    startTime=T0,
    completionTime=T1,
    succeeded=1,
    terminating=0,
    ready=0,
    uncountedTerminatedPods={},
)
BACKOFF_LIMIT = job(
    conditions=[
        job_cond("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        job_cond("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
    ],
    startTime=T0,
    failed=1,
    terminating=0,
    ready=0,
    uncountedTerminatedPods={},
)
# Between the controller deciding and the pods being counted, only the target condition is there.
FAILURE_TARGET_ONLY = job(
    conditions=[job_cond("FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline")],
    startTime=T0,
    active=1,
    terminating=1,
)
SUCCESS_CRITERIA_ONLY = job(
    conditions=[job_cond("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods")],
    startTime=T0,
    uncountedTerminatedPods={"succeeded": ["0b6d7c1f"]},
)
RUNNING = job(startTime=T0, active=1, ready=1, terminating=0, uncountedTerminatedPods={})
SUSPENDED = job(conditions=[job_cond("Suspended", "JobSuspended", "Job suspended")])
RESUMED = job(conditions=[job_cond("Suspended", "JobResumed", "Job resumed", status="False")], active=1)


@pytest.mark.parametrize(
    ("manifest", "outcome"),
    [
        (COMPLETE, "Complete"),
        (SUCCESS_CRITERIA_ONLY, "Complete"),
        (BACKOFF_LIMIT, "Failed"),
        (FAILURE_TARGET_ONLY, "Failed"),
        (RUNNING, None),
        (SUSPENDED, None),
        (RESUMED, None),
        (job(), None),
        ({"metadata": {"name": "just-created"}}, None),
    ],
    ids=["complete", "success-criteria", "backoff-limit", "failure-target", "running", "suspended", "resumed",
         "empty-status", "no-status"],
)  # fmt: skip
def test_job_outcome(manifest: dict[str, Any], outcome: str | None) -> None:
    assert job_outcome(manifest) == outcome


def job_pod(state: dict[str, Any], phase: str) -> dict[str, Any]:
    p = pod(
        started(
            phase=phase,
            containerStatuses=[{**container_status(state), "name": "perf-analyzer"}],
        )
    )
    p["metadata"]["labels"] = {"job-name": "example-g1-add-sub-b1-c1-1a2b"}
    return p


def test_termination_message_of_a_measured_point() -> None:
    measurement = perf_row(1).model_dump_json()
    done = job_pod(
        {"terminated": {"exitCode": 0, "reason": "Completed", "message": measurement + "\n", "finishedAt": T1}},
        "Succeeded",
    )
    assert termination_message([done]) == (0, measurement)


def test_termination_message_of_a_failed_point() -> None:
    error = "perf_analyzer failed (exit 99): Failed to obtain stable measurement within 10 measurement windows"
    failed = job_pod({"terminated": {"exitCode": 1, "reason": "Error", "message": error, "finishedAt": T1}}, "Failed")
    assert termination_message([failed]) == (1, error)


def test_termination_message_without_a_finished_container() -> None:
    running = job_pod({"running": {"startedAt": T0}}, "Running")
    no_message = job_pod({"terminated": {"exitCode": 137, "reason": "Error", "finishedAt": T1}}, "Failed")
    assert termination_message([]) == (None, "")
    assert termination_message([running]) == (None, "")
    assert termination_message([running, no_message]) == (137, "")
    assert termination_message([pod({})]) == (None, "")


# ---- Triton slots -------------------------------------------------------------------------------------


def test_slots_cap_the_triton_pods() -> None:
    slots = TritonSlots(2)
    assert slots.acquire("ns/a", already_running=False)
    assert slots.acquire("ns/b", already_running=False)
    assert not slots.acquire("ns/c", already_running=False)
    assert slots.acquire("ns/a", already_running=False)  # a holder asking again keeps its slot
    assert slots.holders == {"ns/a", "ns/b"}


def test_a_pod_that_already_runs_keeps_its_slot_past_the_cap() -> None:
    """After an operator restart the slots are empty but pods exist: those analyses must not be queued."""
    slots = TritonSlots(1)
    assert slots.acquire("ns/new", already_running=False)
    assert slots.acquire("ns/survivor", already_running=True)
    assert slots.holders == {"ns/new", "ns/survivor"}
    assert not slots.acquire("ns/third", already_running=False)


def test_release_frees_a_slot_and_is_idempotent() -> None:
    slots = TritonSlots(1)
    assert slots.acquire("ns/a", already_running=False)
    assert not slots.acquire("ns/b", already_running=False)
    slots.release("ns/a")
    slots.release("ns/a")
    slots.release("ns/never-held")
    assert slots.acquire("ns/b", already_running=False)
    assert slots.holders == {"ns/b"}


def test_slots_are_safe_across_daemon_threads() -> None:
    slots = TritonSlots(3)
    won: list[str] = []
    barrier = threading.Barrier(20)

    def contend(key: str) -> None:
        barrier.wait()
        if slots.acquire(key, already_running=False):
            won.append(key)

    threads = [threading.Thread(target=contend, args=(f"ns/{i}",)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 3 and set(won) == slots.holders


def test_owner_reference_makes_the_analysis_the_controller() -> None:
    body = {"metadata": {"name": "example", "namespace": "team-a", "uid": "0c6f1f4e-1b2a-4c3d-8e9f-a0b1c2d3e4f5"}}
    assert owner_reference(body) == {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": "example",
        "uid": "0c6f1f4e-1b2a-4c3d-8e9f-a0b1c2d3e4f5",
        "controller": True,
    }


# ---- what a resumed run does ------------------------------------------------------------------------------


def test_a_resumed_run_measures_only_what_status_lacks() -> None:
    """After a restart the operator rebuilds the result from status and the engine continues it: points in
    status, measured or failed, are not run again; another model's same batch and concurrency are not them."""
    from tests.fakes import Recorder, StandInTriton, engine, numbers

    sweep = SweepSpec.model_validate(
        {"models": [{"name": "add_sub"}], "batchSizes": [1, 4, 16], "concurrency": [1, 2],
         "measurement": {"baselineDurationMs": 0}}
    )  # fmt: skip
    earlier = [gpu_point(1), failed_point(4, 1), cpu_point("matmul", 1, 2)]
    status = ModelAnalysisStatus(points=[compact_point(p) for p in earlier])
    ran: list[str] = []

    def run(point: Point, settings: object) -> object:
        ran.append(point.key)
        return numbers(point)

    result = engine(sweep, StandInTriton({"add_sub": 8}), Recorder(), run).run(analysis_result(status, "24.08-py3"))
    assert ran == ["add_sub/b1/c2", "add_sub/b4/c2"]  # batch 16 is skipped: above max_batch_size 8
    assert len(result.points) == 5


def child(name: str, generation: int | None, owner_uid: str | None = "u-1") -> dict[str, Any]:
    labels = names.labels("example", generation or 0, names.COMPONENT_LOAD_GENERATOR)
    if generation is None:
        del labels[names.LABEL_GENERATION]
    owners = [{"kind": "ModelAnalysis", "name": "example", "uid": owner_uid}] if owner_uid else []
    return {"metadata": {"name": name, "labels": labels, "ownerReferences": owners}}


def test_a_new_generation_deletes_the_children_of_the_others() -> None:
    children = [
        child("example-g1-triton", 1),
        child("example-g2-triton", 2),
        child("example-g3-x", 3),
        child("odd", None),
    ]
    assert stale_children(children, 2, "u-1") == ["example-g1-triton", "example-g3-x", "odd"]
    assert stale_children([child("example-g2-triton", 2)], 2, "u-1") == []
    assert stale_children([], 2, "u-1") == []


def test_a_new_generation_never_deletes_what_only_wears_the_analysis_labels() -> None:
    """Labels are anyone's to set: only an owner reference to this analysis (its uid) makes a child its own."""
    children = [
        child("example-g1-triton", 1, owner_uid=None),  # a user's pod, labelled like ours
        child("example-g1-x", 1, owner_uid="u-other"),  # an earlier analysis of the same name (deleted, re-created)
        child("example-g1-y", 1),
    ]
    assert stale_children(children, 2, "u-1") == ["example-g1-y"]


# ---- the HTML report from status ----------------------------------------------------------------------------


def test_the_report_from_status_shows_the_clis_table_and_best_points() -> None:
    """The operator renders report.html from status: the same rows and the same best points as the CLI's."""
    original = original_result()
    from_status = analysis_result(status_of(original), original.triton_version)
    want, got = report_data(original), report_data(from_status)
    for key in ("columns", "rows", "strings", "gpus", "pointGpus", "baseline", "best", "empty"):
        assert got[key] == want[key], key


def test_analysis_result_takes_the_runs_times_from_status() -> None:
    status = status_of(original_result())
    status.started_at, status.finished_at = "2026-11-23T07:23:34Z", "2026-11-23T07:24:26Z"
    back = analysis_result(status, "24.08-py3")
    assert back.started_at == datetime(2026, 11, 23, 7, 23, 34, tzinfo=UTC).timestamp()
    assert back.finished_at is not None and back.finished_at - back.started_at == 52
    status.started_at, status.finished_at = None, "not a time"
    back = analysis_result(status, "24.08-py3")
    assert back.started_at is None and back.finished_at is None


def test_cli_rebuilds_the_result_from_a_resource_body() -> None:
    original = original_result()
    status = status_of(original)
    status.triton_image = "registry.local/tritonserver:24.05-py3"
    body = {"spec": {"triton": {}}, "status": status.wire()}
    assert result_from_body(body).triton_version == "24.05-py3"  # the image's tag when the spec names none
    body["spec"] = {"triton": {"version": "24.08-py3"}}
    rebuilt = result_from_body(body)
    assert rebuilt.triton_version == "24.08-py3"
    assert csv_files(rebuilt) == csv_files(analysis_result(status, "24.08-py3"))
