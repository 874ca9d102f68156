"""The results at the end: the CSV files and report.html into the ConfigMaps <name>-results (-2, ...), and with
spec.results.pvc, into the claim by a short Job (earlier files there are moved beside, never written over)."""

from __future__ import annotations

import posixpath
import time
from typing import TYPE_CHECKING

from modelanalysis.core.html_report import REPORT_HTML, render_html
from modelanalysis.core.report import csv_files
from modelanalysis.kube import names, objects
from modelanalysis.kube.conditions import analysis_result
from modelanalysis.kube.failures import AnalysisFailed
from modelanalysis.kube.readings import copied_results, job_outcome, termination_message
from modelanalysis.kube.resource import ModelAnalysisSpec, Phase, Reason
from modelanalysis.kube.transitions import results_write_failure
from modelanalysis.kube.waiting import RESULTS_JOB_SECONDS, Deadline

if TYPE_CHECKING:
    from modelanalysis.kube.reconcile import AnalysisRun


def write_results(run: AnalysisRun, spec: ModelAnalysisSpec) -> None:
    run.set_phase(Phase.WRITING_RESULTS, "writing CSV files and report.html")
    run.save()
    result = analysis_result(run.status, spec.triton.version or run.settings.default_triton_version)
    result.finished_at = result.finished_at or time.time()  # the report says how long it took
    result.objective, result.constraints = spec.objective, spec.constraints  # for Satisfies Constraints
    files = {**csv_files(result), REPORT_HTML: render_html(result, title=run.name)}
    configmaps = objects.results_configmaps(run.name, run.namespace, run.generation, files)
    for configmap in configmaps:
        run.create_child(configmap)
    run.status.results = f"configmap/{names.results_configmap_name(run.name)}"
    if len(configmaps) > 1:
        run.status.results += f" (and {len(configmaps) - 1} more: -2, -3, ...)"
    if spec.results.pvc is None:
        return
    manifest = objects.results_writer_job(
        run.name, run.namespace, run.generation, spec, run.settings, configmaps=len(configmaps), uid=run.uid
    )
    job = run.create_child(manifest)
    job_name = manifest["metadata"]["name"]
    deadline = Deadline(RESULTS_JOB_SECONDS)
    while job_outcome(job) is None and not deadline.passed:
        run.sleep(run.settings.poll_interval_seconds)
        job = run.read_child("Job", job_name) or job
    # This Job's pods only, by its uid: not a pod someone else labelled job-name=<this name>.
    pods = run.api.list("Pod", run.namespace, f"batch.kubernetes.io/controller-uid={job['metadata']['uid']}")
    _, message = termination_message(pods)
    if job_outcome(job) != "Complete":
        run.delete_child("Job", job_name)  # it has said why: nothing stays behind
        raise AnalysisFailed(
            Reason.RESULTS_WRITE_FAILED,
            results_write_failure(
                spec.results.pvc.claim_name,
                objects.results_folder(run.name, spec),
                message,
                names.results_configmap_name(run.name),
                run.name,
            ),
        )
    run.delete_child("Job", job_name)
    run.status.results = f"pvc://{spec.results.pvc.claim_name}/{objects.results_folder(run.name, spec)}"
    set_aside = copied_results(message).get("setAside")
    if set_aside:
        folder = objects.results_folder(run.name, spec)
        moved = posixpath.join(posixpath.dirname(folder), str(set_aside))
        note = f"{folder} on the results claim held earlier files (not this run's): they were moved to {moved}"
        run.status.notes = [*(run.status.notes or []), note]
        run.event("Normal", Reason.EARLIER_RESULTS_KEPT, note)
