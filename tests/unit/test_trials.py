"""Trials (core/trials.py) and Triton versions: how an analysis is split between Triton servers, how each point
carries its version, and how the operator keeps several trials in one status. No server, no cluster: the engine
runs against the stand-in Triton of test_engine.py and the operator's journal against a recording API."""

from __future__ import annotations

import csv
import io
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import ValidationError

from modelanalysis.cli_cluster import write_winning_configs
from modelanalysis.core.objectives import choose_best
from modelanalysis.core.report import GPU_CSV, INFERENCE_CSV, csv_files
from modelanalysis.core.results import (
    AnalysisResult,
    ModelOutcome,
    ModelStatus,
    PointResult,
    PointStatus,
    expected_point_count,
)
from modelanalysis.core.spec import Constraints, Objective
from modelanalysis.core.sweep import Point
from modelanalysis.core.trials import plan_trials
from modelanalysis.core.variants import plan_variants
from modelanalysis.engine import EngineEvent, EventKind
from modelanalysis.kube import journal, names, objects
from modelanalysis.kube.conditions import analysis_result, compact_point, expand_point
from modelanalysis.kube.reconcile import AnalysisRun
from modelanalysis.kube.resource import ModelAnalysisSpec, ModelAnalysisStatus, Phase, TrialStatus
from modelanalysis.kube.slots import TritonSlots
from modelanalysis.kube.transitions import trial_end, trials_verdict
from tests.fakes import DEFAULTS, NS, SPEC, Recorder, RecordingApi, StandInTriton, engine, numbers, spec

SEARCH = {**SPEC, "models": [{"name": "add_sub", "configSearch": {"instanceCounts": [1, 2]}}]}


def analysis_spec(**fields: Any) -> ModelAnalysisSpec:
    return ModelAnalysisSpec.model_validate({**SEARCH, **fields})


# ---- planning ---------------------------------------------------------------------------------------------


def test_one_server_at_a_time_runs_each_version_as_one_trial_with_every_variant() -> None:
    s = analysis_spec(triton={"versions": ["24.08-py3", "25.01-py3"]})
    trials = plan_trials(plan_variants(s), s.triton.compared_versions, s.parallelism.max_trials)
    assert [(t.name, t.triton_version, [v.name for v in t.variants]) for t in trials] == [
        ("24.08-py3", "24.08-py3", ["add_sub_config_default", "add_sub_config_0", "add_sub_config_1"]),
        ("25.01-py3", "25.01-py3", ["add_sub_config_default", "add_sub_config_0", "add_sub_config_1"]),
    ]


def test_parallel_trials_split_every_version_and_variant_onto_a_server_of_its_own() -> None:
    s = analysis_spec(triton={"versions": ["24.08-py3", "25.01-py3"]}, parallelism={"maxTrials": 4})
    trials = plan_trials(plan_variants(s), s.triton.compared_versions, s.parallelism.max_trials)
    assert [t.name for t in trials] == [
        "add_sub_config_default@24.08-py3", "add_sub_config_0@24.08-py3", "add_sub_config_1@24.08-py3",
        "add_sub_config_default@25.01-py3", "add_sub_config_0@25.01-py3", "add_sub_config_1@25.01-py3",
    ]  # fmt: skip
    assert [t.index for t in trials] == list(range(6)) and all(len(t.variants) == 1 for t in trials)


def test_without_versions_or_parallelism_the_analysis_is_one_trial_as_before() -> None:
    s = ModelAnalysisSpec.model_validate(SPEC)
    [trial] = plan_trials(plan_variants(s), s.triton.compared_versions, s.parallelism.max_trials)
    assert (trial.triton_version, [v.name for v in trial.variants]) == ("", ["add_sub"])


# ---- the spec -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("triton", "says"),
    [
        ({"versions": ["24.08-py3"], "version": "24.08-py3"}, "leave out triton.version and triton.image"),
        ({"versions": ["24.08-py3"], "image": "nvcr.io/nvidia/tritonserver:24.08-py3"}, "leave out triton.version"),
        ({"versions": ["24.08-py3", "24.08-py3"]}, "lists a version twice"),
        ({"versions": []}, "at least 1 item"),
        ({"versions": ["24.08 py3"]}, "should match pattern"),
    ],
)
def test_a_versions_list_that_cannot_run_is_refused_with_the_fix(triton: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        analysis_spec(triton=triton)


def test_versions_count_in_the_point_bound() -> None:
    many = {"concurrency": list(range(1, 65)), "batchSizes": list(range(1, 6))}
    analysis_spec(**many)  # 3 variants x 5 x 64 = 960 points
    with pytest.raises(ValidationError, match="Triton versions x models"):
        analysis_spec(**many, triton={"versions": ["a", "b"]})


def test_each_trial_pod_runs_its_version_under_its_own_name() -> None:
    s = analysis_spec(triton={"versions": ["24.08-py3", "25.01-py3"]}, parallelism={"maxTrials": 2})
    pod = objects.triton_pod("example", NS, 3, s, DEFAULTS, trial=4, triton_version="25.01-py3")
    assert pod["metadata"]["name"] == "example-g3-t5-triton"
    assert pod["metadata"]["labels"][names.LABEL_TRIAL] == "5"
    assert pod["spec"]["containers"][0]["image"].endswith("tritonserver:25.01-py3")
    alone = objects.triton_pod("example", NS, 3, ModelAnalysisSpec.model_validate(SPEC), DEFAULTS)
    assert alone["metadata"]["name"] == "example-g3-triton" and names.LABEL_TRIAL not in alone["metadata"]["labels"]


# ---- points carry their version ---------------------------------------------------------------------------------


def versioned(version: str, concurrency: int, throughput: float) -> PointResult:
    point = Point(model="add_sub", batch_size=1, concurrency=concurrency, variant="add_sub_config_0",
                  triton_version=version)  # fmt: skip
    perf = numbers(point).model_copy(update={"throughput_infer_per_sec": throughput})
    return PointResult(model="add_sub", batch_size=1, concurrency=concurrency, variant="add_sub_config_0",
                       triton_version=version, status=PointStatus.MEASURED, perf=perf)  # fmt: skip


def test_the_same_point_on_two_versions_is_two_points() -> None:
    a, b = versioned("24.08-py3", 1, 100), versioned("25.01-py3", 1, 120)
    assert a.point.key == "24.08-py3/add_sub_config_0/b1/c1" and a.point.key != b.point.key
    assert Point(model="add_sub", batch_size=1, concurrency=1).key == "add_sub/b1/c1"  # unchanged without versions


def test_the_best_is_reported_per_version_and_overall() -> None:
    points = [versioned("24.08-py3", 1, 100), versioned("24.08-py3", 2, 150), versioned("25.01-py3", 1, 180)]
    best = choose_best(points, Objective.MAXIMIZE_THROUGHPUT, Constraints())
    assert best.overall is not None and best.overall.triton_version == "25.01-py3"
    assert [(b.triton_version, b.load.value) for b in best.per_version] == [("24.08-py3", 2), ("25.01-py3", 1)]
    assert best.overall.summary().startswith("25.01-py3/add_sub_config_0/b1/c1 180.0 infer/s")
    assert choose_best(points[:2], Objective.MAXIMIZE_THROUGHPUT, Constraints()).per_version[0].load.value == 2


def test_status_keeps_each_points_version() -> None:
    point = versioned("25.01-py3", 2, 120)
    assert compact_point(point).triton_version == "25.01-py3"
    assert expand_point(compact_point(point)).triton_version == "25.01-py3"


def test_the_csv_files_name_each_points_triton_version() -> None:
    result = AnalysisResult(triton_version="24.08-py3", points=[versioned("25.01-py3", 1, 100)])
    result.points.append(PointResult(model="add_sub", batch_size=1, concurrency=1, status=PointStatus.FAILED))
    rows = list(csv.DictReader(io.StringIO(csv_files(result)[INFERENCE_CSV])))
    assert [r["Triton Version"] for r in rows] == ["25.01-py3", "24.08-py3"]  # else the analysis' one version
    gpu_rows = list(csv.DictReader(io.StringIO(csv_files(result)[GPU_CSV])))
    assert [r["Triton Version"] for r in gpu_rows] == ["25.01-py3", "24.08-py3"]


def test_an_engine_measures_its_trials_variants_on_its_version_only() -> None:
    s = spec(["a", "b"], [1], [1, 2])
    variants = [v for v in plan_variants(s) if v.name == "b"]
    result = AnalysisResult(triton_version="x")
    engine(s, StandInTriton({"a": 8, "b": 8}), Recorder(), variants=variants, triton_version="25.01-py3").run(result)
    assert [p.point.key for p in result.points] == ["25.01-py3/b/b1/c1", "25.01-py3/b/b1/c2"]
    assert [(m.name, m.triton_version) for m in result.models] == [("b", "25.01-py3")]
    assert expected_point_count(s, result, variants, "25.01-py3") == 2
    assert expected_point_count(s, result) == 4  # all variants, no version: a's 2 not run here, b's not on ""


# ---- the operator: several trials, one status -------------------------------------------------------------------


def trial_run(spec_fields: dict[str, Any]) -> tuple[AnalysisRun, RecordingApi]:
    body = {"metadata": {"name": "example", "namespace": NS, "uid": "u-1", "generation": 1},
            "spec": {**SEARCH, **spec_fields}}  # fmt: skip
    api = RecordingApi(body)
    run = AnalysisRun(api, body, DEFAULTS, TritonSlots(4), threading.Event(), lambda *e: None,
                      logging.getLogger("test"))  # fmt: skip
    run.spec = ModelAnalysisSpec.model_validate(body["spec"])
    return run, api


def test_each_trials_journal_adds_its_share_to_one_status() -> None:
    run, _ = trial_run({"triton": {"versions": ["24.08-py3", "25.01-py3"]}, "parallelism": {"maxTrials": 2}})
    assert run.spec is not None
    trials = run.plan(run.spec)
    run.start_generation(trials)
    assert run.status.trials is not None and len(run.status.trials) == 6
    assert run.status.points_total == 6 * 1  # each trial: batch 1 x concurrency 1
    first, fourth = trials[0], trials[3]
    for trial, throughput in ((first, 100.0), (fourth, 180.0)):
        share = AnalysisResult(triton_version="x", points=[versioned(trial.triton_version, 1, throughput)])
        share.points[0] = share.points[0].model_copy(update={"variant": trial.variants[0].name})
        journal.record(run, EngineEvent(EventKind.POINT_MEASURED, 1, 1, trial.variants[0].name), share, trial)
    wire = run.status.wire()
    assert [p["tritonVersion"] for p in wire["points"]] == ["24.08-py3", "25.01-py3"]
    assert wire["best"]["tritonVersion"] == "25.01-py3" and wire["best"]["throughput"] == 180.0
    assert [b["tritonVersion"] for b in wire["bestPerVersion"]] == ["24.08-py3", "25.01-py3"]
    assert [(t["pointsDone"], t["pointsTotal"]) for t in wire["trials"]][:4] == [(1, 1), (0, 1), (0, 1), (1, 1)]
    assert wire["progress"] == "2/6"
    # After a restart each trial gets back its own share of what status holds.
    again = analysis_result(ModelAnalysisStatus.model_validate(wire), "x")
    fourth_share = journal.trial_share(run, again, fourth)
    assert [p.point.key for p in fourth_share.points] == ["25.01-py3/add_sub_config_default/b1/c1"]
    assert journal.trial_share(run, again, trials[1]).points == []


def test_the_analysis_goes_on_unless_every_trial_failed() -> None:
    ok = TrialStatus(name="a@24.08-py3", phase=Phase.SUCCEEDED)
    failed = TrialStatus(name="b@24.08-py3", phase=Phase.FAILED, reason="ImagePullFailed", message="no such tag")
    assert trials_verdict([ok, failed]).failed == ["b@24.08-py3"] and trials_verdict([ok, failed]).all_failed is None
    verdict = trials_verdict([failed, failed.model_copy(update={"name": "c@25.01-py3", "reason": "Unschedulable"})])
    assert verdict.all_failed is not None
    reason, message = verdict.all_failed
    assert reason == "ImagePullFailed" and "b@24.08-py3: no such tag" in message and "c@25.01-py3" in message
    assert trials_verdict([]).all_failed is None


def test_a_finished_analysis_frees_the_slots_of_all_its_trials() -> None:
    slots = TritonSlots(3)
    for key in ("ns/a#1", "ns/a#2", "ns/ab#1"):
        assert slots.acquire(key, already_running=False)
    slots.release_analysis("ns/a")
    assert slots.holders == {"ns/ab#1"}


# ---- the answer's config, to deploy -----------------------------------------------------------------------------


def test_the_best_point_in_status_carries_its_variants_whole_config_and_the_cli_writes_it_out(tmp_path: Path) -> None:
    run, _ = trial_run({})
    own = {"name": "add_sub", "max_batch_size": 8, "instance_group": [{"name": "add_sub_0", "count": 1,
                                                                       "kind": "KIND_CPU"}]}  # fmt: skip
    perf = numbers(Point(model="add_sub", batch_size=1, concurrency=2))
    winner = PointResult(model="add_sub", batch_size=1, concurrency=2, variant="add_sub_config_1",
                         status=PointStatus.MEASURED, perf=perf)  # fmt: skip
    result = AnalysisResult(triton_version="x", points=[winner], model_configs={"add_sub": own})
    result.best = choose_best(result.points, Objective.MAXIMIZE_THROUGHPUT, Constraints())
    [trial] = run.plan(run.spec) if run.spec else []
    run.status.trials = [TrialStatus(name=trial.name)]
    journal.record(run, EngineEvent(EventKind.POINT_MEASURED, 1, 1, "add_sub_config_1"), result, trial)
    wire = run.status.wire()
    assert wire["best"]["config"] == {**own, "instance_group": [{"count": 2, "kind": "KIND_CPU"}]}  # 2 instances
    assert wire["modelConfigs"] == {"add_sub": own}
    # Rebuilt from status after a restart, the model's own config is still there for the next best point.
    assert analysis_result(ModelAnalysisStatus.model_validate(wire), "x").model_configs == {"add_sub": own}

    write_winning_configs(wire, tmp_path)
    text = (tmp_path / "add_sub" / "config.pbtxt").read_text()
    assert 'name: "add_sub"' in text and "max_batch_size: 8" in text and "count: 2" in text


def test_without_a_config_search_there_is_no_config_to_write() -> None:
    with pytest.raises(typer.Exit):
        write_winning_configs({"bestPerModel": [{"model": "add_sub", "summary": "x"}]}, Path("/nonexistent"))


def test_a_trial_none_of_whose_variants_would_load_failed_and_one_that_measured_succeeded() -> None:
    loaded = ModelOutcome(name="add_sub_config_default", status=ModelStatus.PROFILED)
    refused = ModelOutcome(name="add_sub_config_0", status=ModelStatus.LOAD_FAILED, error="dynamic batching needs "
                           "max_batch_size > 0")  # fmt: skip
    end = trial_end([refused], 0)
    assert (end.phase, end.reason) == (Phase.FAILED, "ModelLoadFailed")
    assert end.message == "failed to load: add_sub_config_0: dynamic batching needs max_batch_size > 0"
    end = trial_end([loaded, refused], 4)
    assert (end.phase, end.reason, end.message) == (
        Phase.SUCCEEDED, None, "4 points measured; failed to load: add_sub_config_0"
    )


def test_models_measured_together_write_their_best_combinations_configs(tmp_path: Path) -> None:
    configs = {"add_sub": {"name": "add_sub", "max_batch_size": 8, "instance_group": [{"count": 2}]},
               "matmul": {"name": "matmul", "max_batch_size": 0, "instance_group": [{"count": 1}]}}  # fmt: skip
    status = {"bestTogether": {"variants": ["add_sub_config_0", "matmul_config_default"], "configs": configs},
              "bestPerModel": [{"model": "add_sub", "config": {"name": "add_sub", "max_batch_size": 4}}]}  # fmt: skip
    write_winning_configs(status, tmp_path)
    assert sorted(d.name for d in tmp_path.iterdir()) == ["add_sub", "matmul"]
    assert "count: 2" in (tmp_path / "add_sub" / "config.pbtxt").read_text()  # the combination's, not bestPerModel
