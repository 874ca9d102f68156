"""Measure one point with perf_analyzer as local processes (the CLI, and the operator's load-generator Jobs)."""

from __future__ import annotations

import functools
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from modelanalysis.core.budget import LatencyBudget, undecided_sentence
from modelanalysis.core.convergence import NO_REQUEST_IN_WINDOW, Verdict, judge, longer_window_ms
from modelanalysis.core.perf import (
    PerfMeasurement,
    PerfReportError,
    PerfRun,
    PointMeasurementError,
    combine_runs,
    load_generator_cpu,
    parse_perf_analyzer_csv,
    parse_perf_analyzer_windows,
    parse_request_count,
    parse_send_rate,
    perf_analyzer_args,
)
from modelanalysis.core.spec import MeasurementSettings
from modelanalysis.core.streaming import ProfileExportError, read_stream_windows
from modelanalysis.core.sweep import Point

# Why a streaming point's windows may hold no request, and what to do: a request counts when its stream ends.
STREAM_TOO_LONG = (
    "a streaming request is counted when its last response arrives, and none ended inside a window, even after "
    "doubling it: give the output length in real data (--input-data, e.g. max_tokens) rather than random values, or "
    "longer windows (--measurement-interval) and --max-point-seconds"
)


class PerfAnalyzerError(PointMeasurementError):
    """perf_analyzer is missing or failed for a point; the message says which and why."""


def find_perf_analyzer(given: Path | None = None) -> Path:
    if given is not None:
        if not (given.is_file() and os.access(given, os.X_OK)):
            raise PerfAnalyzerError(
                f"--perf-analyzer-path {given} is not an executable file; point it at perf_analyzer."
            )
        return given
    found = shutil.which("perf_analyzer") or shutil.which("perf_analyzer", path=str(Path(sys.executable).parent))
    if not found:
        raise PerfAnalyzerError(
            "perf_analyzer not found: install it with `pip install 'tritonclient[all]==2.50.0'` "
            "(it lands next to python in the environment's bin/) or put it on PATH."
        )
    return Path(found)


def perf_analyzer_env() -> dict[str, str]:
    """perf_analyzer links libcudart even without a GPU; the nvidia-cuda-runtime wheel ships it."""
    env = dict(os.environ)
    try:
        import nvidia.cuda_runtime  # type: ignore[import-untyped]  # optional dependency
    except ImportError:
        return env
    paths = [str(Path(p) / "lib") for p in nvidia.cuda_runtime.__path__]
    if env.get("LD_LIBRARY_PATH"):
        paths.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(paths)
    return env


def children_cpu_seconds() -> float:
    """CPU time (user + system) of this process's finished children: perf_analyzer's runs, once waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def available_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> float:
    """The CPUs this process may use: its cgroup's CPU quota where one is set (a container's CPU limit), else
    the CPUs it may be scheduled on."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]  # cgroup v2: "max 100000" or "200000 100000"
        if quota != "max":
            return int(quota) / int(period)
    except (OSError, ValueError):
        try:  # cgroup v1
            quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
            if quota_us > 0:
                return quota_us / int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            pass
    return float(len(os.sched_getaffinity(0)))


def run_perf_analyzer_once(
    point: Point,
    settings: MeasurementSettings,
    grpc_url: str,
    http_url: str,
    binary: Path,
    timeout_s: float,
    input_args: Sequence[str] = (),
) -> PerfRun:
    """One perf_analyzer run: WINDOWS_PER_RUN windows, its report and each window's numbers."""
    with tempfile.TemporaryDirectory(prefix="perf-") as tmp:
        report, export = Path(tmp) / "report.csv", Path(tmp) / "export.json"
        args = perf_analyzer_args(point, settings, grpc_url, http_url, str(report), input_args, str(export))
        cmd = [str(binary), *args]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, env=perf_analyzer_env(), check=False
            )
        except subprocess.TimeoutExpired:
            raise PerfAnalyzerError(
                f"perf_analyzer did not finish within {settings.point_timeout_seconds} s "
                "(raise measurement.pointTimeoutSeconds / --point-timeout)"
            ) from None
        except OSError as exc:
            raise PerfAnalyzerError(f"Could not run {binary}: {exc}") from None
        if proc.returncode != 0 or not report.exists():
            raise PerfAnalyzerError(f"perf_analyzer failed (exit {proc.returncode}): {last_lines(proc)}")
        try:
            summary = parse_perf_analyzer_csv(report.read_text(), point.load)
            # Read and reduced here, file by file: a run's per-request record never outlives its run.
            streamed = read_stream_windows(export.read_text()) if point.streaming else []
        except (PerfReportError, ProfileExportError) as exc:
            raise PerfAnalyzerError(str(exc)) from None
        except OSError as exc:
            raise PerfAnalyzerError(f"perf_analyzer wrote no profile export for a streaming point ({exc})") from None
    send_rate, delayed = parse_send_rate(proc.stdout)
    return PerfRun(
        summary, parse_perf_analyzer_windows(proc.stdout), parse_request_count(proc.stdout), send_rate, delayed,
        streamed,
    )  # fmt: skip


def measure_point(
    point: Point,
    settings: MeasurementSettings,
    grpc_url: str,
    http_url: str,
    binary: Path | None = None,
    clock: Callable[[], float] = time.monotonic,
    run_once: Callable[[Point, MeasurementSettings, str, str, Path, float], PerfRun] | None = None,
    cpu_budget_cores: float | None = None,
    child_cpu: Callable[[], float] = children_cpu_seconds,
    budgets: Sequence[LatencyBudget] = (),
    input_args: Sequence[str] = (),
) -> PerfMeasurement:
    """Measure one point to the precision asked for: perf_analyzer runs of WINDOWS_PER_RUN windows each, until
    the core's stopping rule (convergence.judge) says the throughput interval is narrow enough, or a cap is hit.

    A run that fails after others succeeded ends the point with what was measured (not converged, saying why);
    a first run that fails is the point's failure.

    perf_analyzer's own CPU use is recorded with the point: the CPU time of its runs (this process's children)
    over the time they ran, against `cpu_budget_cores` (what the load generator was given; default: the CPUs
    this process may use).

    `budgets`: the latency budgets a load search decides this point against (core/budget.py). While an interval
    straddles its budget, the point takes more windows, within the same caps, so that the search decides on a
    side rather than on one reading.

    `input_args`: what perf_analyzer sends the model (core/inputs.py).
    """
    run_once = run_once or functools.partial(run_perf_analyzer_once, input_args=input_args)
    binary = binary or find_perf_analyzer()
    cap_seconds = min(settings.max_point_seconds, settings.point_timeout_seconds)
    started = clock()
    runs: list[PerfRun] = []
    window_ms = settings.measurement_interval_ms
    cpu_started, run_wall = child_cpu(), 0.0
    while True:
        remaining = settings.point_timeout_seconds - (clock() - started)
        run_settings = settings.model_copy(update={"measurement_interval_ms": window_ms})
        run_started = clock()
        try:
            runs.append(run_once(point, run_settings, grpc_url, http_url, binary, max(remaining, 1.0)))
        except PerfAnalyzerError as exc:
            run_wall += clock() - run_started
            longer = None if runs else longer_window_ms(str(exc), window_ms, cap_seconds - (clock() - started))
            if longer is not None:
                window_ms = longer  # windows too short to hold a request: noise, not a failure
                continue
            if not runs:
                if point.streaming and NO_REQUEST_IN_WINDOW in str(exc):
                    raise PerfAnalyzerError(f"{exc} ({STREAM_TOO_LONG})") from None
                raise
            verdict = Verdict(True, False, f"not converged: a later perf_analyzer run failed ({exc})")
            break
        run_seconds = clock() - run_started
        run_wall += run_seconds
        undecided = ""
        if budgets:
            so_far = combine_runs(runs, Verdict(False, False, ""), point.batch_size, window_ms)
            undecided = undecided_sentence(so_far, budgets)
        verdict = judge(
            converging_series(runs),
            clock() - started,
            run_seconds,
            target_pct=settings.convergence_pct,
            max_windows=settings.max_windows,
            max_seconds=cap_seconds,
            undecided=undecided,
        )
        if verdict.done:
            break
    if window_ms != settings.measurement_interval_ms:
        verdict = Verdict(
            verdict.done,
            verdict.converged,
            f"{verdict.reason}; windows of {window_ms} ms (no request finished inside shorter ones)",
        )
    budget = cpu_budget_cores if cpu_budget_cores is not None else available_cpus()
    cores, busy = load_generator_cpu(child_cpu() - cpu_started, run_wall, budget)
    return combine_runs(runs, verdict, point.batch_size, window_ms).model_copy(
        update={"load_generator_cpu_cores": cores, "load_generator_cpu_budget_cores": budget,
                "load_generator_bottleneck": busy, "load_seconds": run_wall}
    )  # fmt: skip


def converging_series(runs: Sequence[PerfRun]) -> list[float]:
    """The per-window numbers a point converges on: throughput, or for a streaming point output tokens per second
    (what an LLM is sized by; its windows are perf_analyzer's own)."""
    if runs and all(r.stream_windows for r in runs):
        return [w.output_tokens_per_sec for run in runs for w in run.stream_windows]
    return [w.throughput_infer_per_sec for run in runs for w in run.windows]


def last_lines(proc: subprocess.CompletedProcess[str], count: int = 2) -> str:
    """perf_analyzer's own words on why it failed: its error lines if any, else its last lines."""
    text = (proc.stdout or "") + "\n" + (proc.stderr or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if any(w in line.lower() for w in ("fail", "error", "unable", "abort"))]
    return " | ".join((errors or lines)[-count:]) or "no output"


def _member_run(
    run_once: Callable[[Point, MeasurementSettings, str, str, Path, float], PerfRun] | None, input_args: Sequence[str]
) -> Callable[[Point, MeasurementSettings, str, str, Path, float], PerfRun]:
    return run_once or functools.partial(run_perf_analyzer_once, input_args=input_args)


def measure_together(
    points: Sequence[Point],
    settings: MeasurementSettings,
    grpc_url: str,
    http_url: str,
    binary: Path | None = None,
    clock: Callable[[], float] = time.monotonic,
    run_once: Callable[[Point, MeasurementSettings, str, str, Path, float], PerfRun] | None = None,
    input_args_of: Callable[[str], Sequence[str]] = lambda model: (),
    cpu_budget_cores: float | None = None,
    child_cpu: Callable[[], float] = children_cpu_seconds,
) -> list[PerfMeasurement | PerfAnalyzerError]:
    """Several models measured at once on one server, each by its own perf_analyzer, over the same windows: in
    rounds, every member runs one perf_analyzer run (WINDOWS_PER_RUN windows) at the same time, and rounds go on
    until every member's stopping rule says it is done (one that converged early keeps its load on, so the others
    are measured under the same company to the end), or a cap is hit. A member whose first run fails is that
    member's failure (the others go on); the load generators' CPU is the group's, recorded on each member."""
    binary = binary or find_perf_analyzer()
    cap_seconds = min(settings.max_point_seconds, settings.point_timeout_seconds)
    started = clock()
    runs: dict[int, list[PerfRun]] = {i: [] for i in range(len(points))}
    failed: dict[int, PerfAnalyzerError] = {}  # its first run failed: the member's failure
    verdicts: dict[int, Verdict] = {}
    stopped: set[int] = set()  # a later run failed: it keeps what it measured, and runs no more
    cpu_started, run_wall = child_cpu(), 0.0
    while True:
        active = [i for i in range(len(points)) if i not in failed and i not in stopped]
        if not active:
            break
        remaining = max(settings.point_timeout_seconds - (clock() - started), 1.0)
        round_started = clock()

        with ThreadPoolExecutor(max_workers=len(active)) as pool:
            futures = {i: pool.submit(_member_run(run_once, input_args_of(points[i].model)), points[i], settings,
                                      grpc_url, http_url, binary, remaining) for i in active}  # fmt: skip
        round_seconds = clock() - round_started
        run_wall += round_seconds
        for i, future in futures.items():
            try:
                runs[i].append(future.result())
            except PerfAnalyzerError as exc:
                if not runs[i]:
                    failed[i] = exc
                else:
                    stopped.add(i)
                    verdicts[i] = Verdict(True, False, f"not converged: a later perf_analyzer run failed ({exc})")
                continue
            verdicts[i] = judge(converging_series(runs[i]), clock() - started, round_seconds,
                                target_pct=settings.convergence_pct, max_windows=settings.max_windows,
                                max_seconds=cap_seconds)  # fmt: skip
        if all(verdicts[i].done for i in range(len(points)) if i not in failed):
            break
    budget = cpu_budget_cores if cpu_budget_cores is not None else available_cpus()
    cores, busy = load_generator_cpu(child_cpu() - cpu_started, run_wall, budget)
    found: list[PerfMeasurement | PerfAnalyzerError] = []
    for i, point in enumerate(points):
        if i in failed:
            found.append(failed[i])
            continue
        measured = combine_runs(runs[i], verdicts[i], point.batch_size, settings.measurement_interval_ms)
        found.append(measured.model_copy(update={
            "load_generator_cpu_cores": cores, "load_generator_cpu_budget_cores": budget,
            "load_generator_bottleneck": busy, "load_seconds": run_wall,
        }))  # fmt: skip
    return found
