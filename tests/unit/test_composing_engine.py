"""A pipeline's composing-model walk inside the engine, with the stand-in Triton of tests/fakes.py (a BLS model
`bls` calling `a`: the spec names its composing models, so no ensemble config is needed). The walk's decisions
are tested on real figures in test_composing.py; these test what the engine does with them: which configs it
loads, what it records, what a split trial and a walk that ends early leave, and that status keeps the walk."""

from __future__ import annotations

from modelanalysis.core.perf import PointMeasurementError
from modelanalysis.core.results import AnalysisResult, ModelStatus, expected_point_count
from modelanalysis.core.spec import ConfigSearch, ModelTarget, SweepSpec
from modelanalysis.core.sweep import Point
from modelanalysis.core.variants import plan_variants
from modelanalysis.engine import PIPELINE_NOT_SPLIT
from modelanalysis.kube.conditions import analysis_result, model_entry
from modelanalysis.kube.resource import ModelAnalysisStatus
from tests.fakes import Recorder, StandInTriton, engine, numbers, spec


def searched_bls(counts: list[int]) -> SweepSpec:
    s = spec(["bls"], [1], [4])
    target = ModelTarget(name="bls", config_search=ConfigSearch(instance_counts=counts), bls_composing_models=["a"])
    return s.model_copy(update={"models": [target]})


def test_each_walk_variant_loads_its_steps_configs_and_records_them() -> None:
    triton, journal = StandInTriton({"bls": 8, "a": 8}), Recorder()
    result = engine(searched_bls([1, 2]), triton, journal).run(AnalysisResult(triton_version=""))
    assert [m.name for m in result.models] == ["bls_config_default", "bls_config_0", "bls_config_1"]
    # No breakdown here (no metrics): the steps are taken in order, the BLS model first. Equal numbers: no
    # variant is surely better, so each is tried on the default.
    assert [m.changes for m in result.models] == ["its own config", "bls: 2 instances", "a: 2 instances"]
    assert result.models[2].reason == "bls has no untried setting left and a is the next slowest step of " \
        "bls_config_default, the best so far"
    assert "load bls with 2 instances" in triton.calls and "load a with 2 instances" in triton.calls
    # What each step was loaded with, to write out if it wins: bls's second instance, a as its own config has it.
    second = result.models[1]
    assert second.composing_configs is not None
    assert second.composing_configs["bls"]["instance_group"][0]["count"] == 2
    assert second.composing_configs["a"]["instance_group"][0]["count"] == 1


def test_a_trial_without_the_pipelines_default_refuses_its_variant_in_one_sentence() -> None:
    s = searched_bls([1, 2])
    placeholder = plan_variants(s)[1]
    triton, journal = StandInTriton({"bls": 8, "a": 8}), Recorder()
    result = engine(s, triton, journal, variants=[placeholder]).run(AnalysisResult(triton_version=""))
    (outcome,) = result.models
    assert outcome.status == ModelStatus.REFUSED and outcome.error == PIPELINE_NOT_SPLIT.format(model="bls")
    assert not result.points


def test_a_walk_with_nothing_to_start_from_leaves_its_variants_not_needed_and_counts_no_points_for_them() -> None:
    def fails(point: Point, settings: object) -> object:
        raise PointMeasurementError("perf_analyzer died")

    s = searched_bls([1, 2])
    triton, journal = StandInTriton({"bls": 8, "a": 8}), Recorder()
    result = engine(s, triton, journal, run=fails).run(AnalysisResult(triton_version=""))
    assert [m.status for m in result.models] == [ModelStatus.PROFILED, ModelStatus.NOT_NEEDED, ModelStatus.NOT_NEEDED]
    assert result.models[1].reason == "the pipeline's own config measured no point: no bottleneck to start from"
    assert expected_point_count(s, result) == len(result.points) == 1


def test_status_keeps_each_variants_steps_and_reason_so_a_restarted_operator_walks_on() -> None:
    triton, journal = StandInTriton({"bls": 8, "a": 8}), Recorder()
    s = searched_bls([1, 2])
    done = engine(s, triton, journal, run=lambda p, _: numbers(p)).run(AnalysisResult(triton_version=""))
    status = ModelAnalysisStatus(models=[model_entry(m) for m in done.models])
    rebuilt = analysis_result(ModelAnalysisStatus.model_validate(status.model_dump(by_alias=True)), "")
    for before, after in zip(done.models, rebuilt.models, strict=True):
        assert after.composing == before.composing and after.reason == before.reason
