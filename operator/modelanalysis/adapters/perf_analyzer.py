"""Run perf_analyzer for one point as a local process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from modelanalysis.core.perf import PerfMeasurement, PerfReportError, parse_perf_analyzer_csv, perf_analyzer_args
from modelanalysis.core.spec import MeasurementSettings
from modelanalysis.core.sweep import Point


class PerfAnalyzerError(RuntimeError):
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


def run_perf_analyzer(
    point: Point, settings: MeasurementSettings, grpc_url: str, http_url: str, binary: Path | None = None
) -> PerfMeasurement:
    binary = binary or find_perf_analyzer()
    with tempfile.TemporaryDirectory(prefix="perf-") as tmp:
        report = Path(tmp) / "report.csv"
        cmd = [str(binary), *perf_analyzer_args(point, settings, grpc_url, http_url, str(report))]
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=settings.point_timeout_seconds,
                env=perf_analyzer_env(),
                check=False,
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
            return parse_perf_analyzer_csv(report.read_text(), point.concurrency)
        except PerfReportError as exc:
            raise PerfAnalyzerError(str(exc)) from None


def last_lines(proc: subprocess.CompletedProcess[str], count: int = 2) -> str:
    """perf_analyzer's own words on why it failed: its error lines if any, else its last lines."""
    text = (proc.stdout or "") + "\n" + (proc.stderr or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if any(w in line.lower() for w in ("fail", "error", "unable", "abort"))]
    return " | ".join((errors or lines)[-count:]) or "no output"
