"""Golden outputs: the CSV files, analysis.json, the operator's status and the report's data, rendered from
recorded results, must stay byte for byte as tests/data/golden/ holds them. A refactor of the core (issue 20)
changes none of them; a change that means to change an output regenerates them and shows the diff:

    MODELANALYSIS_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelanalysis.core.html_report import report_data
from modelanalysis.core.objectives import choose_best
from modelanalysis.core.report import csv_files
from modelanalysis.core.results import AnalysisResult
from modelanalysis.core.spec import Constraints, Objective
from modelanalysis.kube.conditions import best_status, boundary_status, compact_baseline, compact_point, model_entry
from modelanalysis.kube.resource import ModelAnalysisStatus

DATA = Path(__file__).resolve().parents[1] / "data"
GOLDEN = DATA / "golden"
UPDATE = os.environ.get("MODELANALYSIS_UPDATE_GOLDEN") == "1"

CASES = {
    # Two models, batch x concurrency, no constraints (tests/data/README.md says where it was recorded).
    "sweep": ("cli-cpu-add_sub-matmul-analysis.json", Objective.MAXIMIZE_THROUGHPUT, {}),
    # A concurrency climb at two batch sizes under a 12 ms p99 budget: points surely under, undecided, over.
    "budget": ("cli-cpu-add_sub-concurrency-climb.json", Objective.MAXIMIZE_THROUGHPUT, {"p99LatencyMs": {"max": 12}}),
}


def recorded(case: str) -> AnalysisResult:
    source, objective, constraints = CASES[case]
    result = AnalysisResult.model_validate(json.loads((DATA / source).read_text()))
    result.objective, result.constraints = objective, Constraints.model_validate(constraints)
    result.best = choose_best(result.points, result.objective, result.constraints)
    return result


def status_of(result: AnalysisResult) -> ModelAnalysisStatus:
    """The status the operator's journal writes from a result (reconcile.AnalysisRun.record)."""
    best = result.best
    assert best is not None
    return ModelAnalysisStatus(
        server_version=result.server_version or None,
        notes=list(result.notes) or None,
        baseline=compact_baseline(result.baseline) if result.baseline else None,
        models=[model_entry(m) for m in result.models] or None,
        points=[compact_point(p) for p in result.points] or None,
        best=best_status(best.overall, result) if best.overall else None,
        best_per_model=[best_status(b, result) for b in best.per_model] or None,
        boundaries=[boundary_status(b) for b in best.boundaries] or None,
    )


def outputs(case: str) -> dict[str, str]:
    result = recorded(case)
    files = {f"{case}/{name}": text for name, text in csv_files(result).items()}
    files[f"{case}/analysis.json"] = result.model_dump_json(indent=2) + "\n"
    files[f"{case}/status.json"] = json.dumps(status_of(result).wire(), indent=1, sort_keys=True) + "\n"
    files[f"{case}/report-data.json"] = json.dumps(report_data(result), indent=1, sort_keys=True) + "\n"
    return files


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_are_as_recorded(case: str) -> None:
    for name, text in outputs(case).items():
        path = GOLDEN / name
        if UPDATE:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        assert path.exists(), f"{path} is missing: run with MODELANALYSIS_UPDATE_GOLDEN=1 to write it"
        assert text == path.read_text(), f"{name} differs from tests/data/golden/{name}"


def test_the_metric_tables_name_real_columns_and_fields() -> None:
    """A point's numbers reach the CSV and status through one table each (core/report.PERF_IN_CSV,
    kube/conditions.PERF_IN_STATUS): every entry names a PerfMeasurement field and a real column or status key."""
    from modelanalysis.core.perf import PerfMeasurement
    from modelanalysis.core.report import INFERENCE_COLUMNS, PERF_IN_CSV
    from modelanalysis.kube.conditions import INTERVALS_IN_STATUS, PERF_IN_STATUS
    from modelanalysis.kube.resource import CompactPoint

    perf_fields = set(PerfMeasurement.model_fields)
    assert all(column in INFERENCE_COLUMNS and field in perf_fields for column, field in PERF_IN_CSV)
    assert all(key in CompactPoint.model_fields and field in perf_fields for key, field, _ in PERF_IN_STATUS)
    for key, low, high in INTERVALS_IN_STATUS:
        assert {low, high} <= perf_fields and key in CompactPoint.model_fields
