"""Pure builders: the Kubernetes objects an analysis needs, as plain dicts, from its spec.

Each takes the validated spec and the few facts it needs and returns a manifest; nothing here talks to the
API server. The caller adds the analysis as owner reference (AnalysisRun.create_child) and creates it.
"""

from __future__ import annotations

import json
import math
import posixpath
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from modelanalysis.core.budget import search_budgets
from modelanalysis.core.inputs import InputSettings
from modelanalysis.core.load import Load
from modelanalysis.core.parts import pack_files
from modelanalysis.core.sweep import Point
from modelanalysis.kube import names
from modelanalysis.kube.resource import LoadGeneratorPlacement, LoadGeneratorSettings, ModelAnalysisSpec
from modelanalysis.kube.settings import OperatorSettings

HTTP_PORT, GRPC_PORT, METRICS_PORT = 8000, 8001, 8002
MODELS_MOUNT = "/models"
INPUT_DATA_VOLUME, INPUT_DATA_MOUNT = "input-data", "/input-data"  # inputs.dataConfigMap, in the point Jobs
TERMINATION_LOG = "/dev/termination-log"
RESULTS_IN = "/results-in"
RESULTS_OUT = "/results-out"

# Pod Security Standard "restricted": what the load-generator and results-writer pods run with.
RESTRICTED_POD_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


# What every Triton pod runs with, whatever the analysis says: no API token (Triton never calls the API, and the
# pod runs code from the model repository), no capabilities, no privilege escalation, the runtime's seccomp
# profile. All of these work with the NGC image; running as non-root and a read-only root filesystem are
# opt-in (settings or spec.triton.runAsUser), because that image runs as root by default.
TRITON_POD_SECURITY: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
TRITON_CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def triton_security(spec: ModelAnalysisSpec, settings: OperatorSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Triton pod's and container's securityContext."""
    pod: dict[str, Any] = dict(TRITON_POD_SECURITY)
    container: dict[str, Any] = dict(TRITON_CONTAINER_SECURITY)
    user = spec.triton.run_as_user or settings.triton_run_as_user
    if user is not None:
        pod.update({"runAsNonRoot": True, "runAsUser": user})
    if settings.triton_read_only_root_filesystem:
        container["readOnlyRootFilesystem"] = True
    return pod, container


def triton_image(spec: ModelAnalysisSpec, settings: OperatorSettings, triton_version: str = "") -> str:
    """The image of the Triton pod; `triton_version`: one of spec.triton.versions, for that trial's pod."""
    if spec.triton.image:
        return spec.triton.image
    version = triton_version or spec.triton.version or settings.default_triton_version
    return f"{settings.triton_image_repository}:{version}"


def model_repository_arg(spec: ModelAnalysisSpec) -> str:
    repo = spec.model_repository
    if repo.uri:
        return repo.uri
    assert repo.pvc is not None
    return posixpath.join(MODELS_MOUNT, repo.pvc.sub_path) if repo.pvc.sub_path else MODELS_MOUNT


def quantities(resources: dict[str, Any]) -> dict[str, Any]:
    """Resource quantities as strings ("1", "2Gi"): YAML lets users write 1, the API wants a quantity string."""
    return {
        section: {name: str(value) for name, value in values.items()} if isinstance(values, dict) else values
        for section, values in resources.items()
    }


def triton_pod(
    name: str,
    namespace: str,
    generation: int,
    spec: ModelAnalysisSpec,
    settings: OperatorSettings,
    *,
    trial: int | None = None,
    triton_version: str = "",
) -> dict[str, Any]:
    """The Triton server: explicit model control (models load one at a time), metrics on :8002. `trial` and
    `triton_version`: which trial's server, when the analysis runs several (core/trials.py)."""
    triton = spec.triton
    container: dict[str, Any] = {
        "name": "triton",
        "image": triton_image(spec, settings, triton_version),
        "command": ["tritonserver"],
        "args": [
            f"--model-repository={model_repository_arg(spec)}",
            "--model-control-mode=explicit",
            # "Ready" means the server answers, whatever state its models are in. With the default strict
            # readiness, one model that fails to load turns the whole server not-ready for good: the next
            # model could not be profiled, and an operator restarted after that would wait for a readiness
            # that never comes.
            "--strict-readiness=false",
            "--allow-metrics=true",
            "--allow-gpu-metrics=true",
            "--allow-cpu-metrics=true",
            f"--metrics-interval-ms={spec.measurement.metrics_interval_ms}",
            *triton.args,
        ],
        "ports": [
            {"name": "http", "containerPort": HTTP_PORT},
            {"name": "grpc", "containerPort": GRPC_PORT},
            {"name": "metrics", "containerPort": METRICS_PORT},
        ],
        "resources": quantities(triton.resources),
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": "http"},
            "periodSeconds": 1,
            "failureThreshold": 3,
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    pod_security, container["securityContext"] = triton_security(spec, settings)
    if triton.env:
        container["env"] = triton.env
    if spec.model_repository.credentials_secret:
        container["envFrom"] = [{"secretRef": {"name": spec.model_repository.credentials_secret}}]
    pod_spec: dict[str, Any] = {
        # A crashed server fails the analysis with its reason rather than restarting mid-point.
        "restartPolicy": "Never",
        "securityContext": pod_security,
        "automountServiceAccountToken": False,
        "containers": [container],
        "enableServiceLinks": False,
    }
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    if spec.model_repository.pvc:
        mounts.append({"name": "models", "mountPath": MODELS_MOUNT, "readOnly": True})
        volumes.append(
            {
                "name": "models",
                "persistentVolumeClaim": {"claimName": spec.model_repository.pvc.claim_name, "readOnly": True},
            }
        )
    if container["securityContext"].get("readOnlyRootFilesystem"):
        mounts.append({"name": "tmp", "mountPath": "/tmp"})
        volumes.append({"name": "tmp", "emptyDir": {}})
    if mounts:
        container["volumeMounts"] = mounts
        pod_spec["volumes"] = volumes
    if triton.node_selector:
        pod_spec["nodeSelector"] = triton.node_selector
    if triton.tolerations:
        pod_spec["tolerations"] = triton.tolerations
    if triton.affinity:
        pod_spec["affinity"] = triton.affinity
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": names.triton_pod_name(name, generation, trial),
            "namespace": namespace,
            "labels": {
                **names.labels(name, generation, names.COMPONENT_TRITON),
                **({names.LABEL_TRIAL: str(trial + 1)} if trial is not None else {}),
            },
        },
        "spec": pod_spec,
    }


def _restricted_job(
    job_name: str,
    namespace: str,
    labels: dict[str, str],
    container: dict[str, Any],
    volumes: list[dict[str, Any]],
    deadline_seconds: int,
    ttl_seconds: int,
) -> dict[str, Any]:
    container = {
        **container,
        "securityContext": RESTRICTED_CONTAINER_SECURITY,
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *container.get("volumeMounts", [])],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name, "namespace": namespace, "labels": labels},
        "spec": {
            # One try: a failed measurement is recorded as failed, not silently retried.
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline_seconds,
            "ttlSecondsAfterFinished": ttl_seconds,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": RESTRICTED_POD_SECURITY,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}, *volumes],
                },
            },
        },
    }


# Default load-generator CPU: one core per this many concurrent requests, within these bounds. perf_analyzer
# spent about 0.2 ms of CPU per request (gRPC, add_sub, measured with the CLI), so a core keeps up with some
# 4,000 requests/s: 4 requests in flight per core suit models answering in 1 ms or more. The request reserves
# that CPU on the node, so the scheduler does not pack the Job where it would starve; each point records what
# perf_analyzer really used and says when it passed 80% of this (README: "Where the load generator runs").
CONCURRENCY_PER_CORE = 4
# An open-loop rate is sent from a few worker threads, each starting requests on a schedule: far cheaper per
# request than one blocked thread per request in flight.
REQUESTS_PER_SECOND_PER_CORE = 2000
MIN_LOAD_GENERATOR_CPU, MAX_LOAD_GENERATOR_CPU = 1, 4
LOAD_GENERATOR_MEMORY = "256Mi"
HOSTNAME_FIELD = "metadata.name"  # a Node's name, as DaemonSets pin their pods


def default_load_generator_cpu(load: Load) -> int:
    per_core = CONCURRENCY_PER_CORE if load.is_concurrency else REQUESTS_PER_SECOND_PER_CORE
    return min(max(MIN_LOAD_GENERATOR_CPU, math.ceil(load.value / per_core)), MAX_LOAD_GENERATOR_CPU)


def load_generator_resources(load_generator: LoadGeneratorSettings, point: Point) -> dict[str, Any]:
    """The spec's resources for the Job, else a CPU request sized to the point's load."""
    if load_generator.resources:
        return quantities(load_generator.resources)
    cpu = default_load_generator_cpu(point.load)
    return {"requests": {"cpu": str(cpu), "memory": LOAD_GENERATOR_MEMORY}}


def cpu_cores(quantity: object) -> float | None:
    """A CPU quantity in cores ("500m" -> 0.5, "2" -> 2.0); None when it is not one."""
    text = str(quantity).strip()
    try:
        value = Decimal(text[:-1]) / 1000 if text.endswith("m") else Decimal(text)
    except InvalidOperation:
        return None
    return float(value) if value > 0 else None


def cpu_budget(resources: dict[str, Any]) -> float | None:
    """The CPU a container was given: its limit (a hard cap) if set, else its request (what is reserved)."""
    for section in ("limits", "requests"):
        value = (resources.get(section) or {}).get("cpu")
        if value is not None:
            return cpu_cores(value)
    return None


def load_generator_scheduling(
    load_generator: LoadGeneratorSettings, server_node: str | None, server_tolerations: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The pod-spec fields that place a load-generator Job: on the Triton pod's node with its tolerations
    (SameNodeAsServer), or where the user's nodeSelector/affinity allow (Anywhere); the user's tolerations
    are added in both cases."""
    scheduling: dict[str, Any] = {}
    tolerations: list[dict[str, Any]] = []
    if load_generator.placement == LoadGeneratorPlacement.SAME_NODE_AS_SERVER:
        if not server_node:
            raise ValueError("the Triton pod's node is not known yet: it must be scheduled before its Jobs")
        term = {"matchFields": [{"key": HOSTNAME_FIELD, "operator": "In", "values": [server_node]}]}
        scheduling["affinity"] = {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
        }
        tolerations.extend(server_tolerations)
    else:
        if load_generator.node_selector:
            scheduling["nodeSelector"] = dict(load_generator.node_selector)
        if load_generator.affinity:
            scheduling["affinity"] = load_generator.affinity
    for toleration in load_generator.tolerations:
        if toleration not in tolerations:
            tolerations.append(toleration)
    if tolerations:
        scheduling["tolerations"] = tolerations
    return scheduling


def load_generator_inputs(spec: ModelAnalysisSpec, model: str) -> tuple[InputSettings, list[dict[str, Any]]]:
    """What perf_analyzer sends `model`, with an input-data file named where the Job sees it (the model claim,
    mounted read-only where the Triton pod mounts it), and the volume that needs (none otherwise)."""
    inputs = spec.inputs_for(model)
    pvc = spec.model_repository.pvc
    source = inputs.data_config_map
    if source is not None:
        volume = {"name": INPUT_DATA_VOLUME,
                  "configMap": {"name": source.name, "items": [{"key": source.key, "path": source.key}]}}  # fmt: skip
        seen_at = posixpath.join(INPUT_DATA_MOUNT, source.key)
        return inputs.model_copy(update={"data": seen_at, "data_config_map": None}), [volume]
    if inputs.data_file is None or pvc is None:
        return inputs, []
    seen_at = posixpath.join(model_repository_arg(spec), inputs.data_file)
    volume = {"name": "models", "persistentVolumeClaim": {"claimName": pvc.claim_name, "readOnly": True}}
    return inputs.model_copy(update={"data": seen_at}), [volume]


# perf-point's flag for each latency budget a search decides against (job_commands.py).
BUDGET_FLAGS = {"p99": "p99-budget-ms", "p99 TTFT": "ttft-budget-ms", "p99 ITL": "itl-budget-ms"}


def load_generator_job(
    name: str,
    namespace: str,
    generation: int,
    spec: ModelAnalysisSpec,
    point: Point,
    triton_ip: str,
    settings: OperatorSettings,
    *,
    server_node: str | None,
    server_tolerations: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """perf_analyzer for one point against the Triton pod; it returns its numbers as the termination message.

    Placed by spec.loadGenerator (load_generator_scheduling) from the Triton pod's node and tolerations."""
    m = spec.measurement
    host = f"[{triton_ip}]" if ":" in triton_ip else triton_ip
    labels = {
        **names.labels(name, generation, names.COMPONENT_LOAD_GENERATOR),
        names.LABEL_POINT: names.short_hash(point.key, 10),
    }
    resources = load_generator_resources(spec.load_generator, point)
    budget = cpu_budget(resources)
    inputs, volumes = load_generator_inputs(spec, point.model)
    container: dict[str, Any] = {
        "name": "perf-analyzer",
        "image": settings.load_generator_image,
        "command": ["model-analyzer", "perf-point"],
        "args": [
            f"--model={point.model}",
            f"--batch={point.batch_size}",
            point.load.cli_arg,
            *(["--streaming"] if point.streaming else []),
            f"--grpc-url={host}:{GRPC_PORT}",
            f"--http-url={host}:{HTTP_PORT}",
            f"--measurement={m.model_dump_json(by_alias=True)}",
            f"--termination-log={TERMINATION_LOG}",
            *([f"--cpu-budget={budget:g}"] if budget else []),
            *(f"--{BUDGET_FLAGS[b.what]}={b.max_ms:g}" for b in search_budgets(spec)),
            *([f"--inputs={inputs.model_dump_json(by_alias=True, exclude_none=True)}"] if inputs.given else []),
        ],
        "resources": resources,
    }
    if volumes:
        mount = MODELS_MOUNT if volumes[0]["name"] == "models" else INPUT_DATA_MOUNT
        container["volumeMounts"] = [{"name": volumes[0]["name"], "mountPath": mount, "readOnly": True}]
    job = _restricted_job(
        names.point_job_name(name, generation, point),
        namespace,
        labels,
        container,
        volumes,
        deadline_seconds=m.point_timeout_seconds + 60,
        ttl_seconds=settings.job_ttl_seconds,
    )
    job["spec"]["template"]["spec"].update(
        load_generator_scheduling(spec.load_generator, server_node, server_tolerations)
    )
    return job


def load_generator_group_job(
    name: str,
    namespace: str,
    generation: int,
    spec: ModelAnalysisSpec,
    points: Sequence[Point],
    triton_ip: str,
    settings: OperatorSettings,
    *,
    server_node: str | None,
    server_tolerations: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """One Job for models measured together (spec.profileModelsConcurrently): a perf_analyzer per model in the
    same container, over the same windows (`perf-point --members`), so they start together and are scheduled as
    one; it returns every model's numbers in its termination message. Named and placed as its first point's."""
    job = load_generator_job(name, namespace, generation, spec, points[0], triton_ip, settings,
                             server_node=server_node, server_tolerations=server_tolerations)  # fmt: skip
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    members, volumes = [], {v["name"]: v for v in pod.get("volumes", [])}
    for point in points:
        inputs, needed = load_generator_inputs(spec, point.model)
        volumes.update({v["name"]: v for v in needed})
        member: dict[str, Any] = {"model": point.model, "streaming": point.streaming}
        if inputs.given:
            member["inputs"] = inputs.model_dump(by_alias=True, exclude_none=True)
        members.append(member)
    single = ("--model=", "--streaming", "--inputs=")
    container["args"] = [a for a in container["args"] if not a.startswith(single)] + [
        f"--members={json.dumps(members, separators=(',', ':'))}"
    ]
    pod["volumes"] = list(volumes.values())
    mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
    for volume in volumes.values():
        if volume["name"] in (INPUT_DATA_VOLUME, "models") and volume["name"] not in mounts:
            mount = MODELS_MOUNT if volume["name"] == "models" else INPUT_DATA_MOUNT
            mounts[volume["name"]] = {"name": volume["name"], "mountPath": mount, "readOnly": True}
    if mounts:
        container["volumeMounts"] = list(mounts.values())
    return job


# A ConfigMap holds at most 1 MiB of data (the API server refuses more); the margin leaves room for its keys
# and metadata.
CONFIGMAP_DATA_LIMIT = 1024 * 1024 - 16 * 1024


def results_configmaps(name: str, namespace: str, generation: int, files: dict[str, str]) -> list[dict[str, Any]]:
    """The CSV files and report.html of an analysis; where no results claim is given, this is where they stay.

    One ConfigMap, <name>-results, with every file whole, unless they pass what one can hold: then they continue
    in <name>-results-2, -3, ..., a file too big for one ConfigMap cut into <file>.part-000, -001, ... (the
    results Job and `model-analyzer results` put them back together: core/parts.py)."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": names.results_configmap_name(name, index),
                "namespace": namespace,
                "labels": names.labels(name, generation, names.COMPONENT_RESULTS_WRITER),
            },
            "data": data,
        }
        for index, data in enumerate(pack_files(files, CONFIGMAP_DATA_LIMIT))
    ]


def results_folder(name: str, spec: ModelAnalysisSpec) -> str:
    """The folder inside the results claim: <subPath>/<analysis name>."""
    assert spec.results.pvc is not None
    return posixpath.join(spec.results.pvc.sub_path, name) if spec.results.pvc.sub_path else name


def results_writer_job(
    name: str,
    namespace: str,
    generation: int,
    spec: ModelAnalysisSpec,
    settings: OperatorSettings,
    configmaps: int = 1,
    *,
    uid: str,
) -> dict[str, Any]:
    """A short Job that copies the results ConfigMaps' files into the results claim, each written whole (parts
    joined). Files already in the folder that this analysis generation (`uid`, `generation`) did not write are
    moved beside it first (`<folder>.earlier-<time>`), and the Job's termination message says where."""
    assert spec.results.pvc is not None
    owner = json.dumps({"name": name, "namespace": namespace, "uid": uid, "generation": generation}, sort_keys=True)
    container = {
        "name": "write-results",
        "image": settings.load_generator_image,
        "command": ["model-analyzer", "copy-results"],
        "args": [
            RESULTS_IN,
            posixpath.join(RESULTS_OUT, results_folder(name, spec)),
            "--owner",
            owner,
            "--termination-log",
            TERMINATION_LOG,
        ],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
        "volumeMounts": [
            {"name": "results-in", "mountPath": RESULTS_IN, "readOnly": True},
            {"name": "results-out", "mountPath": RESULTS_OUT},
        ],
    }
    volumes = [
        {
            "name": "results-in",
            # Every results ConfigMap in one folder: the parts of a file cut across them sit side by side.
            "projected": {
                "sources": [{"configMap": {"name": names.results_configmap_name(name, i)}} for i in range(configmaps)]
            },
        },
        {"name": "results-out", "persistentVolumeClaim": {"claimName": spec.results.pvc.claim_name}},
    ]
    return _restricted_job(
        names.results_job_name(name, generation),
        namespace,
        names.labels(name, generation, names.COMPONENT_RESULTS_WRITER),
        container,
        volumes,
        deadline_seconds=300,
        ttl_seconds=settings.job_ttl_seconds,
    )
