"""The project's image tested as an image: built from the Dockerfile (scripts/build-image.sh), then run with
podman as user 10001 with a read-only root filesystem, as the chart's Deployment and the operator's Jobs run
it. The perf_analyzer test measures a point with the image's own perf_analyzer build against a real Triton
on this machine, through `model-analyzer perf-point`, the command the operator's load-generator Jobs run.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest

from modelanalysis.core.perf import PerfMeasurement
from tests.image.conftest import RunInImage, podman_env
from tests.integration.conftest import RunningTriton

# A cold build takes minutes, and the fixture that builds runs inside the first test's timeout.
pytestmark = [pytest.mark.image, pytest.mark.timeout(1800)]


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"


def test_image_runs_as_10001_and_its_entrypoint_passes_commands_through(image: str) -> None:
    """A pod's `command:` replaces the entrypoint; a command given to `podman run` runs as given, and flags
    alone go to model-analyzer (the original tool's procedure)."""
    proc = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{json .Config}}", image],
        capture_output=True, text=True, env=podman_env(), check=True,
    )  # fmt: skip
    config = json.loads(proc.stdout)
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["docker-entrypoint.sh"]
    assert config["Cmd"] == ["model-analyzer", "--help"]
    flags = subprocess.run(["podman", "run", "--rm", image, "--help"], capture_output=True, text=True,
                           env=podman_env(), check=False)  # fmt: skip
    assert flags.returncode == 0 and "profile" in flags.stdout, output(flags)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["model-analyzer", "--help"], "profile"),
        (["kopf", "--version"], "kopf, version"),
        (["python", "-c", "import modelanalysis.kube.handlers; print('handlers imported')"], "handlers imported"),
    ],
    ids=["model-analyzer", "kopf", "handlers"],
)
def test_command_runs_read_only_as_10001(run_in_image: RunInImage, argv: list[str], expected: str) -> None:
    proc = run_in_image(*argv)
    assert proc.returncode == 0, output(proc)
    assert expected in proc.stdout + proc.stderr, output(proc)


def test_root_filesystem_is_read_only_and_tmp_writable(run_in_image: RunInImage) -> None:
    script = (
        'echo "uid=$(id -u) gid=$(id -g) home=$HOME"; '
        "touch /opt/venv/x 2>/dev/null && echo root-writable; "
        "touch /tmp/x && echo tmp-writable; "
        "command -v perf_analyzer"
    )
    proc = run_in_image("sh", "-c", script)
    assert proc.returncode == 0, output(proc)
    lines = proc.stdout.split()
    assert lines == ["uid=10001", "gid=10001", "home=/tmp", "tmp-writable", "/opt/venv/bin/perf_analyzer"], output(proc)


def inference_count(metrics_url: str, model: str) -> float:
    text = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("nv_inference_count{") and f'model="{model}"' in line
    )


@pytest.mark.integration
def test_image_perf_analyzer_measures_a_point(run_in_image: RunInImage, running_triton: RunningTriton) -> None:
    control = running_triton.control()
    control.load("add_sub")
    endpoints = running_triton.endpoints
    before = inference_count(endpoints.metrics_url, "add_sub")

    proc = run_in_image(
        "model-analyzer", "perf-point", "--model=add_sub", "--batch=1", "--concurrency=2",
        f"--grpc-url={endpoints.grpc}", f"--http-url={endpoints.http}",
        '--measurement={"measurementIntervalMs": 300, "maxTrials": 6}',
        timeout=300,
    )  # fmt: skip

    assert proc.returncode == 0, output(proc)
    measurement = PerfMeasurement.model_validate_json(proc.stdout.strip().splitlines()[-1])
    assert measurement.throughput_infer_per_sec > 0
    assert 0 < measurement.latency_p50_ms <= measurement.latency_p99_ms
    # With how sure it is: the image's perf_analyzer prints the windows the interval is made from.
    assert measurement.windows is not None and measurement.windows >= 3
    assert measurement.throughput_ci_low is not None and measurement.converged is not None
    # The requests reached this Triton: its own counter moved.
    assert inference_count(endpoints.metrics_url, "add_sub") > before
