"""Benchmark: a fleet of small analyses from several namespaces applied at once, with the operator killed once.

The issue's words: "Scale, measured. A benchmark on the test cluster: 100 GPU nodes registered, 1,000 small
analyses from 10 namespaces applied at once (one namespace holding half), `maxTritonPods` 8: every analysis has a
status within 2 s of apply (p99 stated), the small namespaces' analyses start within their fair share (stated as a
ratio), the operator's peak RSS and its API request rate, and nothing lost or run twice with the operator killed
once mid-way."

A fresh test cluster (tests/cluster) registers --nodes GPU nodes of one `nvidia.com/gpu` each (the last tainted, so
the analyses tolerate the taint), the chart is installed with maxTritonPods = --max-triton-pods, and every
namespace gets its claim `models` on bench/models first. Then --analyses small ModelAnalyses (model `sleep_20ms`,
batch 1 x concurrency 1, short windows, no baseline: one Triton pod and one perf_analyzer Job each) are created as
fast as the API server takes them: `fleet-0` holds half of them and is applied first, then the other namespaces in
turn, the worst order for fairness (the big namespace is in the queue first). Watches started before the first
create record everything; the operator is SIGKILLed once, when --kill-at of the analyses have finished.

Recorded (reported, never asserted: this is a benchmark):

  time to status   client clock just after each create returns -> the first watch event whose object has a
                   status.phase: p50, p99, max, how many over 2 s
  fair share       each analysis's start (the first watch event with a phase past Pending/Queued). (a) over the
                   window in which every namespace had an analysis waiting, each namespace's share of the starts
                   / (1 / namespaces); (b) over all starts until the big namespace's last one, each start counted
                   against 1 / (namespaces waiting at that moment): started / owed. And each small namespace's
                   first start after its first create, in seconds and in starts that went to others meanwhile.
  operator RSS     VmRSS and VmHWM of every process running `kopf run ... modelanalysis.kube.handlers` (the
                   operator pod runs as a local process), sampled every 0.5 s, per process (before / after the kill)
  API requests     the API server's apiserver_request_total before and after, per resource / subresource / verb,
                   as requests/s over the run (every client: the operator, the node agent, the controller
                   manager, the scheduler and this bench), and apiserver_flowcontrol_dispatched_requests_total
                   per flow schema: `service-accounts` holds the requests made with a service account's token
                   outside kube-system, which here is the operator alone (every other client uses the admin cert)
  kill             when, which pid, and when a new operator process appeared
  lost / twice     final phase of every analysis, measured points against pointsTotal; distinct Triton pods (by
                   uid) per analysis, distinct load-generator Jobs (by uid) per Job name and pods per Job, from
                   watches that saw every one of them
  also             wall time, the most Triton pods alive at once, CPU busy share of the machine, load average

    .venv/bin/python bench/fleet_scale.py                                 # the issue's size: 100 nodes, 1000
    .venv/bin/python bench/fleet_scale.py --analyses 120                  # what fits a 2-core machine
    .venv/bin/python bench/fleet_scale.py --analyses 20 --nodes 10 --out /tmp/smoke.json   # smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from modelanalysis import __version__
from modelanalysis.kube.names import COMPONENT_LOAD_GENERATOR, COMPONENT_TRITON, LABEL_ANALYSIS, LABEL_COMPONENT
from modelanalysis.kube.resource import API_VERSION, GROUP, KIND, PLURAL, VERSION

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from common import git_facts, log, rounded  # noqa: E402
from operator_vs_perf_analyzer import OPERATOR_NS, install_operator, kubectl, model_volume  # noqa: E402
from scale_out import other_clusters, ready_nodes  # noqa: E402
from tests.cluster.controlplane import Cluster, running_cluster  # noqa: E402
from tests.cluster.node_agent import GPU_TAINT, find_project_image, several_nodes  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "fleet-scale.json"
MODELS = REPO / "bench" / "models"
MODEL = "sleep_20ms"
STATUS_TARGET_S = 2.0
NOT_STARTED = {"", "Pending", "Queued"}
FINISHED = {"Succeeded", "Failed"}
# The resources only the operator writes or reads here, as the API server's metrics name them (`resource` or
# `resource/subresource`); the others named in the report are shared with the test cluster's own components.
OPERATOR_RESOURCES = (
    "modelanalyses",
    "modelanalyses/status",
    "jobs",
    "configmaps",
    "events",
    "persistentvolumeclaims",
    "leases",
)
WAIT_FOR_OTHER_CLUSTER_S = 15 * 60


# ---------------------------------------------------------------- the fleet


def namespace_sizes(analyses: int, namespaces: int) -> list[int]:
    """fleet-0 holds half (rounded down when odd), the rest split as evenly as they go over the others."""
    if namespaces == 1:
        return [analyses]
    big = analyses // 2
    rest = analyses - big
    small = [rest // (namespaces - 1) + (1 if i < rest % (namespaces - 1) else 0) for i in range(namespaces - 1)]
    return [big, *small]


def manifest(name: str, namespace: str, interval_ms: int) -> dict[str, Any]:
    """One small analysis: one point (batch 1, concurrency 1), short windows, no baseline."""
    toleration = {"key": GPU_TAINT["key"], "operator": "Exists", "effect": GPU_TAINT["effect"]}
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "models": [{"name": MODEL}],
            "batchSizes": [1],
            "concurrency": [1],
            "measurement": {
                "measurementIntervalMs": interval_ms,
                "maxWindows": 6,
                "maxPointSeconds": 10,
                "baselineDurationMs": 0,
            },
            "modelRepository": {"pvc": {"claimName": "models"}},
            "triton": {"tolerations": [toleration]},
        },
    }


# ---------------------------------------------------------------- watches


def follow(
    name: str,
    list_fn: Callable[..., Any],
    on_event: Callable[[str, dict[str, Any], float], None],
    stop: threading.Event,
    restarts: Counter[str],
    **kwargs: Any,
) -> None:
    """List, then watch from that resourceVersion, as plain JSON (no model classes: cheaper on 2 cores); relist on
    any error (410 Gone). Every listed object is passed on as ADDED, so handlers must take an object twice."""
    while not stop.is_set():
        try:
            response = list_fn(_preload_content=False, **kwargs)
            listing = json.loads(response.data)
            seen = time.time()
            for item in listing.get("items", []):
                on_event("ADDED", item, seen)
            version = listing["metadata"]["resourceVersion"]
            while not stop.is_set():
                stream = watch.Watch().stream(
                    list_fn,
                    resource_version=version,
                    timeout_seconds=60,
                    allow_watch_bookmarks=True,
                    deserialize=False,
                    **kwargs,
                )
                for event in stream:
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        raise RuntimeError(f"watch error: {obj}")
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event["type"] != "BOOKMARK":
                        on_event(event["type"], obj, time.time())
                    if stop.is_set():
                        break
        except Exception as error:  # a watch that ends for any reason: list again
            if stop.is_set():
                return
            restarts[name] += 1
            log(f"{name} watch restarts after: {str(error)[:200]}")
            stop.wait(0.5)


class Record:
    """What the watches saw, shared between their threads and the main one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # analyses, by namespace/name
        self.first_status: dict[str, float] = {}
        self.first_phase: dict[str, str] = {}
        self.started: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self.phase: dict[str, str] = {}
        self.transitions: dict[str, list[tuple[float, str]]] = {}
        self.status_events: Counter[str] = Counter()
        self.requeued: set[str] = set()  # went back to Pending/Queued after it had started
        # pods and Jobs, by uid
        self.triton_pods: dict[str, dict[str, Any]] = {}
        self.triton_alive: set[str] = set()
        self.max_triton_alive = 0
        self.max_triton_alive_at: float | None = None
        self.triton_timeline: list[tuple[float, int, list[str]]] = []  # (when, how many alive, which)
        self.loadgen_pods: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.restarts: Counter[str] = Counter()

    def analysis(self, kind: str, obj: dict[str, Any], at: float) -> None:
        meta, status = obj.get("metadata") or {}, obj.get("status") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        phase = status.get("phase") or ""
        if kind == "DELETED":
            return
        with self.lock:
            if phase and key not in self.first_status:
                self.first_status[key], self.first_phase[key] = at, phase
            if phase:
                self.status_events[key] += 1
            if phase != self.phase.get(key, ""):
                self.transitions.setdefault(key, []).append((at, phase))
                if phase in NOT_STARTED and key in self.started:
                    self.requeued.add(key)
            self.phase[key] = phase
            if phase not in NOT_STARTED and key not in self.started:
                self.started[key] = at
            if phase in FINISHED and key not in self.finished:
                self.finished[key] = at

    def pod(self, kind: str, obj: dict[str, Any], at: float) -> None:
        meta, status = obj.get("metadata") or {}, obj.get("status") or {}
        labels = meta.get("labels") or {}
        uid = meta.get("uid")
        component = labels.get(LABEL_COMPONENT)
        entry = {
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "first_seen": at,
            "analysis": labels.get(LABEL_ANALYSIS),
            "owners": [o.get("uid") for o in meta.get("ownerReferences") or []],
        }
        with self.lock:
            if component == COMPONENT_TRITON:
                self.triton_pods.setdefault(uid, entry)
                alive = kind != "DELETED" and not meta.get("deletionTimestamp") and status.get("phase") not in FINISHED
                before = len(self.triton_alive)
                (self.triton_alive.add if alive else self.triton_alive.discard)(uid)
                if len(self.triton_alive) != before:
                    self.triton_timeline.append(
                        (
                            at,
                            len(self.triton_alive),
                            sorted(
                                f"{self.triton_pods[u]['namespace']}/{self.triton_pods[u]['name']}"
                                for u in self.triton_alive
                            ),
                        )
                    )
                if len(self.triton_alive) > self.max_triton_alive:
                    self.max_triton_alive, self.max_triton_alive_at = len(self.triton_alive), at
            elif component == COMPONENT_LOAD_GENERATOR:
                self.loadgen_pods.setdefault(uid, entry)

    def job(self, kind: str, obj: dict[str, Any], at: float) -> None:
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        if labels.get(LABEL_COMPONENT) != COMPONENT_LOAD_GENERATOR:
            return
        with self.lock:
            self.jobs.setdefault(
                meta.get("uid"),
                {
                    "namespace": meta.get("namespace"),
                    "name": meta.get("name"),
                    "analysis": labels.get(LABEL_ANALYSIS),
                    "first_seen": at,
                },
            )


# ---------------------------------------------------------------- the operator process


def scan(port: int) -> tuple[list[int], list[int]]:
    """(this cluster's operator processes, other clusters' kube-apiservers), from /proc.

    An operator process runs `kopf run ... modelanalysis.kube.handlers` (a script: python, then kopf) with the
    in-cluster address of this cluster's API server (KUBERNETES_SERVICE_PORT, set by the node agent): another
    session's test cluster on this machine runs operators too, and they are neither sampled nor killed."""
    operators, apiservers = [], []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
            if argv and Path(argv[0]).name == "kube-apiserver" and f"--secure-port={port}" not in argv:
                apiservers.append(int(entry.name))
            elif (
                any(Path(a).name == "kopf" for a in argv[:2])
                and "run" in argv
                and "modelanalysis.kube.handlers" in argv
            ):
                environ = (entry / "environ").read_bytes().split(b"\0")
                if f"KUBERNETES_SERVICE_PORT={port}".encode() in environ:
                    operators.append(int(entry.name))
        except OSError:
            continue
    return sorted(operators), sorted(apiservers)


def operator_pids(port: int) -> list[int]:
    return scan(port)[0]


def memory_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) in MB, or None when the process is gone."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return None


class Sampler:
    """Every 0.5 s: the operator processes' memory, and any other test cluster running on this machine meanwhile."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.processes: dict[int, dict[str, Any]] = {}
        self.other_clusters: dict[int, dict[str, float]] = {}  # kube-apiservers of other test clusters: when seen
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sampler")

    def _run(self) -> None:
        while not self.stop.is_set():
            now = time.time()
            operators, apiservers = scan(self.port)
            with self.lock:
                for pid in apiservers:
                    self.other_clusters.setdefault(pid, {"first_seen": now})["last_seen"] = now
            for pid in operators:
                mem = memory_mb(pid)
                if mem is None:
                    continue
                with self.lock:
                    row = self.processes.setdefault(
                        pid, {"pid": pid, "first_seen": now, "peak_rss_mb": 0.0, "vm_hwm_mb": 0.0, "samples": 0}
                    )
                    row["last_seen"] = now
                    row["peak_rss_mb"] = max(row["peak_rss_mb"], mem[0])
                    row["vm_hwm_mb"] = max(row["vm_hwm_mb"], mem[1])
                    row["samples"] += 1
            self.stop.wait(0.5)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.stop.set()
        self._thread.join(5)


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


# ---------------------------------------------------------------- API server metrics

SAMPLE = re.compile(r"^(\w+)\{(.*)\}\s+([0-9.eE+-]+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def api_metrics(cluster: Cluster) -> dict[str, Any]:
    """The counters this bench reads from the API server's /metrics, with the time they were read."""
    text = kubectl(cluster, "get", "--raw", "/metrics")
    at = time.time()
    requests: Counter[tuple[str, str, str, str]] = Counter()  # (resource[/subresource], verb, code, group)
    flows: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    for line in text.splitlines():
        if not line.startswith(("apiserver_request_total{", "apiserver_flowcontrol_")):
            continue
        match = SAMPLE.match(line)
        if not match:
            continue
        metric, labels, value = match.group(1), dict(LABEL.findall(match.group(2))), float(match.group(3))
        if metric == "apiserver_request_total":
            resource = labels.get("resource", "") + (f"/{labels['subresource']}" if labels.get("subresource") else "")
            requests[(resource, labels.get("verb", ""), labels.get("code", ""), labels.get("group", ""))] += value
        elif metric == "apiserver_flowcontrol_dispatched_requests_total":
            flows[labels.get("flow_schema", "")] += value
        elif metric == "apiserver_flowcontrol_rejected_requests_total":
            rejected[labels.get("flow_schema", "")] += value
    return {"at": at, "requests": requests, "flows": flows, "rejected": rejected}


def request_rates(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Requests/s between two readings, per resource, per resource and verb, per flow schema; codes 429 and 5xx."""
    seconds = after["at"] - before["at"]
    delta = after["requests"] - before["requests"]  # Counter subtraction keeps the positive counts
    by_resource: Counter[str] = Counter()
    by_verb: dict[str, Counter[str]] = {}
    errors: Counter[str] = Counter()
    for (resource, verb, code, _group), count in delta.items():
        by_resource[resource] += count
        by_verb.setdefault(resource, Counter())[verb] += count
        if code == "429" or code.startswith("5"):
            errors[f"{resource} {verb} {code}"] += count
    total = sum(by_resource.values())
    flows = after["flows"] - before["flows"]
    return {
        "seconds": seconds,
        "total_per_s": total / seconds if seconds else None,
        "per_resource_per_s": {r: c / seconds for r, c in by_resource.most_common()},
        "per_resource_verb_per_s": {
            r: {v: c / seconds for v, c in verbs.most_common()} for r, verbs in sorted(by_verb.items())
        },
        "operator_resources_per_s": {r: by_resource.get(r, 0) / seconds for r in OPERATOR_RESOURCES},
        "pods_per_s": sum(c for r, c in by_resource.items() if r == "pods" or r.startswith("pods/")) / seconds,
        "per_flow_schema_per_s": {f: c / seconds for f, c in flows.most_common()},
        "operator_per_s": flows.get("service-accounts", 0) / seconds if seconds else None,
        "rejected": dict(after["rejected"] - before["rejected"]),
        "errors_429_5xx": dict(errors),
    }


# ---------------------------------------------------------------- figures


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile, nearest rank (p99 of 100 values is the 99th smallest)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def waiting_counts(created: dict[str, float], started: dict[str, float]) -> list[tuple[float, str, int]]:
    """Every create (+1) and start (-1) in time order, as (time, namespace, step); a create sorts before a start
    at the same instant."""
    events = [(t, key.split("/", 1)[0], 1) for key, t in created.items()]
    events += [(t, key.split("/", 1)[0], -1) for key, t in started.items()]
    return sorted(events, key=lambda e: (e[0], -e[2]))


def fairness(created: dict[str, float], started: dict[str, float], namespaces: list[str]) -> dict[str, Any]:
    """(a) shares of the starts while every namespace had one waiting, over 1/N; (b) starts over the share owed
    at each start (1 / namespaces waiting then), until the big namespace's last start; first starts."""
    big = namespaces[0]
    waiting: Counter[str] = Counter()
    window_start = window_end = None
    window_starts: Counter[str] = Counter()
    owed: Counter[str] = Counter()
    got: Counter[str] = Counter()
    behind: dict[str, float] = dict.fromkeys(namespaces, 0.0)  # the most starts a namespace was ever short of owed
    big_last_start = max((t for k, t in started.items() if k.startswith(f"{big}/")), default=None)
    for at, namespace, step in waiting_counts(created, started):
        if step < 0:
            holders = [ns for ns in namespaces if waiting[ns] > 0]
            if window_start is not None and window_end is None:
                window_starts[namespace] += 1
            if big_last_start is not None and at <= big_last_start and holders:
                for ns in holders:
                    owed[ns] += 1 / len(holders)
                got[namespace] += 1
                for ns in holders:
                    behind[ns] = max(behind[ns], owed[ns] - got[ns])
        waiting[namespace] += step
        if window_start is None and all(waiting[ns] > 0 for ns in namespaces):
            window_start = at
        elif window_start is not None and window_end is None and step < 0 and waiting[namespace] == 0:
            window_end = at
    in_window = sum(window_starts.values())
    n = len(namespaces)
    share_ratio = {ns: (window_starts[ns] / in_window) / (1 / n) if in_window else None for ns in namespaces}
    owed_ratio = {ns: got[ns] / owed[ns] if owed[ns] else None for ns in namespaces}
    first = {}
    all_starts = sorted(started.items(), key=lambda kv: kv[1])
    for ns in namespaces[1:]:
        first_create = min((t for k, t in created.items() if k.startswith(f"{ns}/")), default=None)
        first_start = min((t for k, t in started.items() if k.startswith(f"{ns}/")), default=None)
        if first_create is None or first_start is None:
            first[ns] = None
            continue
        others = sum(1 for k, t in all_starts if first_create < t < first_start and not k.startswith(f"{ns}/"))
        first[ns] = {"after_its_first_create_s": first_start - first_create, "starts_by_others_meanwhile": others}
    small = namespaces[1:]

    def lowest(ratios: dict[str, float | None]) -> float | None:
        values = [ratios[ns] for ns in small if ratios[ns] is not None]
        return min(values) if values else None

    return {
        "a_all_waiting": {
            "window_s": None if window_start is None or window_end is None else window_end - window_start,
            "window_from_first_create_s": None if window_start is None else window_start - min(created.values()),
            "starts_in_window": in_window,
            "starts": dict(window_starts),
            "share_over_fair": share_ratio,
            "min_small_namespace": lowest(share_ratio),
        },
        "b_owed_until_big_done": {
            "starts": dict(got),
            "owed": dict(owed),
            "started_over_owed": owed_ratio,
            "most_starts_behind": behind,
            "most_starts_behind_small_namespace": max((behind[ns] for ns in namespaces[1:]), default=None),
            "min_small_namespace": lowest(owed_ratio),
        },
        "first_start_of_small_namespaces": first,
    }


def triton_counts(record: Record, keys: list[str]) -> dict[str, Any]:
    per: Counter[str] = Counter()
    for pod in record.triton_pods.values():
        per[f"{pod['namespace']}/{pod['analysis']}"] += 1
    twice = {k: per[k] for k in keys if per[k] > 1}
    none = [k for k in keys if per[k] == 0]
    return {
        "pods": len(record.triton_pods),
        "analyses_with_more_than_one": twice,
        "analyses_with_none": none,
        "per_analysis": dict(Counter(per[k] for k in keys)),
    }


def job_counts(record: Record) -> dict[str, Any]:
    by_name: Counter[str] = Counter(f"{j['namespace']}/{j['name']}" for j in record.jobs.values())
    pods_per_job: Counter[str] = Counter()
    for pod in record.loadgen_pods.values():
        for owner in pod["owners"]:
            if owner in record.jobs:
                pods_per_job[owner] += 1
    orphans = [p["name"] for p in record.loadgen_pods.values() if not any(o in record.jobs for o in p["owners"])]
    return {
        "jobs": len(record.jobs),
        "names": len(by_name),
        "job_names_created_more_than_once": {n: c for n, c in by_name.items() if c > 1},
        "pods": len(record.loadgen_pods),
        "pods_per_job": dict(Counter(pods_per_job[uid] for uid in record.jobs)),
        "jobs_with_more_than_one_pod": {
            f"{record.jobs[u]['namespace']}/{record.jobs[u]['name']}": c for u, c in pods_per_job.items() if c > 1
        },
        "pods_of_no_seen_job": orphans,
    }


# ---------------------------------------------------------------- one run


def wait_for_machine() -> None:
    """Another test cluster on this machine would share its two cores: wait (up to 15 min) for it to end."""
    deadline = time.monotonic() + WAIT_FOR_OTHER_CLUSTER_S
    while pids := other_clusters():
        if time.monotonic() > deadline:
            raise SystemExit(
                f"fleet_scale: another test cluster (kube-apiserver pid {pids}) is still running after "
                f"{WAIT_FOR_OTHER_CLUSTER_S // 60} min; run the bench once it has ended."
            )
        log(f"another test cluster is running (kube-apiserver pid {', '.join(map(str, pids))}); waiting")
        time.sleep(30)


def operator_pods(cluster: Cluster) -> list[dict[str, Any]]:
    pods = json.loads(kubectl(cluster, "get", "pods", "-n", OPERATOR_NS, "-o", "json"))["items"]
    return [
        {
            "name": p["metadata"]["name"],
            "phase": p["status"].get("phase"),
            "restarts": sum(c.get("restartCount", 0) for c in p["status"].get("containerStatuses") or []),
        }
        for p in pods
    ]


def kill_operator(sampler: Sampler) -> dict[str, Any]:
    """SIGKILL the operator's process(es); wait (up to 120 s) for a new one."""
    pids = operator_pids(sampler.port)
    at = time.time()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    log(f"operator killed (pid {', '.join(map(str, pids)) or 'none found'})")
    new_pid, seen_at = None, None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and new_pid is None:
        fresh = [p for p in operator_pids(sampler.port) if p not in pids]
        if fresh:
            new_pid, seen_at = fresh[0], time.time()
        else:
            time.sleep(0.2)
    log(f"new operator process: {new_pid}" + ("" if seen_at is None else f", {seen_at - at:.1f} s after the kill"))
    with sampler.lock:
        before = {pid: dict(sampler.processes.get(pid, {})) for pid in pids}
    return {
        "at": at,
        "killed_pids": pids,
        "killed_memory": before,
        "new_pid": new_pid,
        "new_process_after_s": None if seen_at is None else seen_at - at,
    }


def run_fleet(cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    namespaces = [f"fleet-{i}" for i in range(args.namespaces)]
    sizes = namespace_sizes(args.analyses, args.namespaces)
    for ns in namespaces:
        model_volume(cluster, ns, MODELS)
    log(f"namespaces {', '.join(f'{ns}: {n}' for ns, n in zip(namespaces, sizes, strict=True))}")
    bodies = [
        manifest(f"a-{j:04d}", ns, args.measurement_interval)
        for ns, n in zip(namespaces, sizes, strict=True)
        for j in range(n)
    ]
    kubectl(cluster, "apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=json.dumps(bodies[0]))
    keys = [f"{b['metadata']['namespace']}/{b['metadata']['name']}" for b in bodies]

    api = cluster.api_client()
    custom, core, batch = client.CustomObjectsApi(api), client.CoreV1Api(api), client.BatchV1Api(api)
    record, stop = Record(), threading.Event()
    selector = f"{LABEL_COMPONENT} in ({COMPONENT_TRITON},{COMPONENT_LOAD_GENERATOR})"
    watches = [
        threading.Thread(
            target=follow,
            daemon=True,
            args=("analyses", custom.list_cluster_custom_object, record.analysis, stop, record.restarts),
            kwargs={"group": GROUP, "version": VERSION, "plural": PLURAL},
        ),
        threading.Thread(
            target=follow,
            daemon=True,
            args=("pods", core.list_pod_for_all_namespaces, record.pod, stop, record.restarts),
            kwargs={"label_selector": selector},
        ),
        threading.Thread(
            target=follow,
            daemon=True,
            args=("jobs", batch.list_job_for_all_namespaces, record.job, stop, record.restarts),
            kwargs={"label_selector": f"{LABEL_COMPONENT}={COMPONENT_LOAD_GENERATOR}"},
        ),
    ]
    for thread in watches:
        thread.start()
    port = int(cluster.server.rsplit(":", 1)[1])
    sampler = Sampler(port)
    sampler.start()
    time.sleep(2)  # the watches connect, the sampler sees the operator
    first_operator = operator_pids(port)
    metrics_before = api_metrics(cluster)
    cpu_before, load_before = cpu_times(), [round(v, 2) for v in os.getloadavg()]

    sent: dict[str, float] = {}
    created: dict[str, float] = {}
    create_errors: list[str] = []
    create_api = client.CustomObjectsApi(cluster.api_client())

    def create(body: dict[str, Any]) -> None:
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        sent[f"{ns}/{name}"] = time.time()
        try:
            create_api.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
        except client.ApiException as error:
            create_errors.append(f"{ns}/{name}: {error.status} {error.reason}")
            return
        created[f"{ns}/{name}"] = time.time()

    log(f"applying {len(bodies)} analyses ({args.create_threads} threads, fleet-0 first)")
    applied_at = time.time()
    with ThreadPoolExecutor(args.create_threads) as pool:
        list(pool.map(create, bodies))  # in order: the big namespace's first
    applied_all_at = time.time()
    log(f"applied in {applied_all_at - applied_at:.1f} s ({len(create_errors)} refused)")

    kill: dict[str, Any] | None = None
    metrics_at_kill = None
    kill_after = math.ceil(args.kill_at * len(created)) if args.kill_at > 0 else None
    deadline = time.monotonic() + args.timeout
    last_log = 0.0
    while time.monotonic() < deadline:
        with record.lock:
            done = sum(1 for k in created if k in record.finished)
            have_status = sum(1 for k in created if k in record.first_status)
            started = sum(1 for k in created if k in record.started)
        if kill is None and kill_after is not None and done >= kill_after:
            metrics_at_kill = api_metrics(cluster)
            kill = kill_operator(sampler)
        if done >= len(created):
            break
        if time.monotonic() - last_log > 30:
            last_log = time.monotonic()
            log(
                f"{have_status} with a status, {started} started, {done} finished of {len(created)}; "
                f"Triton pods alive {len(record.triton_alive)}, load {os.getloadavg()[0]:.1f}"
            )
        time.sleep(0.5)
    finished_at = time.time()
    metrics_after = api_metrics(cluster)
    cpu_after, load_after = cpu_times(), [round(v, 2) for v in os.getloadavg()]
    time.sleep(3)  # the last pod and Job events
    stop.set()
    sampler.close()

    items = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
    final = {f"{i['metadata']['namespace']}/{i['metadata']['name']}": i.get("status") or {} for i in items}
    phases = Counter(final.get(k, {}).get("phase") or "none" for k in keys)
    incomplete = {}
    for key in keys:
        status = final.get(key, {})
        measured = sum(1 for p in status.get("points") or [] if p.get("status") == "Measured")
        if status.get("phase") != "Succeeded" or measured != status.get("pointsTotal"):
            incomplete[key] = {
                "phase": status.get("phase"),
                "message": status.get("message"),
                "measured": measured,
                "pointsTotal": status.get("pointsTotal"),
            }
    with record.lock:
        to_status = {k: record.first_status[k] - created[k] for k in created if k in record.first_status}
        first_phases = Counter(record.first_phase.values())
        starts = {k: record.started[k] for k in created if k in record.started}
        finishes = {k: record.finished[k] for k in created if k in record.finished}
        requeued = sorted(record.requeued)
        status_events = [record.status_events[k] for k in created]
        triton, jobs = triton_counts(record, keys), job_counts(record)
        max_alive, max_alive_at = record.max_triton_alive, record.max_triton_alive_at
        over_cap = [(at - applied_at, n, alive) for at, n, alive in record.triton_timeline if n > args.max_triton_pods]
        around_kill = None
        if kill is not None:
            alive_then = next((alive for at, _, alive in reversed(record.triton_timeline) if at <= kill["at"]), [])
            around_kill = {
                "alive_at_kill": alive_then,
                "created_within_30s_after": sorted(
                    (p["first_seen"] - applied_at, f"{p['namespace']}/{p['name']}")
                    for p in record.triton_pods.values()
                    if kill["at"] < p["first_seen"] <= kill["at"] + 30
                ),
            }
        over_cap_s, spans = 0.0, []  # how long, in all, more Triton pods were alive than the cap; each such span
        timeline = record.triton_timeline
        for (at, n, _), (following, _, _) in zip(timeline, [*timeline[1:], (time.time(), 0, [])], strict=True):
            if n > args.max_triton_pods:
                over_cap_s += following - at
                if spans and abs(spans[-1][1] - (at - applied_at)) < 1e-6:
                    spans[-1][1] = following - applied_at
                else:
                    spans.append([at - applied_at, following - applied_at])
        restarts = dict(record.restarts)
    values = sorted(to_status.values())
    busy = (cpu_after[0] - cpu_before[0]) / max(1, cpu_after[1] - cpu_before[1])
    with sampler.lock:
        processes = [dict(p) for p in sampler.processes.values()]
        others = [
            {"pid": pid, "from_s": seen["first_seen"] - applied_at, "to_s": seen["last_seen"] - applied_at}
            for pid, seen in sorted(sampler.other_clusters.items())
        ]
    for p in processes:
        p["role"] = "first" if p["pid"] in first_operator else "after the kill"
        p["first_seen_after_apply_s"] = p.pop("first_seen") - applied_at
        p["last_seen_after_apply_s"] = p.pop("last_seen") - applied_at
    rates = request_rates(metrics_before, metrics_after)
    result: dict[str, Any] = {
        "namespaces": dict(zip(namespaces, sizes, strict=True)),
        "apply_order": "fleet-0 (the big namespace) first, then fleet-1, fleet-2, ... in turn",
        "apply_s": applied_all_at - applied_at,
        "create_refused": create_errors,
        "wall_s": (max(finishes.values()) - applied_at) if finishes else None,
        "timed_out": len(finishes) < len(created),
        "time_to_status": {
            "count": len(values),
            "missing": len(created) - len(values),
            "p50_s": percentile(values, 50),
            "p99_s": percentile(values, 99),
            "max_s": values[-1] if values else None,
            "over_2s": sum(1 for v in values if v > STATUS_TARGET_S),
            "first_phases": dict(first_phases),
        },
        "fairness": fairness({k: sent[k] for k in created}, starts, namespaces),
        "start_after_create_s": {
            ns: {
                "p50": percentile(sorted(starts[k] - created[k] for k in starts if k.startswith(f"{ns}/")), 50),
                "max": max((starts[k] - created[k] for k in starts if k.startswith(f"{ns}/")), default=None),
            }
            for ns in namespaces
        },
        "operator_processes": processes,
        "operator_peak_rss_mb": max((p["peak_rss_mb"] for p in processes), default=None),
        "operator_vm_hwm_mb": max((p["vm_hwm_mb"] for p in processes), default=None),
        "operator_pods_after": operator_pods(cluster),
        "api_requests": rates,
        "api_requests_until_kill": None if metrics_at_kill is None else request_rates(metrics_before, metrics_at_kill),
        "api_requests_after_kill": None if metrics_at_kill is None else request_rates(metrics_at_kill, metrics_after),
        "kill": None
        if kill is None
        else {**kill, "at_after_apply_s": kill["at"] - applied_at, "finished_when_killed": kill_after},
        "phases": dict(phases),
        "not_succeeded_or_incomplete": incomplete,
        "requeued_after_start": requeued,
        "status_updates_per_analysis": {
            "median": percentile(sorted(status_events), 50),
            "max": max(status_events, default=None),
            "total": sum(status_events),
        },
        "triton_pods": triton,
        "load_generator_jobs": jobs,
        "max_triton_pods_at_once": max_alive,
        "max_triton_pods_at_once_after_apply_s": None if max_alive_at is None else max_alive_at - applied_at,
        # Every moment more Triton pods were alive than maxTritonPods: (s after apply, how many, which pods).
        "over_cap": over_cap[:50],
        "over_cap_changes": len(over_cap),
        # The Triton pods alive when the operator was killed, and those created in the 30 s after (s after apply).
        "triton_pods_around_kill": around_kill,
        "over_cap_s": over_cap_s,
        "over_cap_spans_after_apply_s": spans,
        "watch_restarts": restarts,
        "cpu_busy_share": busy,
        # Other test clusters (another session's e2e tests) that ran on this machine during the run: their
        # kube-apiserver's pid and when it was seen, in s after apply. Their pods shared the two cores.
        "other_clusters_during_run": others,
        "load_before": load_before,
        "load_after": load_after,
        "run_s": finished_at - applied_at,
    }
    return result


# ---------------------------------------------------------------- output


def fmt(value: Any, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def why_not(result: dict[str, Any]) -> str:
    """Why the issue's 1,000 analyses were not run: the time they would take at the rate this run finished them."""
    r, a = result["run"], result["args"]
    done = sum(n for p, n in r["phases"].items() if p in FINISHED)
    rate = done / r["wall_s"] if r.get("wall_s") else None
    words = (
        f"this machine's {result['machine']['nproc']} cores run every pod of the fake nodes themselves (each Triton "
        "server, each perf_analyzer) beside the control plane and the operator"
    )
    if rate:
        words += (
            f"; at the {rate:.2f} analyses/s this run finished with maxTritonPods {a['max_triton_pods']}, 1,000 would "
            f"take about {1000 / rate / 60:.0f} min, longer than the 12 minutes a run had here (and the "
            "operator's queue work grows with the number waiting)"
        )
    extra = result.get("why_not_issue_size")
    return words + "." + (f" {extra}" if extra else "")


def markdown(result: dict[str, Any]) -> str:
    r, m, a = result["run"], result["machine"], result["args"]
    issue_size = (a["nodes"], a["analyses"], a["namespaces"], a["max_triton_pods"]) == (100, 1000, 10, 8)
    ts, fa = r["time_to_status"], r["fairness"]
    rates = r["api_requests"]
    lines = [
        "# A fleet of small analyses from several namespaces, the operator killed once",
        "",
        f"{result['date']}, {m['nproc']} cores, load average {m['load_before']} before, {r['load_after']} after; "
        f"the machine's CPUs were {100 * r['cpu_busy_share']:.0f} % busy over the run. Command: "
        f"`{result['command']}`.",
        "",
        (
            "Another test cluster (another session's tests) ran on this machine meanwhile, its pods sharing the "
            "cores: "
            + ", ".join(
                f"kube-apiserver pid {o['pid']} from {o['from_s']:.0f} to {o['to_s']:.0f} s after apply"
                for o in r["other_clusters_during_run"]
            )
            + "."
            if r.get("other_clusters_during_run")
            else "No other test cluster ran on this machine during the run (checked every 0.5 s)."
        )
        + f" The operator ran from commit {m['git']['commit'][:10]}"
        + (
            " with uncommitted changes in " + ", ".join(f"`{f.split()[-1]}`" for f in m["git"]["dirty_files"])
            if m["git"]["dirty_files"]
            else ""
        )
        + ".",
        "",
        (
            f"**Size run here: {a['nodes']} GPU nodes, {a['analyses']} analyses in {a['namespaces']} namespaces, "
            f"maxTritonPods {a['max_triton_pods']}, operator killed at {a['kill_at']:.0%} finished.**"
            + (
                ""
                if issue_size
                else " The issue's size (100 nodes, 1,000 analyses, 10 namespaces, maxTritonPods 8; the script's"
                " defaults) was **not run here**: " + why_not(result)
            )
        ),
        "",
        f"Namespaces: {', '.join(f'{ns} {n}' for ns, n in r['namespaces'].items())}; applied "
        f"{r['apply_order']}, in {r['apply_s']:.1f} s. Each analysis: `{MODEL}` (sleeps 20 ms per batch), batch 1 x "
        f"concurrency 1, {a['measurement_interval']} ms windows, no baseline: one Triton pod and one perf_analyzer "
        "Job.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| time to first status (create returned -> first watch event with a phase) | p50 {fmt(ts['p50_s'])} s, "
        f"**p99 {fmt(ts['p99_s'])} s**, max {fmt(ts['max_s'])} s; {ts['over_2s']} of {ts['count']} over 2 s, "
        f"{ts['missing']} never |",
        f"| fair share (a): share of starts / (1/N) while every namespace had one waiting "
        f"({fa['a_all_waiting']['starts_in_window']} starts) | min over the small namespaces "
        f"**{fmt(fa['a_all_waiting']['min_small_namespace'])}** |",
        f"| fair share (b): starts / share owed (1 / namespaces waiting at each start), until fleet-0's last start "
        f"| min over the small namespaces **{fmt(fa['b_owed_until_big_done']['min_small_namespace'])}**; the most "
        f"starts a small namespace was ever behind what it was owed: "
        f"{fmt(fa['b_owed_until_big_done']['most_starts_behind_small_namespace'], 1)} |",
        f"| operator peak RSS (VmHWM) | **{fmt(r['operator_vm_hwm_mb'], 1)} MB** (sampled VmRSS max "
        f"{fmt(r['operator_peak_rss_mb'], 1)} MB) |",
        f"| operator API requests (flow schema `service-accounts`: the operator's token alone) | "
        f"**{fmt(rates['operator_per_s'], 1)} /s** over {rates['seconds']:.0f} s |",
        f"| all API requests (every client) | {fmt(rates['total_per_s'], 1)} /s; "
        f"pods {fmt(rates['pods_per_s'], 1)} /s |",
        f"| phases at the end | {', '.join(f'{p} {n}' for p, n in r['phases'].items())}; "
        f"{len(r['not_succeeded_or_incomplete'])} not Succeeded with every point measured |",
        f"| Triton pods per analysis (distinct uids) | {r['triton_pods']['per_analysis']} (pods: count of analyses); "
        f"more than one: {len(r['triton_pods']['analyses_with_more_than_one'])} |",
        f"| load-generator Jobs | {r['load_generator_jobs']['jobs']} Jobs, "
        f"{len(r['load_generator_jobs']['job_names_created_more_than_once'])} names created twice; pods per Job "
        f"{r['load_generator_jobs']['pods_per_job']}; Jobs with more than one pod: "
        f"{len(r['load_generator_jobs']['jobs_with_more_than_one_pod'])} |",
        f"| re-queued after they had started | {len(r['requeued_after_start'])} |",
        f"| wall time (first create -> last analysis finished) | {fmt(r['wall_s'], 1)} s |",
        f"| most Triton pods alive at once (pod watch) | {r['max_triton_pods_at_once']} (cap {a['max_triton_pods']}), "
        f"at {fmt(r['max_triton_pods_at_once_after_apply_s'], 1)} s after apply; over the cap for "
        f"{fmt(r['over_cap_s'], 1)} s in all ("
        + (", ".join(f"{a:.1f} to {b:.1f} s" for a, b in r["over_cap_spans_after_apply_s"]) or "never")
        + ") |",
        f"| status updates seen per analysis | median {r['status_updates_per_analysis']['median']}, max "
        f"{r['status_updates_per_analysis']['max']} |",
    ]
    kill = r.get("kill")
    if kill:
        lines.append(
            f"| operator kill | SIGKILL of pid {kill['killed_pids']} at {kill['at_after_apply_s']:.1f} s after the "
            f"first create ({kill['finished_when_killed']} finished); new process {kill['new_pid']} "
            f"{fmt(kill['new_process_after_s'], 1)} s later |"
        )
    lines += [
        "",
        "Per namespace:",
        "",
        "| namespace | analyses | (a) starts in window | (a) share / fair | (b) started / owed "
        "| first start after its first create | starts by others meanwhile | start after create p50 / max (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for ns, n in r["namespaces"].items():
        first = fa["first_start_of_small_namespaces"].get(ns) or {}
        sac = r["start_after_create_s"][ns]
        lines.append(
            f"| {ns} | {n} | {fa['a_all_waiting']['starts'].get(ns, 0)} "
            f"| {fmt(fa['a_all_waiting']['share_over_fair'][ns])} "
            f"| {fmt(fa['b_owed_until_big_done']['started_over_owed'][ns])} "
            f"| {fmt(first.get('after_its_first_create_s'), 1, ' s')} | {fmt(first.get('starts_by_others_meanwhile'))} "
            f"| {fmt(sac['p50'], 1)} / {fmt(sac['max'], 1)} |"
        )
    lines += [
        "",
        "Operator processes:",
        "",
        "| pid | role | VmHWM (MB) | VmRSS max (MB) | seen (s after apply) |",
        "|---|---|---|---|---|",
    ]
    for p in r["operator_processes"]:
        lines.append(
            f"| {p['pid']} | {p['role']} | {p['vm_hwm_mb']:.1f} | {p['peak_rss_mb']:.1f} | "
            f"{p['first_seen_after_apply_s']:.0f} to {p['last_seen_after_apply_s']:.0f} |"
        )
    lines += [
        "",
        f"API requests/s over the run ({rates['seconds']:.0f} s, every client), the resources the operator uses:",
        "",
        "| resource | requests/s | by verb |",
        "|---|---|---|",
    ]
    shown = [*OPERATOR_RESOURCES, "pods", "pods/status", "pods/binding", "nodes/status", "serviceaccounts/token"]
    for res in shown:
        verbs = rates["per_resource_verb_per_s"].get(res, {})
        lines.append(
            f"| {res} | {rates['per_resource_per_s'].get(res, 0):.2f} | "
            + ", ".join(f"{v} {c:.2f}" for v, c in verbs.items())
            + " |"
        )
    flows = ", ".join(f"`{f}` {c:.1f}" for f, c in rates["per_flow_schema_per_s"].items())
    lines += ["", f"Per flow schema (requests/s): {flows}.", ""]
    if r.get("api_requests_until_kill"):
        lines.append(
            f"Operator requests/s before the kill {fmt(r['api_requests_until_kill']['operator_per_s'], 1)}, "
            f"after it {fmt(r['api_requests_after_kill']['operator_per_s'], 1)}."
        )
    if rates["errors_429_5xx"] or rates["rejected"]:
        lines.append(
            f"Throttled or failed requests: {rates['errors_429_5xx']}; rejected by flow control: {rates['rejected']}."
        )
    if r["not_succeeded_or_incomplete"]:
        lines += ["", "Not Succeeded, or not every point measured:", ""]
        lines += [
            f"- {k}: {v['phase']}, {v['measured']}/{v['pointsTotal']} points: {v['message']}"
            for k, v in list(r["not_succeeded_or_incomplete"].items())[:20]
        ]
    if result.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {n}" for n in result["notes"]]
    lines += ["", "Caveats:", ""] + [f"- {c}" for c in result["caveats"]]
    lines += ["", f"Full figures: `bench/results/{result['out_name']}`.", ""]
    return "\n".join(lines)


CAVEATS = [
    "This machine has 2 cores shared by the control plane, the node agent, the operator, every Triton server and "
    "every perf_analyzer: time to status and start times measure a saturated machine as much as the operator.",
    "The nodes are fake: one node agent (tests/cluster/node_agent.py) plays the kubelet for all of them and runs "
    "each pod as a local process; it renews the 100 node Leases every 10 s (so `leases` is mostly its doing) and "
    "posts pod status and Events, as the scheduler and the controller manager post Events, Job status and "
    "configmaps (kube-root-ca.crt) of their own.",
    "apiserver_request_total has no client label, so the per-resource rates count every client; the operator's own "
    "total is the flow schema `service-accounts` (requests with a service-account token outside kube-system: the "
    "operator is the only such client here). This bench adds its creates (POST modelanalyses), three watches "
    "(modelanalyses, pods, Jobs: one long request each, renewed every 60 s) and a few kubectl calls.",
    "Fair share (a) counts only the window in which every namespace had an analysis waiting; its first slots "
    "go to fleet-0, whose analyses exist before any other namespace's (applied first). (b) weighs each start "
    "by how many namespaces were waiting at that moment.",
    "Start = the first watch event with a phase past Pending/Queued (Starting: the Triton pod was created).",
    "The operator runs from this working tree (not an image) when the checkout's image is not built; "
    "machine.git.dirty_files lists operator files that differed from the commit.",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100, help="GPU nodes (one nvidia.com/gpu each)")
    parser.add_argument("--analyses", type=int, default=1000, help="analyses applied at once")
    parser.add_argument("--namespaces", type=int, default=10, help="namespaces; fleet-0 holds half the analyses")
    parser.add_argument("--max-triton-pods", type=int, default=8, help="the chart's maxTritonPods")
    parser.add_argument(
        "--kill-at",
        type=float,
        default=0.5,
        help="fraction of the analyses finished when the operator is SIGKILLed (0: never)",
    )
    parser.add_argument("--measurement-interval", type=int, default=250, help="measurementIntervalMs")
    parser.add_argument("--create-threads", type=int, default=4, help="threads creating the analyses")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds the fleet may take after apply")
    parser.add_argument("--why-not-issue-size", default="", help="said in the .md when the size is not the issue's")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON (a .md beside it)")
    parser.add_argument("--rewrite-md", action="store_true", help="run nothing: write the .md of --out again")
    parser.add_argument("--note", action="append", default=[], help="with --rewrite-md: add a note to --out")
    return parser.parse_args(argv)


def write(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rounded(result, 3), indent=2) + "\n")
    if "run" in result:
        out.with_suffix(".md").write_text(markdown(result))
    log(f"wrote {out}" + (f" and {out.with_suffix('.md').name}" if "run" in result else ""))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rewrite_md:
        result = json.loads(args.out.read_text())
        result["notes"] = result.get("notes", []) + args.note
        write(result, args.out)
        return 0
    wait_for_machine()
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "bench/fleet_scale.py", *(sys.argv[1:] if argv is None else argv)]),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "why_not_issue_size": args.why_not_issue_size,
        "out_name": args.out.name,
        "machine": {
            "nproc": os.cpu_count(),
            "modelanalysis": __version__,
            "load_before": [round(v, 2) for v in os.getloadavg()],
            "git": git_facts(),
            "project_image": dict(zip(("image", "why"), find_project_image(), strict=True)),
        },
        "caveats": CAVEATS,
    }
    started = time.monotonic()
    log(f"test cluster with {args.nodes} GPU nodes")
    with running_cluster(log=log, nodes=several_nodes(args.nodes)) as cluster:
        nodes = ready_nodes(cluster, args.nodes, timeout_s=300)
        result["nodes_ready"] = len(nodes)
        result["cluster_up_s"] = time.monotonic() - started
        log(f"{len(nodes)} nodes Ready after {result['cluster_up_s']:.0f} s; helm install")
        install_operator(cluster, "--set", f"maxTritonPods={args.max_triton_pods}")
        result["run"] = run_fleet(cluster, args)
        result["node_agent_log_warnings"] = sum(
            1
            for line in (cluster.log_dir / "node-agent.log").read_text(errors="replace").splitlines()
            if " WARNING " in line or " ERROR " in line
        )
        result["cluster_log_dir"] = str(cluster.log_dir)
        # No kubelet endpoint for `kubectl logs`: the node agent's own files (appended across restarts).
        operator_log = "\n".join(
            path.read_text(errors="replace")
            for path in sorted((cluster.log_dir / "pods").glob(f"{OPERATOR_NS}_*_operator.log"))
        )
        errors = [ln for ln in operator_log.splitlines() if "ERROR" in ln or "Traceback" in ln]
        result["operator_log_errors"] = {"count": len(errors), "first": errors[:40]}
    result["total_s"] = time.monotonic() - started
    write(result, args.out)
    r = result["run"]
    log(
        f"time to status p99 {r['time_to_status']['p99_s']} s; fair share min (a) "
        f"{r['fairness']['a_all_waiting']['min_small_namespace']} (b) "
        f"{r['fairness']['b_owed_until_big_done']['min_small_namespace']}; operator VmHWM {r['operator_vm_hwm_mb']} "
        f"MB, {r['api_requests']['operator_per_s']} req/s; phases {r['phases']}; wall {r['wall_s']} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
