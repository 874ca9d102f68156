"""Checks before anything is created or waited for: the spec against the core's models, the image policy, the
Kubernetes fields the spec passes through (a dry run of the children), every child name (kube/ownership.py), and
the claims the spec names. Each fails the analysis with one sentence saying what to fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from modelanalysis.core.sweep import Point
from modelanalysis.core.trials import Trial
from modelanalysis.kube import names, objects, policy
from modelanalysis.kube.failures import AnalysisFailed
from modelanalysis.kube.ownership import first_collision
from modelanalysis.kube.readings import spec_error_message
from modelanalysis.kube.refusals import refusal_message
from modelanalysis.kube.resource import ConditionType, ModelAnalysisSpec, Phase, Reason

if TYPE_CHECKING:
    from modelanalysis.kube.reconcile import AnalysisRun


# Stand-ins for what is known only once the Triton pod runs, in the dry run of a load-generator Job.
DRY_RUN_POD_IP = "10.0.0.1"
DRY_RUN_NODE = "the-triton-node"


def validate(run: AnalysisRun) -> ModelAnalysisSpec | None:
    try:
        return ModelAnalysisSpec.model_validate(run.body.get("spec") or {})
    except ValidationError as exc:
        message = spec_error_message(exc)
        run.status.observed_generation = run.generation
        run.set_phase(Phase.FAILED, message)
        run.condition(ConditionType.SPEC_VALID, False, Reason.INVALID_SPEC, message)
        run.condition(ConditionType.READY, False, Reason.INVALID_SPEC, message)
        run.save(reset=True)
        run.event("Warning", Reason.INVALID_SPEC, message)
        return None


def check_image(run: AnalysisRun, spec: ModelAnalysisSpec) -> None:
    for version in spec.triton.compared_versions or [""]:
        refusal = policy.image_refusal(objects.triton_image(spec, run.settings, version), run.settings)
        if refusal is not None:
            raise AnalysisFailed(Reason.IMAGE_NOT_ALLOWED, refusal, ConditionType.SPEC_VALID)


def check_children(run: AnalysisRun, spec: ModelAnalysisSpec) -> None:
    first = Point(model=spec.models[0].name, batch_size=spec.batch_sizes[0], load=spec.load_steps[0])
    children = [
        ("Triton pod", "spec.triton", objects.triton_pod(run.name, run.namespace, run.generation, spec,
                                                         run.settings)),
        ("load-generator Job", "spec.loadGenerator", objects.load_generator_job(
            run.name, run.namespace, run.generation, spec, first, DRY_RUN_POD_IP, run.settings,
            server_node=DRY_RUN_NODE)),
    ]  # fmt: skip
    if spec.results.pvc is not None:
        job = objects.results_writer_job(run.name, run.namespace, run.generation, spec, run.settings,
                                         uid=run.uid)  # fmt: skip
        children.append(("results-writer Job", "spec.results", job))
    for what, field, manifest in children:
        refusal = run.api.dry_run(manifest)
        if refusal is not None:
            message = refusal_message(what, manifest["kind"], refusal, field)
            raise AnalysisFailed(Reason.INVALID_SPEC, message, ConditionType.SPEC_VALID)


def check_names(run: AnalysisRun, spec: ModelAnalysisSpec, trials: list[Trial]) -> None:
    """Refuse, before anything is created, a child name that an object the analysis does not own holds: the
    Triton pods, the results ConfigMap and Job, the point Jobs of the listed steps. (Names known only later,
    a search's bisection steps and the results ConfigMaps past the first, are checked when created.)"""
    for trial in trials:
        run.read_child("Pod", names.trial_pod_name(run.name, run.generation, trial, len(trials)))
    run.read_child("ConfigMap", names.results_configmap_name(run.name))
    jobs = names.planned_point_job_names(run.name, run.generation, trials, spec.batch_sizes, spec.load_steps)
    if spec.results.pvc is not None:
        jobs.add(names.results_job_name(run.name, run.generation))

    def look() -> None:
        taken = first_collision(run.api.list("Job", run.namespace), jobs, "Job", run.owner)
        if taken is not None:
            raise taken

    run.until_free(look)


def check_claims(run: AnalysisRun, spec: ModelAnalysisSpec) -> None:
    """Refuse a claim (or an input-data ConfigMap) that does not exist before anything runs: a missing results
    claim would otherwise surface only after the whole sweep, when the results Job cannot start, and a missing
    ConfigMap as a load-generator pod that never starts."""
    claims = [
        ("modelRepository.pvc.claimName", spec.model_repository.pvc),
        ("results.pvc.claimName", spec.results.pvc),
    ]
    for inputs in [spec.inputs, *(m.inputs for m in spec.models if m.inputs is not None)]:
        source = inputs.data_config_map
        if source is None:
            continue
        found = run.api.read("ConfigMap", run.namespace, source.name)
        if found is None or source.key not in (found.get("data") or {}):
            what = "no such ConfigMap" if found is None else f"it has no key {source.key!r}"
            raise AnalysisFailed(
                Reason.INVALID_SPEC,
                f"inputs.dataConfigMap {source.name!r}: {what} in namespace {run.namespace}; create it with the "
                "input-data JSON under that key, or fix the name.",
            )
    for field, location in claims:
        if location and run.api.read("PersistentVolumeClaim", run.namespace, location.claim_name) is None:
            raise AnalysisFailed(
                Reason.INVALID_SPEC,
                f"{field} {location.claim_name!r}: no such PersistentVolumeClaim in namespace "
                f"{run.namespace}; create it or fix the name.",
            )
