"""Two models measured together on the real local Triton (--concurrent): each by its own perf_analyzer over the
same windows, each with its own numbers, and the best combination under both models' constraints."""

from __future__ import annotations

import csv
from pathlib import Path

from modelanalysis.core.results import AnalysisResult
from tests.integration.conftest import RunCli


def throughputs(export: Path) -> dict[str, tuple[float, float, float]]:
    with (export / "metrics-model-inference.csv").open() as f:
        return {
            r["Model"]: (float(r["Throughput (infer/sec)"]), float(r["Throughput 95% CI Low (infer/sec)"]),
                         float(r["Throughput 95% CI High (infer/sec)"]))
            for r in csv.DictReader(f)
        }  # fmt: skip


def test_two_models_measured_together_each_have_their_own_numbers_and_a_best_combination(
    run_cli: RunCli, model_repo: Path, tmp_path: Path, fast_flags: list[str]
) -> None:
    flags = ["--model-folder", model_repo, "--concurrency", "4", *fast_flags, "--export"]
    alone = run_cli("profile", "-m", "add_sub,matmul", *flags, "--export-path", tmp_path / "alone")
    assert alone.returncode == 0, alone.stderr
    together = run_cli("profile", "-m", "add_sub,matmul", "--concurrent", *flags, "--latency-budget", "500",
                       "--export-path", tmp_path / "together")  # fmt: skip
    assert together.returncode == 0, together.stderr
    assert "add_sub, matmul were loaded together and measured at once" in together.stdout + together.stderr
    by_alone, by_together = throughputs(tmp_path / "alone"), throughputs(tmp_path / "together")
    # Each model measured in both runs, with its interval (how much less together depends on how busy this machine
    # is: a comparison of the numbers belongs in a benchmark, not a test).
    assert set(by_alone) == set(by_together) == {"add_sub", "matmul"}
    assert all(low <= value <= high for value, low, high in by_together.values())
    result = AnalysisResult.model_validate_json((tmp_path / "together" / "analysis.json").read_text())
    assert sorted(p.measured_with or [] for p in result.points) == [["add_sub"], ["matmul"]]
    assert result.best is not None and result.best.together is not None
    assert result.best.together.satisfies_constraints and len(result.best.together.members) == 2
    assert "Best together: batch 1 concurrency 4" in together.stdout
    one = run_cli("profile", "-m", "add_sub", "--concurrent", "--model-folder", model_repo)
    assert one.returncode == 1 and "give two or more models" in one.stderr


def test_with_config_variants_every_combination_of_one_variant_each_is_measured_together(
    run_cli: RunCli, model_repo: Path, tmp_path: Path, fast_flags: list[str]
) -> None:
    run = run_cli("profile", "-m", "add_sub,matmul", "--concurrent", "--instance-counts", "2", "--model-folder",
                  model_repo, "--concurrency", "2", *fast_flags, "--export", "--export-path", tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = AnalysisResult.model_validate_json((tmp_path / "analysis.json").read_text())
    combinations = {frozenset([p.variant_name, *(p.measured_with or [])]) for p in result.points}
    assert combinations == {frozenset({f"add_sub_config_{a}", f"matmul_config_{m}"})
                            for a in ("default", "0") for m in ("default", "0")}  # fmt: skip
    assert len(result.points) == 8 and all(p.perf is not None for p in result.points)
    # Each variant loaded with its own config: its outcome records the instances Triton reported.
    counts = {m.name: m.instance_group.split(":")[0] for m in result.models}
    assert counts == {"add_sub_config_default": "1", "add_sub_config_0": "2", "matmul_config_default": "1",
                      "matmul_config_0": "2"}  # fmt: skip
    assert result.best is not None and result.best.together is not None
    chosen = result.best.together.variants or []
    assert len(chosen) == 2 and f"Best together: {' + '.join(chosen)} at batch 1 concurrency 2" in run.stdout
    # What to deploy: the combination's configs, which go together.
    written = tmp_path / "output_model_repository"
    assert sorted(d.name for d in written.iterdir()) == ["add_sub", "matmul"]
