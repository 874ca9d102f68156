"""The HTML report, rendered from real results (a CPU run captured here, the H100 run in bench/results) and from a
synthetic analysis as large as the CRD accepts: every CSV row is in it, the best points are marked, empty metrics
say why, nothing is fetched from anywhere, and the page stays within its stated size."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelanalysis import cli
from modelanalysis.core.html_report import (
    NO_CI_REASON,
    NO_GPU_REASON,
    REPORT_HTML,
    render_html,
    report_data,
)
from modelanalysis.core.report import INFERENCE_CSV, csv_files, inference_columns
from modelanalysis.core.results import AnalysisResult, ModelOutcome, ModelStatus, PointResult, PointStatus
from modelanalysis.core.spec import Constraints
from modelanalysis.kube.objects import results_configmaps
from tests.report_samples import CPU_ANALYSIS, H100_ANALYSIS, H100_FOLDER, load, synthetic_analysis

# README, "The HTML report": the page of the largest analysis the CRD accepts (1000 points) stays under this.
MAX_REPORT_BYTES_1000_POINTS = 320_000
INTS = {"Batch", "Concurrency", "Max Batch Size", "Measurement Windows", "Requests"}


def page_data(page: str) -> dict[str, Any]:
    found = re.search(r"<script type=application/json id=data>(.*?)</script>", page, re.S)
    assert found, "the page carries no data"
    data: dict[str, Any] = json.loads(found[1])
    return data


def table_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The page's table as the script shows it: each row by column name, strings resolved."""
    text = set(data["text"])
    return [
        {c: data["strings"][v] if i in text else v for i, (c, v) in enumerate(zip(data["columns"], row, strict=True))}
        for row in data["rows"]
    ]


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def assert_same_cell(column: str, shown: Any, written: str) -> None:
    if written == "":
        assert shown in (None, ""), (column, shown)
    elif isinstance(shown, str):
        assert shown == written, column
    else:
        assert shown == pytest.approx(float(written), abs=1e-3), column


@pytest.fixture(scope="module", params=["cpu", "h100"])
def real(request: pytest.FixtureRequest) -> AnalysisResult:
    return load(CPU_ANALYSIS if request.param == "cpu" else H100_ANALYSIS)


def test_every_row_of_the_csv_is_in_the_table_cell_for_cell(real: AnalysisResult) -> None:
    data = page_data(render_html(real))
    assert data["columns"] == inference_columns(real)
    written = csv_rows(csv_files(real)[INFERENCE_CSV])
    shown = table_rows(data)
    assert len(shown) == len(written) == len(real.points)
    for row, line in zip(shown, written, strict=True):
        for column in inference_columns(real):
            assert_same_cell(column, row[column], line[column])


def test_the_h100_runs_own_csv_file_is_in_the_report() -> None:
    # The file the CLI wrote on the H100 then (Model Analyzer's columns and ours of that time), not regenerated.
    shown = table_rows(page_data(render_html(load(H100_ANALYSIS))))
    written = csv_rows((H100_FOLDER / INFERENCE_CSV).read_text())
    assert len(written) == len(shown) == 8
    for row, line in zip(shown, written, strict=True):
        for column in line:
            assert_same_cell(column, row[column], line[column])


def best_in_summary(page: str) -> list[int]:
    return [int(i) for i in re.findall(r"<tr class=best data-point=(\d+)>", page)]


def test_each_models_highest_throughput_point_is_marked_best() -> None:
    result = load(H100_ANALYSIS)
    page = render_html(result)
    keys = {result.points[i].point.key for i in page_data(page)["best"]}
    # From the CSV: gpu_matmul peaks at 579.541 infer/sec (batch 4, concurrency 2), add_sub at batch 4, concurrency 2.
    assert keys == {"gpu_matmul/b4/c2", "add_sub/b4/c2"}
    assert sorted(best_in_summary(page)) == page_data(page)["best"]
    overall = re.search(r"<tr class=best data-point=(\d+)><td>★ overall<td>([^<]+)<", page)
    assert overall and overall[2] == "add_sub"  # 25,196 infer/sec beats 579.5


def test_the_best_point_is_the_highest_throughput_of_its_model(real: AnalysisResult) -> None:
    data = page_data(render_html(real))
    for model in {p.model for p in real.points}:
        measured = [i for i, p in enumerate(real.points) if p.model == model and p.perf is not None]
        top = max(measured, key=lambda i: real.points[i].perf.throughput_infer_per_sec)  # type: ignore[union-attr]
        assert top in data["best"]
    assert len(data["best"]) == len({p.model for p in real.points})


def test_a_cpu_run_says_why_there_are_no_gpu_plots_and_lists_what_did_not_converge() -> None:
    result = load(CPU_ANALYSIS)
    page = render_html(result)
    data = page_data(page)
    assert data["empty"]["gpu"] == NO_GPU_REASON and data["gpus"] == []
    assert "cpu" not in data["empty"] and "ci" not in data["empty"]
    assert data["empty"]["memutil"].startswith("Max Memory Utilization is empty: Triton does not export it.")
    assert "GPUs<dd>none seen (CPU only)" in page
    # One line per model, batch size and reason.
    assert page.count("<li class=skipped>") == 1 and "<b>matmul b4 c1, c2, c4</b> skipped: " in page
    # The busy machine: every point hit its 10 s cap. One line per model, each point's reason in the table.
    assert page.count("<li class=unconverged>") == 2
    assert "<b>matmul</b>: 3 points did not converge (b1/c1, b1/c2, b1/c4)" in page
    assert "First: not converged: +-14.3% after 6 windows in 7 s" in page
    assert "9 measured, 3 skipped, 9 not converged" in page


def test_results_from_before_intervals_say_there_are_no_error_bars() -> None:
    result = load(H100_ANALYSIS)
    data = page_data(render_html(result))
    assert data["empty"]["ci"] == NO_CI_REASON
    assert "gpu" not in data["empty"]
    assert data["gpus"] == ["GPU-5eb94c5c-fe31-bce0-4297-5ba904d02a4d"]
    # Each point's GPU numbers and the baseline's, for the per-GPU plots and their dashed baseline line.
    assert data["pointGpus"][0] == [[0, 73.0, 2577.4, 678.653, None]]
    assert data["baseline"]["gpus"] == [[0, 0.0, 618.66, 120.332, None]]


def test_the_summary_holds_the_analysis_facts() -> None:
    page = render_html(load(H100_ANALYSIS), title="h100-run")
    assert "<title>Model analysis: h100-run: gpu_matmul, add_sub</title>" in page
    for fact in ("Models<dd>gpu_matmul, add_sub", "Points<dd>8 measured", "Triton<dd>24.08-py3 (server 2.51.0)",
                 "Started<dd>2026-11-23 07:23:34 UTC", "Took<dd>52 s"):  # fmt: skip
        assert fact in page, fact


def test_failures_and_load_failures_are_listed_with_their_reasons() -> None:
    result = AnalysisResult(
        triton_version="24.08-py3",
        models=[
            ModelOutcome(name="broken", status=ModelStatus.LOAD_FAILED, error="failed to load 'broken': oops"),
            ModelOutcome(name="add_sub", status=ModelStatus.PROFILED, max_batch_size=8),
        ],
        points=[PointResult(model="add_sub", batch_size=1, concurrency=1, status=PointStatus.FAILED,
                            error="the point timed out after 300 s")],
    )  # fmt: skip
    page = render_html(result)
    assert "<b>broken</b> failed to load: failed to load &#x27;broken&#x27;: oops" in page
    assert "<b>add_sub/b1/c1</b> failed: the point timed out after 300 s" in page
    data = page_data(page)
    assert data["best"] == [] and "measured" in data["empty"]
    assert "0 measured, 1 failed" in page


def test_names_and_errors_cannot_break_out_of_the_page() -> None:
    evil = "</script><script>alert(1)</script>"
    result = AnalysisResult(
        triton_version="x",
        models=[ModelOutcome(name=evil, status=ModelStatus.LOAD_FAILED, error=evil)],
    )
    page = render_html(result)
    assert evil not in page
    assert page.count("</script>") == 2  # the data's and the script's own
    assert page_data(page) is not None


def test_the_page_fetches_nothing() -> None:
    page = render_html(load(H100_ANALYSIS))
    assert "default-src 'none'" in page  # Content-Security-Policy: a browser refuses any fetch
    assert not re.search(r"""\b(src|href)\s*=|url\(|@import""", page)
    # The one URL is the SVG namespace name, which is an identifier, never requested.
    assert re.findall(r"https?://[^\s\"']+", page) == ["http://www.w3.org/2000/svg"]


def test_rendering_is_pure_and_repeatable() -> None:
    result = load(CPU_ANALYSIS)
    before = result.model_dump()
    assert render_html(result) == render_html(result)
    assert result.model_dump() == before


def test_1000_points_stay_under_the_stated_size_and_fit_the_configmap_with_the_csv_files() -> None:
    result = synthetic_analysis()
    assert len(result.points) == 1000
    page = render_html(result)
    size = len(page.encode())
    assert size < MAX_REPORT_BYTES_1000_POINTS, size
    data = page_data(page)
    assert len(data["rows"]) == 1000 and len(data["best"]) == 10
    assert len(results_configmaps("x", "ns", 1, {**csv_files(result), REPORT_HTML: page})) == 1


def test_data_holds_each_point_once() -> None:
    result = synthetic_analysis(models=2, batches=3, concurrencies=4, gpus=2)
    data = report_data(result)
    assert len(data["rows"]) == len(data["pointGpus"]) == 24
    assert all([g[0] for g in gpus] == [0, 1] for gpus in data["pointGpus"])  # indexes into data["gpus"]
    assert len(data["gpus"]) == 2 and len(set(data["strings"])) == len(data["strings"])


# -- the CLI ----------------------------------------------------------------------------------------------------
def test_export_writes_report_html_beside_the_csv_files(tmp_path: Path) -> None:
    result = load(CPU_ANALYSIS)
    cli.export(result, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*csv_files(result), "analysis.json", REPORT_HTML])
    assert (tmp_path / REPORT_HTML).read_text() == render_html(result)


def test_report_command_renders_again_from_analysis_json(tmp_path: Path) -> None:
    (tmp_path / "analysis.json").write_text(CPU_ANALYSIS.read_text())
    run = CliRunner().invoke(cli.app, ["report", str(tmp_path)])
    assert run.exit_code == 0, run.output
    assert (tmp_path / REPORT_HTML).read_text() == render_html(load(CPU_ANALYSIS))
    to_stdout = CliRunner().invoke(cli.app, ["report", str(tmp_path / "analysis.json"), "-o", "-"])
    assert to_stdout.exit_code == 0 and to_stdout.stdout == render_html(load(CPU_ANALYSIS))
    elsewhere = tmp_path / "out" / "r.html"
    assert CliRunner().invoke(cli.app, ["report", str(tmp_path), "--output", str(elsewhere)]).exit_code == 0
    assert elsewhere.is_file()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["missing.json"], "cannot read missing.json"),
        (["bad.json"], "is not an analysis.json that model-analyzer wrote"),
        ([], "give an analysis.json"),
    ],
)
def test_report_command_fails_with_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], says: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text('{"points": 3}')
    run = CliRunner().invoke(cli.app, ["report", *args])
    assert run.exit_code == 1
    assert says in " ".join(run.output.split()) and "Traceback" not in run.output


def test_the_p99_budget_travels_to_the_page_only_when_set() -> None:
    from modelanalysis.core.html_report import report_data
    from modelanalysis.core.spec import Constraints

    result = load(CPU_ANALYSIS)
    assert report_data(result)["p99Budget"] is None
    result.constraints = Constraints.model_validate({"p99LatencyMs": {"max": 5.0}})
    assert report_data(result)["p99Budget"] == 5.0


def test_a_searched_analysis_names_each_model_once_and_the_rule_it_was_judged_by() -> None:
    """A config search's variants are listed under their model; the legend names the objective and budget."""
    result = load(CPU_ANALYSIS)
    named = {"name": "add_sub_config_0", "model": "add_sub", "changes": "2 instances"}
    variant = result.models[0].model_copy(update=named)
    default = result.models[0].model_copy(update={"name": "add_sub_config_default", "model": "add_sub"})
    result.models = [default, variant, *result.models[1:]]
    result.constraints = Constraints.model_validate({"p99LatencyMs": {"max": 5}})
    page = render_html(result)
    assert "Model analysis: add_sub (2 config variants), matmul</title>" in page
    rule = "among the points surely within the constraints (p99 latency at most 5 ms) (p99 and throughput by their 95%"
    assert rule in page
