"""The test control plane behaves as Kubernetes does: these check the parts the operator's tests rely on
(schema validation, RBAC, the Job controller, garbage collection, the scheduler) and the node agent's
plumbing (processes, volumes, service-account tokens, Triton on a pod IP)."""

from __future__ import annotations

import json
import sys
import textwrap
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.controlplane import Cluster
from tests.cluster.waiting import T, wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    with cluster.api_client() as api_client:
        yield api_client


def python_pod(name: str, script: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {"name": "main", "image": "python:3.11-slim", "command": ["python", "-c", textwrap.dedent(script)]}
            ],
            **spec,
        },
    }


def pod_phase(core: client.CoreV1Api, namespace: str, name: str, phases: tuple[str, ...]) -> client.V1Pod | None:
    pod = core.read_namespaced_pod(name, namespace)
    return pod if pod.status.phase in phases else None


def test_crd_schema_rejects_a_bad_object(api: client.ApiClient) -> None:
    group, plural = f"h{uuid.uuid4().hex[:6]}.harness.modelanalysis.test", "widgets"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["replicas"],
                                    "properties": {
                                        "replicas": {"type": "integer", "minimum": 1},
                                        "mode": {"type": "string", "default": "fast"},
                                    },
                                },
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            },
                        }
                    },
                }
            ],
        },
    }
    extensions = client.ApiextensionsV1Api(api)
    extensions.create_custom_resource_definition(crd)
    try:

        def established() -> bool:
            conditions = extensions.read_custom_resource_definition(crd["metadata"]["name"]).status.conditions
            return any(c.type == "Established" and c.status == "True" for c in conditions or [])

        wait_for("the CRD to be established", established)
        objects = client.CustomObjectsApi(api)

        def create(spec: dict[str, Any]) -> Any:
            body = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"generateName": "w-"}, "spec": spec}
            return objects.create_namespaced_custom_object(group, "v1", "default", plural, body)

        good = wait_for("the new API to serve", lambda: _created_or_none(lambda: create({"replicas": 2})))
        assert good["spec"]["mode"] == "fast"  # structural schema defaulting
        with pytest.raises(client.ApiException) as refused:
            create({"replicas": 0})
        assert refused.value.status == 422
        assert "spec.replicas" in refused.value.body
    finally:
        extensions.delete_custom_resource_definition(crd["metadata"]["name"])


def _created_or_none(create: Callable[[], Any]) -> Any:
    try:
        return create()
    except client.ApiException as error:
        if error.status == 404:  # the CRD's endpoint can lag its Established condition briefly
            return None
        raise


def test_rbac_denies_what_the_role_does_not_grant(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "read-configmaps"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-configmaps"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    token = core.create_namespaced_service_account_token(
        "reader", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    config = client.Configuration(host=cluster.server)
    config.ssl_ca_cert = str(cluster.ca_file)
    config.api_key = {"authorization": f"Bearer {token}"}
    with client.ApiClient(config) as as_reader:
        reader = client.CoreV1Api(as_reader)
        names = wait_for(  # RBAC caches refresh within moments of the binding
            "the binding to take effect",
            lambda: _allowed(lambda: [c.metadata.name for c in reader.list_namespaced_config_map(namespace).items]),
        )
        assert "kube-root-ca.crt" in names
        for forbidden in (
            lambda: reader.list_namespaced_secret(namespace),
            lambda: reader.create_namespaced_config_map(namespace, {"metadata": {"name": "x"}}),
            lambda: reader.list_namespaced_config_map("default"),
        ):
            with pytest.raises(client.ApiException) as denied:
                forbidden()
            assert denied.value.status == 403


def _allowed(call: Callable[[], T]) -> T | None:
    try:
        return call()
    except client.ApiException as error:
        if error.status == 403:
            return None
        raise


def test_jobs_complete_and_fail_with_backoff_limit(api: client.ApiClient, namespace: str) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)

    def job(name: str, code: int, backoff_limit: int) -> dict[str, Any]:
        pod = python_pod(name, f"print('job {name}'); raise SystemExit({code})")
        pod["spec"]["containers"][0]["terminationMessagePolicy"] = "FallbackToLogsOnError"
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name},
            "spec": {"backoffLimit": backoff_limit, "template": {"spec": pod["spec"]}},
        }

    batch.create_namespaced_job(namespace, job("good", 0, 0))
    batch.create_namespaced_job(namespace, job("bad", 2, 1))

    def finished(name: str) -> client.V1Job | None:
        j = batch.read_namespaced_job(name, namespace)
        done = [c for c in j.status.conditions or [] if c.type in ("Complete", "Failed") and c.status == "True"]
        return j if done else None

    good = wait_for("job good to finish", lambda: finished("good"))
    assert good.status.succeeded == 1
    assert [c.type for c in good.status.conditions if c.status == "True"][-1] == "Complete"

    bad = wait_for("job bad to finish", lambda: finished("bad"))
    failed = [c for c in bad.status.conditions if c.type == "Failed"]
    assert failed and failed[0].reason == "BackoffLimitExceeded"
    assert bad.status.failed == 2  # the first try and backoffLimit=1 retry
    pods = core.list_namespaced_pod(namespace, label_selector="batch.kubernetes.io/job-name=bad").items
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.phase == "Failed"
        terminated = pod.status.container_statuses[0].state.terminated
        assert terminated.exit_code == 2
        assert terminated.message == "job bad"  # FallbackToLogsOnError: the log's tail


def test_deleting_an_owner_garbage_collects_its_dependents(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    reference = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "dependent", "ownerReferences": [reference]}})
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    def gone() -> bool:
        try:
            core.read_namespaced_config_map("dependent", namespace)
            return False
        except client.ApiException as error:
            return error.status == 404

    wait_for("the garbage collector to delete the dependent", gone)


def test_pod_asking_for_more_gpus_than_the_node_has_stays_pending(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    pod = python_pod("greedy", "print('never runs')")
    pod["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "2"}}
    core.create_namespaced_pod(namespace, pod)

    def unschedulable() -> client.V1PodCondition | None:
        status = core.read_namespaced_pod("greedy", namespace).status
        return next(
            (c for c in status.conditions or [] if c.type == "PodScheduled" and c.reason == "Unschedulable"), None
        )

    condition = wait_for("the scheduler to refuse the pod", unschedulable)
    assert "nvidia.com/gpu" in condition.message
    pod_now = core.read_namespaced_pod("greedy", namespace)
    assert pod_now.status.phase == "Pending" and not pod_now.spec.node_name


def test_pod_reads_its_pvc_and_acts_as_its_service_account(
    cluster: Cluster, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "input.txt").write_text("from the volume")
    pv_name = f"pv-{namespace}"
    core.create_persistent_volume(
        {
            "metadata": {"name": pv_name},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "manual",
                "hostPath": {"path": str(tmp_path)},
            },
        }
    )
    try:
        core.create_namespaced_persistent_volume_claim(
            namespace,
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "manual",
                    "volumeName": pv_name,
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )
        core.create_namespaced_service_account(namespace, {"metadata": {"name": "lister"}})
        rbac.create_namespaced_role(
            namespace,
            {
                "metadata": {"name": "list-configmaps"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
            },
        )
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": "lister"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "list-configmaps"},
                "subjects": [{"kind": "ServiceAccount", "name": "lister", "namespace": namespace}],
            },
        )
        script = """
            import json, os
            from kubernetes import client, config
            config.load_incluster_config()  # the projected token + ca.crt + KUBERNETES_SERVICE_*
            core = client.CoreV1Api()
            ns = open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read()
            result = {"input": open("/data/input.txt").read(), "namespace": ns, "pod_ip": os.environ["POD_IP"]}
            result["configmaps"] = [c.metadata.name for c in core.list_namespaced_config_map(ns).items]
            try:
                core.list_namespaced_secret(ns)
                result["secrets"] = "allowed"
            except client.ApiException as error:
                result["secrets"] = error.status
            open("/data/output.txt", "w").write("written in the pod")
            open("/tmp/scratch", "w").write("an emptyDir over /tmp hides the host's /tmp, not the volumes")
            open("/dev/termination-log", "w").write(json.dumps(result))
        """
        pod = python_pod(
            "reader",
            script,
            serviceAccountName="lister",
            volumes=[
                {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "tmp", "emptyDir": {}},
            ],
        )
        container = pod["spec"]["containers"][0]
        # /tmp is mounted too, as charts with a read-only root filesystem do; the PV's folder is under /tmp.
        container["volumeMounts"] = [
            {"name": "data", "mountPath": "/data", "subPath": "sub"},
            {"name": "tmp", "mountPath": "/tmp"},
        ]
        container["env"] = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
        core.create_namespaced_pod(namespace, pod)
        done = wait_for("the pod to finish", lambda: pod_phase(core, namespace, "reader", ("Succeeded", "Failed")))
        log = cluster.agent.read_log(namespace, "reader", "main")
        assert done.status.phase == "Succeeded", log
        result = json.loads(done.status.container_statuses[0].state.terminated.message)
        assert result["input"] == "from the volume"
        assert result["namespace"] == namespace
        assert result["pod_ip"] == done.status.pod_ip and result["pod_ip"].startswith("127.")
        assert "kube-root-ca.crt" in result["configmaps"]
        assert result["secrets"] == 403  # the Role grants configmaps only
        assert (tmp_path / "sub" / "output.txt").read_text() == "written in the pod"
    finally:
        core.delete_persistent_volume(pv_name)


def test_triton_pod_serves_on_its_pod_ip(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "triton", "labels": {"app": "triton"}},
        "spec": {
            "containers": [
                {
                    "name": "triton",
                    "image": "nvcr.io/nvidia/tritonserver:24.08-py3",
                    "command": ["tritonserver"],
                    "args": ["--model-repository=/models", "--model-control-mode=explicit", "--allow-metrics=true"],
                    "ports": [{"name": "http", "containerPort": 8000}, {"name": "grpc", "containerPort": 8001}],
                    "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"}, "periodSeconds": 1},
                    "volumeMounts": [{"name": "models", "mountPath": "/models"}],
                }
            ],
            "volumes": [{"name": "models", "emptyDir": {}}],
        },
    }
    core.create_namespaced_pod(namespace, pod)

    def ready() -> client.V1Pod | None:
        p = core.read_namespaced_pod("triton", namespace)
        if p.status.phase == "Failed":
            pytest.fail(f"triton pod failed: {p.status}\n{cluster.agent.read_log(namespace, 'triton', 'triton')}")
        return p if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []) else None

    running = wait_for("the Triton pod to be Ready", ready)
    ip = running.status.pod_ip
    assert ip.startswith("127.") and ip != "127.0.0.1"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://{ip}:8000/v2/health/ready", timeout=5) as response:
        assert response.status == 200

    # A Service name resolves in other pods (the agent's /etc/hosts stands in for cluster DNS).
    core.create_namespaced_service(
        namespace,
        {"metadata": {"name": "triton"}, "spec": {"selector": {"app": "triton"}, "ports": [{"port": 8000}]}},
    )
    script = f"""
        import urllib.request
        url = "http://triton.{namespace}.svc:8000/v2/health/ready"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
        print(opener.open(url, timeout=5).status)
    """
    core.create_namespaced_pod(namespace, python_pod("client", script))
    done = wait_for("the client pod to finish", lambda: pod_phase(core, namespace, "client", ("Succeeded", "Failed")))
    assert done.status.phase == "Succeeded", cluster.agent.read_log(namespace, "client", "main")
    assert "200" in cluster.agent.read_log(namespace, "client", "main")

    # Deleting the pod stops the server and the pod goes away (the agent deletes it with grace 0).
    core.delete_namespaced_pod("triton", namespace, grace_period_seconds=5)

    def deleted() -> bool:
        try:
            core.read_namespaced_pod("triton", namespace)
            return False
        except client.ApiException as error:
            return error.status == 404

    wait_for("the Triton pod to be deleted", deleted)
    with pytest.raises(OSError):
        opener.open(f"http://{ip}:8000/v2/health/ready", timeout=2)


def test_pod_with_an_unknown_image_fails_with_a_reason(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    pod = python_pod("alien", "")
    pod["spec"]["containers"][0]["image"] = "docker.io/library/busybox:1.36"
    core.create_namespaced_pod(namespace, pod)
    failed = wait_for("the pod to fail", lambda: pod_phase(core, namespace, "alien", ("Failed",)))
    assert "not runnable here" in failed.status.message
    assert failed.status.container_statuses[0].state.waiting.reason == "ErrImagePull"


def test_project_image_runs_the_venv_tools(cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    pod = python_pod("tools", "")
    pod["spec"]["containers"][0] |= {
        "image": "ghcr.io/modelanalysis/modelanalysis:dev",
        # perf_analyzer only starts when libcudart (LD_LIBRARY_PATH set by the agent) and libb64 load.
        "command": [
            "sh",
            "-c",
            "command -v model-analyzer kopf && python -c 'import modelanalysis' && perf_analyzer --version",
        ],
    }
    core.create_namespaced_pod(namespace, pod)
    done = wait_for("the pod to finish", lambda: pod_phase(core, namespace, "tools", ("Succeeded", "Failed")))
    log = cluster.agent.read_log(namespace, "tools", "main")
    assert done.status.phase == "Succeeded", log
    assert "Perf Analyzer Version" in log


def test_mount_over_the_folder_holding_the_nodes_python_keeps_it_reachable(
    cluster: Cluster, api: client.ApiClient, namespace: str
) -> None:
    """A checkout under /tmp with a pod mounting an emptyDir at /tmp: the venv is bound back over the mount."""
    core = client.CoreV1Api(api)
    venv_parent = Path(sys.prefix).parent
    script = f"open({str(venv_parent / 'from-the-pod.txt')!r}, 'w').write('in the emptyDir')"
    pod = python_pod("over", script, volumes=[{"name": "v", "emptyDir": {}}])
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "v", "mountPath": str(venv_parent)}]
    core.create_namespaced_pod(namespace, pod)
    done = wait_for("the pod to finish", lambda: pod_phase(core, namespace, "over", ("Succeeded", "Failed")))
    assert done.status.phase == "Succeeded", cluster.agent.read_log(namespace, "over", "main")
    assert not (venv_parent / "from-the-pod.txt").exists()  # it went to the emptyDir, not the host


def test_mount_hiding_a_system_folder_is_refused(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    pod = python_pod("hider", "print('never runs')", volumes=[{"name": "v", "emptyDir": {}}])
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "v", "mountPath": "/etc"}]
    core.create_namespaced_pod(namespace, pod)
    failed = wait_for("the pod to fail", lambda: pod_phase(core, namespace, "hider", ("Failed",)))
    assert "mountPath /etc would hide /etc" in failed.status.message
