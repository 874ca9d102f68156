"""The pure builders (objects.py) and derived names (names.py): each manifest rendered from a spec as a user
writes it (camelCase, as in the resource), checked for what the operator and the cluster rely on."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from modelanalysis import job_commands
from modelanalysis.core.budget import LatencyBudget
from modelanalysis.core.load import Load
from modelanalysis.core.perf import PerfMeasurement
from modelanalysis.core.spec import MeasurementSettings, Protocol
from modelanalysis.core.sweep import Point
from modelanalysis.kube import names, objects
from modelanalysis.kube.resource import ModelAnalysisSpec
from modelanalysis.kube.settings import OperatorSettings

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

SETTINGS = OperatorSettings(load_generator_image="ghcr.io/modelanalysis/modelanalysis:0.1.0")
NS = "team-a"

PVC_SPEC: dict[str, Any] = {
    "models": [{"name": "add_sub"}],
    "modelRepository": {"pvc": {"claimName": "triton-models", "subPath": "repo/v2"}},
}
S3_SPEC: dict[str, Any] = {
    "models": [{"name": "resnet50"}, {"name": "Text_Encoder"}],
    "batchSizes": [8, 1, 4],
    "concurrency": [4, 1],
    "modelRepository": {"uri": "s3://bucket/models", "credentialsSecret": "s3-creds"},
    "measurement": {
        "protocol": "http",
        "measurementIntervalMs": 2500,
        "stabilityPercentage": 7.5,
        "maxWindows": 4,
        "convergencePct": 2.5,
        "maxPointSeconds": 45,
        "pointTimeoutSeconds": 900,
        "metricsIntervalMs": 250,
    },
    "triton": {
        "version": "24.05-py3",
        "resources": {"limits": {"nvidia.com/gpu": 2, "memory": "16Gi"}, "requests": {"cpu": 4}},
        "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}
                    ]
                }
            }
        },
        "args": ["--log-verbose=1"],
        "env": [{"name": "AWS_DEFAULT_REGION", "value": "eu-west-1"}],
    },
    "results": {"pvc": {"claimName": "results", "subPath": "runs"}},
}


def spec(wire: dict[str, Any]) -> ModelAnalysisSpec:
    return ModelAnalysisSpec.model_validate(wire)


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    pod_spec = manifest["spec"]["template"]["spec"] if manifest["kind"] == "Job" else manifest["spec"]
    containers: list[dict[str, Any]] = pod_spec["containers"]
    assert len(containers) == 1
    return containers[0]


# ---- the Triton pod -----------------------------------------------------------------------------------


def test_triton_pod_runs_explicit_model_control_with_metrics() -> None:
    pod = objects.triton_pod("example", NS, 3, spec(PVC_SPEC), SETTINGS)
    c = container(pod)
    assert pod["metadata"] == {
        "name": "example-g3-triton",
        "namespace": NS,
        "labels": names.labels("example", 3, names.COMPONENT_TRITON),
    }
    assert c["image"] == f"nvcr.io/nvidia/tritonserver:{SETTINGS.default_triton_version}"
    assert c["command"] == ["tritonserver"]
    assert "--model-control-mode=explicit" in c["args"]
    for flag in ("--allow-metrics=true", "--allow-gpu-metrics=true", "--allow-cpu-metrics=true"):
        assert flag in c["args"]
    assert "--metrics-interval-ms=500" in c["args"]  # the spec's default metricsIntervalMs
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": 8000, "grpc": 8001, "metrics": 8002}


def test_triton_pod_mounts_the_claim_read_only_at_its_sub_path() -> None:
    pod = objects.triton_pod("example", NS, 1, spec(PVC_SPEC), SETTINGS)
    c = container(pod)
    assert "--model-repository=/models/repo/v2" in c["args"]
    assert c["volumeMounts"] == [{"name": "models", "mountPath": "/models", "readOnly": True}]
    assert pod["spec"]["volumes"] == [
        {"name": "models", "persistentVolumeClaim": {"claimName": "triton-models", "readOnly": True}}
    ]
    assert "envFrom" not in c


def test_triton_pod_without_sub_path_uses_the_claim_root() -> None:
    wire = {**PVC_SPEC, "modelRepository": {"pvc": {"claimName": "triton-models"}}}
    assert "--model-repository=/models" in container(objects.triton_pod("e", NS, 1, spec(wire), SETTINGS))["args"]


def test_triton_pod_reads_an_s3_uri_with_the_secret_as_environment() -> None:
    pod = objects.triton_pod("example", NS, 1, spec(S3_SPEC), SETTINGS)
    c = container(pod)
    assert "--model-repository=s3://bucket/models" in c["args"]
    assert c["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    assert "volumes" not in pod["spec"]
    assert "volumeMounts" not in c


def test_triton_pod_defaults_to_one_gpu_as_a_quantity_string() -> None:
    c = container(objects.triton_pod("example", NS, 1, spec(PVC_SPEC), SETTINGS))
    assert c["resources"] == {"limits": {"nvidia.com/gpu": "1"}}


def test_triton_pod_passes_scheduling_and_user_settings_through() -> None:
    s = spec(S3_SPEC)
    pod = objects.triton_pod("example", NS, 1, s, SETTINGS)
    c = container(pod)
    # YAML integers become the quantity strings the API (and the client's validation) wants.
    assert c["resources"] == {"limits": {"nvidia.com/gpu": "2", "memory": "16Gi"}, "requests": {"cpu": "4"}}
    assert pod["spec"]["nodeSelector"] == S3_SPEC["triton"]["nodeSelector"]
    assert pod["spec"]["tolerations"] == S3_SPEC["triton"]["tolerations"]
    assert pod["spec"]["affinity"] == S3_SPEC["triton"]["affinity"]
    assert c["env"] == S3_SPEC["triton"]["env"]
    assert c["args"][-1] == "--log-verbose=1"  # after ours, so a user's flag wins
    assert "--metrics-interval-ms=250" in c["args"]
    assert c["image"] == "nvcr.io/nvidia/tritonserver:24.05-py3"


def test_triton_pod_without_scheduling_settings_sets_none() -> None:
    pod_spec = objects.triton_pod("example", NS, 1, spec(PVC_SPEC), SETTINGS)["spec"]
    assert not {"nodeSelector", "tolerations", "affinity"} & pod_spec.keys()


def test_triton_image_overrides_version() -> None:
    wire = {**PVC_SPEC, "triton": {"version": "24.05-py3", "image": "registry.local/triton:custom"}}
    assert container(objects.triton_pod("e", NS, 1, spec(wire), SETTINGS))["image"] == "registry.local/triton:custom"


def test_triton_pod_is_ready_when_triton_says_so_and_never_restarts() -> None:
    pod = objects.triton_pod("example", NS, 1, spec(PVC_SPEC), SETTINGS)
    probe = container(pod)["readinessProbe"]
    assert probe["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert pod["spec"]["restartPolicy"] == "Never"


# ---- the load-generator Job ---------------------------------------------------------------------------

POINT = Point(model="Text_Encoder", batch_size=4, concurrency=2)


def test_load_generator_job_runs_once_within_a_deadline() -> None:
    job = objects.load_generator_job(
        "example", NS, 2, spec(S3_SPEC), POINT, "10.1.2.3", SETTINGS, server_node="gpu-node-1"
    )
    assert job["apiVersion"] == "batch/v1"
    assert job["metadata"]["name"] == names.point_job_name("example", 2, POINT)
    assert job["metadata"]["namespace"] == NS
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 900 + 60  # pointTimeoutSeconds plus start-up
    assert job["spec"]["ttlSecondsAfterFinished"] == SETTINGS.job_ttl_seconds
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    c = container(job)
    assert c["image"] == SETTINGS.load_generator_image
    assert c["command"] == ["model-analyzer", "perf-point"]


def test_load_generator_job_labels() -> None:
    job = objects.load_generator_job(
        "example", NS, 2, spec(S3_SPEC), POINT, "10.1.2.3", SETTINGS, server_node="gpu-node-1"
    )
    labels = job["metadata"]["labels"]
    assert labels[names.LABEL_ANALYSIS] == "example"
    assert labels[names.LABEL_GENERATION] == "2"
    assert labels[names.LABEL_COMPONENT] == names.COMPONENT_LOAD_GENERATOR
    assert labels[names.LABEL_POINT] == names.short_hash(POINT.key, 10)
    assert job["spec"]["template"]["metadata"]["labels"] == labels
    other = Point(model="Text_Encoder", batch_size=4, concurrency=4)
    other_job = objects.load_generator_job(
        "example", NS, 2, spec(S3_SPEC), other, "10.1.2.3", SETTINGS, server_node="gpu-node-1"
    )
    assert other_job["metadata"]["labels"][names.LABEL_POINT] != labels[names.LABEL_POINT]


@pytest.mark.parametrize(
    ("wire", "triton_ip", "host"),
    [(S3_SPEC, "10.1.2.3", "10.1.2.3"), (PVC_SPEC, "fd00:10::5", "[fd00:10::5]")],
    ids=["custom-measurement-ipv4", "default-measurement-ipv6"],
)
def test_perf_point_args_carry_the_measurement_settings(
    wire: dict[str, Any], triton_ip: str, host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Job's arguments, parsed by the real `model-analyzer perf-point`, give back the spec's settings."""
    s = spec(wire)
    point = Point(model=s.model_names[0], batch_size=4, concurrency=2)
    job = objects.load_generator_job("example", NS, 1, s, point, triton_ip, SETTINGS, server_node="gpu-node-1")
    c = container(job)
    log = tmp_path / "termination-log"
    args = [f"--termination-log={log}" if a.startswith("--termination-log=") else a for a in c["args"]]
    assert f"--termination-log={objects.TERMINATION_LOG}" in c["args"]
    assert c["terminationMessagePath"] == objects.TERMINATION_LOG
    seen: dict[str, Any] = {}

    def fake_perf_analyzer(
        p: Point,
        settings: MeasurementSettings,
        grpc_url: str,
        http_url: str,
        cpu_budget_cores: float | None = None,
        budgets: Sequence[LatencyBudget] = (),
        input_args: Sequence[str] = (),
    ) -> PerfMeasurement:
        p99_budget = next((b.max_ms for b in budgets if b.what == "p99"), None)
        seen.update(point=p, settings=settings, grpc_url=grpc_url, http_url=http_url, cpu_budget=cpu_budget_cores,
                    p99_budget=p99_budget, input_args=list(input_args))  # fmt: skip
        return PerfMeasurement(
            throughput_infer_per_sec=1.0, latency_p50_ms=1, latency_p90_ms=1, latency_p95_ms=1, latency_p99_ms=1
        )

    monkeypatch.setattr(job_commands, "measure_point", fake_perf_analyzer)
    assert job_commands.run(c["command"][1], args) == 0
    assert seen["point"] == point
    m = s.measurement
    assert seen["settings"] == m  # every setting travels, whole
    assert (seen["grpc_url"], seen["http_url"]) == (f"{host}:8001", f"{host}:8000")
    assert seen["cpu_budget"] == 1.0  # concurrency 2: the default request of one core
    assert PerfMeasurement.model_validate_json(log.read_text()).throughput_infer_per_sec == 1.0


def test_custom_measurement_settings_really_differ_from_defaults() -> None:
    """So the test above proves the values travel, not just that defaults match defaults."""
    m = spec(S3_SPEC).measurement
    d = MeasurementSettings()
    assert m.protocol == Protocol.HTTP != d.protocol
    fields = ("measurement_interval_ms", "stability_percentage", "max_windows", "point_timeout_seconds",
              "convergence_pct", "max_point_seconds")  # fmt: skip
    for field in fields:
        assert getattr(m, field) != getattr(d, field), field


# ---- the restricted pods (load generator, results writer) ---------------------------------------------


def restricted_jobs() -> list[dict[str, Any]]:
    s = spec(S3_SPEC)
    return [
        objects.load_generator_job("example", NS, 1, s, POINT, "10.1.2.3", SETTINGS, server_node="gpu-node-1"),
        objects.results_writer_job("example", NS, 1, s, SETTINGS, uid="u-1"),
    ]


@pytest.mark.parametrize("job", restricted_jobs(), ids=["load-generator", "results-writer"])
def test_job_pods_meet_the_restricted_pod_security_standard(job: dict[str, Any]) -> None:
    pod_spec = job["spec"]["template"]["spec"]
    c = container(job)
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["runAsUser"] != 0
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    tmp = next(m for m in c["volumeMounts"] if m["mountPath"] == "/tmp")
    assert volumes[tmp["name"]] == {"name": tmp["name"], "emptyDir": {}}
    assert pod_spec["automountServiceAccountToken"] is False
    assert job["spec"]["backoffLimit"] == 0
    assert pod_spec["restartPolicy"] == "Never"


def test_results_writer_copies_the_configmap_into_the_claim_folder() -> None:
    job = objects.results_writer_job("example", NS, 5, spec(S3_SPEC), SETTINGS, uid="u-1")
    c = container(job)
    assert job["metadata"]["name"] == "example-g5-results"
    assert job["metadata"]["labels"][names.LABEL_COMPONENT] == names.COMPONENT_RESULTS_WRITER
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["results-in"]["projected"]["sources"] == [{"configMap": {"name": "example-results"}}]
    assert volumes["results-out"]["persistentVolumeClaim"] == {"claimName": "results"}
    assert mounts["results-in"]["readOnly"] is True
    assert c["command"] == ["model-analyzer", "copy-results"]
    owner = {"name": "example", "namespace": NS, "uid": "u-1", "generation": 5}
    assert c["args"] == [
        mounts["results-in"]["mountPath"],
        f"{mounts['results-out']['mountPath']}/runs/example",
        "--owner",
        json.dumps(owner, sort_keys=True),
        "--termination-log",
        c["terminationMessagePath"],
    ]


def test_results_configmap_holds_the_files() -> None:
    files = {"metrics-model-inference.csv": "Model,Batch\nadd_sub,1\n"}
    [cm] = objects.results_configmaps("example", NS, 2, files)
    assert cm["kind"] == "ConfigMap"
    assert cm["metadata"]["name"] == names.results_configmap_name("example") == "example-results"
    assert cm["metadata"]["labels"][names.LABEL_GENERATION] == "2"
    assert cm["data"] == files


def test_results_past_a_mebibyte_continue_in_more_configmaps_and_the_writer_mounts_them_all() -> None:
    files = {"metrics-model-gpu.csv": "é,1\n" * 400_000, "report.html": "<p>" * 1000}  # ~2 MB of UTF-8
    maps = objects.results_configmaps("example", NS, 2, files)
    assert [m["metadata"]["name"] for m in maps] == ["example-results", "example-results-2"]
    for m in maps:
        assert sum(len(k.encode()) + len(v.encode()) for k, v in m["data"].items()) <= objects.CONFIGMAP_DATA_LIMIT
    job = objects.results_writer_job("example", NS, 2, spec(S3_SPEC), SETTINGS, configmaps=len(maps), uid="u-1")
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert [s["configMap"]["name"] for s in volumes["results-in"]["projected"]["sources"]] == [
        "example-results", "example-results-2"]  # fmt: skip


# ---- names ---------------------------------------------------------------------------------------------

LONG = "a" * 253
# Analysis names are DNS-1123 subdomains: dots may sit exactly where a long name is cut.
DOTTED = [("a" * i + "." + "b" * (252 - i)) for i in range(30, 64)]
MODELS = ["add_sub", "Add_Sub", "add-sub", "ADD.SUB", "_private_", "x" * 253, "resnet50_onnx_fp16_v2_large_model"]


def all_names(analysis: str, generation: int = 1) -> dict[str, str]:
    found = {
        "triton": names.triton_pod_name(analysis, generation),
        "results-job": names.results_job_name(analysis, generation),
        "configmap": names.results_configmap_name(analysis),
    }
    for model in MODELS:
        point = Point(model=model, batch_size=128, concurrency=1024)
        found[f"point {model}"] = names.point_job_name(analysis, generation, point)
    return found


@pytest.mark.parametrize(
    "analysis", ["example", "x" * 63, LONG, "my.analysis.v2", *DOTTED], ids=lambda a: f"{len(a)}-chars"
)
@pytest.mark.parametrize("generation", [1, 12345])
def test_derived_names_are_valid_for_the_api(analysis: str, generation: int) -> None:
    for what, name in all_names(analysis, generation).items():
        if what == "configmap":
            assert len(name) <= 253 and DNS1123_SUBDOMAIN.match(name), (what, name)
        else:
            # Pods and Jobs: subdomains of at most 63 (a Job's name becomes its pods' job-name label).
            assert len(name) <= names.MAX_NAME and DNS1123_SUBDOMAIN.match(name), (what, name)
    for key, value in names.labels(analysis, generation, names.COMPONENT_TRITON).items():
        assert len(value) <= 63 and LABEL_VALUE.match(value), (key, value)


def test_derived_names_without_dots_are_dns_labels() -> None:
    for name in [*all_names("x" * 63).values(), *all_names(LONG).values()]:
        assert DNS1123_LABEL.match(name), name


def test_derived_names_are_deterministic() -> None:
    assert all_names(LONG, 7) == all_names(LONG, 7)
    assert all_names("example", 7) != all_names("example", 8)


def test_long_names_keep_a_readable_start_and_stay_distinct() -> None:
    a, b = "a" * 200 + "-one", "a" * 200 + "-two"
    assert names.triton_pod_name(a, 1).startswith("a" * 40)
    assert names.triton_pod_name(a, 1) != names.triton_pod_name(b, 1)
    assert names.results_configmap_name(a) != names.results_configmap_name(b)
    assert names.labels(a, 1, "x")[names.LABEL_ANALYSIS] != names.labels(b, 1, "x")[names.LABEL_ANALYSIS]


@pytest.mark.parametrize("analysis", ["example", LONG])
def test_point_job_names_are_distinct_for_distinct_points(analysis: str) -> None:
    points = [
        Point(model=m, batch_size=b, concurrency=c)
        for m in MODELS
        for b in (1, 2, 4, 8, 16, 32, 64, 128)
        for c in (1, 2, 4, 8, 16, 32, 64, 128, 256)
    ]
    job_names = {names.point_job_name(analysis, 1, p) for p in points}
    assert len(job_names) == len(points)
    # Models that differ only in case, '_' or '.' share a readable part; the hash tells them apart.
    assert names.point_job_name("e", 1, Point(model="add_sub", batch_size=1, concurrency=1)).startswith(
        "e-g1-add-sub-b1-c1-"
    )


def test_short_names_are_kept_as_they_are() -> None:
    assert names.triton_pod_name("example", 1) == "example-g1-triton"
    assert names.fit("x" * 63) == "x" * 63
    assert len(names.fit("x" * 64)) == 63


@pytest.mark.parametrize("where", ["modelRepository", "results"])
@pytest.mark.parametrize("sub_path", ["..", "../x", "../../etc", "a/../../b", "a/..", "/etc", "/", "runs/../.."])
def test_a_sub_path_outside_the_claim_is_refused_saying_how_to_fix(where: str, sub_path: str) -> None:
    wire = {**PVC_SPEC, "results": {"pvc": {"claimName": "results"}}}
    wire[where] = {"pvc": {"claimName": "c", "subPath": sub_path}}
    with pytest.raises(ValidationError) as refused:
        spec(wire)
    assert "without .. segments" in str(refused.value) and "runs/2024" in str(refused.value)


@pytest.mark.parametrize("sub_path", ["", "runs", "runs/2024/", "a..b/c", "...", ".hidden/x", "./runs"])
def test_a_sub_path_inside_the_claim_is_accepted(sub_path: str) -> None:
    wire = {**PVC_SPEC, "results": {"pvc": {"claimName": "results", "subPath": sub_path}}}
    assert spec(wire).results.pvc is not None


def test_an_open_loop_point_job_passes_the_rate_and_the_analysis_distribution() -> None:
    wire = {k: v for k, v in S3_SPEC.items() if k != "concurrency"}
    wire |= {"requestRate": [250], "measurement": {"requestDistribution": "poisson"}}
    point = Point(model="Text_Encoder", batch_size=4, load=Load.request_rate(250))
    job = objects.load_generator_job("example", NS, 2, spec(wire), point, "10.1.2.3", SETTINGS, server_node="n")
    args = container(job)["args"]
    assert "--request-rate=250" in args and not any(a.startswith("--concurrency") for a in args)
    assert json.loads(next(a for a in args if a.startswith("--measurement="))[14:])["requestDistribution"] == "poisson"
    assert "-b4-r250-" in job["metadata"]["name"]


def test_a_point_job_sends_the_models_inputs_and_mounts_the_claim_for_an_input_data_file() -> None:
    wire = {
        "models": [{"name": "text_encoder", "inputs": {"data": "inputs/text_encoder.json"}}, {"name": "add_sub"}],
        "inputs": {"shapes": ["INPUT_IDS:64"], "stringLength": 8},
        "modelRepository": {"pvc": {"claimName": "models", "subPath": "repo"}},
    }
    point = Point(model="text_encoder", batch_size=1, load=Load.concurrency(1))
    job = objects.load_generator_job("example", NS, 2, spec(wire), point, "10.1.2.3", SETTINGS, server_node="n")
    c = container(job)
    inputs = json.loads(next(a for a in c["args"] if a.startswith("--inputs="))[len("--inputs="):])
    assert inputs == {"shapes": ["INPUT_IDS:64"], "data": "/models/repo/inputs/text_encoder.json", "stringLength": 8}
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in c["volumeMounts"]
    volumes = job["spec"]["template"]["spec"]["volumes"]
    assert {"name": "models", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}} in volumes
    # The other model gets the general inputs only, and no volume: it reads no file.
    other = Point(model="add_sub", batch_size=1, load=Load.concurrency(1))
    plain = objects.load_generator_job("example", NS, 2, spec(wire), other, "10.1.2.3", SETTINGS, server_node="n")
    args = container(plain)["args"]
    assert json.loads(next(a for a in args if a.startswith("--inputs="))[9:]) == {
        "shapes": ["INPUT_IDS:64"], "stringLength": 8
    }
    assert all(v["name"] != "models" for v in plain["spec"]["template"]["spec"]["volumes"])


def test_input_data_from_a_configmap_is_mounted_read_only_and_named_where_the_job_sees_it() -> None:
    wire = {
        "models": [{"name": "text_encoder", "inputs": {"dataConfigMap": {"name": "requests", "key": "te.json"}}}],
        "modelRepository": {"uri": "s3://bucket/models"},  # no claim needed for a ConfigMap
    }
    point = Point(model="text_encoder", batch_size=1, load=Load.concurrency(1))
    job = objects.load_generator_job("example", NS, 2, spec(wire), point, "10.1.2.3", SETTINGS, server_node="n")
    c = container(job)
    inputs = json.loads(next(a for a in c["args"] if a.startswith("--inputs="))[len("--inputs="):])
    assert inputs == {"data": "/input-data/te.json"}
    assert {"name": "input-data", "mountPath": "/input-data", "readOnly": True} in c["volumeMounts"]
    items = [{"key": "te.json", "path": "te.json"}]
    volume = {"name": "input-data", "configMap": {"name": "requests", "items": items}}
    assert volume in job["spec"]["template"]["spec"]["volumes"]
    with pytest.raises(ValueError, match=r"give inputs\.data or inputs\.dataConfigMap, not both"):
        spec({**wire, "inputs": {"data": "zero", "dataConfigMap": {"name": "r", "key": "k"}}})


def test_the_point_job_refuses_an_input_data_file_that_does_not_parse_before_perf_analyzer_runs(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "requests.json"
    bad.write_text("{not json")
    log = tmp_path / "termination-log"
    inputs = json.dumps({"data": str(bad)})
    args = ["--model=text_encoder", "--batch=1", "--concurrency=1", "--grpc-url=h:1", "--http-url=h:2",
            f"--inputs={inputs}", f"--termination-log={log}"]  # fmt: skip
    code = job_commands.run("perf-point", args)
    assert code == 3
    assert log.read_text().startswith(f"inputs refused: text_encoder: input data {bad} is not JSON")
