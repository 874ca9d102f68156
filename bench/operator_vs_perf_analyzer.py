"""Benchmark: the same sweep through a ModelAnalysis on the test cluster, and through plain perf_analyzer.

Runs on this project's test cluster (tests/cluster: a real control plane; pods run as local processes, so the
Triton pod is the same tritonserver binary as the plain side's). Three figures, reported, never asserted:

  sweep     the whole analysis (kubectl apply -> phase Succeeded: Triton pod start, baseline, model loads, one
            perf_analyzer Job per point, CSV written) against plain perf_analyzer on a Triton started here
            with the models loaded once, timing only the perf_analyzer calls. Target: within 1.3x. Order is
            plain, operator, plain, so a drift in machine load shows.
  pod       apply -> the Triton pod seen by a watch. Target: within 1 s.
  fleet     N small analyses applied at once (default 100) to one operator with its default cap of Triton
            pods: how long until each has a status, the most Triton pods seen at once, how long until all
            have finished, and how many succeeded.

    .venv/bin/python bench/operator_vs_perf_analyzer.py [--fleet 100]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from common import log
from kubernetes import client, watch

from modelanalysis import __version__
from modelanalysis.adapters.perf_analyzer import find_perf_analyzer
from modelanalysis.core.spec import MeasurementSettings, ModelTarget, SweepSpec
from modelanalysis.kube.resource import API_VERSION, GROUP, KIND, PLURAL, VERSION

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.cluster.controlplane import Cluster, running_cluster  # noqa: E402  (after the path is set)

DEFAULT_OUT = REPO / "bench" / "results" / "operator-vs-perf-analyzer.json"
OPERATOR_NS = "model-analyzer"
TARGET_WALL_RATIO = 1.3
TARGET_POD_CREATED_S = 1.0


def load_cli_bench() -> Any:
    """The plain-perf_analyzer side is shared with the CLI benchmark (bench/cli_vs_perf_analyzer.py)."""
    spec = importlib.util.spec_from_file_location("cli_bench", REPO / "bench" / "cli_vs_perf_analyzer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cli_bench"] = module
    spec.loader.exec_module(module)
    return module


def kubectl(cluster: Cluster, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(["kubectl", *args], env=cluster.env, input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def install_operator(cluster: Cluster, *helm_args: str) -> None:
    """helm install the chart (CRD, operator) and wait for it; `helm_args` e.g. `--set`, `maxTritonPods=8`."""
    subprocess.run(
        ["helm", "install", "bench", str(REPO / "charts" / "model-analyzer"), "-n", OPERATOR_NS,
         "--create-namespace", "--wait", "--timeout", "120s", *helm_args],
        env=cluster.env, check=True, capture_output=True,
    )  # fmt: skip


def hostpath_claim(cluster: Cluster, namespace: str, claim: str, path: Path, mode: str) -> None:
    """A hostPath PersistentVolume for `path` and the claim `claim` bound to it."""
    manifest = f"""
apiVersion: v1
kind: PersistentVolume
metadata: {{name: {claim}-{namespace}}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [{mode}]
  storageClassName: manual
  hostPath: {{path: {path}}}
  claimRef: {{name: {claim}, namespace: {namespace}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {claim}, namespace: {namespace}}}
spec:
  accessModes: [{mode}]
  storageClassName: manual
  volumeName: {claim}-{namespace}
  resources: {{requests: {{storage: 1Gi}}}}
"""
    kubectl(cluster, "apply", "-f", "-", stdin=manifest)


def model_volume(cluster: Cluster, namespace: str, models: Path = REPO / "examples" / "models") -> None:
    """The namespace, with the claim `models` on the model repository `models`, once its default
    ServiceAccount exists."""
    kubectl(cluster, "create", "namespace", namespace)
    hostpath_claim(cluster, namespace, "models", models, "ReadOnlyMany")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if kubectl(cluster, "get", "sa", "default", "-n", namespace, "--ignore-not-found").strip():
            return
        time.sleep(0.2)


def analysis_body(name: str, namespace: str, spec: SweepSpec) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            **spec.model_dump(mode="json", by_alias=True),
            "modelRepository": {"pvc": {"claimName": "models"}},
        },
    }


def wait_finished(
    custom: client.CustomObjectsApi, namespace: str, names: list[str], timeout_s: float
) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    finished: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and len(finished) < len(names):
        items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
        for item in items:
            status = item.get("status") or {}
            if status.get("phase") in ("Succeeded", "Failed") and item["metadata"]["name"] not in finished:
                finished[item["metadata"]["name"]] = {
                    "status": status, "seen_at": time.time(), "seen_monotonic": time.monotonic()
                }  # fmt: skip
        time.sleep(0.2)
    return finished


class PodWatch:
    """Records when each Triton pod first appears, from a watch started before anything is applied."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.first_seen: dict[str, float] = {}
        self.running: set[str] = set()
        self.max_running = 0
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        selector = "app.kubernetes.io/component=triton-server"
        try:
            self._follow(selector)
        except Exception:  # the stream ends abruptly when stop() closes it
            return

    def _follow(self, selector: str) -> None:
        for event in self._watch.stream(self.core.list_namespaced_pod, self.namespace, label_selector=selector):
            pod = event["object"]
            name = pod.metadata.name
            self.first_seen.setdefault(name, time.time())
            alive = event["type"] != "DELETED" and pod.metadata.deletion_timestamp is None
            (self.running.add if alive else self.running.discard)(name)
            self.max_running = max(self.max_running, len(self.running))

    def start(self) -> None:
        self._thread.start()
        time.sleep(0.5)  # let the watch connect before anything is applied

    def stop(self) -> None:
        self._watch.stop()


def run_operator_sweep(cluster: Cluster, spec: SweepSpec, namespace: str) -> dict[str, Any]:
    api = cluster.api_client()
    custom = client.CustomObjectsApi(api)
    pods = PodWatch(api, namespace)
    pods.start()
    name = "sweep"
    applied = time.time()
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, analysis_body(name, namespace, spec))
    done = wait_finished(custom, namespace, [name], timeout_s=1800)
    pods.stop()
    status = done[name]["status"] if name in done else {}
    points = status.get("points", [])
    return {
        "wall_s": (done[name]["seen_at"] - applied) if name in done else None,
        "phase": status.get("phase"),
        "pod_created_s": min(pods.first_seen.values()) - applied if pods.first_seen else None,
        "points_s": sum(p["finished"] - p["started"] for p in points if p.get("started") and p.get("finished")),
        "points": [
            {
                k: p.get(k)
                for k in ("model", "batch", "concurrency", "status", "throughput", "serverThroughput", "error")
            }
            for p in points
        ],
    }


def run_fleet(cluster: Cluster, count: int, namespace: str) -> dict[str, Any]:
    api = cluster.api_client()
    custom = client.CustomObjectsApi(api)
    spec = SweepSpec(
        models=[ModelTarget(name="add_sub")],
        measurement=MeasurementSettings(measurement_interval_ms=300, stability_percentage=50, baseline_duration_ms=0),
    )
    # The test node has one GPU; these small analyses ask for none, so the operator's cap is what limits them.
    no_gpu = {"triton": {"resources": {"requests": {"cpu": "100m"}}}}
    pods = PodWatch(api, namespace)
    pods.start()
    names = [f"fleet-{i:03d}" for i in range(count)]
    applied = time.time()
    for name in names:
        body = analysis_body(name, namespace, spec)
        body["spec"].update(no_gpu)
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    applied_all = time.time()
    # Reaction: how long until every analysis has a status phase (Queued, Starting, ...).
    reacted_at = None
    while reacted_at is None and time.time() - applied < 600:
        items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
        if sum(1 for i in items if (i.get("status") or {}).get("phase")) == count:
            reacted_at = time.time()
        else:
            time.sleep(0.2)
    done = wait_finished(custom, namespace, names, timeout_s=3600)
    pods.stop()
    phases = [d["status"].get("phase") for d in done.values()]
    return {
        "analyses": count,
        "apply_s": applied_all - applied,
        "all_have_status_s": None if reacted_at is None else reacted_at - applied,
        "all_finished_s": max(d["seen_at"] for d in done.values()) - applied if done else None,
        "succeeded": phases.count("Succeeded"),
        "failed": phases.count("Failed"),
        "unfinished": count - len(done),
        "max_triton_pods_at_once": pods.max_running,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="add_sub,matmul")
    parser.add_argument("--batch", default="1,4,8")
    parser.add_argument("--concurrency", default="1,2,4")
    parser.add_argument("--measurement-interval", type=int, default=1000)
    parser.add_argument(
        "--vs-cli",
        action="store_true",
        help="compare with `model-analyzer profile` (the same engine, its own local Triton) instead of plain "
        "perf_analyzer, at the engine's default measurement settings; writes operator-vs-cli.json",
    )
    parser.add_argument("--fleet", type=int, default=100, help="analyses applied at once (0: skip)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    cli_bench = load_cli_bench()
    spec = SweepSpec(
        models=[ModelTarget(name=m) for m in args.models.split(",")],
        batch_sizes=[int(b) for b in args.batch.split(",")],
        concurrency=[int(c) for c in args.concurrency.split(",")],
        measurement=MeasurementSettings() if args.vs_cli else MeasurementSettings(
            measurement_interval_ms=args.measurement_interval
        ),
    )
    if args.vs_cli and args.out == DEFAULT_OUT:
        args.out = DEFAULT_OUT.with_name("operator-vs-cli.json")
    perf_binary = find_perf_analyzer()
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version(), "modelanalysis": __version__},
        "sweep_spec": spec.model_dump(mode="json", by_alias=True),
        "targets": {"wall_ratio": TARGET_WALL_RATIO, "pod_created_s": TARGET_POD_CREATED_S},
    }

    def cli_run(tag: str) -> dict[str, Any]:
        """The whole `model-analyzer profile` (it starts its own Triton): the CLI side of the same engine."""
        log(f"CLI sweep ({tag})")
        export = Path(f"/tmp/bench-cli-{tag}")
        shutil.rmtree(export, ignore_errors=True)
        started = time.monotonic()
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "model-analyzer"), "profile", "--model-folder",
             str(REPO / "examples" / "models"), "-m", args.models, "-b", args.batch, "-c", args.concurrency,
             "--export", "--export-path", str(export)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        wall = time.monotonic() - started
        points = []
        if (export / "analysis.json").exists():
            for p in json.loads((export / "analysis.json").read_text())["points"]:
                perf = p.get("perf") or {}
                points.append({"model": p["model"], "batch": p["batch_size"], "concurrency": p["concurrency"],
                               "status": p["status"], "throughput": perf.get("throughput_infer_per_sec"),
                               "converged": perf.get("converged"), "windows": perf.get("windows")})  # fmt: skip
        return {"wall_s": wall, "exit": proc.returncode, "points": points}

    def plain_run(tag: str) -> dict[str, Any]:
        if args.vs_cli:
            return cli_run(tag)
        log(f"plain perf_analyzer sweep ({tag})")
        server = cli_bench.PlainServer(REPO / "examples" / "models", spec, Path(f"/tmp/bench-plain-{tag}.log"))
        with server.running() as running:
            return dict(running.sweep(perf_binary, spec.measurement))

    with running_cluster(log=log) as cluster:
        log("helm install")
        install_operator(cluster)
        model_volume(cluster, "bench")
        plain_before = plain_run("before")
        log("operator sweep")
        operator = run_operator_sweep(cluster, spec, "bench")
        plain_after = plain_run("after")
        plain_wall = statistics.mean([plain_before["wall_s"], plain_after["wall_s"]])
        result["sweep"] = {
            "plain_wall_s": [plain_before["wall_s"], plain_after["wall_s"]],
            "operator": operator,
            "other_side": "model-analyzer profile (CLI)" if args.vs_cli else "plain perf_analyzer",
            "ratio_operator_to_plain": None if operator["wall_s"] is None else operator["wall_s"] / plain_wall,
            "plain_points": plain_before["points"],
        }
        log(
            f"sweep: operator {operator['wall_s']} s vs plain {plain_wall:.1f} s; "
            f"Triton pod {operator['pod_created_s']} s after apply"
        )
        if args.fleet:
            model_volume(cluster, "fleet")
            log(f"fleet of {args.fleet}")
            result["fleet"] = run_fleet(cluster, args.fleet, "fleet")
            log(f"fleet: {result['fleet']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(cli_bench.rounded(result), indent=2) + "\n")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
