"""The generated CRD and the builders' manifests against the real API server of tests/cluster.

What the unit tests cannot show: that kube-apiserver accepts the CRD as structural and enforces its schema
and CEL rules at admission, that each child manifest is valid for the real API (strict field validation, so
a misspelt field fails instead of being dropped), that the Jobs' pods pass Pod Security "restricted", that
status with hundreds of points is stored without pruning, and that children go with their analysis."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from modelanalysis.core.html_report import REPORT_HTML, render_html
from modelanalysis.core.report import INFERENCE_CSV, csv_files
from modelanalysis.core.spec import MAX_BATCH_SIZE, MAX_CONCURRENCY, MODEL_NAME_MESSAGE
from modelanalysis.core.sweep import Point
from modelanalysis.kube import crd, names, objects
from modelanalysis.kube.api import KubeApi
from modelanalysis.kube.conditions import analysis_result
from modelanalysis.kube.ownership import NameTaken
from modelanalysis.kube.readings import job_outcome, owner_reference, termination_message
from modelanalysis.kube.resource import (
    API_VERSION,
    ARGS_MESSAGE,
    GROUP,
    KIND,
    PLACEMENT_MESSAGE,
    PLURAL,
    SUB_PATH_MESSAGE,
    VERSION,
    ModelAnalysisSpec,
    ModelAnalysisStatus,
    Phase,
)
from modelanalysis.kube.settings import OperatorSettings
from tests.cluster.controlplane import Cluster
from tests.cluster.waiting import wait_for
from tests.unit.test_kube_status import big_status

pytestmark = pytest.mark.cluster

CRD_NAME = f"{PLURAL}.{GROUP}"
SETTINGS = OperatorSettings()
STRICT = "Strict"  # fieldValidation: an unknown or duplicated field is an error, not a warning

MINIMAL_SPEC: dict[str, Any] = {
    "models": [{"name": "add_sub"}],
    "modelRepository": {"pvc": {"claimName": "triton-models"}},
}
FULL_SPEC: dict[str, Any] = {
    "models": [{"name": "add_sub"}, {"name": "Text_Encoder"}],
    "batchSizes": [1, 4, 8],
    "concurrency": [1, 2, 4],
    "modelRepository": {"uri": "s3://bucket/models", "credentialsSecret": "s3-creds"},
    "measurement": {"protocol": "http", "pointTimeoutSeconds": 60, "stabilityPercentage": 12.5},
    "triton": {
        "version": "24.08-py3",
        "resources": {"limits": {"nvidia.com/gpu": 1, "memory": "16Gi"}, "requests": {"cpu": 2}},
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 1,
                        "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
                    }
                ]
            }
        },
        "args": ["--log-verbose=1"],
        "env": [{"name": "AWS_DEFAULT_REGION", "value": "eu-west-1"}],
    },
    "results": {"pvc": {"claimName": "results", "subPath": "runs"}},
}


def kubectl(cluster: Cluster, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", *args], env=cluster.env, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def analysis(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "spec": spec}


class Apis:
    """The clients the tests use, typed as Any as in modelanalysis.kube.api: they take the builders' plain
    dicts. `plain` turns what they return back into the dicts the operator's helpers read."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self.core: Any = client.CoreV1Api(api_client)
        self.batch: Any = client.BatchV1Api(api_client)
        self.custom: Any = client.CustomObjectsApi(api_client)
        self.extensions: Any = client.ApiextensionsV1Api(api_client)

    def plain(self, obj: Any) -> dict[str, Any]:
        return dict(self.api_client.sanitize_for_serialization(obj))  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[Apis]:
    with cluster.api_client() as api_client:
        yield Apis(api_client)


@pytest.fixture(scope="module")
def modelanalysis_crd(cluster: Cluster, api: Apis, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The generated CRD, applied and Established. Left installed: the cluster is shared by the session and
    deleting a CRD deletes every ModelAnalysis, including other tests'."""
    path = tmp_path_factory.mktemp("crd") / crd.CRD_FILE
    path.write_text(crd.render())
    applied = kubectl(
        cluster, "apply", "--server-side", "--force-conflicts", "--field-manager=modelanalysis-tests", "-f", str(path)
    )
    assert applied.returncode == 0, f"the API server refused the generated CRD:\n{applied.stderr}"
    for _ in range(20):
        waited = kubectl(cluster, "wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
        # Right after the apply, kubectl can read a status with no conditions yet and give up at once.
        if waited.returncode == 0 or "accessor error" not in waited.stderr:
            break
        time.sleep(0.2)
    assert waited.returncode == 0, waited.stderr
    installed = api.plain(api.extensions.read_custom_resource_definition(CRD_NAME))
    conditions = {c["type"]: c for c in installed["status"]["conditions"]}
    assert conditions["NamesAccepted"]["status"] == "True"
    assert "NonStructuralSchema" not in conditions, conditions["NonStructuralSchema"]["message"]
    # The endpoint can lag the Established condition briefly.
    wait_for(
        "the ModelAnalysis API to serve",
        lambda: _served(lambda: api.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)),
    )
    return CRD_NAME


def _served(call: Callable[[], Any]) -> bool:
    try:
        call()
        return True
    except client.ApiException as error:
        if error.status == 404:
            return False
        raise


@pytest.fixture
def owner(api: Apis, modelanalysis_crd: str, namespace: str) -> dict[str, Any]:
    """A ModelAnalysis in the test's namespace, as the operator's children's owner."""
    created = api.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, analysis("example", FULL_SPEC), field_validation=STRICT
    )
    return dict(created)


# ---- the CRD at admission -------------------------------------------------------------------------------


def test_a_minimal_analysis_is_accepted_and_stored_as_written(
    cluster: Cluster, api: Apis, modelanalysis_crd: str, namespace: str
) -> None:
    manifest = yaml.safe_dump(analysis("minimal", MINIMAL_SPEC))
    created = kubectl(cluster, "create", "-n", namespace, "-f", "-", stdin=manifest)
    assert created.returncode == 0, created.stderr
    assert created.stderr == ""  # no warnings either (e.g. about unknown fields)
    stored = api.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "minimal")
    assert stored["spec"] == MINIMAL_SPEC  # no schema defaults written into the user's object
    assert stored["metadata"]["generation"] == 1
    by_short_name = kubectl(cluster, "get", "ma", "-n", namespace, "-o", "name")
    assert by_short_name.stdout.strip() == f"{KIND.lower()}.{GROUP}/minimal"


def test_the_example_manifest_is_accepted(cluster: Cluster, modelanalysis_crd: str, namespace: str) -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "k8s" / "modelanalysis.yaml"
    created = kubectl(cluster, "create", "--dry-run=server", "-n", namespace, "-f", str(example))
    assert created.returncode == 0, created.stderr


def test_a_full_analysis_keeps_every_field(api: Apis, owner: dict[str, Any]) -> None:
    """Nothing is pruned: what the operator reads back is what the user wrote, and the models accept it."""
    assert owner["spec"] == FULL_SPEC
    assert ModelAnalysisSpec.model_validate(owner["spec"]).triton.tolerations == FULL_SPEC["triton"]["tolerations"]


def with_spec(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(MINIMAL_SPEC)
    spec.update(changes)
    return spec


REFUSED = [
    pytest.param(with_spec(models=[]), ["spec.models", "at least 1 items"], id="no-models"),
    pytest.param(with_spec(batchSizes=[0]), ["spec.batchSizes[0]", "greater than or equal to 1"], id="batch-0"),
    pytest.param(with_spec(concurrency=[-1]), ["spec.concurrency[0]", "greater than or equal to 1"], id="conc-neg"),
    pytest.param(with_spec(replicas=2), ['unknown field "spec.replicas"'], id="unknown-field"),
    pytest.param(with_spec(triton={"gpus": 2}), ['unknown field "spec.triton.gpus"'], id="unknown-nested-field"),
    pytest.param(
        with_spec(modelRepository={"pvc": {"claimName": "triton-models"}, "uri": "s3://bucket/models"}),
        ["spec.modelRepository", "exactly one of pvc"],
        id="pvc-and-uri",
    ),
    pytest.param(with_spec(modelRepository={}), ["spec.modelRepository", "exactly one of pvc"], id="no-repository"),
    pytest.param(
        with_spec(models=[{"name": "add_sub"}, {"name": "matmul"}, {"name": "add_sub"}]),
        ["spec", "each model may be listed only once in models"],
        id="duplicate-model",
    ),
    pytest.param(
        with_spec(modelRepository={"uri": "http://example.com/models"}), ["spec.modelRepository.uri"], id="bad-uri"
    ),
    pytest.param(with_spec(models=[{"name": "a/b"}]), ["spec.models[0].name"], id="model-with-slash"),
    pytest.param(
        with_spec(measurement={"stabilityPercentage": 0}), ["spec.measurement.stabilityPercentage"], id="stability-0"
    ),
    pytest.param(with_spec(measurement={"protocol": "tcp"}), ["spec.measurement.protocol"], id="bad-protocol"),
    # Upper bounds, named in the message (a billion concurrent requests would take the node down).
    pytest.param(
        with_spec(concurrency=[1, 1_000_000_000]),
        ["spec.concurrency[1]", f"less than or equal to {MAX_CONCURRENCY}"],
        id="conc-billion",
    ),
    pytest.param(
        with_spec(batchSizes=[1_099_511_627_776]),
        ["spec.batchSizes[0]", f"less than or equal to {MAX_BATCH_SIZE}"],
        id="batch-2-to-the-40",
    ),
    pytest.param(with_spec(concurrency=list(range(1, 66))), ["spec.concurrency", "at most 64 items"], id="conc-65"),
    pytest.param(
        with_spec(triton={"args": ["--log-verbose=1"] * 257}), ["spec.triton.args", "at most 256 items"], id="args-257"
    ),
    # Sub-paths stay inside their claim: refused with the sentence that says how to fix it.
    pytest.param(
        with_spec(modelRepository={"pvc": {"claimName": "triton-models", "subPath": "../../etc"}}),
        ["spec.modelRepository.pvc.subPath", "without .. segments", "runs/2024"],
        id="models-subpath-dotdot",
    ),
    pytest.param(
        with_spec(results={"pvc": {"claimName": "results", "subPath": "../x"}}),
        ["spec.results.pvc.subPath", "without .. segments"],
        id="results-subpath-dotdot",
    ),
    pytest.param(
        with_spec(results={"pvc": {"claimName": "results", "subPath": "runs/../../x"}}),
        ["spec.results.pvc.subPath", "without .. segments"],
        id="results-subpath-inner-dotdot",
    ),
    pytest.param(
        with_spec(results={"pvc": {"claimName": "results", "subPath": "/x"}}),
        ["spec.results.pvc.subPath", "relative (no leading /)"],
        id="results-subpath-absolute",
    ),
    # ---- hostile input (issue 12): every case below is refused by kubectl, and by the operator's models too.
    # Model names are folder names: nothing a terminal, a C string or a path would read differently.
    *[
        pytest.param(with_spec(models=[{"name": name}]), ["spec.models[0].name", MODEL_NAME_MESSAGE], id=case)
        for case, name in [
            ("model-nul", "add\x00sub"),
            ("model-escape", "add\x1b[31msub"),
            ("model-delete", "add\x7f"),
            ("model-newline", "add\nsub"),
            ("model-tab", "add\tsub"),
            ("model-no-break-space", "add\u00a0sub"),
            ("model-zero-width-space", "add\u200bsub"),
            ("model-right-to-left-override", "add\u202esub"),
            ("model-byte-order-mark", "\ufeffadd_sub"),
            ("model-line-separator", "add\u2028sub"),
            ("model-ideographic-space", "add\u3000sub"),
            ("model-dot", "."),
            ("model-dot-dot", ".."),
            ("model-traversal", "../../etc/passwd"),
        ]
    ],
    pytest.param(
        with_spec(models=[{"name": "ok"}, {"name": "add\x00sub"}]),
        ["spec.models[1].name", "no control or invisible characters"],
        id="second-model-nul",
    ),
    pytest.param(with_spec(models=[{"name": ""}]), ["spec.models[0].name", "at least 1 chars"], id="model-empty"),
    pytest.param(with_spec(models=[{"name": "m" * 254}]), ["spec.models[0].name", "253 bytes"], id="model-254"),
    pytest.param(
        with_spec(models=[{"name": f"m{i}"} for i in range(101)]), ["spec.models", "at most 100 items"], id="models-101"
    ),
    pytest.param(
        with_spec(models=[{"name": "add_sub", "version": 2}]),
        ['unknown field "spec.models[0].version"'],
        id="model-field",
    ),
    pytest.param(with_spec(models="add_sub"), ["spec.models", "must be of type array"], id="models-a-string"),
    pytest.param(with_spec(models=["add_sub"]), ["spec.models[0]", "must be of type object"], id="model-a-string"),
    pytest.param(with_spec(models=[{"name": 5}]), ["spec.models[0].name", "must be of type string"], id="model-number"),
    pytest.param({"models": [{"name": "a"}]}, ["spec.modelRepository", "Required"], id="no-repository-field"),
    pytest.param(None, ["spec", "Required value"], id="spec-null"),
    pytest.param([1], ["spec", "must be of type object"], id="spec-a-list"),
    # Wrong types and bounds.
    pytest.param(with_spec(batchSizes=[1.5]), ["spec.batchSizes[0]", "must be of type integer"], id="batch-fraction"),
    pytest.param(with_spec(batchSizes={"a": 1}), ['unknown field "spec.batchSizes.a"'], id="batch-a-map"),
    pytest.param(with_spec(batchSizes=[]), ["spec.batchSizes", "at least 1 items"], id="batch-empty"),
    pytest.param(
        with_spec(batchSizes=list(range(1, 66))), ["spec.batchSizes", "at most 64 items"], id="batch-65-values"
    ),
    pytest.param(
        with_spec(
            models=[{"name": f"m{i}"} for i in range(16)], batchSizes=list(range(1, 9)), concurrency=list(range(1, 9))
        ),
        ["spec", "at most 1000 points", "split the sweep"],
        id="points-1024",
    ),
    pytest.param(
        with_spec(measurement={"convergencePct": 0}), ["spec.measurement.convergencePct", "greater than 0"], id="conv-0"
    ),
    pytest.param(
        with_spec(measurement={"convergencePct": "NaN"}),
        ["spec.measurement.convergencePct", "of type number"],
        id="conv-nan",
    ),
    pytest.param(
        with_spec(measurement={"measurementIntervalMs": 1}),
        ["spec.measurement.measurementIntervalMs", "greater than or equal to 100"],
        id="window-1ms",
    ),
    pytest.param(
        with_spec(measurement={"maxPointSeconds": 10**12}),
        ["spec.measurement.maxPointSeconds", "less than or equal to 86400"],
        id="point-seconds-huge",
    ),
    pytest.param(
        with_spec(measurement={"pointTimeoutSeconds": 5}),
        ["spec.measurement.pointTimeoutSeconds", "greater than or equal to 10"],
        id="point-timeout-5",
    ),
    pytest.param(
        with_spec(objective="maximize-fun"),
        ["spec.objective", 'supported values: "maximize-throughput"'],
        id="objective-unknown",
    ),
    pytest.param(
        with_spec(constraints={"p99LatencyMs": {"max": -1}}),
        ["spec.constraints.p99LatencyMs.max", "greater than 0"],
        id="latency-budget-negative",
    ),
    pytest.param(
        with_spec(constraints={"p99LatencyMs": 5}),
        ["spec.constraints.p99LatencyMs", "must be of type object"],
        id="latency-budget-bare",
    ),
    pytest.param(
        with_spec(constraints={"throughputInferPerSec": {"max": 5}}),
        ['unknown field "spec.constraints.throughputInferPerSec.max"'],
        id="throughput-floor-as-max",
    ),
    # Triton: what no image reference, command line or pod can hold.
    pytest.param(
        with_spec(triton={"args": ["--log-verbose=1", "--x=\x00"]}), ["spec.triton.args", ARGS_MESSAGE], id="arg-nul"
    ),
    pytest.param(
        with_spec(triton={"args": ["--model-control-mode=none\n--strict-model-config=false"]}),
        ["spec.triton.args", "control characters"],
        id="arg-newline",
    ),
    pytest.param(with_spec(triton={"args": ["x" * 4097]}), ["spec.triton.args[0]", "4096 bytes"], id="arg-4097"),
    pytest.param(
        with_spec(triton={"image": "nvcr.io/nvidia/tritonserver:24.08\u00a0x"}),
        ["spec.triton.image", "should match"],
        id="image-no-break-space",
    ),
    pytest.param(
        with_spec(triton={"version": "24.08;rm -rf /"}), ["spec.triton.version", "should match"], id="version-shell"
    ),
    pytest.param(with_spec(triton={"version": "../../x"}), ["spec.triton.version", "should match"], id="version-path"),
    pytest.param(
        with_spec(triton={"runAsUser": 0}), ["spec.triton.runAsUser", "greater than or equal to 1"], id="root"
    ),
    pytest.param(
        with_spec(triton={"env": [{"name": f"A{i}", "value": "x"} for i in range(257)]}),
        ["spec.triton.env", "at most 256 items"],
        id="env-257",
    ),
    pytest.param(
        with_spec(triton={"tolerations": [{"operator": "Exists"}] * 65}),
        ["spec.triton.tolerations", "at most 64"],
        id="tolerations-65",
    ),
    pytest.param(
        with_spec(triton={"resources": {f"k{i}": {} for i in range(9)}}),
        ["spec.triton.resources", "at most 8"],
        id="resources-9-keys",
    ),
    pytest.param(
        with_spec(triton={"resources": ["cpu"]}),
        ["spec.triton.resources", "must be of type object"],
        id="resources-a-list",
    ),
    pytest.param(
        with_spec(triton={"nodeSelector": {"zone": "z" * 64}}),
        ["spec.triton.nodeSelector.zone", "63 bytes"],
        id="node-selector-value-64",
    ),
    # Where things are: claims and URIs.
    pytest.param(
        with_spec(modelRepository={"pvc": {"claimName": "../x"}}),
        ["spec.modelRepository.pvc.claimName", "should match"],
        id="claim-traversal",
    ),
    pytest.param(
        with_spec(modelRepository={"pvc": {"claimName": "Models"}}),
        ["spec.modelRepository.pvc.claimName", "should match"],
        id="claim-upper-case",
    ),
    pytest.param(
        with_spec(modelRepository={"uri": "s3://b/m", "credentialsSecret": "a/b"}),
        ["spec.modelRepository.credentialsSecret", "should match"],
        id="secret-with-slash",
    ),
    pytest.param(
        with_spec(modelRepository={"uri": "file:///etc"}), ["spec.modelRepository.uri", "should match"], id="uri-file"
    ),
    pytest.param(
        with_spec(modelRepository={"uri": "s3://bucket\n/models"}),
        ["spec.modelRepository.uri", "should match"],
        id="uri-newline",
    ),
    pytest.param(
        with_spec(modelRepository={"pvc": {"claimName": "triton-models", "subPath": "models\x00"}}),
        ["spec.modelRepository.pvc.subPath", SUB_PATH_MESSAGE],
        id="subpath-nul",
    ),
    pytest.param(
        with_spec(results={"pvc": {"claimName": "results", "subPath": "a/./.."}}),
        ["spec.results.pvc.subPath", "without .. segments"],
        id="results-subpath-trailing-dotdot",
    ),
    # Fields that conflict.
    pytest.param(
        with_spec(loadGenerator={"nodeSelector": {"pool": "cpu"}}),
        ["spec.loadGenerator", PLACEMENT_MESSAGE],
        id="job-placement-conflict-selector",
    ),
    pytest.param(
        with_spec(loadGenerator={"placement": "SameNodeAsServer", "affinity": {"nodeAffinity": {}}}),
        ["spec.loadGenerator", "set placement: Anywhere"],
        id="job-placement-conflict-affinity",
    ),
    pytest.param(
        with_spec(loadGenerator={"placement": "Elsewhere"}),
        ["spec.loadGenerator.placement", "Anywhere"],
        id="job-placement-unknown",
    ),
    # Searches: the points they may measure stay within the bound.
    pytest.param(
        with_spec(models=[{"name": "m", "configSearch": {"instanceCounts": list(range(1, 9)),
                                                         "maxBatchSizes": list(range(1, 10))}}]),
        ["spec.models[0].configSearch", "at most 64 variants"],
        id="72-variants",
    ),
    pytest.param(
        # 17 variants x 10 batch sizes x 11 steps (1, 2, ..., 1024) = 1870 points.
        with_spec(models=[{"name": "m", "configSearch": {"instanceCounts": list(range(1, 17))}}],
                  batchSizes=list(range(1, 11)), concurrencySearch={}),
        ["spec", "config variants) x batchSizes x concurrency steps must be at most 1000"],
        id="variants-x-search-steps",
    ),
    pytest.param(
        with_spec(concurrencySearch={"maxConcurrency": 5000}),
        ["spec.concurrencySearch.maxConcurrency", f"less than or equal to {MAX_CONCURRENCY}"],
        id="search-past-max-concurrency",
    ),
    pytest.param(
        with_spec(models=[{"name": "m", "configSearch": {"dynamicBatching": ["yes"]}}]),
        ["spec.models[0].configSearch.dynamicBatching[0]", "boolean"],
        id="dynamic-batching-not-a-boolean",
    ),
    # Open-loop load and inputs (core/load.py, core/inputs.py).
    pytest.param(
        with_spec(requestRate=[100], concurrency=[1]), ["spec", "give either requestRate", "not both"],
        id="rate-and-concurrency",
    ),
    pytest.param(with_spec(requestRate=[0]), ["spec.requestRate[0]", "greater than 0"], id="rate-0"),
    pytest.param(
        with_spec(inputs={"data": "../secrets.json"}), ["spec.inputs.data", "inside the model repository claim"],
        id="input-data-outside-the-claim",
    ),
    pytest.param(
        with_spec(models=[{"name": "m", "inputs": {"data": "/etc/passwd"}}]),
        ["spec.models[0].inputs.data", "no leading /"],
        id="model-input-data-absolute",
    ),
    pytest.param(
        with_spec(modelRepository={"uri": "s3://b/m"}, inputs={"data": "in.json"}),
        ["spec", "give modelRepository.pvc"],
        id="input-data-without-a-claim",
    ),
    pytest.param(
        with_spec(inputs={"sharedMemory": "system"}), ["spec.inputs.sharedMemory", "must be none in a ModelAnalysis"],
        id="shared-memory-in-a-job",
    ),
    pytest.param(with_spec(inputs={"shapes": ["INPUT_IDS"]}), ["spec.inputs.shapes[0]", "should match"],
                 id="shape-without-dims"),
    # Triton versions and parallel trials (core/trials.py).
    pytest.param(
        with_spec(triton={"version": "24.08-py3", "versions": ["24.08-py3", "25.01-py3"]}),
        ["spec.triton", "leave out triton.version and triton.image"],
        id="versions-and-version",
    ),
    pytest.param(
        with_spec(triton={"image": "nvcr.io/nvidia/tritonserver:24.08-py3", "versions": ["25.01-py3"]}),
        ["spec.triton", "leave out triton.version and triton.image"],
        id="versions-and-image",
    ),
    pytest.param(
        with_spec(triton={"versions": ["24.08-py3", "24.08-py3"]}),
        ["spec.triton.versions", "lists a version twice"],
        id="a-version-twice",
    ),
    pytest.param(
        with_spec(triton={"versions": ["24.08-py3", "24.09-py3"]}, concurrency=list(range(1, 64)),
                  batchSizes=list(range(1, 10))),
        ["spec", "Triton versions x models (with their config variants)", "at most 1000"],
        id="versions-x-points",
    ),
    pytest.param(
        with_spec(parallelism={"maxTrials": 0}),
        ["spec.parallelism.maxTrials", "greater than or equal to 1"],
        id="no-trial-at-once",
    ),
]

# Wrong JSON types that the API server refuses and pydantic's lax mode would coerce (the operator never sees
# them: admission is the only door): kubectl only.
REFUSED_BY_TYPE = [
    pytest.param(with_spec(batchSizes=["1"]), ["spec.batchSizes[0]", "must be of type integer"], id="batch-a-string"),
    pytest.param(with_spec(concurrency=[True]), ["spec.concurrency[0]", "must be of type integer"], id="conc-a-bool"),
]


@pytest.mark.parametrize(("spec", "words"), [*REFUSED, *REFUSED_BY_TYPE])
def test_a_bad_spec_is_refused_by_kubectl_naming_the_field(
    cluster: Cluster, modelanalysis_crd: str, namespace: str, spec: dict[str, Any], words: list[str]
) -> None:
    refused = kubectl(cluster, "create", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(analysis("bad", spec)))
    assert refused.returncode != 0, f"the API server accepted {spec}"
    for word in words:
        assert word in refused.stderr, refused.stderr
    assert refused.stderr.startswith(('The ModelAnalysis "bad" is invalid', "Error from server (BadRequest)")), (
        refused.stderr
    )


@pytest.mark.parametrize(("spec", "words"), REFUSED)
def test_the_operator_refuses_what_admission_refuses(spec: dict[str, Any], words: list[str]) -> None:
    """The operator validates again with the same models (an object stored before the CRD changed)."""
    with pytest.raises(ValueError):
        ModelAnalysisSpec.model_validate(spec)


# metadata.name is the API server's own: a DNS subdomain of at most 253 characters, refused with its sentence.
REFUSED_NAMES = [
    pytest.param("Example", "a lowercase RFC 1123 subdomain", id="name-upper-case"),
    pytest.param("a" * 254, "must be no more than 253 characters", id="name-254"),
    pytest.param("ex_ample", "a lowercase RFC 1123 subdomain", id="name-underscore"),
    pytest.param("-example", "a lowercase RFC 1123 subdomain", id="name-leading-dash"),
    pytest.param("exa\u200bmple", "a lowercase RFC 1123 subdomain", id="name-zero-width-space"),
    pytest.param("exa\x00mple", "a lowercase RFC 1123 subdomain", id="name-nul"),
    pytest.param("..", "a lowercase RFC 1123 subdomain", id="name-dot-dot"),
    pytest.param("模型", "a lowercase RFC 1123 subdomain", id="name-not-latin"),
]


@pytest.mark.parametrize(("name", "words"), REFUSED_NAMES)
def test_an_analysis_name_that_is_no_dns_subdomain_is_refused_saying_what_a_name_may_hold(
    cluster: Cluster, modelanalysis_crd: str, namespace: str, name: str, words: str
) -> None:
    manifest = json.dumps(analysis(name, MINIMAL_SPEC))  # JSON: YAML would fold some of these characters
    refused = kubectl(cluster, "create", "-n", namespace, "-f", "-", stdin=manifest)
    assert refused.returncode != 0, f"the API server accepted the name {name!r}"
    assert "metadata.name" in refused.stderr and words in refused.stderr, refused.stderr


LONGEST_NAMES = ["a" * 253, "a" * 59 + "." + "b" * 193, "0" * 253, "x.y" * 84 + "z"]


@pytest.mark.parametrize("name", LONGEST_NAMES, ids=lambda n: f"{n[:4]}-{len(n)}")
def test_an_analysis_with_the_longest_name_is_accepted_and_every_child_it_derives_is_valid(
    api: Apis, modelanalysis_crd: str, namespace: str, name: str
) -> None:
    """253 characters, dots where a cut may fall: each child name and label the operator derives must be one the
    API server takes (a dry run of each, as built)."""
    owner = api.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, analysis(name, FULL_SPEC), field_validation=STRICT
    )
    spec = spec_of(owner)
    point = Point(model="Text_Encoder", batch_size=4, concurrency=2)
    children = [
        objects.triton_pod(name, namespace, 12345, spec, SETTINGS),
        objects.load_generator_job(name, namespace, 12345, spec, point, "10.0.0.1", SETTINGS, server_node="n"),
        objects.results_writer_job(name, namespace, 12345, spec, SETTINGS, uid="u-1"),
        objects.results_configmaps(name, namespace, 12345, {"a.csv": "x\n"})[0],
    ]
    for child in children:
        owned(child, owner)
        create = {
            "Pod": api.core.create_namespaced_pod,
            "Job": api.batch.create_namespaced_job,
            "ConfigMap": api.core.create_namespaced_config_map,
        }[child["kind"]]
        create(namespace, child, dry_run="All", field_validation=STRICT)  # raises on an invalid name or label


def test_strict_field_validation_through_the_api(api: Apis, modelanalysis_crd: str, namespace: str) -> None:
    custom = api.custom
    body = analysis("typo", with_spec(batchSize=[1, 2]))
    with pytest.raises(client.ApiException) as refused:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body, field_validation=STRICT)
    assert refused.value.status == 400
    assert 'unknown field "spec.batchSize"' in json.loads(str(refused.value.body))["message"]
    # Without Strict the field is pruned silently (kubectl asks for Strict by default; these tests do too).
    lenient = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body, field_validation="Ignore")
    assert "batchSize" not in lenient["spec"]


def test_status_with_500_points_is_stored_whole(api: Apis, owner: dict[str, Any]) -> None:
    """The status subresource's schema keeps every field the operator writes (nothing pruned), at scale."""
    status = big_status(models=5, batches=10, concurrencies=10, gpus=1)
    wire = status.wire()
    custom = api.custom
    meta = owner["metadata"]
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, meta["namespace"], PLURAL, meta["name"], {"status": wire}
    )
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, meta["namespace"], PLURAL, meta["name"])
    size = len(json.dumps(stored, separators=(",", ":")))
    assert stored["status"] == wire, "the API server pruned or changed status fields"
    assert ModelAnalysisStatus.model_validate(stored["status"]) == status
    assert size < 1_000_000, f"the stored analysis takes {size:,} bytes"
    assert stored["metadata"]["generation"] == owner["metadata"]["generation"]  # status is not spec


# ---- the builders' manifests, for real -------------------------------------------------------------------


def owned(manifest: dict[str, Any], owner: dict[str, Any]) -> dict[str, Any]:
    manifest["metadata"]["ownerReferences"] = [owner_reference(owner)]
    return manifest


def spec_of(owner: dict[str, Any]) -> ModelAnalysisSpec:
    return ModelAnalysisSpec.model_validate(owner["spec"])


@pytest.mark.parametrize("wire", [MINIMAL_SPEC, FULL_SPEC], ids=["pvc", "s3-full"])
def test_triton_pod_is_valid(api: Apis, owner: dict[str, Any], namespace: str, wire: dict[str, Any]) -> None:
    pod = owned(objects.triton_pod("example", namespace, 1, ModelAnalysisSpec.model_validate(wire), SETTINGS), owner)
    created = api.plain(api.core.create_namespaced_pod(namespace, pod, dry_run="All", field_validation=STRICT))
    [c] = created["spec"]["containers"]
    assert created["metadata"]["name"] == "example-g1-triton"
    assert created["metadata"]["ownerReferences"] == pod["metadata"]["ownerReferences"]
    # Everything the builder wrote is kept as written (the server only adds defaults).
    assert c["args"] == pod["spec"]["containers"][0]["args"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http", "scheme": "HTTP"}
    assert created["spec"]["restartPolicy"] == "Never"
    # The hardening is kept as written: no token, no capabilities, no escalation, the runtime's seccomp.
    assert created["spec"]["automountServiceAccountToken"] is False
    assert created["spec"]["securityContext"] == objects.TRITON_POD_SECURITY
    assert c["securityContext"] == objects.TRITON_CONTAINER_SECURITY
    for key in ("nodeSelector", "affinity"):
        assert created["spec"].get(key) == pod["spec"].get(key), key
    for toleration in pod["spec"].get("tolerations", []):  # the server adds its not-ready/unreachable ones
        assert toleration in created["spec"]["tolerations"]


def test_load_generator_job_is_created_and_its_failure_is_read_back(
    cluster: Cluster, api: Apis, owner: dict[str, Any], namespace: str
) -> None:
    """The Job as built runs (here perf_analyzer finds no server): the Job controller's conditions and the
    pod's termination message are what job_outcome and termination_message read."""
    point = Point(model="Text_Encoder", batch_size=4, concurrency=2)
    manifest = objects.load_generator_job(
        "example", namespace, 1, spec_of(owner), point, "127.255.255.254", SETTINGS, server_node="gpu-node-1"
    )
    created = api.plain(api.batch.create_namespaced_job(namespace, owned(manifest, owner), field_validation=STRICT))
    name = created["metadata"]["name"]
    assert name == names.point_job_name("example", 1, point)
    template = created["spec"]["template"]["spec"]
    assert template["securityContext"] == objects.RESTRICTED_POD_SECURITY
    assert template["containers"][0]["securityContext"] == objects.RESTRICTED_CONTAINER_SECURITY
    assert template["containers"][0]["args"] == manifest["spec"]["template"]["spec"]["containers"][0]["args"]
    assert created["spec"]["backoffLimit"] == 0
    assert created["spec"]["activeDeadlineSeconds"] == 120

    def finished() -> dict[str, Any] | None:
        job = api.plain(api.batch.read_namespaced_job(name, namespace))
        return job if job_outcome(job) else None

    job = wait_for(f"Job {name} to finish", finished)
    assert job_outcome(job) == "Failed"
    pods = [api.plain(p) for p in api.core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items]
    assert len(pods) == 1  # backoffLimit 0: one try
    assert pods[0]["metadata"]["labels"][names.LABEL_POINT] == names.short_hash(point.key, 10)
    exit_code, message = termination_message(pods)
    assert exit_code not in (None, 0)
    log = cluster.agent.read_log(namespace, pods[0]["metadata"]["name"], "perf-analyzer")
    assert message, f"no termination message; the pod's log:\n{log}"


def test_results_configmap_and_writer_job_are_created(api: Apis, owner: dict[str, Any], namespace: str) -> None:
    files = {"metrics-model-inference.csv": "Model,Batch,Concurrency\nadd_sub,1,1\n", "metrics-server-only.csv": ""}
    [manifest] = objects.results_configmaps("example", namespace, 1, files)
    cm = api.plain(api.core.create_namespaced_config_map(namespace, owned(manifest, owner), field_validation=STRICT))
    assert cm["data"] == files
    uid = owner["metadata"]["uid"]
    writer = owned(objects.results_writer_job("example", namespace, 1, spec_of(owner), SETTINGS, uid=uid), owner)
    created = api.plain(api.batch.create_namespaced_job(namespace, writer, field_validation=STRICT))
    volumes = {v["name"]: v for v in created["spec"]["template"]["spec"]["volumes"]}
    assert volumes["results-in"]["projected"]["sources"] == [{"configMap": {"name": cm["metadata"]["name"]}}]
    assert volumes["results-out"]["persistentVolumeClaim"] == {"claimName": "results"}
    assert (
        created["spec"]["template"]["spec"]["containers"][0]["args"]
        == writer["spec"]["template"]["spec"]["containers"][0]["args"]
    )


def test_children_go_with_their_analysis(api: Apis, owner: dict[str, Any], namespace: str) -> None:
    core, custom = api.core, api.custom
    cm = owned(objects.results_configmaps("example", namespace, 1, {"a.csv": "x\n"})[0], owner)
    core.create_namespaced_config_map(namespace, cm, field_validation=STRICT)
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "example")

    def collected() -> bool:
        try:
            core.read_namespaced_config_map(cm["metadata"]["name"], namespace)
            return False
        except client.ApiException as error:
            if error.status == 404:
                return True
            raise

    wait_for("the garbage collector to delete the results ConfigMap", collected)


def test_the_operators_api_never_writes_adopts_or_deletes_what_the_analysis_does_not_own(
    api: Apis, owner: dict[str, Any], namespace: str
) -> None:
    """KubeApi on the real API server: a 409 on create is the analysis's own child only if its owner references
    carry the analysis's uid; a user's object of that name (or an earlier analysis's, same name, another uid:
    a leftover) raises NameTaken and stays exactly as it was; delete by name leaves it alone too."""
    kube = KubeApi(api.api_client)
    uid, ref = owner["metadata"]["uid"], owner_reference(owner)

    # The analysis's own ConfigMap: a second create rewrites it whole (a redone run's results).
    [mine] = objects.results_configmaps("example", namespace, 1, {"a.csv": "first\n"})
    kube.create(owned(mine, owner))
    [again] = objects.results_configmaps("example", namespace, 1, {"a.csv": "second\n"})
    assert kube.create(owned(again, owner))["data"] == {"a.csv": "second\n"}

    # A user's ConfigMap under the name a second analysis ("victim") would use for its results.
    api.core.create_namespaced_config_map(namespace, {"metadata": {"name": "victim-results"},
                                                      "data": {"payload": "keep-me"}})  # fmt: skip
    before = api.plain(api.core.read_namespaced_config_map("victim-results", namespace))
    [theirs] = objects.results_configmaps("victim", namespace, 1, {"a.csv": "x\n"})
    with pytest.raises(NameTaken) as taken:
        kube.create(owned(theirs, owner))
    assert (taken.value.kind, taken.value.name) == ("ConfigMap", "victim-results")
    assert "no owner" in taken.value.owner and not taken.value.leftover
    with pytest.raises(NameTaken):
        kube.read_owned("ConfigMap", namespace, "victim-results", ref)
    assert api.plain(api.core.read_namespaced_config_map("victim-results", namespace)) == before

    # Another analysis's child is not this one's (a child whose owner is gone would be garbage-collected at once,
    # so the deleted-namesake case, a leftover, is decided in tests/unit/test_ownership.py).
    other = api.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, analysis("other", FULL_SPEC))
    other_uid = other["metadata"]["uid"]
    job = owned(objects.results_writer_job("other", namespace, 1, spec_of(owner), SETTINGS, uid=other_uid), other)
    api.batch.create_namespaced_job(namespace, {**job, "spec": {**job["spec"], "suspend": True}})
    job_before = api.plain(api.batch.read_namespaced_job("other-g1-results", namespace))
    with pytest.raises(NameTaken) as taken:
        kube.create(owned(objects.results_writer_job("other", namespace, 1, spec_of(owner), SETTINGS, uid=uid), owner))
    assert taken.value.owner == "it belongs to ModelAnalysis other" and not taken.value.leftover
    kube.delete("Job", namespace, "other-g1-results", uid)
    assert api.plain(api.batch.read_namespaced_job("other-g1-results", namespace))["metadata"]["uid"] == (
        job_before["metadata"]["uid"]
    )
    assert kube.read_owned("Job", namespace, "no-such-job", ref) is None

    # Its own child, deleted by name, goes.
    kube.delete("Job", namespace, "example-g1-results", uid)  # none: nothing happens
    own_job = kube.create(owned(objects.results_writer_job("example", namespace, 1, spec_of(owner), SETTINGS, uid=uid),
                                owner))  # fmt: skip
    assert kube.read_owned("Job", namespace, "example-g1-results", ref)["metadata"]["uid"] == own_job["metadata"]["uid"]
    kube.delete("Job", namespace, "example-g1-results", uid)
    wait_for("the Job to go", lambda: kube.read("Job", namespace, "example-g1-results") is None)


# ---- Pod Security "restricted" ----------------------------------------------------------------------------


def pod_from_template(job: dict[str, Any], name: str) -> dict[str, Any]:
    template = job["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": template["metadata"]["labels"]},
        "spec": copy.deepcopy(template["spec"]),
    }


def admitted(core: Any, namespace: str, pod: dict[str, Any]) -> str | None:
    """None when the pod is admitted (server dry-run), else why not."""
    try:
        core.create_namespaced_pod(namespace, pod, dry_run="All", field_validation=STRICT)
        return None
    except client.ApiException as error:
        if error.status != 403:
            raise
        return str(json.loads(str(error.body))["message"])


def test_job_pods_pass_pod_security_restricted(api: Apis, namespace: str) -> None:
    core = api.core
    core.patch_namespace(
        namespace,
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted",
                                 "pod-security.kubernetes.io/enforce-version": "latest"}}},
    )  # fmt: skip
    spec = ModelAnalysisSpec.model_validate(FULL_SPEC)
    point = Point(model="add_sub", batch_size=1, concurrency=1)
    load_generator = objects.load_generator_job(
        "example", namespace, 1, spec, point, "10.0.0.1", SETTINGS, server_node="gpu-node-1"
    )
    results_writer = objects.results_writer_job("example", namespace, 1, spec, SETTINGS, uid="u-1")

    # The check can fail: a pod without the security settings is refused here (once the label is seen).
    careless = pod_from_template(load_generator, "careless")
    del careless["spec"]["securityContext"]
    del careless["spec"]["containers"][0]["securityContext"]
    why = wait_for("Pod Security to enforce the namespace label", lambda: admitted(core, namespace, careless))
    assert 'violates PodSecurity "restricted:latest"' in why
    for needed in ("allowPrivilegeEscalation", "capabilities", "runAsNonRoot", "seccompProfile"):
        assert needed in why, why

    for job in (load_generator, results_writer):
        refusal = admitted(core, namespace, pod_from_template(job, job["metadata"]["name"]))
        assert refusal is None, f"{job['metadata']['name']}: {refusal}"

    # Each part of the restricted settings matters on its own.
    for remove in ("runAsNonRoot", "seccompProfile"):
        pod = pod_from_template(load_generator, f"no-{remove.lower()}")
        del pod["spec"]["securityContext"][remove]
        assert admitted(core, namespace, pod) is not None, remove
    for remove in ("allowPrivilegeEscalation", "capabilities"):
        pod = pod_from_template(load_generator, f"no-{remove.lower()}")
        pod["spec"]["containers"][0]["securityContext"] = {
            k: v for k, v in pod["spec"]["containers"][0]["securityContext"].items() if k != remove
        }
        assert admitted(core, namespace, pod) is not None, remove


def test_triton_pod_passes_pod_security_baseline(api: Apis, namespace: str) -> None:
    """Triton itself runs unrestricted settings (its image's user); it must still pass "baseline", the level
    most clusters enforce on workload namespaces."""
    core = api.core
    core.patch_namespace(namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}})
    privileged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged"},
        "spec": {"containers": [{"name": "c", "image": "python:3.11", "securityContext": {"privileged": True}}]},
    }
    why = wait_for("Pod Security to enforce the namespace label", lambda: admitted(core, namespace, privileged))
    assert 'violates PodSecurity "baseline:latest"' in why
    for wire in (MINIMAL_SPEC, FULL_SPEC):
        pod = objects.triton_pod("example", namespace, 1, ModelAnalysisSpec.model_validate(wire), SETTINGS)
        assert admitted(core, namespace, pod) is None


def test_triton_pod_run_as_non_root_passes_pod_security_restricted(api: Apis, namespace: str) -> None:
    """With a non-root user (chart value triton.runAsUser, or spec.triton.runAsUser) and the hardening every
    Triton pod has, the Triton pod passes "restricted" too, read-only root filesystem or not."""
    core = api.core
    core.patch_namespace(
        namespace,
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted",
                                 "pod-security.kubernetes.io/enforce-version": "latest"}}},
    )  # fmt: skip
    root = objects.triton_pod("example", namespace, 1, ModelAnalysisSpec.model_validate(MINIMAL_SPEC), SETTINGS)
    why = wait_for("Pod Security to enforce the namespace label", lambda: admitted(core, namespace, root))
    assert "runAsNonRoot" in why, why  # the NGC image's root user: only "baseline"
    assert "capabilities" not in why and "allowPrivilegeEscalation" not in why and "seccompProfile" not in why, why
    by_settings = OperatorSettings(triton_run_as_user=1000, triton_read_only_root_filesystem=True)
    by_spec = ModelAnalysisSpec.model_validate({**FULL_SPEC, "triton": {**FULL_SPEC["triton"], "runAsUser": 1000}})
    for wire, settings in ((ModelAnalysisSpec.model_validate(MINIMAL_SPEC), by_settings), (by_spec, SETTINGS)):
        pod = objects.triton_pod("example", namespace, 1, wire, settings)
        assert admitted(core, namespace, pod) is None


# ---- the largest analysis admission accepts ----------------------------------------------------------------
# Measuring 1000 points would take most of an hour here, so its points are made from real captured data instead
# (perf_analyzer's numbers and an H100's metrics page, replicated across 8 GPU UUIDs: tests/data); everything
# after the measurement is real: status through the status subresource, the results ConfigMaps, the results Job
# run by the node agent onto a claim, and `model-analyzer results`.

# etcd's default request limit: an object (status included) larger than this cannot be written at all.
OBJECT_LIMIT = 1_572_864
LARGE_SPEC: dict[str, Any] = {
    "models": [{"name": f"resnet50_onnx_variant_{m}"} for m in range(10)],
    "batchSizes": [8 * b for b in range(1, 11)],
    "concurrency": [16 * c for c in range(1, 11)],
    "modelRepository": {"pvc": {"claimName": "triton-models"}},
    "results": {"pvc": {"claimName": "large-results"}},
}


def results_claim(api: Apis, namespace: str, folder: Path) -> None:
    """A hostPath PersistentVolume and its claim, writable by the results Job's user (10001)."""
    folder.mkdir()
    os.chown(folder, 10001, 10001)
    api.core.create_persistent_volume(
        {
            "metadata": {"name": f"{namespace}-large-results"},
            "spec": {
                "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
                "hostPath": {"path": str(folder)}, "claimRef": {"name": "large-results", "namespace": namespace},
            },
        }
    )  # fmt: skip
    api.core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": "large-results"},
            "spec": {
                "accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
                "volumeName": f"{namespace}-large-results", "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )  # fmt: skip


def test_1000_points_on_8_gpus_keep_their_status_and_reach_the_volume_whole(
    cluster: Cluster, api: Apis, modelanalysis_crd: str, namespace: str, tmp_path: Path
) -> None:
    spec = ModelAnalysisSpec.model_validate(LARGE_SPEC)  # the most admission accepts: 10 x 10 x 10
    created = api.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, analysis("large", LARGE_SPEC), field_validation=STRICT
    )
    status = big_status(models=10, batches=10, concurrencies=10, gpus=8)
    status.phase = Phase.SUCCEEDED.value
    wire = status.wire()
    api.custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, "large", {"status": wire})
    stored = api.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "large")
    assert stored["status"] == wire, "the API server pruned or changed status fields"
    size = len(json.dumps(stored, separators=(",", ":")))
    assert size < OBJECT_LIMIT * 0.8, f"1000 points x 8 GPUs take {size:,} bytes of the {OBJECT_LIMIT:,} limit"

    # The files: more than one ConfigMap holds, so they continue in more; each is accepted by the API server.
    result = analysis_result(status, "24.08-py3")
    files = {**csv_files(result), REPORT_HTML: render_html(result, title="large")}
    assert sum(len(v.encode()) for v in files.values()) > objects.CONFIGMAP_DATA_LIMIT
    maps = objects.results_configmaps("large", namespace, 1, files)
    assert len(maps) >= 2
    for manifest in maps:
        api.core.create_namespaced_config_map(namespace, owned(manifest, created), field_validation=STRICT)

    # The results Job, run for real, writes every file whole into the claim.
    folder = tmp_path / "results"
    results_claim(api, namespace, folder)
    writer = owned(objects.results_writer_job("large", namespace, 1, spec, SETTINGS, configmaps=len(maps),
                                              uid=created["metadata"]["uid"]), created)  # fmt: skip
    api.batch.create_namespaced_job(namespace, writer, field_validation=STRICT)

    def finished() -> bool:
        job = api.plain(api.batch.read_namespaced_job(writer["metadata"]["name"], namespace))
        return job_outcome(job) is not None

    wait_for("the results Job to finish", finished, timeout=180)
    job = api.plain(api.batch.read_namespaced_job(writer["metadata"]["name"], namespace))
    assert job_outcome(job) == "Complete", job.get("status")
    # Beside them, the operator's hidden record of whose results they are (adapters/files.py).
    written = {p.name: p.read_text() for p in sorted((folder / "large").iterdir()) if not p.name.startswith(".")}
    assert written == files

    # `model-analyzer results` reads the CSV back from the ConfigMaps, whole.
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "model-analyzer"), "results", "large", "-n", namespace, "--format", "csv"],
        env=cluster.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout == files[INFERENCE_CSV]


# ---- a search at admission ------------------------------------------------------------------------------------


def test_a_search_within_the_bound_is_accepted_as_the_operator_reads_it(
    api: Apis, modelanalysis_crd: str, namespace: str
) -> None:
    # 5 variants x 2 batch sizes x 7 steps (1 to 64) = 70 points.
    spec = with_spec(
        models=[{"name": "add_sub", "configSearch": {"instanceCounts": [1, 2], "dynamicBatching": [False, True]}}],
        batchSizes=[1, 8], concurrencySearch={"maxConcurrency": 64}, constraints={"p99LatencyMs": {"max": 20}},
    )  # fmt: skip
    created = api.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, analysis("search", spec), field_validation=STRICT
    )
    assert created["spec"] == spec
    parsed = ModelAnalysisSpec.model_validate(created["spec"])
    assert parsed.concurrency_steps == [1, 2, 4, 8, 16, 32, 64]


def test_versions_run_as_parallel_trials_are_accepted_as_the_operator_reads_them(
    api: Apis, modelanalysis_crd: str, namespace: str
) -> None:
    spec = with_spec(triton={"versions": ["24.08-py3", "25.01-py3"]}, parallelism={"maxTrials": 4},
                     models=[{"name": "add_sub", "configSearch": {"instanceCounts": [1, 2]}}])  # fmt: skip
    created = api.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, analysis("trials", spec), field_validation=STRICT
    )
    parsed = ModelAnalysisSpec.model_validate(created["spec"])
    assert (parsed.triton.compared_versions, parsed.parallelism.max_trials) == (["24.08-py3", "25.01-py3"], 4)
