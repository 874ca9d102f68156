"""The `model-analyzer` CLI end to end: a real Triton server (nvidia-pytriton's, CPU, Python backend) and the
real perf_analyzer, run as the user runs them, as a subprocess. Nothing is mocked and nothing asserts a time.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelanalysis.core.results import AnalysisResult, ModelStatus
from tests.integration.conftest import (
    RunCli,
    RunningTriton,
    cli_env,
    copy_models,
    kill_leftovers,
    triton_processes,
    wait_until_gone,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

INFERENCE = "metrics-model-inference.csv"
GPU = "metrics-model-gpu.csv"
SERVER_ONLY = "metrics-server-only.csv"
GPU_METRIC_COLUMNS = [
    "Max GPU Utilization (%)",
    "Max GPU Memory (MB)",
    "Max Memory Utilization (%)",
    "Max GPU Power (W)",
]
GPU_FILE_METRIC_COLUMNS = [
    "GPU Memory Usage (MB)",
    "GPU Utilization (%)",
    "GPU Power Usage (W)",
    "Memory Utilization (%)",
]


def read_csv(path: Path) -> list[dict[str, str]]:
    text = path.read_text()
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    assert all(len(row) == len(header) for row in rows), f"ragged CSV {path}:\n{text}"
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


def points(rows: list[dict[str, str]]) -> list[tuple[str, int, int]]:
    return [(r["Model"], int(r["Batch"]), int(r["Concurrency"])) for r in rows]


def assert_one_error_sentence(proc: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Exit 1, no traceback, and exactly one `error:` line on stderr: one sentence that names the problem."""
    assert proc.returncode == 1, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    error_lines = [line for line in errors if line.startswith("error:")]
    assert len(error_lines) == 1, proc.stderr
    [line] = error_lines
    assert errors[-1] == line, f"the error is not the last thing said:\n{proc.stderr}"
    for text in expected:
        assert text in line, f"{text!r} not in {line!r}"
    return line


def assert_measured(row: dict[str, str]) -> None:
    assert row["Status"] == "Measured", row
    assert row["Satisfies Constraints"] == "Yes"
    assert row["Error"] == ""
    assert float(row["Throughput (infer/sec)"]) > 0
    p50, p90, p95, p99 = (float(row[f"p{p} Latency (ms)"]) for p in (50, 90, 95, 99))
    assert 0 < p50 <= p90 <= p95 <= p99, row


# --- the main sweep, run once for several checks ----------------------------------------------------------


@dataclass
class SweepRun:
    proc: subprocess.CompletedProcess[str]
    export: Path
    model_repo: Path
    left_after_exit: dict[int, str]


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory: pytest.TempPathFactory, repo_root: Path, cli: Path, fast_flags: list[str]) -> SweepRun:
    base = tmp_path_factory.mktemp("sweep")
    repo = copy_models(repo_root, base / "models")
    export = base / "results"
    try:
        proc = subprocess.run(
            [str(cli), "profile", "--model-folder", str(repo), "--model-names", "add_sub,matmul",
             "--batch", "1,8,16", "--concurrency", "1,2", *fast_flags, "--export", "--export-path", str(export)],
            cwd=base, env=cli_env(), capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
        left = triton_processes(repo)  # right as the CLI has exited: the server must already be gone
        return SweepRun(proc=proc, export=export, model_repo=repo, left_after_exit=left)
    finally:
        wait_until_gone(repo)
        kill_leftovers(repo)


PLANNED = [
    ("add_sub", 1, 1), ("add_sub", 1, 2), ("add_sub", 8, 1), ("add_sub", 8, 2),  # batch 16 > max_batch_size 8
    ("matmul", 1, 1), ("matmul", 1, 2),  # max_batch_size 0: batch 1 only
]  # fmt: skip


def test_sweep_exits_0_and_writes_the_three_csv_files(sweep_run: SweepRun) -> None:
    assert sweep_run.proc.returncode == 0, sweep_run.proc.stderr
    assert "Traceback" not in sweep_run.proc.stderr
    for name in (INFERENCE, GPU, SERVER_ONLY, "analysis.json", "report.html"):
        assert (sweep_run.export / name).is_file(), name
    assert not list(sweep_run.export.glob(".*.tmp")), "a temporary file was left behind"


def test_one_row_per_planned_point_in_order(sweep_run: SweepRun) -> None:
    rows = read_csv(sweep_run.export / INFERENCE)
    assert points(rows) == PLANNED
    assert points(read_csv(sweep_run.export / GPU)) == PLANNED  # no GPU: still one row per point


def test_every_point_is_measured_with_ordered_latencies(sweep_run: SweepRun) -> None:
    for row in read_csv(sweep_run.export / INFERENCE):
        assert_measured(row)
        assert float(row["Avg Latency (ms)"]) > 0
        # Triton's own inference count over the point agrees that work was done.
        assert float(row["Server Throughput (infer/sec)"]) > 0


def test_model_columns_come_from_the_served_config(sweep_run: SweepRun) -> None:
    rows = read_csv(sweep_run.export / INFERENCE)
    for row in rows:
        assert row["Instance Group"] == "1:CPU"
        assert Path(row["Model Config Path"]) == (sweep_run.model_repo / row["Model"] / "config.pbtxt").resolve()
        assert row["Max Batch Size"] == {"add_sub": "8", "matmul": "0"}[row["Model"]]


def test_matmul_runs_at_batch_1_only_and_the_skipped_points_are_reported(sweep_run: SweepRun) -> None:
    stderr = sweep_run.proc.stderr
    # One line per batch size and reason.
    for batch in (8, 16):
        assert re.search(rf"^skipped matmul b{batch} c1, c2: matmul has max_batch_size 0", stderr, re.M), stderr
    assert re.search(r"^skipped add_sub b16 c1, c2: batch 16 exceeds add_sub's max_batch_size 8", stderr, re.M), stderr
    result = AnalysisResult.model_validate_json((sweep_run.export / "analysis.json").read_text())
    skipped = {m.name: sorted(s.point.key for s in m.skipped) for m in result.models}
    assert skipped == {
        "add_sub": ["add_sub/b16/c1", "add_sub/b16/c2"],
        "matmul": ["matmul/b16/c1", "matmul/b16/c2", "matmul/b8/c1", "matmul/b8/c2"],
    }
    assert [m.status for m in result.models] == [ModelStatus.PROFILED, ModelStatus.PROFILED]
    assert result.interrupted is False
    assert result.server_version  # what the real server said, e.g. 2.51.0


def test_cpu_columns_are_filled_and_gpu_columns_empty_on_a_machine_without_gpu(sweep_run: SweepRun) -> None:
    if Path("/dev/nvidia0").exists():
        pytest.skip("this machine has an NVIDIA GPU: the GPU columns may be filled")
    for row in read_csv(sweep_run.export / INFERENCE):
        assert 0 < float(row["Max CPU Utilization (%)"]) <= 100
        assert float(row["Max CPU Memory (MB)"]) > 0
        for column in GPU_METRIC_COLUMNS:
            assert row[column] == "", column
    for row in read_csv(sweep_run.export / GPU):
        assert row["GPU UUID"] == ""
        for column in GPU_FILE_METRIC_COLUMNS:
            assert row[column] == "", column


def test_server_only_baseline_row(sweep_run: SweepRun) -> None:
    [row] = read_csv(sweep_run.export / SERVER_ONLY)
    assert row["Model"] == "triton-server"
    assert float(row["CPU Utilization (%)"]) >= 0
    assert float(row["CPU Memory Usage (MB)"]) > 0
    if not Path("/dev/nvidia0").exists():
        assert row["GPU UUID"] == row["GPU Memory Usage (MB)"] == row["GPU Utilization (%)"] == ""


def test_the_started_server_is_gone_and_was_stopped_cleanly(sweep_run: SweepRun) -> None:
    assert {pid: cmd for pid, cmd in sweep_run.left_after_exit.items() if "tritonserver " in cmd} == {}
    assert wait_until_gone(sweep_run.model_repo) == {}
    log = (sweep_run.export / "triton-server.log").read_text()
    assert "Signal (15) received" in log  # stopped by the CLI, not killed
    # The CLI closed its own connection first; Triton otherwise waits for it and is SIGKILLed meanwhile.
    assert not re.search(r"Found [1-9]\d* HTTP service connections", log), log[-2000:]


def test_exported_files_get_the_usual_mode(sweep_run: SweepRun) -> None:
    mask = os.umask(0)
    os.umask(mask)
    for name in (INFERENCE, GPU, SERVER_ONLY, "analysis.json", "report.html"):
        assert (sweep_run.export / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


def test_the_report_holds_every_planned_point(sweep_run: SweepRun) -> None:
    page = (sweep_run.export / "report.html").read_text()
    found = re.search(r"<script type=application/json id=data>(.*?)</script>", page, re.S)
    assert found, "report.html carries no data"
    data = json.loads(found[1])
    model, batch, concurrency = (data["columns"].index(c) for c in ("Model", "Batch", "Concurrency"))
    shown = [(data["strings"][row[model]], row[batch], row[concurrency]) for row in data["rows"]]
    assert shown == PLANNED
    assert "<b>add_sub b16 c1, c2</b> skipped" in page and "No GPU metrics" in page


def test_the_table_is_printed_on_stdout(sweep_run: SweepRun) -> None:
    assert "Model Analyzer results" in sweep_run.proc.stdout
    assert "add_sub" in sweep_run.proc.stdout


# --- other ways to run ----------------------------------------------------------------------------------------


def test_old_form_without_subcommand_works(run_cli: RunCli, no_leftover_triton: Path, tmp_path: Path,
                                           fast_flags: list[str]) -> None:  # fmt: skip
    export = tmp_path / "old-form"
    proc = run_cli("--batch", "1", "--concurrency", "1", "--model-names", "add_sub", "--model-folder",
                   no_leftover_triton, *fast_flags, "--export", "--export-path", export)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = read_csv(export / INFERENCE)
    assert points(rows) == [("add_sub", 1, 1)]
    assert_measured(rows[0])
    assert wait_until_gone(no_leftover_triton) == {}


def test_triton_url_profiles_a_running_server_and_leaves_it_running(
    run_cli: RunCli, running_triton: RunningTriton, tmp_path: Path, fast_flags: list[str]
) -> None:
    control = running_triton.control()
    try:
        control.load("matmul")  # loaded by someone else before the run: the CLI must leave it loaded
        export = tmp_path / "url"
        proc = run_cli("profile", "--triton-url", running_triton.url, "--model-names", "add_sub,matmul",
                       *fast_flags, "--export", "--export-path", export)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "Starting Triton" not in proc.stderr
        rows = read_csv(export / INFERENCE)
        assert points(rows) == [("add_sub", 1, 1), ("matmul", 1, 1)]
        for row in rows:
            assert_measured(row)
            assert row["Model Config Path"] == ""  # no --model-folder: the file is not known
        assert not (export / "triton-server.log").exists()
        # The server is still there and serving.
        assert running_triton.server.process is not None
        assert running_triton.server.process.poll() is None
        control.wait_ready(timeout_s=10)
        assert control.is_model_ready("matmul")
        # add_sub, which the CLI loaded, is unloaded again (Triton unloads in the background).
        deadline = time.monotonic() + 30
        while control.is_model_ready("add_sub") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not control.is_model_ready("add_sub")
    finally:
        control.close()


# --- bad input: one sentence, no traceback ---------------------------------------------------------------------


def test_model_missing_from_the_folder(run_cli: RunCli, model_repo: Path) -> None:
    proc = run_cli("profile", "--model-folder", model_repo, "--model-names", "add_sub,nope")
    assert_one_error_sentence(proc, "'nope'", str(model_repo))
    assert triton_processes(model_repo) == {}


@pytest.mark.parametrize("flag", ["--batch", "--concurrency"])
@pytest.mark.parametrize("value", ["0", "x", "1,,4", "-2", "²"])
def test_bad_integer_lists(run_cli: RunCli, model_repo: Path, flag: str, value: str) -> None:
    proc = run_cli("profile", "--model-folder", model_repo, "--model-names", "add_sub", flag, value)
    assert_one_error_sentence(proc, flag, "is not a positive integer")


def test_port_already_in_use(run_cli: RunCli, model_repo: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = run_cli("profile", "--model-folder", model_repo, "--model-names", "add_sub",
                       "--triton-http-port", str(port))  # fmt: skip
    assert_one_error_sentence(proc, f"Port {port}", "already in use", "--triton-http-port")
    assert triton_processes(model_repo) == {}


def test_triton_url_with_nothing_listening(run_cli: RunCli) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = run_cli("profile", "--triton-url", f"127.0.0.1:{port}", "--model-names", "add_sub")
    assert_one_error_sentence(proc, f"127.0.0.1:{port}", "not reachable", "--triton-url")


def test_triton_url_that_is_not_host_port(run_cli: RunCli) -> None:
    proc = run_cli("profile", "--triton-url", "localhost", "--model-names", "add_sub")
    assert_one_error_sentence(proc, "--triton-url", "host:port")


def test_perf_analyzer_path_that_does_not_exist(run_cli: RunCli, model_repo: Path) -> None:
    proc = run_cli("profile", "--model-folder", model_repo, "--model-names", "add_sub",
                   "--perf-analyzer-path", "/nonexistent")  # fmt: skip
    assert_one_error_sentence(proc, "--perf-analyzer-path /nonexistent", "perf_analyzer")
    assert triton_processes(model_repo) == {}


def test_export_path_that_cannot_be_created(run_cli: RunCli, model_repo: Path) -> None:
    proc = run_cli("profile", "--model-folder", model_repo, "--model-names", "add_sub",
                   "--export", "--export-path", "/proc/no-such-folder")  # fmt: skip
    assert_one_error_sentence(proc, "--export-path /proc/no-such-folder", "writable")
    assert triton_processes(model_repo) == {}  # refused before any server started


def test_neither_model_folder_nor_triton_url(run_cli: RunCli) -> None:
    proc = run_cli("profile", "--model-names", "add_sub")
    assert_one_error_sentence(proc, "--model-folder", "--triton-url")


def test_old_form_reports_bad_input_the_same_way(run_cli: RunCli) -> None:
    proc = run_cli("--model-names", "add_sub", "--batch", "1")
    assert_one_error_sentence(proc, "--model-folder", "--triton-url")


# --- a model that fails to load ----------------------------------------------------------------------------


def test_a_model_that_fails_to_load_is_reported_and_the_run_goes_on(
    run_cli: RunCli, repo_root: Path, tmp_path: Path, fast_flags: list[str]
) -> None:
    repo = copy_models(repo_root, tmp_path / "models", names=("add_sub",))
    broken = repo / "broken"
    (broken / "1").mkdir(parents=True)
    (broken / "config.pbtxt").write_text((repo / "add_sub" / "config.pbtxt").read_text().replace("add_sub", "broken"))
    (broken / "1" / "model.py").write_text('raise RuntimeError("broken on purpose: this model cannot be imported")\n')
    bad_config = repo / "bad_config"
    shutil.copytree(repo / "add_sub" / "1", bad_config / "1")
    (bad_config / "config.pbtxt").write_text('name: "bad_config"\nbackend: "python"\nno_such_field: 3\n')
    export = tmp_path / "results"
    try:
        proc = run_cli("profile", "--model-folder", repo, "--model-names", "broken,add_sub,bad_config",
                       *fast_flags, "--export", "--export-path", export)  # fmt: skip
        assert proc.returncode == 1, proc.stderr
        assert "Traceback (most recent call last)" not in proc.stderr
        # Triton's own words, as the server gave them.
        assert "broken on purpose: this model cannot be imported" in proc.stderr
        assert re.search(r"^broken failed to load: .*load failed for model 'broken'", proc.stderr, re.M), proc.stderr
        assert re.search(r"^bad_config failed to load: .*'bad_config'", proc.stderr, re.M), proc.stderr
        rows = read_csv(export / INFERENCE)
        assert points(rows) == [("add_sub", 1, 1)]
        assert_measured(rows[0])
        result = AnalysisResult.model_validate_json((export / "analysis.json").read_text())
        status = {m.name: m.status for m in result.models}
        assert status == {"broken": "LoadFailed", "add_sub": "Profiled", "bad_config": "LoadFailed"}
        assert "broken on purpose" in (result.outcome("broken").error or "")  # type: ignore[union-attr]
        assert wait_until_gone(repo) == {}
    finally:
        kill_leftovers(repo)


# --- Ctrl-C ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["process-group", "cli-only"])
def test_ctrl_c_keeps_the_measured_rows_and_stops_the_server(
    cli: Path, no_leftover_triton: Path, tmp_path: Path, fast_flags: list[str], target: str
) -> None:
    """process-group: what Ctrl-C in a terminal does (SIGINT to the CLI, tritonserver and perf_analyzer alike);
    cli-only: `kill -INT <pid>` of the CLI alone."""
    export = tmp_path / "results"
    csv_path = export / INFERENCE
    proc = subprocess.Popen(
        [str(cli), "profile", "--model-folder", str(no_leftover_triton), "--model-names", "add_sub,matmul",
         "--batch", "1,2,4,8", "--concurrency", "1,2", *fast_flags, "--export", "--export-path", str(export)],
        cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        before: list[dict[str, str]] = []
        while not before:
            assert proc.poll() is None, f"the CLI ended before measuring a point: {proc.communicate()}"
            assert time.monotonic() < deadline, "no CSV row appeared"
            if csv_path.exists():
                before = read_csv(csv_path)  # whole: the CLI replaces the file atomically
            time.sleep(0.05)
        if target == "process-group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, f"exit {proc.returncode}\n{stderr}"
    assert "Traceback" not in stderr, stderr
    assert "Interrupted" in stderr
    after = read_csv(csv_path)
    assert len(after) < 8 + 2, "the sweep was not interrupted"
    assert after[: len(before)] == before  # what was measured before Ctrl-C is all still there
    for row in after:
        assert_measured(row)
    result = AnalysisResult.model_validate_json((export / "analysis.json").read_text())
    assert result.interrupted is True
    assert len(result.points) == len(after)
    assert {pid: cmd for pid, cmd in triton_processes(no_leftover_triton).items() if "tritonserver " in cmd} == {}
    assert wait_until_gone(no_leftover_triton) == {}


# --- the server dies mid-run -----------------------------------------------------------------------------------


def test_a_server_that_dies_mid_run_ends_the_run_with_one_sentence(
    cli: Path, running_triton: RunningTriton, tmp_path: Path, fast_flags: list[str]
) -> None:
    """Triton killed with everything it started (as when its container is OOM-killed) after the first point."""
    export = tmp_path / "results"
    csv_path = export / INFERENCE
    proc = subprocess.Popen(
        [str(cli), "profile", "--triton-url", running_triton.url, "--model-names", "add_sub,matmul",
         "--batch", "1,2,4", *fast_flags, "--export", "--export-path", str(export)],
        cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        before: list[dict[str, str]] = []
        while not before:
            assert proc.poll() is None, f"the CLI ended before measuring a point: {proc.communicate()}"
            assert time.monotonic() < deadline, "no CSV row appeared"
            if csv_path.exists():
                before = read_csv(csv_path)
            time.sleep(0.05)
        kill_leftovers(running_triton.model_repo)  # tritonserver and its Python backend stubs
        stdout, stderr = proc.communicate(timeout=200)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert_one_error_sentence(done, f"Triton at {running_triton.url} stopped answering")
    after = read_csv(csv_path)
    assert after[: len(before)] == before
    assert_measured(after[0])
    assert all(row["Status"] == "Failed" and row["Error"] for row in after[len(before) :])
    assert "matmul" not in {row["Model"] for row in after}


# --- objectives and constraints: the answer at the end of `profile` ------------------------------------------


def test_constraints_judge_every_point_and_the_best_is_printed_and_saved(
    run_cli: RunCli, no_leftover_triton: Path, tmp_path: Path, fast_flags: list[str]
) -> None:
    # A budget no point on any machine breaks (60 s p99) and one that every point breaks (a billion infer/sec)
    # are the two bounds whose outcome does not depend on this machine's speed.
    export = tmp_path / "best"
    proc = run_cli("profile", "--model-folder", no_leftover_triton, "--model-names", "add_sub", "--concurrency",
                   "1,2", *fast_flags, "--latency-budget", "60000", "--export", "--export-path", export)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = read_csv(export / INFERENCE)
    assert [r["Satisfies Constraints"] for r in rows] == ["Yes", "Yes"]
    result = AnalysisResult.model_validate_json((export / "analysis.json").read_text())
    assert result.constraints.p99_latency_ms is not None and result.constraints.p99_latency_ms.max == 60000
    assert result.best is not None and result.best.overall is not None
    best = result.best.overall
    fastest = max(rows, key=lambda r: float(r["Throughput (infer/sec)"]))
    assert (best.model, best.load.value) == ("add_sub", int(fastest["Concurrency"]))
    assert best.satisfies_constraints and best.throughput_ci_low is not None
    assert f"Best: add_sub batch 1 concurrency {best.load.value} (maximize-throughput)" in proc.stdout
    assert "highest throughput of the 2 points surely within the constraints" in proc.stdout

    export = tmp_path / "none"
    proc = run_cli("profile", "--model-folder", no_leftover_triton, "--model-names", "add_sub", *fast_flags,
                   "--min-throughput", "1000000000", "--export", "--export-path", export)  # fmt: skip
    assert proc.returncode == 0, proc.stderr  # nothing failed: the answer is that nothing fits
    assert [r["Satisfies Constraints"] for r in read_csv(export / INFERENCE)] == ["No"]
    assert "No point satisfies the constraints; closest: add_sub batch 1 concurrency 1" in proc.stdout
    assert "closest: throughput" in proc.stdout
    assert wait_until_gone(no_leftover_triton) == {}


def test_a_config_and_concurrency_search_returns_its_best_variant(
    run_cli: RunCli, no_leftover_triton: Path, tmp_path: Path, fast_flags: list[str]
) -> None:
    export = tmp_path / "search"
    proc = run_cli("profile", "--model-folder", no_leftover_triton, "--model-names", "add_sub",
                   "--instance-counts", "2", "--dynamic-batching", "on", "--concurrency", "auto",
                   "--max-concurrency", "4", *fast_flags, "--export", "--export-path", export)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = AnalysisResult.model_validate_json((export / "analysis.json").read_text())
    assert [(m.name, m.instance_group, m.status) for m in result.models] == [
        ("add_sub_config_default", "1:CPU", ModelStatus.PROFILED),
        ("add_sub_config_0", "2:CPU", ModelStatus.PROFILED),
    ]
    assert result.models[1].changes == "2 instances, dynamic batching"
    for variant in ("add_sub_config_default", "add_sub_config_0"):
        measured = [p.load.value for p in result.points if p.variant == variant]
        skipped = [s.point.load.value for s in result.outcome(variant).skipped]  # type: ignore[union-attr]
        assert measured[0] == 1 and sorted(measured + skipped) == [1, 2, 4], (variant, measured, skipped)
    rows = read_csv(export / INFERENCE)
    assert [r["Model Config Path"] for r in rows] == [p.variant for p in result.points]
    assert result.best is not None and result.best.overall is not None
    best = result.best.overall
    assert best.variant in ("add_sub_config_default", "add_sub_config_0")
    assert f"Best: add_sub as {best.variant} (" in proc.stdout
    # The winner, ready to deploy: its whole config as Triton loaded it, beside links to the model's files.
    deployable = export / "output_model_repository" / "add_sub"
    config = (deployable / "config.pbtxt").read_text()
    instances = 2 if best.variant == "add_sub_config_0" else 1
    assert f"count: {instances}" in config and ("dynamic_batching" in config) == (instances == 2), config
    assert (deployable / "1" / "model.py").exists()
    # The user's repository is as it was; the server this run started is gone.
    assert "dynamic_batching" not in (no_leftover_triton / "add_sub" / "config.pbtxt").read_text()
    assert wait_until_gone(no_leftover_triton) == {}


def test_a_cli_killed_outright_leaves_no_server_running(
    cli: Path, no_leftover_triton: Path, tmp_path: Path, fast_flags: list[str]
) -> None:
    """SIGKILL gives the CLI no chance to stop its tritonserver: Linux does it (the server was started asking for
    SIGTERM when its parent dies), and the server takes its Python backend stubs with it."""
    export = tmp_path / "results"
    proc = subprocess.Popen(
        [str(cli), "profile", "--model-folder", str(no_leftover_triton), "--model-names", "add_sub",
         "--batch", "1,2,4,8", "--concurrency", "1,2", *fast_flags, "--export", "--export-path", str(export)],
        cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not (export / INFERENCE).exists():
            assert proc.poll() is None, "the CLI ended before measuring a point"
            assert time.monotonic() < deadline, "no CSV row appeared"
            time.sleep(0.05)
        assert triton_processes(no_leftover_triton), "the server runs while the CLI does"
    finally:
        proc.kill()
        proc.wait()
    assert wait_until_gone(no_leftover_triton) == {}
