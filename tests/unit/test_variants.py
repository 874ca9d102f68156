"""Config variants: their names, what each changes, and the config Triton is given for each."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from modelanalysis.adapters.model_repository import write_deployable_model
from modelanalysis.core.spec import ConfigSearch, ModelTarget, SweepSpec
from modelanalysis.core.variants import config_override, model_variants, plan_variants

# add_sub's config as Triton's GET /v2/models/add_sub/config returns it (trimmed to the fields that matter).
OWN = {
    "name": "add_sub",
    "backend": "python",
    "max_batch_size": 8,
    "input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": ["16"]}],
    "instance_group": [{"name": "add_sub_0", "kind": "KIND_CPU", "count": 1, "gpus": [], "passive": False}],
}


def test_a_model_without_a_search_is_one_variant_named_after_it() -> None:
    [only] = model_variants(ModelTarget(name="add_sub"))
    assert (only.name, only.point_variant, only.changes_config) == ("add_sub", "", False)


def test_variants_are_named_as_model_analyzer_names_them_default_first() -> None:
    search = ConfigSearch(instance_counts=[1, 2], dynamic_batching=[False, True])
    variants = model_variants(ModelTarget(name="add_sub", config_search=search))
    assert [v.name for v in variants] == [f"add_sub_config_{s}" for s in ("default", "0", "1", "2", "3")]
    assert [v.describe() for v in variants] == [
        "its own config", "1 instance, no dynamic batching", "1 instance, dynamic batching",
        "2 instances, no dynamic batching", "2 instances, dynamic batching",
    ]  # fmt: skip


def test_the_override_changes_only_what_the_variant_sets() -> None:
    variant = model_variants(ModelTarget(name="add_sub", config_search=ConfigSearch(instance_counts=[4])))[1]
    config = config_override(OWN, variant)
    assert config["instance_group"] == [{"kind": "KIND_CPU", "count": 4, "gpus": [], "passive": False}]
    assert config["max_batch_size"] == 8 and "dynamic_batching" not in config
    assert OWN["instance_group"][0]["count"] == 1  # the model's own config is not changed in place


def test_dynamic_batching_is_added_or_removed_and_max_batch_size_set() -> None:
    search = ConfigSearch(max_batch_sizes=[32], dynamic_batching=[True, False])
    on, off = model_variants(ModelTarget(name="m", config_search=search))[1:]
    assert config_override(OWN, on)["dynamic_batching"] == {} and config_override(OWN, on)["max_batch_size"] == 32
    assert "dynamic_batching" not in config_override({**OWN, "dynamic_batching": {}}, off)


def test_every_model_gets_its_own_variants_in_order() -> None:
    spec = SweepSpec.model_validate(
        {"models": [{"name": "a", "configSearch": {"instanceCounts": [2]}}, {"name": "b"}]}
    )
    assert [v.name for v in plan_variants(spec)] == ["a_config_default", "a_config_0", "b"]


def test_too_many_combinations_are_refused_with_the_bound() -> None:
    with pytest.raises(ValidationError, match="72 config variants"):
        ConfigSearch(instance_counts=list(range(1, 10)), max_batch_sizes=[1, 2, 4, 8, 16, 32, 64, 128])


def test_a_variants_config_is_written_as_a_config_pbtxt_beside_links_to_the_models_files(tmp_path: Path) -> None:
    source = tmp_path / "models" / "add_sub"
    (source / "1").mkdir(parents=True)
    (source / "1" / "model.py").write_text("# the model\n")
    (source / "config.pbtxt").write_text('name: "add_sub"\n')
    variant = model_variants(ModelTarget(name="add_sub", config_search=ConfigSearch(instance_counts=[2])))[1]
    folder = write_deployable_model(config_override(OWN, variant), tmp_path / "out" / "add_sub", source)
    text = (folder / "config.pbtxt").read_text()
    assert 'name: "add_sub"' in text and "count: 2" in text and "kind: KIND_CPU" in text
    assert "data_type: TYPE_FP32" in text and "dims: 16" in text  # enums bare, int64 as numbers
    assert (folder / "1").is_symlink() and (folder / "1" / "model.py").read_text() == "# the model\n"
    assert (source / "config.pbtxt").read_text() == 'name: "add_sub"\n'  # the original is untouched
