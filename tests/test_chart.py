"""The Helm chart (charts/model-analyzer): lint, render, RBAC, Pod Security "restricted", the values schema,
the README's values table, and (marked `cluster`) a real install on the test control plane.

Uses the helm binary that tests/cluster caches (`python -m tests.cluster build`); skips when it is absent.
`python -m tests.test_chart` rewrites the README's values table from values.yaml.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from modelanalysis.kube.telemetry import OperatorMetrics
from tests.cluster.build import bin_dir
from tests.cluster.controlplane import Cluster, wait_for_default_service_account

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "model-analyzer"
README = CHART / "README.md"
TABLE_START = "<!-- values-table:start (python -m tests.test_chart writes it from values.yaml) -->"
TABLE_END = "<!-- values-table:end -->"

# Every rule the operator may hold, as (apiGroup, resource) -> verbs. Nothing else.
KOPF_CLUSTER_RULES = {("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"}}
# kopf 1.45 reads Namespaces only when given --namespace=... (to learn which exist); with --all-namespaces it
# never does. The cluster test below shows both modes run without a single Forbidden.
KOPF_NAMESPACES_RULES = {("", "namespaces"): {"list", "watch"}}
KOPF_EVENT_RULES = {("", "events"): {"create"}, ("events.k8s.io", "events"): {"create"}}
APPLICATION_RULES = {
    # Read only: no patch, so the operator cannot put a finalizer on an analysis (issue 13).
    ("modelanalyzer.dev", "modelanalyses"): {"get", "list", "watch"},
    ("modelanalyzer.dev", "modelanalyses/status"): {"patch"},
    ("", "pods"): {"get", "list", "create", "delete"},
    ("batch", "jobs"): {"get", "list", "create", "delete"},
    ("", "configmaps"): {"get", "create", "update"},
    ("", "persistentvolumeclaims"): {"get"},
}
LEASE_RULES = {("coordination.k8s.io", "leases"): {"get", "create", "update"}}
# kopf's own calls on the resource it handles: it lists and watches ModelAnalysis objects.
KOPF_WATCH_RULES = {("modelanalyzer.dev", "modelanalyses"): {"list", "watch"}}

# The client's method names say the verb and the resource: read_namespaced_pod is get on pods.
CLIENT_VERBS = {"create": "create", "read": "get", "get": "get", "list": "list", "delete": "delete",
                "patch": "patch", "replace": "update"}  # fmt: skip
CLIENT_RESOURCES = {
    "namespaced_pod": ("", "pods"),
    "namespaced_job": ("batch", "jobs"),
    "namespaced_config_map": ("", "configmaps"),
    "namespaced_persistent_volume_claim": ("", "persistentvolumeclaims"),
    "namespaced_custom_object": ("modelanalyzer.dev", "modelanalyses"),
    "namespaced_custom_object_status": ("modelanalyzer.dev", "modelanalyses/status"),
    "namespaced_lease": ("coordination.k8s.io", "leases"),
}

Manifest = dict[str, Any]
# The metric families the operator serves (kube/telemetry.py).
TELEMETRY_METRICS = [family.name for family in OperatorMetrics().registry.collect()]


def helm_binary() -> Path:
    helm = bin_dir() / "helm"
    if not os.access(helm, os.X_OK):
        pytest.skip(f"no helm at {helm}: run `python -m tests.cluster build` first")
    return helm


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm_binary()), *args], capture_output=True, text=True, check=check, timeout=120)


def render(*values: str, namespace: str = "ops") -> list[Manifest]:
    """`helm template` with --set arguments, as a list of manifests."""
    sets = [arg for value in values for arg in ("--set", value)]
    out = helm("template", "release", str(CHART), "--namespace", namespace, *sets).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def rules_of(role: Manifest) -> dict[tuple[str, str], set[str]]:
    """A Role's rules as (apiGroup, resource) -> verbs; a group/resource listed twice would be an error."""
    rules: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert (group, resource) not in rules, f"{group}/{resource} appears twice in {role['metadata']}"
                assert "*" not in rule["verbs"] and resource != "*" and group != "*"
                rules[(group, resource)] = set(rule["verbs"])
    return rules


def container_command(manifests: list[Manifest]) -> list[str]:
    (deployment,) = by_kind(manifests, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return list(container["command"])


def env_of(manifests: list[Manifest]) -> dict[str, Any]:
    (deployment,) = by_kind(manifests, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


# ---- lint and render ---------------------------------------------------------------------------------


def test_the_metrics_service_monitor_and_dashboard_render_as_asked() -> None:
    manifests = render()
    (service,) = by_kind(manifests, "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8081, "targetPort": "metrics", "protocol": "TCP"}]
    assert env_of(manifests)["MODELANALYSIS_METRICS_PORT"] == "8081"
    (policy,) = by_kind(manifests, "NetworkPolicy")
    assert [p["port"] for p in policy["spec"]["ingress"][0]["ports"]] == [8080, 8081]
    # A ServiceMonitor only where prometheus-operator's CRD is installed; the dashboard only when asked.
    assert not by_kind(render("metrics.serviceMonitor.enabled=true"), "ServiceMonitor")
    with_crd = helm("template", "release", str(CHART), "--namespace", "ops", "--set",
                    "metrics.serviceMonitor.enabled=true", "--api-versions",
                    "monitoring.coreos.com/v1/ServiceMonitor").stdout  # fmt: skip
    (monitor,) = [m for m in yaml.safe_load_all(with_crd) if m and m["kind"] == "ServiceMonitor"]
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "interval": "30s"}]
    (dashboard,) = by_kind(render("metrics.dashboard.enabled=true"), "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    panels = json.loads(dashboard["data"]["model-analyzer.json"])["panels"]
    served = set(TELEMETRY_METRICS)
    for panel in panels:  # every query names a metric the operator serves
        for target in panel["targets"]:
            named = set(re.findall(r"modelanalysis_[a-z_]+", target["expr"]))
            assert named and all(n.removesuffix("_total").removesuffix("_bucket") in served for n in named), target
    assert not by_kind(render("metrics.enabled=false"), "Service")


def test_lint_is_clean() -> None:
    for values in ([], ["--set", "watchNamespaces={team-a,team-b}", "--set", "logLevel=debug"]):
        result = helm("lint", "--strict", str(CHART), *values, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def test_default_render_watches_all_namespaces() -> None:
    manifests = render()
    assert sorted(m["kind"] for m in manifests) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "NetworkPolicy",
        "Service",  # the operator's metrics
        "ServiceAccount",
    ]
    assert container_command(manifests) == [
        "kopf",
        "run",
        "--standalone",
        "--module",
        "modelanalysis.kube.handlers",
        "--log-format=plain",
        "--all-namespaces",
        "--liveness=http://$(POD_IP):8080/healthz",
    ]
    (deployment,) = by_kind(manifests, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert spec["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "model-analyzer",
        "app.kubernetes.io/instance": "release",
    }
    (container,) = spec["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/modelanalysis/modelanalysis:0.1.0"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert container["ports"] == [
        {"name": "healthz", "containerPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 8081, "protocol": "TCP"},
    ]
    assert env_of(manifests) == {
        "PYTHONUNBUFFERED": "1",
        "POD_IP": {"fieldRef": {"fieldPath": "status.podIP"}},
        "MODELANALYSIS_LOG_LEVEL": "info",
        "MODELANALYSIS_MAX_TRITON_PODS": "4",
        "MODELANALYSIS_TRITON_IMAGE_REPOSITORY": "nvcr.io/nvidia/tritonserver",
        "MODELANALYSIS_DEFAULT_TRITON_VERSION": "24.08-py3",
        "MODELANALYSIS_TRITON_READY_TIMEOUT_SECONDS": "600",
        "MODELANALYSIS_TRITON_ALLOWED_IMAGE_REPOSITORIES": "[]",
        "MODELANALYSIS_TRITON_READ_ONLY_ROOT_FILESYSTEM": "false",
        "MODELANALYSIS_LOAD_GENERATOR_IMAGE": "ghcr.io/modelanalysis/modelanalysis:0.1.0",
        "MODELANALYSIS_JOB_TTL_SECONDS": "3600",
        "MODELANALYSIS_METRICS_PORT": "8081",
    }
    for manifest in manifests:
        if manifest["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert manifest["metadata"]["namespace"] == "ops", manifest["kind"]


def test_values_reach_the_operator() -> None:
    manifests = render(
        "watchNamespaces={team-a,team-b}",
        "logLevel=debug",
        "maxTritonPods=2",
        "triton.imageRepository=mirror.example/tritonserver",
        "triton.defaultVersion=24.12-py3",
        "triton.readyTimeoutSeconds=1200",
        "triton.allowedImageRepositories={registry.example/triton,registry.example/team/*}",
        "triton.runAsUser=1000",
        "triton.readOnlyRootFilesystem=true",
        "image.digest=sha256:" + "a" * 64,
        "livenessProbe.enabled=false",
        "readinessProbe.enabled=false",
    )
    command = container_command(manifests)
    assert "--all-namespaces" not in command
    assert command[-3:] == ["--namespace=team-a", "--namespace=team-b", "--verbose"]
    assert not any(arg.startswith("--liveness") for arg in command)
    env = env_of(manifests)
    assert env["MODELANALYSIS_LOG_LEVEL"] == "debug"
    assert env["MODELANALYSIS_MAX_TRITON_PODS"] == "2"
    assert env["MODELANALYSIS_TRITON_IMAGE_REPOSITORY"] == "mirror.example/tritonserver"
    assert env["MODELANALYSIS_DEFAULT_TRITON_VERSION"] == "24.12-py3"
    assert env["MODELANALYSIS_TRITON_READY_TIMEOUT_SECONDS"] == "1200"
    assert env["MODELANALYSIS_TRITON_RUN_AS_USER"] == "1000"
    assert env["MODELANALYSIS_TRITON_READ_ONLY_ROOT_FILESYSTEM"] == "true"
    # The operator's settings read the allowlist as JSON: what the chart writes is what the operator gets.
    allowlist = env["MODELANALYSIS_TRITON_ALLOWED_IMAGE_REPOSITORIES"]
    assert json.loads(allowlist) == ["registry.example/triton", "registry.example/team/*"]
    # A digest pins both the operator and (by default) the load generator.
    assert env["MODELANALYSIS_LOAD_GENERATOR_IMAGE"] == "ghcr.io/modelanalysis/modelanalysis@sha256:" + "a" * 64
    (deployment,) = by_kind(manifests, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "livenessProbe" not in container and "readinessProbe" not in container
    assert container["ports"] == [{"name": "metrics", "containerPort": 8081, "protocol": "TCP"}]  # no health port
    assert env_of(render("loadGenerator.image=other/image:1"))["MODELANALYSIS_LOAD_GENERATOR_IMAGE"] == "other/image:1"


def test_long_release_names_fit_in_63_characters() -> None:
    out = helm("template", "r" * 70, str(CHART), check=False)
    # Helm itself refuses release names over 53 characters; the chart cuts what it builds from them.
    assert out.returncode != 0
    manifests = render("fullnameOverride=" + "x" * 63)
    assert all(len(m["metadata"]["name"]) <= 63 for m in manifests)


def test_the_values_schema_is_in_step_with_values_yaml() -> None:
    """Types and bounds are written once (values.schema.json), descriptions once (values.yaml's `# --` comments):
    scripts/values_schema.py merges them and checks both name the same values."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "values_schema.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# ---- RBAC --------------------------------------------------------------------------------------------


def client_calls(*sources: str) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs of every Kubernetes client call in the operator's modules."""
    found: dict[tuple[str, str], set[str]] = {}
    package = Path(__file__).resolve().parents[1] / "operator" / "modelanalysis" / "kube"
    for source in sources:
        for verb, resource in re.findall(r"\.(\w+?)_(namespaced_\w+)\(", (package / source).read_text()):
            if verb in CLIENT_VERBS:
                found.setdefault(CLIENT_RESOURCES[resource], set()).add(CLIENT_VERBS[verb])
    return found


def test_rbac_grants_exactly_the_verbs_the_operators_code_calls() -> None:
    """Least privilege, checked: every verb the chart grants the application is one the operator's client calls
    (kube/api.py; kube/leader.py for the Lease), or kopf's watch; nothing more, nothing less."""
    calls = client_calls("api.py")
    granted = {key: set(verbs) for key, verbs in APPLICATION_RULES.items()}
    for key, verbs in KOPF_WATCH_RULES.items():
        granted[key] = granted[key] - verbs
    assert {k: v for k, v in granted.items() if v} == calls
    assert client_calls("leader.py") == LEASE_RULES
    (leader,) = [r for r in by_kind(render("replicaCount=2"), "Role") if r["metadata"]["name"].endswith("-leader")]
    assert rules_of(leader) == LEASE_RULES


def test_rbac_all_namespaces_is_exactly_the_contract() -> None:
    manifests = render()
    (cluster_role,) = by_kind(manifests, "ClusterRole")
    assert rules_of(cluster_role) == {**KOPF_CLUSTER_RULES, **KOPF_EVENT_RULES, **APPLICATION_RULES}
    assert not by_kind(manifests, "Role") and not by_kind(manifests, "RoleBinding")
    (binding,) = by_kind(manifests, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "release-model-analyzer", "namespace": "ops"}]


def test_rbac_watched_namespaces_get_roles_and_only_kopf_lookups_stay_cluster_wide() -> None:
    manifests = render("watchNamespaces={team-a,team-b}")
    (cluster_role,) = by_kind(manifests, "ClusterRole")
    assert rules_of(cluster_role) == {**KOPF_CLUSTER_RULES, **KOPF_NAMESPACES_RULES}
    roles = by_kind(manifests, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert rules_of(role) == {**KOPF_EVENT_RULES, **APPLICATION_RULES}
    bindings = by_kind(manifests, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "release-model-analyzer",
        }
        assert binding["subjects"][0]["namespace"] == "ops"


def test_rbac_and_service_account_can_be_left_to_an_administrator() -> None:
    manifests = render("rbac.create=false", "serviceAccount.create=false", "serviceAccount.name=given")
    assert sorted(m["kind"] for m in manifests) == ["Deployment", "NetworkPolicy", "Service"]
    (deployment,) = by_kind(manifests, "Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "given"


# ---- Pod Security Standard "restricted" --------------------------------------------------------------


def restricted_violations(pod_spec: Manifest) -> list[str]:
    """The "restricted" profile's checks that a pod spec can fail (kubernetes.io/docs/concepts/security/
    pod-security-standards), including the baseline ones this chart could plausibly trip."""
    problems = []
    pod_sc = pod_spec.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(flag):
            problems.append(flag)
    for volume in pod_spec.get("volumes", []):
        if "hostPath" in volume:
            problems.append(f"hostPath volume {volume['name']}")
    containers = pod_spec.get("initContainers", []) + pod_spec["containers"]
    for c in containers:
        sc = c.get("securityContext", {})
        name = c["name"]
        if sc.get("privileged"):
            problems.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation must be false")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problems.append(f"{name}: capabilities must drop ALL")
        if set(sc.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities")
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            problems.append(f"{name}: runAsNonRoot must be true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            problems.append(f"{name}: runAsUser 0")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile must be RuntimeDefault or Localhost")
        for port in c.get("ports", []):
            if port.get("hostPort"):
                problems.append(f"{name}: hostPort")
    return problems


@pytest.mark.parametrize("values", [[], ["watchNamespaces={team-a}"], ["livenessProbe.enabled=false"]])
def test_every_pod_spec_passes_restricted(values: list[str]) -> None:
    manifests = render(*values)
    pod_specs = [m["spec"]["template"]["spec"] for m in manifests if m["kind"] in ("Deployment", "Job", "DaemonSet")]
    pod_specs += [m["spec"] for m in manifests if m["kind"] == "Pod"]
    assert pod_specs
    for spec in pod_specs:
        assert restricted_violations(spec) == []
        # Beyond "restricted": the chart's own promises.
        (container,) = spec["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert {"name": "tmp", "emptyDir": {}} in spec["volumes"]
        assert spec["securityContext"]["runAsUser"] == 10001 and spec["securityContext"]["fsGroup"] == 10001


def test_the_restricted_check_catches_a_weakened_pod() -> None:
    manifests = render("securityContext.allowPrivilegeEscalation=true", "podSecurityContext.runAsNonRoot=false")
    (deployment,) = by_kind(manifests, "Deployment")
    problems = restricted_violations(deployment["spec"]["template"]["spec"])
    assert any("allowPrivilegeEscalation" in p for p in problems)


# ---- values.schema.json ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("unknownTopLevel=1", "unknownTopLevel"),
        ("image.tagg=1.0", "tagg"),
        ("logLevel=verbose", "logLevel"),
        ("maxTritonPods=0", "maxTritonPods"),
        ("watchNamespaces={Team_A}", "watchNamespaces"),
        ("triton.readyTimeoutSeconds=5", "readyTimeoutSeconds"),
        ("triton.runAsUser=0", "runAsUser"),
        ("triton.allowedImageRepositories=nvcr.io/nvidia/tritonserver", "allowedImageRepositories"),
    ],
)
def test_schema_rejects_bad_values(value: str, complaint: str) -> None:
    result = helm("template", "release", str(CHART), "--set", value, check=False)
    assert result.returncode != 0, f"--set {value} was accepted"
    assert complaint in result.stderr


def test_schema_closes_every_object_level() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    # Objects whose keys are free by nature (labels, annotations, Kubernetes sub-objects passed through).
    open_maps = {"global", "serviceAccount.annotations", "podAnnotations", "podLabels", "nodeSelector"}

    def walk(node: dict[str, Any], path: str) -> None:
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, f"{path or '(top)'} is not closed"
            for key, child in node["properties"].items():
                walk(child, f"{path}.{key}" if path else key)
        elif node.get("type") == "array" and isinstance(node.get("items"), dict):
            walk(node["items"], path + "[]")

    walk(schema, "")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    # Every top-level value is described by the schema, and nothing else is.
    assert set(values) == set(schema["properties"]) - {"global"}
    for key in open_maps - {"global"}:
        node: Any = schema
        for part in key.split("."):
            node = node["properties"][part]
        assert node["additionalProperties"] == {"type": "string"}


# ---- values.yaml is the manual; README.md lists every value ------------------------------------------


def documented_values() -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) for every `# --` comment in values.yaml, helm-docs style.

    A `# --` comment documents the key below it; its continuation lines are the `#` lines that follow.
    Keys under a documented key are covered by it. Any other leaf without a comment is an error."""
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    rows: list[tuple[str, str, str, str]] = []
    stack: list[tuple[int, str]] = []
    comment: list[str] | None = None
    documented_prefixes: list[str] = []
    undocumented: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            comment = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if comment is not None:
                comment.append(stripped[1:].strip())
            continue
        match = re.match(r"^( *)([A-Za-z0-9_]+):(.*)$", line)
        if not match:
            comment = None if not stripped else comment
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3).strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([*(k for _, k in stack), key])
        stack.append((indent, key))
        value: Any = values
        for part in path.split("."):
            value = value[part]
        if comment is not None:
            rows.append((path, _type_name(value), _default(value), " ".join(comment)))
            documented_prefixes.append(path + ".")
        elif rest and not any(path.startswith(p) for p in documented_prefixes):
            undocumented.append(path)
        comment = None
    assert not undocumented, f"values without a `# --` comment: {undocumented}"
    return rows


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def _default(value: Any) -> str:
    return "`" + json.dumps(value, separators=(",", ":")) + "`"


def values_table() -> str:
    lines = ["| Key | Type | Default | Description |", "|-----|------|---------|-------------|"]
    for key, type_, default, description in documented_values():
        escaped = description.replace("|", r"\|")
        lines.append(f"| {key} | {type_} | {default} | {escaped} |")
    return "\n".join(lines)


def test_readme_values_table_is_current() -> None:
    readme = README.read_text()
    assert TABLE_START in readme and TABLE_END in readme
    current = readme.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip()
    assert current == values_table(), "README.md's values table is stale: run `python -m tests.test_chart`"


def test_readme_says_how_crds_are_installed_and_upgraded() -> None:
    readme = README.read_text()
    assert "kubectl apply" in readme and "crds/modelanalyses.modelanalyzer.dev.yaml" in readme
    assert "never" in readme.lower()


def write_readme_table() -> None:
    readme = README.read_text()
    head, rest = readme.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    README.write_text(f"{head}{TABLE_START}\n{values_table()}\n{TABLE_END}{tail}")


# ---- a real install on the test control plane ----------------------------------------------------------


@pytest.fixture
def operator_namespace(cluster: Cluster) -> Iterator[str]:
    """A namespace that enforces Pod Security "restricted", so the API server itself judges the pod."""
    name = f"chart-{uuid.uuid4().hex[:6]}"
    api = cluster.api_client()
    core: Any = client.CoreV1Api(api)  # Any: the client takes plain dicts, its stubs want model classes
    core.create_namespace(
        {
            "metadata": {
                "name": name,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            }
        }
    )
    wait_for_default_service_account(api, name)
    # The namespace really enforces "restricted": the API server refuses a pod that runs as root.
    rootful = {"metadata": {"name": "rootful"}, "spec": {"containers": [{"name": "c", "image": "python:3.12"}]}}
    with pytest.raises(client.ApiException, match="violates PodSecurity"):
        core.create_namespaced_pod(name, rootful, dry_run="All")
    try:
        yield name
    finally:
        core.delete_namespace(name)
        api.close()  # type: ignore[no-untyped-call]


def _install(cluster: Cluster, release: str, namespace: str, *values: str) -> None:
    sets = [arg for value in values for arg in ("--set", value)]
    result = subprocess.run(
        ["helm", "install", release, str(CHART), "--namespace", namespace, "--wait", "--timeout", "120s", *sets],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _uninstall(cluster: Cluster, release: str, namespace: str) -> None:
    subprocess.run(
        ["helm", "uninstall", release, "--namespace", namespace, "--wait", "--timeout", "60s"],
        env=cluster.env,
        capture_output=True,
        timeout=90,
    )


def _analysis_with_missing_claim(name: str) -> Manifest:
    return {
        "apiVersion": "modelanalyzer.dev/v1alpha1",
        "kind": "ModelAnalysis",
        "metadata": {"name": name},
        "spec": {
            "models": [{"name": "add_sub"}],
            "modelRepository": {"pvc": {"claimName": "no-such-claim"}},
        },
    }


def _wait_for_phase(cluster: Cluster, namespace: str, name: str, phases: set[str], timeout: float) -> Manifest:
    custom: Any = client.CustomObjectsApi(cluster.api_client())
    deadline = time.monotonic() + timeout
    obj: Manifest = {}
    while time.monotonic() < deadline:
        obj = custom.get_namespaced_custom_object("modelanalyzer.dev", "v1alpha1", namespace, "modelanalyses", name)
        if obj.get("status", {}).get("phase") in phases:
            return obj
        time.sleep(0.5)
    raise AssertionError(f"{name} did not reach {phases}: {obj.get('status')}")


def _operator_log(cluster: Cluster, namespace: str) -> str:
    core: Any = client.CoreV1Api(cluster.api_client())
    (pod,) = core.list_namespaced_pod(namespace, label_selector="app.kubernetes.io/name=model-analyzer").items
    return str(cluster.agent.read_log(namespace, pod.metadata.name, "operator"))


@pytest.mark.cluster
@pytest.mark.parametrize("mode", ["all-namespaces", "watched-namespace"])
def test_installed_chart_runs_the_operator_under_its_own_rbac(
    cluster: Cluster, operator_namespace: str, namespace: str, mode: str
) -> None:
    """helm install into a "restricted" namespace; the operator (the real kopf command, the ServiceAccount's
    real token, the chart's RBAC) takes a ModelAnalysis through spec validation, its Triton slot, the pod and
    claim lookups and the status patches to a Failed phase that names the missing claim, promptly (kopf
    retries a forbidden namespace listing for about a minute before it gives up), and never hits a 403."""
    release = f"ma-{uuid.uuid4().hex[:6]}"
    values = [f"watchNamespaces={{{namespace}}}"] if mode == "watched-namespace" else []
    _install(cluster, release, operator_namespace, *values)
    try:
        apps: Any = client.AppsV1Api(cluster.api_client())
        deployment = apps.read_namespaced_deployment(f"{release}-model-analyzer", operator_namespace)
        assert deployment.status.ready_replicas == 1  # readinessProbe: kopf's /healthz answered
        custom: Any = client.CustomObjectsApi(cluster.api_client())
        custom.create_namespaced_custom_object(
            "modelanalyzer.dev", "v1alpha1", namespace, "modelanalyses", _analysis_with_missing_claim("probe")
        )
        obj = _wait_for_phase(cluster, namespace, "probe", {"Failed", "Succeeded"}, timeout=30)
        assert obj["status"]["phase"] == "Failed"
        assert "no-such-claim" in obj["status"].get("message", "") + json.dumps(obj["status"].get("conditions"))
        log = _operator_log(cluster, operator_namespace)
        assert "Forbidden" not in log and "403" not in log and "Not enough permissions" not in log, log[-3000:]
    finally:
        _uninstall(cluster, release, operator_namespace)


def _model_repository_claim(cluster: Cluster, namespace: str) -> str:
    """A PersistentVolume over examples/models (hostPath, read only) and a claim bound to it."""
    core: Any = client.CoreV1Api(cluster.api_client())
    name = f"models-{namespace}"[:63]
    core.create_persistent_volume(
        {
            "metadata": {"name": name},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "manual",
                "hostPath": {"path": str(ROOT / "examples" / "models")},
                "claimRef": {"name": "triton-models", "namespace": namespace},
            },
        }
    )
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": "triton-models"},
            "spec": {
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "manual",
                "volumeName": name,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    return name


@pytest.mark.cluster
def test_installed_chart_profiles_a_model_with_namespace_rbac_only(
    cluster: Cluster, operator_namespace: str, namespace: str
) -> None:
    """The whole path under the tighter RBAC (a Role in the watched namespace): the operator creates the
    Triton pod, a perf_analyzer Job per point and the results ConfigMap, and the analysis succeeds."""
    release = f"ma-{uuid.uuid4().hex[:6]}"
    volume = _model_repository_claim(cluster, namespace)
    _install(cluster, release, operator_namespace, f"watchNamespaces={{{namespace}}}")
    try:
        custom: Any = client.CustomObjectsApi(cluster.api_client())
        analysis = {
            "apiVersion": "modelanalyzer.dev/v1alpha1",
            "kind": "ModelAnalysis",
            "metadata": {"name": "e2e"},
            "spec": {
                "models": [{"name": "add_sub"}],
                "batchSizes": [1],
                "concurrency": [1],
                # Lenient stability: this test is about the chart, and a busy CI machine makes numbers noisy.
                "measurement": {"measurementIntervalMs": 1000, "stabilityPercentage": 100, "baselineDurationMs": 0},
                "modelRepository": {"pvc": {"claimName": "triton-models"}},
            },
        }
        custom.create_namespaced_custom_object("modelanalyzer.dev", "v1alpha1", namespace, "modelanalyses", analysis)
        obj = _wait_for_phase(cluster, namespace, "e2e", {"Failed", "Succeeded"}, timeout=240)
        assert obj["status"]["phase"] == "Succeeded", obj["status"]
        assert obj["status"]["pointsDone"] == 1
        core: Any = client.CoreV1Api(cluster.api_client())
        results = core.read_namespaced_config_map("e2e-results", namespace)
        assert any(name.endswith(".csv") for name in results.data)
        log = _operator_log(cluster, operator_namespace)
        assert "Forbidden" not in log and "403" not in log and "Not enough permissions" not in log, log[-3000:]
    finally:
        _uninstall(cluster, release, operator_namespace)
        client.CoreV1Api(cluster.api_client()).delete_persistent_volume(volume)


if __name__ == "__main__":
    write_readme_table()
    print(f"wrote the values table of {README.relative_to(ROOT)}")


def test_several_replicas_elect_a_leader_with_a_lease_role_in_the_release_namespace_only() -> None:
    manifests = render("replicaCount=2")
    (deployment,) = by_kind(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 2 and deployment["spec"]["strategy"] == {"type": "RollingUpdate"}
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODELANALYSIS_LEADER_ELECTION"]["value"] == "true"
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    (role,) = by_kind(manifests, "Role")
    assert role["metadata"]["namespace"] == "ops"
    assert rules_of(role) == {("coordination.k8s.io", "leases"): {"create", "get", "update"}}
    (binding,) = by_kind(manifests, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    # One replica: no Lease, no Role for it.
    single = render()
    assert not by_kind(single, "Role")
    assert "MODELANALYSIS_LEADER_ELECTION" not in str(by_kind(single, "Deployment"))
