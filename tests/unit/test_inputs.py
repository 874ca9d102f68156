"""What perf_analyzer sends a model, and the check against its config before any point runs (core/inputs.py).
The config is Triton's own JSON for examples/models/text_encoder (tests/data/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from modelanalysis.core.inputs import (
    InputSettings,
    ModelInput,
    check_inputs,
    model_inputs,
    parse_input_data,
    parse_shape,
)
from modelanalysis.core.spec import SweepSpec

DATA = Path(__file__).resolve().parents[1] / "data"
EXAMPLE_DATA = Path(__file__).resolve().parents[2] / "examples" / "inputs" / "text_encoder.json"
CONFIG = json.loads((DATA / "triton-2.51-text_encoder-config.json").read_text())
INPUTS = model_inputs(CONFIG)


def test_the_variable_input_is_read_from_tritons_config() -> None:
    assert [ModelInput(name="INPUT_IDS", data_type="TYPE_INT32", dims=(-1,))] == INPUTS
    assert INPUTS[0].variable and INPUTS[0].described() == "INPUT_IDS (TYPE_INT32, dims [-1])"
    # Some Triton releases write int64 dims as strings.
    assert model_inputs({"input": [{"name": "X", "data_type": "TYPE_FP32", "dims": ["3", "-1"]}]})[0].dims == (3, -1)


def test_without_a_shape_the_model_is_refused_in_one_sentence_naming_the_input_and_the_flag() -> None:
    check = check_inputs("text_encoder", INPUTS, InputSettings(), None, set())
    assert check.refusal == (
        "text_encoder: input INPUT_IDS (TYPE_INT32, dims [-1]) has a variable dimension, so perf_analyzer cannot make "
        "up data for it; give its shape with --shape INPUT_IDS:<dims> (manifest: inputs.shapes), or real requests "
        "with --input-data FILE (inputs.data)"
    )


def test_a_shape_that_fits_lets_it_run_and_one_of_the_wrong_rank_is_refused() -> None:
    assert check_inputs("text_encoder", INPUTS, InputSettings(shapes=["INPUT_IDS:128"]), None, set()).refusal is None
    wrong = check_inputs("text_encoder", INPUTS, InputSettings(shapes=["INPUT_IDS:4,32"]), None, set())
    assert wrong.refusal is not None and "shape INPUT_IDS:4,32 does not fit input INPUT_IDS" in wrong.refusal
    assert "give 1 dims" in wrong.refusal


def test_a_fixed_dimension_must_be_given_as_it_is() -> None:
    fixed = [ModelInput(name="IMAGE", data_type="TYPE_FP32", dims=(3, -1, -1))]
    assert check_inputs("m", fixed, InputSettings(shapes=["IMAGE:3,224,224"]), None, set()).refusal is None
    refused = check_inputs("m", fixed, InputSettings(shapes=["IMAGE:1,224,224"]), None, set()).refusal
    assert refused is not None and "equal to the config's where it is fixed" in refused


def test_a_general_shape_for_an_input_a_model_lacks_is_ignored_but_a_scoped_one_is_refused() -> None:
    other = InputSettings(shapes=["INPUT_IDS:16", "TOKENS:8"])
    assert check_inputs("text_encoder", INPUTS, other, None, set()).refusal is None
    scoped = check_inputs("text_encoder", INPUTS, other, None, {"TOKENS"}).refusal
    assert scoped == "text_encoder has no input TOKENS (its inputs: INPUT_IDS); fix the shape's input name"


def test_the_example_input_data_gives_every_shape_but_cannot_be_batched() -> None:
    data = parse_input_data(EXAMPLE_DATA.read_text(), "text_encoder.json")
    assert data.entries == 4 and data.shapes == {"INPUT_IDS": [(8,), (32,), (128,), (16,)]}
    check = check_inputs("text_encoder", INPUTS, InputSettings(data="text_encoder.json"), data, set())
    assert check.refusal is None and check.max_batch == 1
    assert "INPUT_IDS shapes differ ([8], [16], [32], [128])" in check.max_batch_reason


def test_input_data_without_an_input_the_model_needs_is_refused() -> None:
    data = parse_input_data('{"data": [{"OTHER": [1, 2]}]}', "d.json")
    refused = check_inputs("text_encoder", INPUTS, InputSettings(data="d.json"), data, set()).refusal
    assert refused == (
        "text_encoder: input data d.json has no INPUT_IDS; each entry needs every input the model requires "
        "(INPUT_IDS)"
    )


def test_flat_values_without_shapes_still_need_a_shape_for_a_variable_input() -> None:
    data = parse_input_data('{"data": [{"INPUT_IDS": [1, 2, 3]}]}', "flat.json")
    refused = check_inputs("text_encoder", INPUTS, InputSettings(data="flat.json"), data, set()).refusal
    assert refused is not None and "has a variable dimension" in refused
    given = InputSettings(data="flat.json", shapes=["INPUT_IDS:3"])
    assert check_inputs("text_encoder", INPUTS, given, data, set()).refusal is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "is not JSON"),
        ('{"rows": []}', 'has no "data" list of entries'),
        ('{"data": [3]}', "entry 1 is not an object"),
        ('{"data": [{"X": {"content": [1], "shape": "1"}}]}', "shape '1' is not a list of dims"),
    ],
)
def test_input_data_that_is_not_perf_analyzers_format_is_one_sentence(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_input_data(text, "d.json")


@pytest.mark.parametrize("text", ["INPUT_IDS", "INPUT_IDS:", "INPUT_IDS:0", "INPUT_IDS:-1", ":4", "X:4,a"])
def test_a_shape_not_in_perf_analyzers_syntax_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not NAME:D1"):
        parse_shape(text)
    with pytest.raises(ValidationError):
        InputSettings(shapes=[text])


def test_an_input_name_with_colons_keeps_them() -> None:
    assert parse_shape("input:0:4,4").name == "input:0"


def test_one_models_inputs_win_over_the_general_ones_field_by_field_and_shape_by_shape() -> None:
    spec = SweepSpec.model_validate({
        "models": [{"name": "a", "inputs": {"shapes": ["X:8"], "stringLength": 4}}, {"name": "b"}],
        "inputs": {"shapes": ["X:2", "Y:3"], "data": "zero", "stringLength": 16},
    })  # fmt: skip
    a = spec.inputs_for("a")
    assert a.shapes == ["X:8", "Y:3"] and a.data == "zero" and a.string_length == 4
    assert spec.inputs_for("b") == spec.inputs
    assert spec.scoped_shapes("a") == {"X"} and spec.scoped_shapes("b") == set()
    expected = ["--shape", "X:8", "--shape", "Y:3", "--input-data", "zero", "--string-length", "4"]
    assert a.perf_analyzer_args() == expected
