"""The engine's journal in the operator: everything measured so far goes to status (with an Event where one is
due), and each trial's share of the result is rebuilt from status after a restart."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelanalysis.core.objectives import choose_best
from modelanalysis.core.results import AnalysisResult
from modelanalysis.core.trials import Trial
from modelanalysis.core.variants import plan_variants
from modelanalysis.engine import EngineEvent, EventKind
from modelanalysis.kube.conditions import (
    analysis_result,
    best_status,
    boundary_status,
    compact_baseline,
    compact_point,
    model_entry,
    short,
    together_status,
)
from modelanalysis.kube.resource import ModelAnalysisStatus
from modelanalysis.kube.telemetry import METRICS
from modelanalysis.kube.transitions import event_for, progress_message

if TYPE_CHECKING:
    from modelanalysis.kube.reconcile import AnalysisRun


def trial_share(run: AnalysisRun, full: AnalysisResult, trial: Trial) -> AnalysisResult:
    """What status holds of one trial: its points and outcomes, and its server's baseline."""
    variants = {v.name for v in trial.variants}
    baseline = run.trial_status(trial).baseline
    share = analysis_result(ModelAnalysisStatus(baseline=baseline), full.triton_version)
    share.server_version, share.started_at, share.notes = full.server_version, full.started_at, list(full.notes)
    share.model_configs = dict(full.model_configs)
    version = trial.triton_version
    share.points = [p for p in full.points if p.variant_name in variants and p.triton_version == version]
    share.models = [m for m in full.models if m.name in variants and m.triton_version == version]
    return share


def record(run: AnalysisRun, event: EngineEvent, result: AnalysisResult, trial: Trial) -> None:
    """The engine's journal: everything measured so far goes to status, with an Event where one is due. Each
    trial journals its own share (its entry in status.trials) and status holds them all."""
    index = trial.index
    if event.result is not None and event.kind in (EventKind.POINT_MEASURED, EventKind.POINT_FAILED):
        METRICS.point(event.result)
    with run.lock:
        run.trial_results[index] = result
        merged = merged_result(run)
        run.status.server_version = merged.server_version or None
        run.status.notes = list(merged.notes) or None
        run.status.baseline = compact_baseline(merged.baseline) if merged.baseline else None
        run.status.models = [model_entry(m) for m in merged.models] or None
        run.status.points = [compact_point(p) for p in merged.points] or None
        run.status.model_configs = merged.model_configs or None
        if merged.best is not None:
            best, variants = merged.best, {v.name: v for v in plan_variants(run.spec)} if run.spec else {}
            run.status.best = best_status(best.overall, merged, variants.get(best.overall.variant)) if (
                best.overall) else None  # fmt: skip
            run.status.best_per_model = [best_status(b, merged, variants.get(b.variant))
                                          for b in best.per_model] or None  # fmt: skip
            run.status.best_per_version = [best_status(b, merged, variants.get(b.variant))
                                            for b in best.per_version] or None  # fmt: skip
            run.status.boundaries = [boundary_status(b) for b in best.boundaries] or None
            run.status.best_together = together_status(best.together, merged) if best.together else None
        message = progress_message(event)
        entry = run.trial_status(trial)
        entry.points_done, entry.points_total = len(result.points), event.total
        entry.baseline = compact_baseline(result.baseline) if result.baseline else None
        entry.message = short(message) if message else entry.message
        run.update_progress(sum(t.points_total for t in run.status.trials or []))
        run.show_trials()
        run.save()
    posted = event_for(event)
    if posted is not None:
        where = f"[{trial.name}] " if len(run.status.trials or []) > 1 else ""
        run.event(posted.type, posted.reason, where + posted.message)


def merged_result(run: AnalysisRun) -> AnalysisResult:
    """Every trial's share as one result, in the trials' order, with the best point over them all."""
    results = [run.trial_results[i] for i in sorted(run.trial_results)]
    if len(results) == 1:
        return results[0]
    merged = AnalysisResult(
        triton_version=results[0].triton_version,
        server_version=", ".join(dict.fromkeys(r.server_version for r in results if r.server_version)),
        baseline=next((r.baseline for r in results if r.baseline is not None), None),
        models=[m for r in results for m in r.models],
        points=[p for r in results for p in r.points],
        notes=list(dict.fromkeys(n for r in results for n in r.notes)),
        model_configs={k: v for r in reversed(results) for k, v in r.model_configs.items()},
    )
    if run.spec is not None:
        merged.best = choose_best(merged.points, run.spec.objective, run.spec.constraints)
    return merged
