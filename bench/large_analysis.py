"""Benchmark: the largest analysis admission accepts (1000 points) on a node with 8 GPUs, through the real operator.

Measuring 1000 points would take most of an hour on this machine, so the points come from real captured data:
perf_analyzer's numbers and the H100's Triton metrics page (tests/data/triton-2.51-h100-metrics.txt, captured with
the CLI's GPU run in bench/results/gpu-h100-cli/) replicated across 8 GPU UUIDs, written into the analysis's
status as the operator itself writes it after a sweep. The operator, installed with the chart on the test
cluster, then resumes the analysis as it does after a restart: it finds every model profiled, starts its Triton
pod, writes the CSV files and report.html to the results ConfigMaps and the claim, and finishes. Figures,
reported, never asserted:

  status_bytes     the stored object with 1000 points x 8 GPUs, against the API server's 1.5 MiB limit
  resume_to_done_s helm install -> phase Succeeded (pod start, results written through the results Job)
  configmaps       how many results ConfigMaps the files took, and their sizes
  operator_rss_mb  the operator process's peak resident memory (VmHWM) over the run
  kubectl_get_s    `kubectl get modelanalyses` with that analysis in the namespace
  results_csv_s    `model-analyzer results NAME --format csv` (reads every ConfigMap, joins the parts)

    .venv/bin/python bench/large_analysis.py
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from modelanalysis import __version__
from modelanalysis.core.html_report import REPORT_HTML
from modelanalysis.core.report import INFERENCE_CSV
from modelanalysis.kube.resource import GROUP, PLURAL, VERSION, ModelStatusEntry, Phase

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from common import log  # noqa: E402
from operator_vs_perf_analyzer import hostpath_claim, install_operator, kubectl, model_volume  # noqa: E402
from tests.cluster.controlplane import running_cluster  # noqa: E402
from tests.unit.test_kube_status import big_status  # noqa: E402

OUT = REPO / "bench" / "results" / "large-analysis.json"
NAMESPACE = "large"
OBJECT_LIMIT = 1_572_864  # etcd's default request limit


def results_volume(cluster: Any, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.chown(folder, 10001, 10001)  # the results Job runs as 10001
    hostpath_claim(cluster, NAMESPACE, "results", folder, "ReadWriteOnce")


def operator_pid() -> int | None:
    """The operator process the node agent started (its command line runs kopf on modelanalysis.kube.handlers)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "kopf" in cmdline and "modelanalysis" in cmdline:
            return int(entry.name)
    return None


def peak_rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        log(f"{' '.join(cmd[:3])} failed: {proc.stderr.strip()[-500:]}")
    return round(time.perf_counter() - started, 3), proc.stdout


def main() -> int:
    spec = {
        "models": [{"name": f"resnet50_onnx_variant_{m}"} for m in range(10)],
        "batchSizes": [8 * b for b in range(1, 11)],
        "concurrency": [16 * c for c in range(1, 11)],
        "modelRepository": {"pvc": {"claimName": "models"}},
        "results": {"pvc": {"claimName": "results"}},
    }
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "modelanalysis": __version__, "load_before": os.getloadavg()},
        "points": 1000,
        "gpus_per_point": 8,
    }
    with running_cluster(log=log) as cluster:
        api = cluster.api_client()
        custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        kubectl(cluster, "apply", "--server-side", "-f", str(REPO / "crds"))
        kubectl(cluster, "wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}", "--timeout=60s")
        model_volume(cluster, NAMESPACE)
        results_volume(cluster, Path(cluster.work_dir) / "large-results")
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelAnalysis", "metadata": {"name": "large"},
                "spec": spec}  # fmt: skip
        created = custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)

        # The status the operator writes once the last point is measured (it resumes from it after a restart).
        status = big_status(models=10, batches=10, concurrencies=10, gpus=8)
        status.phase = Phase.PROFILING.value
        status.observed_generation = created["metadata"]["generation"]
        status.models = [
            ModelStatusEntry(name=f"resnet50_onnx_variant_{m}", status="Profiled", max_batch_size=128,
                             instance_group="1:GPU")
            for m in range(10)
        ]  # fmt: skip
        status.best = status.best_per_model = None
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, NAMESPACE, PLURAL, "large", {"status": status.wire()}
        )
        stored = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "large")
        result["status_bytes_before_results"] = len(json.dumps(stored, separators=(",", ":")))

        log("helm install: the operator resumes the analysis")
        started = time.perf_counter()
        install_operator(cluster)
        pid, peak = operator_pid(), None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            peak = max(filter(None, [peak, peak_rss_mb(pid)]), default=None)
            obj = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "large")
            phase = (obj.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                break
            time.sleep(0.5)
        result["resume_to_done_s"] = round(time.perf_counter() - started, 2)
        result["phase"] = phase
        result["message"] = (obj.get("status") or {}).get("message")
        log(f"phase {phase}: {result['message']}")
        result["operator_rss_mb"] = round(peak, 1) if peak else None
        result["status_bytes"] = len(json.dumps(obj, separators=(",", ":")))
        result["status_share_of_limit"] = round(result["status_bytes"] / OBJECT_LIMIT, 3)
        maps = core.list_namespaced_config_map(NAMESPACE).items
        result["configmaps"] = {
            m.metadata.name: sum(len(k.encode()) + len(v.encode()) for k, v in (m.data or {}).items())
            for m in maps
            if m.metadata.name.startswith("large-results")
        }
        folder = Path(cluster.work_dir) / "large-results" / "large"
        written = {p.name: p.stat().st_size for p in sorted(folder.iterdir())} if folder.exists() else {}
        result["files_on_volume"] = written
        result["kubectl_get_s"], _ = timed(["kubectl", "get", "modelanalyses", "-n", NAMESPACE], cluster.env)
        cli = str(Path(sys.executable).parent / "model-analyzer")
        result["results_csv_s"], text = timed([cli, "results", "large", "-n", NAMESPACE, "--format", "csv"],
                                              cluster.env)  # fmt: skip
        result["results_csv_bytes"] = len(text.encode())
        result["results_csv_equals_volume"] = (folder / INFERENCE_CSV).exists() and (
            (folder / INFERENCE_CSV).read_text() == text
        )
        result["report_on_volume"] = REPORT_HTML in written
        result["machine"]["load_after"] = os.getloadavg()
        api.close()
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {OUT}: {json.dumps(result)[:600]}")
    return 0 if result.get("phase") == "Succeeded" else 1


if __name__ == "__main__":
    raise SystemExit(main())
