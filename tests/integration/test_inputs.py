"""Models whose inputs vary in size (examples/models/text_encoder: INPUT_IDS, dims [-1]) on the real local
Triton and perf_analyzer: refused up front without a shape while the other models run; measured with --shape,
with a scoped MODEL/NAME:DIMS shape, and with an input-data file."""

from __future__ import annotations

import csv
from pathlib import Path

from modelanalysis.core.results import AnalysisResult, ModelStatus
from tests.integration.conftest import RunCli, wait_until_gone

EXAMPLE_DATA = Path(__file__).resolve().parents[2] / "examples" / "inputs" / "text_encoder.json"


def rows(export: Path) -> list[dict[str, str]]:
    with (export / "metrics-model-inference.csv").open() as f:
        return list(csv.DictReader(f))


def test_without_a_shape_the_variable_model_is_refused_in_one_sentence_and_the_others_are_measured(
    run_cli: RunCli, no_leftover_triton: Path, tmp_path: Path, fast_flags: list[str]
) -> None:
    export = tmp_path / "refused"
    proc = run_cli("profile", "--model-folder", no_leftover_triton, "--model-names", "text_encoder,add_sub",
                   *fast_flags, "--export", "--export-path", export)  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # a model was not measured: the run says so in its exit status
    assert "text_encoder: input INPUT_IDS (TYPE_INT32, dims [-1]) has a variable dimension" in proc.stderr
    assert "--shape INPUT_IDS:<dims>" in proc.stderr and "Traceback" not in proc.stderr
    assert "perf_analyzer failed" not in proc.stderr  # refused before any point ran
    assert [(r["Model"], r["Status"]) for r in rows(export)] == [("add_sub", "Measured")]
    result = AnalysisResult.model_validate_json((export / "analysis.json").read_text())
    outcome = result.outcome("text_encoder")
    assert outcome is not None and outcome.status == ModelStatus.REFUSED
    assert wait_until_gone(no_leftover_triton) == {}


def test_with_a_shape_every_batch_is_measured(
    run_cli: RunCli, no_leftover_triton: Path, tmp_path: Path, fast_flags: list[str]
) -> None:
    export = tmp_path / "shaped"
    proc = run_cli("profile", "--model-folder", no_leftover_triton, "--model-names", "text_encoder,add_sub",
                   "--shape", "text_encoder/INPUT_IDS:32", "--batch", "1,2", *fast_flags,
                   "--export", "--export-path", export)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    measured = [(r["Model"], r["Batch"], r["Status"]) for r in rows(export)]
    assert measured == [("text_encoder", "1", "Measured"), ("text_encoder", "2", "Measured"),
                        ("add_sub", "1", "Measured"), ("add_sub", "2", "Measured")]  # fmt: skip
    result = AnalysisResult.model_validate_json((export / "analysis.json").read_text())
    encoder, add_sub = result.outcome("text_encoder"), result.outcome("add_sub")
    assert encoder is not None and encoder.inputs == "--shape INPUT_IDS:32"  # what was sent, recorded
    assert add_sub is not None and add_sub.inputs is None
    assert [r["Inputs"] for r in rows(export)] == ["--shape INPUT_IDS:32"] * 2 + [""] * 2  # the CSV says it too


def test_with_an_input_data_file_of_several_lengths_batch_1_is_measured_and_larger_batches_skipped_with_why(
    run_cli: RunCli, no_leftover_triton: Path, tmp_path: Path, fast_flags: list[str]
) -> None:
    export = tmp_path / "data"
    proc = run_cli("profile", "--model-folder", no_leftover_triton, "--model-names", "text_encoder",
                   "--input-data", EXAMPLE_DATA, "--batch", "1,2", *fast_flags,
                   "--export", "--export-path", export)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [(r["Batch"], r["Status"]) for r in rows(export)] == [("1", "Measured")]
    assert "skipped text_encoder b2 c1: the input data's INPUT_IDS shapes differ" in proc.stderr


def test_a_scoped_shape_for_an_input_the_model_lacks_is_refused(
    run_cli: RunCli, no_leftover_triton: Path, tmp_path: Path, fast_flags: list[str]
) -> None:
    proc = run_cli("profile", "--model-folder", no_leftover_triton, "--model-names", "text_encoder",
                   "--shape", "text_encoder/TOKENS:4", *fast_flags)  # fmt: skip
    assert proc.returncode == 1
    assert "text_encoder has no input TOKENS (its inputs: INPUT_IDS); fix the shape's input name" in proc.stderr


def test_an_input_data_file_that_is_not_json_is_refused_before_a_server_starts(
    run_cli: RunCli, model_repo: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc = run_cli("profile", "--model-folder", model_repo, "--model-names", "text_encoder", "--input-data", bad)
    assert proc.returncode == 1
    assert f"--input-data: input data {bad} is not JSON" in proc.stderr and "Traceback" not in proc.stderr
    assert wait_until_gone(model_repo) == {}
