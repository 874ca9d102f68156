"""End-to-end fixtures: the chart installed as a user installs it, volumes for an analysis, kubectl.

Everything goes through what a user runs (helm, kubectl, the `model-analyzer` CLI) against the real control
plane of tests/cluster. The operator is the chart's Deployment with default values: a real `kopf run` whose
API calls carry its ServiceAccount's token, so the chart's RBAC is enforced, in a namespace that enforces
Pod Security "restricted". When a test fails, its report gets the operator's log, the analyses as YAML, the
namespace's events and objects, and the tail of the Triton and perf_analyzer logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.controlplane import Cluster, wait_for_default_service_account
from tests.cluster.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "model-analyzer"
EXAMPLE_MODELS = ROOT / "examples" / "models"
MODEL_ANALYZER = Path(sys.executable).parent / "model-analyzer"

# As the README installs it: `helm install model-analyzer charts/model-analyzer -n model-analyzer`.
OPERATOR_NAMESPACE = "model-analyzer"
RELEASE = "model-analyzer"
OPERATOR_SELECTOR = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/name=model-analyzer"

ANALYSIS_LABEL = "modelanalyzer.dev/analysis"
FINISHED = ("Succeeded", "Failed")
MODELS_CLAIM = "triton-models"  # the claim names of examples/k8s/local-volumes.yaml
RESULTS_CLAIM = "model-analyzer-results"
# Short windows and at most 2 runs of 3 windows a point: these tests check the operator, not how steady a
# small machine that other jobs share is (a point that does not converge is still measured).
FAST_MEASUREMENT = {
    "measurementIntervalMs": 300,
    "maxWindows": 6,
    "baselineDurationMs": 300,
}
WAIT_S = 300.0  # guards against hanging, never a performance assertion

Json = dict[str, Any]


class Kubectl:
    """The cluster's own kubectl (KUBECONFIG and PATH from the `cluster` fixture)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["kubectl", *args], env=self.env, input=input, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            command = " ".join(args)
            raise AssertionError(f"kubectl {command} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        return result

    def __call__(self, *args: str, input: str | None = None, timeout: float = 120) -> str:
        return self.run(*args, input=input, timeout=timeout).stdout

    def get(self, *args: str) -> Json:
        return dict(json.loads(self("get", *args, "-o", "json")))

    def apply(self, manifests: Json | list[Json], namespace: str | None = None) -> str:
        docs = manifests if isinstance(manifests, list) else [manifests]
        return self("apply", *(["-n", namespace] if namespace else []), "-f", "-", input=yaml.safe_dump_all(docs))


def tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Operator:
    """The installed chart's operator."""

    cluster: Cluster
    kubectl: Kubectl
    namespace: str = OPERATOR_NAMESPACE

    def pods(self) -> list[Json]:
        return list(self.kubectl.get("pods", "-n", self.namespace, "-l", OPERATOR_SELECTOR)["items"])

    def wait_ready(self, exclude: Iterable[str] = (), timeout: float = 180) -> str:
        """The name of the one Ready operator pod that is not being deleted and not in `exclude`."""
        excluded = set(exclude)
        deadline = time.monotonic() + timeout
        while True:
            ready = [
                pod["metadata"]["name"]
                for pod in self.pods()
                if pod["metadata"]["name"] not in excluded
                and not pod["metadata"].get("deletionTimestamp")
                and any(
                    c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", [])
                )
            ]
            if len(ready) == 1:
                return str(ready[0])
            if time.monotonic() > deadline:
                raise AssertionError(f"no single Ready operator pod (besides {sorted(excluded)}): {ready}")
            time.sleep(0.5)

    def logs(self, lines: int = 250) -> list[tuple[str, str]]:
        """Each operator container's log (this pod and any it replaced), newest last."""
        paths = sorted(self.cluster.agent.pod_log_dir.glob(f"{self.namespace}_*_operator.log"), key=_mtime)
        logs = []
        for path in paths:
            text = path.read_text(errors="replace")
            # Without kopf's health-check access lines (one per probe), which would fill the tail.
            useful = "\n".join(line for line in text.splitlines() if '"GET /healthz' not in line)
            logs.append((path.name, tail(useful, lines)))
        return logs

    def diagnostics(self, namespace: str | None) -> list[tuple[str, str]]:
        """What a person debugging a failed test wants to see first."""
        sections = [(f"operator log {name}", text) for name, text in self.logs()]

        def get(title: str, *args: str) -> None:
            result = self.kubectl.run(*args, check=False, timeout=30)
            sections.append((title, result.stdout + result.stderr))

        get("operator namespace: pods and events", "get", "pods,events", "-n", self.namespace, "-o", "wide")
        if namespace:
            get(f"ModelAnalysis objects in {namespace}", "get", "modelanalyses", "-n", namespace, "-o", "yaml")
            get(f"events in {namespace}", "get", "events", "-n", namespace, "--sort-by=.metadata.creationTimestamp")
            get(f"objects in {namespace}", "get", "pods,jobs,configmaps,pvc", "-n", namespace, "-o", "wide")
            for path in sorted(self.cluster.agent.pod_log_dir.glob(f"{namespace}_*.log"), key=_mtime)[-6:]:
                sections.append((f"container log {path.name}", tail(path.read_text(errors="replace"), 40)))
        return sections


def _mtime(path: Path) -> float:
    return path.stat().st_mtime


def _helm(cluster: Cluster, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["helm", *args], env=cluster.env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def kubectl(cluster: Cluster) -> Kubectl:
    return Kubectl(cluster.env)


@pytest.fixture(scope="module")
def operator(cluster: Cluster, kubectl: Kubectl) -> Iterator[Operator]:
    """`helm install` with default values into a namespace labelled to enforce Pod Security "restricted";
    uninstalled after the module (module scope: no other test module shares the cluster with it)."""
    # The previous module's operator namespace may still be terminating: its deletion does not wait.
    wait_for(
        f"namespace {OPERATOR_NAMESPACE} of the previous module to be gone",
        lambda: kubectl.run("get", "namespace", OPERATOR_NAMESPACE, check=False).returncode != 0 or None,
    )
    kubectl("create", "namespace", OPERATOR_NAMESPACE)
    kubectl("label", "namespace", OPERATOR_NAMESPACE, "pod-security.kubernetes.io/enforce=restricted")
    api = cluster.api_client()
    try:
        wait_for_default_service_account(api, OPERATOR_NAMESPACE)
    finally:
        api.close()  # type: ignore[no-untyped-call]
    # The label is enforced: the API server refuses a pod that may run as root there.
    refused = kubectl.run(
        "run", "rootful", "--image=python:3.12", "-n", OPERATOR_NAMESPACE, "--dry-run=server", check=False
    )
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr, refused.stdout + refused.stderr
    operator = Operator(cluster, kubectl)
    try:
        install = _helm(cluster, "install", RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE, "--wait",
                        "--timeout", "180s")  # fmt: skip
        if install.returncode != 0:
            report = "\n\n".join(f"--- {title}\n{text}" for title, text in operator.diagnostics(None))
            pytest.fail(f"helm install failed:\n{install.stdout}{install.stderr}\n{report}")
        operator.wait_ready()
        yield operator
    finally:
        _helm(cluster, "uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE, "--wait", "--timeout", "60s")
        kubectl.run("delete", "namespace", OPERATOR_NAMESPACE, "--wait=false", check=False)


@dataclass
class Volumes:
    models: Path  # a copy of examples/models, behind the claim triton-models
    results: Path  # the folder behind the claim model-analyzer-results


@pytest.fixture
def volumes(kubectl: Kubectl, namespace: str, tmp_path: Path) -> Iterator[Volumes]:
    """hostPath PersistentVolumes and their claims, as examples/k8s/local-volumes.yaml makes them: the model
    repository is this test's own copy of examples/models, the results a fresh folder."""
    with volumes_in(kubectl, namespace, tmp_path) as made:
        yield made


@contextlib.contextmanager
def volumes_in(kubectl: Kubectl, namespace: str, tmp_path: Path) -> Iterator[Volumes]:
    """The `volumes` fixture's claims in any namespace (a test that uses a second one)."""
    models = tmp_path / "models"
    shutil.copytree(EXAMPLE_MODELS, models, ignore=shutil.ignore_patterns("__pycache__"))
    results = tmp_path / "results"
    results.mkdir()
    # The results Job runs as 10001, and the kubelet applies fsGroup to no hostPath volume: the folder must
    # belong to that user, as examples/k8s/local-volumes.yaml tells users (real containers enforce it).
    os.chown(results, 10001, 10001)
    volume_names = [f"{namespace}-models", f"{namespace}-results"]

    def volume(name: str, claim: str, path: Path, modes: list[str]) -> Json:
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": modes,
                "storageClassName": "manual",
                "hostPath": {"path": str(path)},
                "claimRef": {"name": claim, "namespace": namespace},
            },
        }

    def claim(name: str, volume_name: str, mode: str) -> Json:
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "accessModes": [mode],
                "storageClassName": "manual",
                "volumeName": volume_name,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }

    kubectl.apply(
        [
            volume(volume_names[0], MODELS_CLAIM, models, ["ReadOnlyMany", "ReadWriteOnce"]),
            claim(MODELS_CLAIM, volume_names[0], "ReadOnlyMany"),
            volume(volume_names[1], RESULTS_CLAIM, results, ["ReadWriteOnce"]),
            claim(RESULTS_CLAIM, volume_names[1], "ReadWriteOnce"),
        ]
    )
    try:
        yield Volumes(models, results)
    finally:
        kubectl.run("delete", "pv", *volume_names, "--wait=false", check=False)


def analysis_manifest(
    name: str,
    models: Iterable[str] = ("add_sub", "matmul"),
    batch_sizes: Iterable[int] = (1, 4),
    concurrency: Iterable[int] = (1, 2),
) -> Json:
    """A ModelAnalysis written like examples/k8s/modelanalysis.yaml, with a small sweep and short windows."""
    return {
        "apiVersion": "modelanalyzer.dev/v1alpha1",
        "kind": "ModelAnalysis",
        "metadata": {"name": name},
        "spec": {
            "models": [{"name": model} for model in models],
            "batchSizes": list(batch_sizes),
            "concurrency": list(concurrency),
            "measurement": dict(FAST_MEASUREMENT),
            "modelRepository": {"pvc": {"claimName": MODELS_CLAIM}},
            "triton": {"version": "24.08-py3"},
            "results": {"pvc": {"claimName": RESULTS_CLAIM}},
        },
    }


def point_keys(status: Json) -> list[tuple[str, int, int]]:
    """(model, batch, concurrency) of each point in status, in order, duplicates kept."""
    return [(p["model"], p["batch"], p["concurrency"]) for p in status.get("points") or []]


def conditions(obj: Json) -> dict[str, Json]:
    return {c["type"]: c for c in obj.get("status", {}).get("conditions") or []}


class Analyses:
    """ModelAnalysis objects of one namespace, through kubectl."""

    def __init__(self, kubectl: Kubectl, namespace: str) -> None:
        self.kubectl = kubectl
        self.namespace = namespace

    def apply(self, manifest: Json) -> None:
        self.kubectl.apply(manifest, self.namespace)

    def get(self, name: str) -> Json | None:
        result = self.kubectl.run("get", "modelanalyses", name, "-n", self.namespace, "-o", "json", check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise AssertionError(result.stderr)
        return dict(json.loads(result.stdout))

    def wait(self, name: str, until: Callable[[Json], bool], what: str, timeout: float = WAIT_S) -> Json:
        deadline = time.monotonic() + timeout
        while True:
            obj = self.get(name)
            if obj is not None and until(obj):
                return obj
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}: {what} did not happen within {timeout:.0f} s; status: "
                                     f"{json.dumps((obj or {}).get('status'), indent=1)[:3000]}")  # fmt: skip
            time.sleep(0.5)

    def wait_finished(self, name: str, timeout: float = WAIT_S) -> Json:
        """The analysis once its current generation has finished (Succeeded or Failed)."""

        def finished(obj: Json) -> bool:
            status = obj.get("status") or {}
            return status.get("phase") in FINISHED and status.get("observedGeneration") == obj["metadata"]["generation"]

        return self.wait(name, finished, "finishing", timeout)

    def wait_points(self, name: str, at_least: int) -> Json:
        return self.wait(
            name, lambda o: (o.get("status") or {}).get("pointsDone", 0) >= at_least, f"{at_least} point(s) done"
        )

    def table(self) -> tuple[list[str], dict[str, dict[str, str]]]:
        """`kubectl get modelanalyses` as its column names and, by NAME, each row's cells."""
        lines = self.kubectl("get", "modelanalyses", "-n", self.namespace).splitlines()
        if not lines:  # "No resources found" goes to stderr
            return [], {}
        header = lines[0]
        names = [n for n in header.split("  ") if n.strip()]
        columns = [n.strip() for n in names]
        starts: list[int] = []
        for n in names:  # in order: "BEST" is also the start of "BEST THROUGHPUT"
            starts.append(header.index(n.strip(), starts[-1] + 1 if starts else 0))
        bounds = list(zip(starts, [*starts[1:], None], strict=True))
        rows = {}
        for line in lines[1:]:
            cells = {col: line[a:b].strip() for col, (a, b) in zip(columns, bounds, strict=True)}
            rows[cells["NAME"]] = cells
        return columns, rows

    def events(self, name: str) -> list[Json]:
        selector = f"involvedObject.kind=ModelAnalysis,involvedObject.name={name}"
        return list(self.kubectl.get("events", "-n", self.namespace, "--field-selector", selector)["items"])

    def wait_events(self, name: str, reasons: set[str], timeout: float = 60) -> list[Json]:
        """The analysis's events once each of `reasons` is among them (kopf posts them asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events(name)
            missing = reasons - {e["reason"] for e in events}
            if not missing:
                return events
            if time.monotonic() > deadline:
                seen = [(e["type"], e["reason"], e["message"]) for e in events]
                raise AssertionError(f"{name}: no event {sorted(missing)} within {timeout:.0f} s; events: {seen}")
            time.sleep(0.5)

    def children(self, name: str, uid: str | None = None, kinds: str = "pods,jobs,configmaps") -> list[str]:
        """Objects (KIND/NAME) labelled with the analysis, or with it as an owner when `uid` is given."""
        items = self.kubectl.get(kinds, "-n", self.namespace)["items"]
        found = []
        for item in items:
            meta = item["metadata"]
            labelled = (meta.get("labels") or {}).get(ANALYSIS_LABEL) == name
            owned = uid is not None and any(ref.get("uid") == uid for ref in meta.get("ownerReferences") or [])
            if labelled or owned:
                found.append(f"{item['kind']}/{meta['name']}")
        return sorted(found)

    def wait_children_gone(self, name: str, uid: str | None = None, kinds: str = "pods,jobs,configmaps") -> None:
        deadline = time.monotonic() + 120
        while left := self.children(name, uid, kinds):
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}: still there after 120 s: {left}")
            time.sleep(0.5)


@pytest.fixture
def analyses(operator: Operator, kubectl: Kubectl, namespace: str) -> Iterator[Analyses]:
    yield Analyses(kubectl, namespace)
    # While the operator still runs, so that it stops their runs at once (the garbage collector would remove
    # their pods and Jobs without it too: analyses carry no finalizer, see test_uninstall.py).
    kubectl.run("delete", "modelanalyses", "--all", "-n", namespace, "--timeout=90s", check=False, timeout=120)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A failed test's report gets the operator's log, the analyses, events and objects of its namespace."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed or report.when == "teardown":
        return
    funcargs = getattr(item, "funcargs", {})
    operator = funcargs.get("operator")
    if isinstance(operator, Operator):
        try:
            report.sections.extend(operator.diagnostics(funcargs.get("namespace")))
        except Exception as error:  # diagnostics must never hide the failure itself
            report.sections.append(("diagnostics failed", repr(error)))
