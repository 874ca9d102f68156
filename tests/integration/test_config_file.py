"""`model-analyzer profile -f config.yaml` with a Model Analyzer profile YAML (examples/model-analyzer/profile.yaml)
through the real CLI, Triton and perf_analyzer; flags on the command line override the file."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

from modelanalysis.core.results import AnalysisResult
from tests.integration.conftest import RunCli, wait_until_gone

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "model-analyzer" / "profile.yaml"


def test_model_analyzers_example_file_runs_and_command_line_flags_override_it(
    run_cli: RunCli, no_leftover_triton: Path, tmp_path: Path, fast_flags: list[str]
) -> None:
    document = yaml.safe_load(EXAMPLE.read_text())
    document["model_repository"] = str(no_leftover_triton)
    document["export_path"] = str(tmp_path / "from-file")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(document))
    export = tmp_path / "results"
    # The file asks for batch 1,4 and concurrency 1 and 4; the command line narrows it to batch 1, concurrency 1.
    proc = run_cli("profile", "-f", config, "--batch", "1", "--concurrency", "1", *fast_flags,
                   "--export-path", export, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "instance_group kind KIND_CPU: the model's own kind is kept" in proc.stderr
    with (export / "metrics-model-inference.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {(r["Batch"], r["Concurrency"]) for r in rows} == {("1", "1")}
    result = AnalysisResult.model_validate_json((export / "analysis.json").read_text())
    variants = {p.variant_name for p in result.points}
    # text_encoder's instance counts 1 and 2 (1 is its own config, measured once as the default), add_sub without
    # and with dynamic batching: each variant measured, with the shape the file gives text_encoder.
    assert variants == {"text_encoder_config_default", "text_encoder_config_1", "add_sub_config_default",
                        "add_sub_config_0"}, variants  # fmt: skip
    encoder = [m for m in result.models if m.model == "text_encoder" or m.name.startswith("text_encoder")]
    assert encoder and all(m.inputs == "--shape INPUT_IDS:64" for m in encoder if m.inputs is not None)
    assert result.constraints.p99_latency_ms is not None and result.constraints.p99_latency_ms.max == 50
    assert not (tmp_path / "from-file").exists()  # --export-path on the command line won over export_path
    assert wait_until_gone(no_leftover_triton) == {}


def test_a_typo_in_the_file_is_refused_in_one_sentence_before_anything_starts(
    run_cli: RunCli, model_repo: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"model_repository: {model_repo}\nprofile_models: add_sub\nconcurency: [1, 2]\n")
    proc = run_cli("profile", "-f", config)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"error: {config}: concurency is not a Model Analyzer key this tool knows; did you mean concurrency?"
    )
    assert wait_until_gone(model_repo) == {}
