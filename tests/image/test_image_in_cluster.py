"""The test cluster's node agent runs pods of the project's image as real containers of the image built from
this checkout (podman/runc), honouring what the chart and the operator's Jobs ask of them. Skipped, saying
why, where the agent fell back to the test venv (no podman, or the image not built)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.cluster.controlplane import Cluster
from tests.cluster.waiting import wait_for

pytestmark = [pytest.mark.image, pytest.mark.cluster]

# What the script inside the pod prints, one JSON line: who it runs as, where, and what it can do.
SCRIPT = textwrap.dedent(
    """
    import json, os, pathlib
    from kubernetes import client, config
    def writable(path):
        try:
            pathlib.Path(path, "probe").write_text("x")
            return True
        except OSError:
            return False
    config.load_incluster_config()
    review = client.AuthenticationV1Api().create_self_subject_review({"apiVersion": "authentication.k8s.io/v1",
                                                                      "kind": "SelfSubjectReview"})
    pathlib.Path("/dev/termination-log").write_text("done: " + os.environ["GREETING"])
    print(json.dumps({
        "uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()),
        "os": pathlib.Path("/etc/os-release").read_text(),
        "root_writable": writable("/opt"), "tmp_writable": writable("/tmp"),
        "config": pathlib.Path("/config/key").read_text(),
        "user": review.status.user_info.username,
    }))
    """
)


@pytest.fixture
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    if cluster.agent.project_image is None:
        pytest.skip(f"the node agent runs the project's image from the test venv: {cluster.agent.project_image_reason}")
    api = cluster.api_client()
    yield api
    api.close()


def test_project_image_pod_runs_as_a_real_restricted_container(
    cluster: Cluster, api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "cfg"}, "data": {"key": "from a ConfigMap"}})
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "restricted"},
        "spec": {
            "restartPolicy": "Never",
            # As the operator's Jobs run: Pod Security "restricted".
            "securityContext": {
                "runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 20002,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [{
                "name": "main",
                "image": "ghcr.io/modelanalysis/modelanalysis:0.1.0",
                "command": ["python", "-c", SCRIPT],
                "env": [{"name": "GREETING", "value": "hello"}],
                "securityContext": {
                    "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "cfg", "mountPath": "/config"}],
            }],
            "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}}],
        },
    }  # fmt: skip
    core.create_namespaced_pod(namespace, pod)

    def finished() -> client.V1Pod | None:
        got = core.read_namespaced_pod("restricted", namespace)
        return got if got.status.phase in ("Succeeded", "Failed") else None

    done = wait_for("the pod to finish", finished)
    log = cluster.agent.read_log(namespace, "restricted", "main")
    assert done.status.phase == "Succeeded", log
    seen = json.loads(log.strip().splitlines()[-1])
    assert "VERSION_CODENAME=trixie" in seen["os"]  # the image's Debian 13, not this machine's Debian 12
    assert (seen["uid"], seen["gid"]) == (10001, 10001)
    assert 20002 in seen["groups"]  # fsGroup
    assert seen["root_writable"] is False
    assert seen["tmp_writable"] is True  # the emptyDir
    assert seen["config"] == "from a ConfigMap"
    assert seen["user"] == f"system:serviceaccount:{namespace}:default"  # the pod's own bound token
    terminated = done.status.container_statuses[0].state.terminated
    assert terminated.message == "done: hello"
    assert terminated.container_id.startswith("podman://")
