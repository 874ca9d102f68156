"""What an analysis may make the operator run: the Triton image allowlist (pure), the Triton pod's hardening
(the builder), and the run refusing a disallowed image before it creates anything."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from modelanalysis.kube import objects, policy
from modelanalysis.kube.reconcile import AnalysisRun
from modelanalysis.kube.resource import ModelAnalysisSpec
from modelanalysis.kube.settings import OperatorSettings
from modelanalysis.kube.slots import TritonSlots
from tests.fakes import DEFAULTS, NS, SPEC, RecordingApi


def spec(**triton: Any) -> ModelAnalysisSpec:
    return ModelAnalysisSpec.model_validate({**SPEC, "triton": triton})


# ---- the allowlist decision --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("nvcr.io/nvidia/tritonserver:24.08-py3", "nvcr.io/nvidia/tritonserver"),
        ("nvcr.io/nvidia/tritonserver", "nvcr.io/nvidia/tritonserver"),
        ("nvcr.io/nvidia/tritonserver@sha256:" + "a" * 64, "nvcr.io/nvidia/tritonserver"),
        ("nvcr.io/nvidia/tritonserver:24.08-py3@sha256:" + "a" * 64, "nvcr.io/nvidia/tritonserver"),
        ("registry.local:5000/triton", "registry.local:5000/triton"),
        ("registry.local:5000/triton:1.0", "registry.local:5000/triton"),
        ("tritonserver:1", "tritonserver"),
    ],
)
def test_the_repository_of_an_image_reference(image: str, repository: str) -> None:
    assert policy.image_repository(image) == repository


def test_the_operators_own_repository_is_allowed_and_nothing_else_by_default() -> None:
    assert policy.image_refusal("nvcr.io/nvidia/tritonserver:24.08-py3", DEFAULTS) is None
    for image in (
        "docker.io/attacker/tritonserver:24.08-py3",
        "nvcr.io/nvidia/tritonserver-evil:1",  # a prefix of the name is not the name
        "nvcr.io/nvidia/tritonserver/sub:1",  # nor a path under it, unless the allowlist says path/*
        "nvcr.io/nvidia:tritonserver",
        "python:3.12",
    ):
        assert policy.image_refusal(image, DEFAULTS) is not None, image


def test_the_refusal_says_which_value_to_change() -> None:
    message = policy.image_refusal("docker.io/attacker/triton:1", DEFAULTS)
    assert message is not None
    assert "docker.io/attacker/triton:1" in message
    assert "nvcr.io/nvidia/tritonserver" in message  # what is allowed
    assert "spec.triton.image" in message  # what the tenant can change
    assert "triton.allowedImageRepositories" in message and "docker.io/attacker/triton" in message  # the admin


def test_allowlist_entries_exact_prefix_and_any() -> None:
    settings = OperatorSettings(
        triton_image_repository="mirror.local/nvidia/tritonserver",
        triton_allowed_image_repositories=["registry.local/team-a/triton", "registry.local/shared/*"],
    )
    allowed = [
        "mirror.local/nvidia/tritonserver:24.08-py3",
        "registry.local/team-a/triton:custom",
        "registry.local/shared/triton:1",
        "registry.local/shared/deep/triton@sha256:" + "b" * 64,
    ]
    refused = [
        "nvcr.io/nvidia/tritonserver:24.08-py3",  # not the operator's repository any more
        "registry.local/team-a/triton-other:1",
        "registry.local/shared:1",
        "registry.local/shared/../team-b/triton:1",
        "registry.local/sharedevil/triton:1",
    ]
    for image in allowed:
        assert policy.image_refusal(image, settings) is None, image
    for image in refused:
        assert policy.image_refusal(image, settings) is not None, image
    anything = OperatorSettings(triton_allowed_image_repositories=["*"])
    assert policy.image_refusal("docker.io/anyone/anything:1", anything) is None


def test_the_allowlist_comes_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(policy.ALLOWLIST_ENV, '["registry.local/triton", "registry.local/team/*"]')
    monkeypatch.setenv("MODELANALYSIS_TRITON_RUN_AS_USER", "1000")
    monkeypatch.setenv("MODELANALYSIS_TRITON_READ_ONLY_ROOT_FILESYSTEM", "true")
    settings = OperatorSettings()
    assert settings.triton_allowed_image_repositories == ["registry.local/triton", "registry.local/team/*"]
    assert settings.triton_run_as_user == 1000 and settings.triton_read_only_root_filesystem


# ---- the Triton pod's hardening ----------------------------------------------------------------------------


def pod_and_container(s: ModelAnalysisSpec, settings: OperatorSettings = DEFAULTS) -> tuple[Any, Any]:
    pod = objects.triton_pod("example", NS, 1, s, settings)["spec"]
    [container] = pod["containers"]
    return pod, container


def test_triton_pods_get_no_token_no_capabilities_no_escalation_and_runtime_seccomp() -> None:
    pod, container = pod_and_container(spec())
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    # The NGC image runs as root: nothing forces a user unless asked (it would not start).
    assert "runAsNonRoot" not in pod["securityContext"] and "runAsUser" not in pod["securityContext"]


def test_whatever_the_spec_says_the_hardening_stays() -> None:
    s = spec(env=[{"name": "A", "value": "1"}], args=["--log-verbose=1"], runAsUser=1000)
    pod, container = pod_and_container(s)
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_run_as_non_root_is_opt_in_from_the_settings_or_the_spec() -> None:
    pod, _ = pod_and_container(spec(), OperatorSettings(triton_run_as_user=1000))
    assert pod["securityContext"] == {
        "seccompProfile": {"type": "RuntimeDefault"},
        "runAsNonRoot": True,
        "runAsUser": 1000,
    }
    pod, _ = pod_and_container(spec(runAsUser=2000), OperatorSettings(triton_run_as_user=1000))
    assert pod["securityContext"]["runAsUser"] == 2000  # the analysis's own choice, non-root either way
    for root in (0, -1):
        with pytest.raises(ValueError):
            spec(runAsUser=root)


def test_read_only_root_filesystem_is_opt_in_with_a_writable_tmp() -> None:
    pod, container = pod_and_container(spec(), OperatorSettings(triton_read_only_root_filesystem=True))
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in container["volumeMounts"]
    _, default = pod_and_container(spec())
    assert "readOnlyRootFilesystem" not in default["securityContext"]
    assert [m["name"] for m in default["volumeMounts"]] == ["models"]


# ---- the run refuses before it creates anything ------------------------------------------------------------


def test_a_disallowed_image_fails_the_analysis_and_creates_nothing() -> None:
    body = {
        "metadata": {"name": "example", "namespace": NS, "uid": "u-1", "generation": 1},
        "spec": {**SPEC, "triton": {"image": "docker.io/attacker/triton:1"}},
    }
    api = RecordingApi(body)
    events: list[tuple[str, str, str]] = []
    slots = TritonSlots(1)
    run = AnalysisRun(
        api,
        body,
        DEFAULTS,
        slots,
        threading.Event(),
        lambda *event: events.append(event),
        logging.getLogger("test"),
    )
    run.run()
    assert api.created == []
    assert not slots.holders
    status = api.statuses[-1]
    assert status["phase"] == "Failed"
    assert "triton.allowedImageRepositories" in status["message"]
    conditions = {c["type"]: c for c in status["conditions"]}
    for type_ in ("SpecValid", "Ready"):
        assert conditions[type_]["status"] == "False"
        assert conditions[type_]["reason"] == "ImageNotAllowed"
        assert "docker.io/attacker/triton" in conditions[type_]["message"]
    assert ("Warning", "ImageNotAllowed") in [(t, r) for t, r, _ in events]

