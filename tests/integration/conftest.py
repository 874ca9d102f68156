"""Fixtures for the integration tests: the real CLI, a copy of the example models, a real Triton server.

Every test that starts Triton (itself, or through the CLI) serves its own copy of examples/models, so a
scan of /proc for processes whose command line names that copy finds exactly the servers of that test,
whatever else runs on the machine.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelanalysis.adapters.local_triton import LocalTriton, TritonNotFound, find_local_triton
from modelanalysis.adapters.triton_control import TritonControl
from modelanalysis.adapters.triton_server import TritonEndpoints, TritonServerProcess, TritonStartError, port_in_use

REPO_ROOT = Path(__file__).resolve().parents[2]

# Short windows for a 2-core machine shared with builds, at most 2 runs of 3 windows a point: the tests check
# what the tool reports, not how steady this machine is (a point that does not converge is still measured).
FAST_FLAGS = [
    "--measurement-interval", "300",
    "--max-trials", "6",
    "--baseline-duration", "300",
    "--metrics-interval", "200",
]  # fmt: skip

RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def cli() -> Path:
    """The installed `model-analyzer` entry point of this environment."""
    path = Path(sys.executable).parent / "model-analyzer"
    if not path.exists():
        pytest.skip(f"{path} is missing: install the project into this environment (`pip install -e .`)")
    return path


@pytest.fixture(scope="session")
def fast_flags() -> list[str]:
    return list(FAST_FLAGS)


@pytest.fixture(scope="session")
def local_triton() -> LocalTriton:
    try:
        return find_local_triton()
    except TritonNotFound as exc:
        pytest.skip(f"no tritonserver on this machine: {exc}")


def copy_models(
    repo_root: Path, dest: Path, names: tuple[str, ...] = ("add_sub", "matmul", "text_encoder")
) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copytree(repo_root / "examples" / "models" / name, dest / name)
    return dest


@pytest.fixture
def model_repo(repo_root: Path, tmp_path: Path, local_triton: LocalTriton) -> Path:
    """A private copy of examples/models (add_sub, matmul, text_encoder) for one test."""
    return copy_models(repo_root, tmp_path / "models")


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def run_cli(cli: Path, tmp_path: Path) -> RunCli:
    """Run `model-analyzer ARGS...` to completion in a scratch folder; return its CompletedProcess."""

    def run(*args: str | Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        cwd = tmp_path / "cwd"
        cwd.mkdir(exist_ok=True)
        return subprocess.run(
            [str(cli), *map(str, args)],
            cwd=cwd,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


# --- processes ---------------------------------------------------------------------------------------------


def processes_mentioning(text: str) -> dict[int, str]:
    """pid -> command line of every live process whose command line contains `text` (read from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if text in cmdline:
            found[int(entry.name)] = cmdline.strip()
    return found


def triton_processes(model_repo: Path) -> dict[int, str]:
    """tritonserver processes serving `model_repo`, and the Python backend stubs running its models."""
    return {
        pid: cmd
        for pid, cmd in processes_mentioning(str(model_repo.resolve())).items()
        if "tritonserver" in cmd or "triton_python_backend_stub" in cmd
    }


def wait_until_gone(model_repo: Path, grace_s: float = 20.0) -> dict[int, str]:
    """The Triton processes of `model_repo` still alive after up to `grace_s` (stubs exit just after the
    server); {} when none is left."""
    deadline = time.monotonic() + grace_s
    left = triton_processes(model_repo)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = triton_processes(model_repo)
    return left


def kill_leftovers(model_repo: Path) -> None:
    """Kill, by pid, the Triton processes a failed test left serving its own private model copy."""
    for pid in triton_processes(model_repo):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def no_leftover_triton(model_repo: Path) -> Iterator[Path]:
    """Yield the test's model copy; afterwards kill any Triton the test left on it (after the test has
    had its own say about leftovers)."""
    yield model_repo
    kill_leftovers(model_repo)


# --- a Triton the test starts itself -------------------------------------------------------------------------


def free_consecutive_ports(count: int = 3, host: str = "127.0.0.1") -> int:
    """A base port with `count` free ports from it: --triton-url host:P means gRPC P+1, metrics P+2."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000 - count)
        if not any(port_in_use(host, base + i) for i in range(count)):
            return base
    raise RuntimeError("found no 3 consecutive free ports")


@dataclass
class RunningTriton:
    server: TritonServerProcess
    endpoints: TritonEndpoints
    model_repo: Path

    @property
    def url(self) -> str:
        return self.endpoints.http

    def control(self) -> TritonControl:
        return TritonControl(self.endpoints.http, timeout_s=30)


@pytest.fixture
def running_triton(local_triton: LocalTriton, no_leftover_triton: Path, tmp_path: Path) -> Iterator[RunningTriton]:
    """A real tritonserver on a private copy of the example models, explicit model control, no model loaded,
    on three consecutive ports so that `--triton-url 127.0.0.1:<http>` finds its gRPC and metrics ports."""
    error: TritonStartError | None = None
    for _ in range(3):  # another process may take a port between the check and the server's bind
        base = free_consecutive_ports()
        server = TritonServerProcess(
            local_triton,
            no_leftover_triton,
            log_path=tmp_path / "own-triton.log",
            http_port=base,
            grpc_port=base + 1,
            metrics_port=base + 2,
            metrics_interval_ms=200,
        )
        try:
            endpoints = server.start()
            break
        except TritonStartError as exc:
            server.stop()
            error = exc
    else:
        pytest.fail(f"could not start tritonserver: {error}")
    try:
        yield RunningTriton(server=server, endpoints=endpoints, model_repo=no_leftover_triton)
    finally:
        server.stop()
