"""Benchmark: scale-out of parallel trials. An analysis of N trials on k GPU nodes, k = 1, 2, 4.

The issue's words: "With k fake GPU nodes in the test cluster (k = 1, 2, 4) and a model whose time is spent
waiting rather than computing (so trials on this 2-core machine do not contend for CPU, as GPU-bound trials on
separate nodes would not), the analysis's wall time against k: target <= 1.25/k of the one-node time."

For each k a fresh test cluster (tests/cluster) starts with k GPU nodes of one `nvidia.com/gpu` each (the last of
several tainted `nvidia.com/gpu=present:NoSchedule`, hence the analysis's toleration), the chart is installed, the
model repository bench/models is put on a claim, and one ModelAnalysis is applied: model `sleep_20ms` (a Python
backend that sleeps 20 ms per batch and computes nothing), batch 1 x concurrency 1,2, `spec.triton.versions` with
`--trials` Triton versions (24.08-py3, 24.09-py3, ...: one trial each, on its own Triton pod) and
`spec.parallelism.maxTrials` = k. Each Triton pod asks for one GPU, so at most k trials can run at once.

The test cluster maps every `nvcr.io/nvidia/tritonserver:<tag>` image to the same local tritonserver (the
nvidia-pytriton wheel's), so the "versions" are distinct trials of identical work: this measures how the operator
spreads trials over nodes, not any difference between Triton releases.

Recorded per analysis (reported, never asserted: this is a benchmark, not a test):

  wall_s               kubectl apply (create) -> phase Succeeded or Failed, seen by polling (client monotonic clock)
  status times         status.startedAt / finishedAt, and each trial's node, pod, startedAt, finishedAt, points
  max_trials_overlap   the most trials whose [startedAt, finishedAt) intervals overlap (status, 1 s resolution)
  max_triton_pods      the most Triton pods alive at once, from a pod watch (independent of status)
  points               measured / failed / planned

and in the summary, per k: the median wall time over --repeats, t_k / t_1 against the target 1.25 / k.

    .venv/bin/python bench/scale_out.py                          # k = 1, 2, 4; 4 trials; 1 repeat
    .venv/bin/python bench/scale_out.py --nodes 1,2 --trials 2   # smaller
    .venv/bin/python bench/scale_out.py --render                 # print the manifest for k = 2, start nothing

It needs an operator with parallel trials (spec.triton.versions, spec.parallelism.maxTrials in the CRD); without
them it stops with a sentence saying so, before timing anything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, cast

import yaml
from kubernetes import client

from modelanalysis import __version__
from modelanalysis.kube.conditions import rfc3339_seconds
from modelanalysis.kube.resource import API_VERSION, GROUP, KIND, PLURAL, VERSION

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from common import git_facts, median, ratio, rounded  # noqa: E402
from operator_vs_perf_analyzer import (  # noqa: E402
    PodWatch,
    install_operator,
    kubectl,
    log,
    model_volume,
    wait_finished,
)
from search_vs_model_analyzer import load_now  # noqa: E402
from tests.cluster.controlplane import Cluster, running_cluster  # noqa: E402
from tests.cluster.node_agent import GPU_TAINT, find_project_image, several_nodes  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "scale-out.json"
CRD_FILE = REPO / "charts" / "model-analyzer" / "crds" / f"{PLURAL}.{GROUP}.yaml"
MODELS = REPO / "bench" / "models"
MODEL = "sleep_20ms"
NAMESPACE = "scale"
TARGET_FACTOR = 1.25  # t_k / t_1 <= 1.25 / k
CHART_MAX_TRITON_PODS = 4  # the chart's default maxTritonPods: raised only for k above it
# What the manifest needs from the CRD, as paths of spec's schema.
NEEDED_FIELDS = (("parallelism", "maxTrials"), ("triton", "versions"), ("triton", "tolerations"))


def triton_versions(count: int, first: tuple[int, int] = (24, 8)) -> list[str]:
    """`count` consecutive monthly Triton tags from 24.08-py3: 24.08-py3, 24.09-py3, ..., 24.12-py3, 25.01-py3."""
    year, month = first
    tags = []
    for i in range(count):
        m = month - 1 + i
        tags.append(f"{year + m // 12:02d}.{m % 12 + 1:02d}-py3")
    return tags


def manifest(name: str, trials: int, max_trials: int, interval_ms: int) -> dict[str, Any]:
    """The ModelAnalysis: `trials` versions of one waiting model, at most `max_trials` Triton pods at once."""
    toleration = {"key": GPU_TAINT["key"], "operator": "Exists", "effect": GPU_TAINT["effect"]}
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "models": [{"name": MODEL}],
            "batchSizes": [1],
            "concurrency": [1, 2],
            "measurement": {"measurementIntervalMs": interval_ms},
            "modelRepository": {"pvc": {"claimName": "models"}},
            "triton": {"versions": triton_versions(trials), "tolerations": [toleration]},
            "parallelism": {"maxTrials": max_trials},
        },
    }


# ---------------------------------------------------------------- the CRD has what the manifest needs


def missing_fields(crd: dict[str, Any]) -> list[str]:
    """The NEEDED_FIELDS that the CRD's schema (of VERSION) lacks, as `spec.a.b`."""
    versions = [v for v in crd.get("spec", {}).get("versions", []) if v.get("name") == VERSION]
    schema = versions[0].get("schema", {}).get("openAPIV3Schema", {}) if versions else {}
    spec = schema.get("properties", {}).get("spec", {})
    missing = []
    for path in NEEDED_FIELDS:
        node = spec
        for part in path:
            node = node.get("properties", {}).get(part) if isinstance(node, dict) else None
            if node is None:
                missing.append("spec." + ".".join(path))
                break
    return missing


def require_parallel_trials(crd: dict[str, Any], where: str) -> None:
    missing = missing_fields(crd)
    if missing:
        raise SystemExit(
            f"scale_out: the ModelAnalysis CRD {where} has no {', '.join(missing)}, so this operator cannot run "
            "an analysis's trials in parallel and there is nothing to scale out; run this bench on a checkout "
            "whose operator has parallel trials (spec.triton.versions, spec.parallelism.maxTrials)."
        )


def dry_run(cluster: Cluster, body: dict[str, Any]) -> None:
    """The API server admits the manifest as it is: schema, CEL rules, no field unknown to the CRD."""
    try:
        kubectl(cluster, "apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=json.dumps(body))
    except RuntimeError as error:
        raise SystemExit(f"scale_out: the API server refuses the bench's ModelAnalysis: {error}") from error


# ---------------------------------------------------------------- one cluster of k nodes


def ready_nodes(cluster: Cluster, count: int, timeout_s: float = 120) -> list[dict[str, Any]]:
    """Wait until `count` nodes are Ready; their names, GPUs and taints."""
    deadline = time.monotonic() + timeout_s
    while True:
        nodes = json.loads(kubectl(cluster, "get", "nodes", "-o", "json"))["items"]
        ready = [
            n
            for n in nodes
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
        ]
        if len(ready) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if len(ready) < count:
        raise SystemExit(f"scale_out: {len(ready)} of {count} test-cluster nodes became Ready in {timeout_s:.0f} s")
    return [
        {
            "name": n["metadata"]["name"],
            "gpus": n["status"].get("allocatable", {}).get("nvidia.com/gpu"),
            "taints": [f"{t['key']}={t.get('value', '')}:{t['effect']}" for t in n["spec"].get("taints", [])],
        }
        for n in ready
    ]


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals [start, end) holding one instant (one ending as another starts do not overlap)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = current = 0
    for _, step in events:  # at equal times -1 sorts before +1
        current += step
        most = max(most, current)
    return most


def trial_rows(status: dict[str, Any], applied_epoch: float) -> list[dict[str, Any]]:
    rows = []
    for trial in status.get("trials") or []:
        started, finished = rfc3339_seconds(trial.get("startedAt")), rfc3339_seconds(trial.get("finishedAt"))
        rows.append({
            **{k: trial.get(k) for k in ("name", "tritonVersion", "variants", "pod", "node", "phase", "reason",
                                         "message", "pointsDone", "pointsTotal", "startedAt", "finishedAt")},
            "start_after_apply_s": None if started is None else started - applied_epoch,
            "finish_after_apply_s": None if finished is None else finished - applied_epoch,
            "duration_s": None if started is None or finished is None else finished - started,
        })  # fmt: skip
    return rows


def no_triton_pods(cluster: Cluster, timeout_s: float = 180) -> None:
    """Wait until the namespace holds no Triton pod (those of a deleted analysis are gone)."""
    core = client.CoreV1Api(cluster.api_client())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(NAMESPACE, label_selector="app.kubernetes.io/component=triton-server")
        if not pods.items:
            return
        time.sleep(0.5)
    log(f"Triton pods still present after {timeout_s:.0f} s; going on")


def run_analysis(cluster: Cluster, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    api = cluster.api_client()
    custom = client.CustomObjectsApi(api)
    name = body["metadata"]["name"]
    pods = PodWatch(api, NAMESPACE)
    pods.start()
    load_before = load_now()
    applied_epoch, applied = time.time(), time.monotonic()
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    done = wait_finished(custom, NAMESPACE, [name], timeout_s=timeout_s)
    pods.stop()
    wall = done[name]["seen_monotonic"] - applied if name in done else None
    obj = cast(dict[str, Any], custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name))
    status = obj.get("status") or {}
    trials = trial_rows(status, applied_epoch)
    spans = [
        (t["start_after_apply_s"], t["finish_after_apply_s"])
        for t in trials
        if t["start_after_apply_s"] is not None and t["finish_after_apply_s"] is not None
    ]
    points = status.get("points") or []
    started, finished = rfc3339_seconds(status.get("startedAt")), rfc3339_seconds(status.get("finishedAt"))
    return {
        "name": name,
        "wall_s": wall,
        "timed_out": name not in done,
        "phase": status.get("phase"),
        "message": status.get("message"),
        "startedAt": status.get("startedAt"),
        "finishedAt": status.get("finishedAt"),
        "status_wall_s": None if started is None or finished is None else finished - started,
        "apply_to_started_s": None if started is None else started - applied_epoch,
        "trials": trials,
        "nodes_used": sorted({t["node"] for t in trials if t.get("node")}),
        "max_trials_overlap": max_overlap(spans) if spans else None,
        "max_triton_pods": pods.max_running,
        "triton_pods_seen": len(pods.first_seen),
        "points_measured": sum(1 for p in points if p.get("status") == "Measured"),
        "points_failed": sum(1 for p in points if p.get("status") not in (None, "Measured")),
        "points_total": status.get("pointsTotal"),
        "load_before": load_before,
        "load_after": load_now(),
    }


def other_clusters() -> list[int]:
    """Pids of kube-apiservers already running on this machine (another session's test cluster)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:
            continue
        if Path(argv0.decode(errors="replace")).name == "kube-apiserver":
            pids.append(int(entry.name))
    return sorted(pids)


def require_machine_to_itself() -> None:
    pids = other_clusters()
    if pids:
        raise SystemExit(
            f"scale_out: another test cluster is running on this machine (kube-apiserver pid "
            f"{', '.join(map(str, pids))}): its pods would share this machine's two cores with the bench's, "
            "and the timings would mean nothing; run the bench once it has ended."
        )


def run_k(k: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """A fresh cluster of k GPU nodes; the chart; then --repeats analyses one after another."""
    require_machine_to_itself()
    runs = []
    log(f"k = {k}: test cluster with {k} GPU nodes")
    with running_cluster(log=log, nodes=several_nodes(k)) as cluster:
        nodes = ready_nodes(cluster, k)
        log(f"k = {k}: nodes Ready: {', '.join(n['name'] for n in nodes)}")
        helm_args = ["--set", f"maxTritonPods={k}"] if k > CHART_MAX_TRITON_PODS else []
        install_operator(cluster, *helm_args)
        crd = json.loads(kubectl(cluster, "get", "crd", f"{PLURAL}.{GROUP}", "-o", "json"))
        require_parallel_trials(crd, "installed in the cluster")
        model_volume(cluster, NAMESPACE, MODELS)
        for repeat in range(args.repeats):
            body = manifest(f"scale-k{k}-r{repeat}", args.trials, k, args.measurement_interval)
            dry_run(cluster, body)
            log(f"k = {k}, repeat {repeat}: {args.trials} trials, maxTrials {k}")
            run: dict[str, Any] = {"k": k, "repeat": repeat, "nodes": nodes, "helm_args": helm_args}
            run.update(run_analysis(cluster, body, args.timeout))
            log(
                f"k = {k}, repeat {repeat}: {run['phase']} in {run['wall_s'] and round(run['wall_s'], 1)} s, "
                f"{run['max_trials_overlap']} trials at once on {run['nodes_used']}, "
                f"{run['points_measured']}/{run['points_total']} points"
            )
            runs.append(run)
            if repeat + 1 < args.repeats:
                kubectl(cluster, "delete", PLURAL, body["metadata"]["name"], "-n", NAMESPACE, "--wait=true")
                no_triton_pods(cluster)
    return runs


# ---------------------------------------------------------------- summary


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    by_k: dict[int, list[dict[str, Any]]] = {}
    for run in runs:
        by_k.setdefault(run["k"], []).append(run)
    t1 = median([r["wall_s"] for r in by_k.get(1, []) if r["phase"] == "Succeeded"])
    per_k = {}
    for k, k_runs in sorted(by_k.items()):
        tk = median([r["wall_s"] for r in k_runs if r["phase"] == "Succeeded"])
        vs_one = ratio(tk, t1)
        per_k[str(k)] = {
            "wall_s": [r["wall_s"] for r in k_runs],
            "phases": [r["phase"] for r in k_runs],
            "median_wall_s": tk,
            "vs_one_node": vs_one,
            "target": TARGET_FACTOR / k,
            "met": None if vs_one is None else vs_one <= TARGET_FACTOR / k,
            "max_trials_overlap": [r["max_trials_overlap"] for r in k_runs],
            "max_triton_pods": [r["max_triton_pods"] for r in k_runs],
            "nodes_used": [len(r["nodes_used"]) for r in k_runs],
            "points_measured": [r["points_measured"] for r in k_runs],
            "points_total": [r["points_total"] for r in k_runs],
        }
    return {"one_node_median_wall_s": t1, "per_k": per_k}


def listed(values: list[Any]) -> str:
    return ", ".join("-" if v is None else str(v) for v in values)


def markdown(result: dict[str, Any], json_name: str = DEFAULT_OUT.name) -> str:
    s, machine = result["summary"], result["machine"]
    lines = [
        "# Scale-out of parallel trials: wall time against GPU nodes",
        "",
        f"{result['date']}, {machine['nproc']} cores, load average {listed(machine['load_before'])} before, "
        f"{listed(machine.get('load_after', []))} after. One ModelAnalysis per run: `{MODEL}` (sleeps "
        f"20 ms per batch), batch 1 x concurrency 1,2, {result['trials']} Triton versions as trials (all the same "
        f"local tritonserver on the test cluster), maxTrials = k, {result['measurement_interval_ms']} ms windows; "
        "a fresh test cluster per k.",
        "",
        "| k | wall (s), per repeat | median (s) | t_k / t_1 | target | met | trials at once | Triton pods at once "
        "| nodes used | points |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k, row in s["per_k"].items():
        walls = ", ".join("-" if w is None else f"{w:.1f}" for w in row["wall_s"])
        vs = "-" if row["vs_one_node"] is None else f"{row['vs_one_node']:.2f}"
        met = {True: "yes", False: "**no**", None: "-"}[row["met"]]
        med = "-" if row["median_wall_s"] is None else f"{row['median_wall_s']:.1f}"
        points = ", ".join(f"{m}/{t}" for m, t in zip(row["points_measured"], row["points_total"], strict=True))
        lines.append(
            f"| {k} | {walls} | {med} | {vs} | <= {row['target']:.3f} | {met} | {listed(row['max_trials_overlap'])} "
            f"| {listed(row['max_triton_pods'])} | {listed(row['nodes_used'])} | {points} |"
        )
    failed = [r for r in result["runs"] if r["phase"] != "Succeeded"]
    lines += [""] + [f"- k = {r['k']}, repeat {r['repeat']}: {r['phase']}: {r['message']}" for r in failed]
    lines += ["", f"Full figures, each trial's node and times: `bench/results/{json_name}`.", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", default="1,2,4", help="GPU node counts k, one fresh cluster each (1 first)")
    parser.add_argument("--trials", type=int, default=4, help="Triton versions, so trials, in the analysis")
    parser.add_argument("--repeats", type=int, default=1, help="analyses per k, one after another")
    parser.add_argument("--measurement-interval", type=int, default=250, help="measurementIntervalMs")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one analysis may take")
    parser.add_argument("--render", action="store_true", help="print the manifest (k = 2) and the CRD check; no run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON (a .md beside it)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ks = sorted({int(k) for k in args.nodes.split(",")})
    if args.render:
        print(yaml.safe_dump(manifest("scale-k2-r0", args.trials, 2, args.measurement_interval), sort_keys=False))
        missing = missing_fields(yaml.safe_load(CRD_FILE.read_text()))
        print(f"# {CRD_FILE.relative_to(REPO)}: " + (f"lacks {', '.join(missing)}" if missing else "has every field"))
        return 0
    # Before any cluster starts: the chart's CRD, which helm installs, must have the fields (checked again
    # on the API server once installed).
    require_parallel_trials(yaml.safe_load(CRD_FILE.read_text()), f"in {CRD_FILE.relative_to(REPO)}")
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "nproc": os.cpu_count(),
            "modelanalysis": __version__,
            "load_before": load_now(),
            "git": git_facts(),
            # The operator and perf_analyzer pods: this checkout's image under podman, else the venv.
            "project_image": dict(zip(("image", "why"), find_project_image(), strict=True)),
        },
        "model": MODEL,
        "trials": args.trials,
        "versions": triton_versions(args.trials),
        "measurement_interval_ms": args.measurement_interval,
        "repeats": args.repeats,
        "target": f"t_k / t_1 <= {TARGET_FACTOR} / k",
        "runs": [],
    }
    for k in ks:
        result["runs"] += run_k(k, args)
        result["summary"] = summarize(result["runs"])
        result["machine"]["load_after"] = load_now()
        write(result, args.out)  # after each k, so a later failure keeps what was measured
    for k, row in result["summary"]["per_k"].items():
        log(f"k = {k}: median {row['median_wall_s']} s, t_k / t_1 {row['vs_one_node']} (target <= {row['target']})")
    return 0 if all(r["phase"] == "Succeeded" for r in result["runs"]) else 1


def write(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rounded(result, 3), indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result, out.name))
    log(f"wrote {out} and {out.with_suffix('.md').name}")


if __name__ == "__main__":
    raise SystemExit(main())
