"""Hostile and malformed specs, decided without a cluster: names and arguments that no folder, process or
command line can hold are refused with a sentence saying how to fix them, and what the API server says about a
pod or Job the spec describes is turned into the spec field to fix (tests/test_kube_apply.py and
tests/e2e/test_malformed.py check the same against the real API server)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from kubernetes import client
from pydantic import ValidationError

from modelanalysis.core.spec import MODEL_NAME_MESSAGE, ModelTarget
from modelanalysis.kube.readings import spec_error_message
from modelanalysis.kube.reconcile import AnalysisRun
from modelanalysis.kube.refusals import api_message, client_message, refusal_message
from modelanalysis.kube.resource import ARGS_MESSAGE, ENV_MESSAGE, SUB_PATH_MESSAGE, ModelAnalysisSpec
from modelanalysis.kube.slots import TritonSlots
from tests.fakes import DEFAULTS, NS, SPEC, RecordingApi

HOSTILE_MODEL_NAMES = [
    "add\x00sub",  # NUL: no C string (perf_analyzer's -m, Triton's repository API) can carry it
    "add\x1b[31msub",  # an escape sequence, repainting whoever reads the log
    "add\x7f",
    "add\u00a0sub",  # a no-break space: Go's \s (the API server's) did not see it
    "add\u200bsub",  # zero-width space: looks like add_sub, is not
    "add\u202esub",  # right-to-left override
    "\ufeffadd_sub",  # byte-order mark
    "add\u2028sub",  # line separator
    "a\nb",
    ".",
    "..",
    "../etc",
    "a/b",
]


@pytest.mark.parametrize("name", HOSTILE_MODEL_NAMES, ids=repr)
def test_a_model_name_no_repository_folder_can_have_is_refused_saying_what_a_name_may_hold(name: str) -> None:
    with pytest.raises(ValidationError, match="must be the name of a folder in the model repository"):
        ModelTarget(name=name)


@pytest.mark.parametrize("name", ["add_sub", "résnet-50", "模型", "😀", "a..b", "...", "v1.2", "back\\slash"])
def test_unusual_but_printable_model_names_are_folder_names_and_accepted(name: str) -> None:
    assert ModelTarget(name=name).name == name


def test_the_model_name_rule_says_what_is_allowed_and_how_to_fix_it() -> None:
    assert "no /" in MODEL_NAME_MESSAGE and "not . or .." in MODEL_NAME_MESSAGE and "rename" in MODEL_NAME_MESSAGE


def spec(**changes: Any) -> dict[str, Any]:
    return {**SPEC, **changes}


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (spec(triton={"args": ["--log-verbose=1\x00"]}), ARGS_MESSAGE),
        (spec(triton={"args": ["--model-control-mode=none\n--strict=false"]}), ARGS_MESSAGE),
        (spec(triton={"env": [{"name": "A", "value": "a\x00b"}]}), ENV_MESSAGE),
        (spec(modelRepository={"pvc": {"claimName": "models", "subPath": "a\x00b"}}), SUB_PATH_MESSAGE),
        (spec(triton={"resources": {"limits": {"cpu": "lots"}}}), "triton.resources.limits.cpu is 'lots'"),
        (spec(loadGenerator={"resources": {"requests": {"memory": "1 GB"}}}), "loadGenerator.resources.requests"),
        (spec(loadGenerator={"affinity": {}}), "set placement: Anywhere"),
    ],
)
def test_what_no_process_or_pod_can_take_is_refused_with_its_sentence(wire: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ModelAnalysisSpec.model_validate(wire)


def test_env_values_may_hold_line_breaks_and_quantities_any_of_kubernetes_forms() -> None:
    resources = {"limits": {"cpu": "500m", "memory": "16Gi", "nvidia.com/gpu": 1}, "requests": {"cpu": 1e-1}}
    env = [{"name": "CERT", "value": "-----BEGIN-----\nabc\n-----END-----"}]
    wire = spec(triton={"env": env, "resources": resources})
    assert ModelAnalysisSpec.model_validate(wire).triton.env[0]["value"].count("\n") == 2


def test_the_operators_message_for_a_bad_spec_names_the_field_as_kubectl_does_and_says_what_to_do() -> None:
    with pytest.raises(ValidationError) as refused:
        ModelAnalysisSpec.model_validate(spec(models=[{"name": "ok"}, {"name": "add\u00a0sub"}]))
    message = spec_error_message(refused.value)
    assert message == f"spec.models[1].name: {MODEL_NAME_MESSAGE}; fix it and apply the analysis again."
    assert "Value error" not in message and "\n" not in message


# What the API server (v1.36) answered to dry runs of the children of bad specs, word for word.
POD_INVALID = (
    '{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Pod \\"example-g1-triton\\" is invalid: '
    'spec.containers[0].env[0].name: Invalid value: \\"A=B\\": a valid environment variable name must consist only '
    "of printable ASCII characters other than '='\",\"reason\":\"Invalid\",\"code\":422}"
)
JOB_INVALID = (
    'Job.batch "example-g1-add-sub-b1-c1-7572" is invalid: spec.template.spec.tolerations[0].operator: Invalid '
    'value: "Equal": operator must be Exists when `key` is empty'
)
POD_STRICT = (
    'Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field '
    '"spec.containers[0].envFrom[0].secretRef.nam"'
)


def test_an_invalid_triton_pod_is_reported_as_the_spec_field_to_fix() -> None:
    message = refusal_message("Triton pod", "Pod", api_message(POD_INVALID), "spec.triton")
    assert message == (
        'the Triton pod this spec describes is invalid (spec.triton.env[0].name: Invalid value: "A=B": a valid '
        "environment variable name must consist only of printable ASCII characters other than '='); fix "
        "spec.triton.env and apply the analysis again."
    )


def test_an_invalid_load_generator_job_names_the_load_generators_field() -> None:
    message = refusal_message("load-generator Job", "Job", JOB_INVALID, "spec.loadGenerator")
    assert message.startswith("the load-generator Job this spec describes is invalid (spec.loadGenerator.tolerations")
    assert "Job.batch" not in message
    assert message.endswith("fix spec.loadGenerator.tolerations and apply the analysis again.")


def test_env_from_is_not_mistaken_for_env() -> None:
    message = refusal_message("Triton pod", "Pod", POD_STRICT, "spec.triton")
    assert "spec.modelRepository.credentialsSecret[0].secretRef.nam" in message
    assert "fix spec.modelRepository.credentialsSecret" in message


def test_a_refusal_that_names_no_field_falls_back_to_the_section() -> None:
    message = refusal_message("Triton pod", "Pod", "something else went wrong", "spec.triton")
    assert message == (
        "the Triton pod this spec describes is invalid (something else went wrong); fix spec.triton and apply the "
        "analysis again."
    )


def test_what_the_kubernetes_client_refuses_before_sending_reads_like_the_api_servers_words() -> None:
    """The client (v37) validates manifests itself: an env entry without a name never reaches the server."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "x", "env": [{"value": "1"}]}]}}  # fmt: skip
    api: Any = client.CoreV1Api(client.ApiClient())
    with pytest.raises(ValidationError) as refused:
        api.create_namespaced_pod("ns", pod, dry_run="All")
    assert client_message(refused.value) == "spec.containers[0].env[0].name: Field required"


def test_a_child_the_api_server_refuses_fails_the_analysis_before_anything_is_created() -> None:
    body = {"metadata": {"name": "example", "namespace": NS, "uid": "u-1", "generation": 1}, "spec": SPEC}
    api = RecordingApi(body)
    api.refusals["Pod"] = api_message(POD_INVALID)
    events: list[tuple[str, str, str]] = []
    slots = TritonSlots(1)
    run = AnalysisRun(api, body, DEFAULTS, slots, threading.Event(), lambda *e: events.append(e),
                      logging.getLogger("test"))  # fmt: skip
    run.run()
    assert api.created == [] and not slots.holders
    status = api.statuses[-1]
    assert status["phase"] == "Failed" and "fix spec.triton.env" in status["message"]
    conditions = {c["type"]: c for c in status["conditions"]}
    for type_ in ("SpecValid", "Ready"):
        assert (conditions[type_]["status"], conditions[type_]["reason"]) == ("False", "InvalidSpec")
    assert ("Warning", "InvalidSpec") in [(t, r) for t, r, _ in events]
