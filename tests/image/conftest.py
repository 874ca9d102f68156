"""Fixtures for the image tests: the project's image, built by scripts/build-image.sh (a no-op when it is up
to date), and a way to run commands in it as a cluster would (user 10001, read-only root filesystem).

The real-Triton fixtures of the integration tests are reused for the perf_analyzer test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import (  # noqa: F401  (fixtures, found by pytest under these names)
    local_triton,
    model_repo,
    no_leftover_triton,
    repo_root,
    running_triton,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-image.sh"
CONTAINERS_CONF = REPO_ROOT / "scripts" / "containers.conf"

RunInImage = Callable[..., subprocess.CompletedProcess[str]]


def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return env


@pytest.fixture(scope="session")
def image() -> str:
    """The image under test: $MODELANALYSIS_IMAGE when set, else the one scripts/build-image.sh builds from
    this checkout (building it here if CI did not already)."""
    if shutil.which("podman") is None:
        pytest.skip("podman is missing: `scripts/build-image.sh` installs it and builds the image")
    given = os.environ.get("MODELANALYSIS_IMAGE")
    if given:
        return given
    proc = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, env=podman_env(), check=False)
    if proc.returncode != 0:
        pytest.fail(f"scripts/build-image.sh failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def run_in_image(image: str) -> RunInImage:
    """`podman run` a command in the image as the chart and the operator's Jobs run it: user 10001, read-only
    root filesystem (podman mounts a tmpfs on /tmp as the chart mounts an emptyDir there), host network."""

    def run(*argv: str, options: tuple[str, ...] = (), timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [
            "podman", "run", "--rm", "--read-only", "--user", "10001:10001", "--network", "host",
            *options, image, *argv,
        ]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, env=podman_env(), timeout=timeout, check=False)

    return run


# --- the docker launch mode: a Docker Engine API and a Triton image ----------------------------------------


@dataclass(frozen=True)
class DockerEngine:
    """podman's Docker-compatible Engine API on a socket of its own (what `docker` would answer at
    /var/run/docker.sock)."""

    socket: Path

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def env(self) -> dict[str, str]:
        return {**podman_env(), "DOCKER_HOST": self.host}

    def containers(self, label: str) -> list[str]:
        """Names of the containers, running or not, that carry `label` (key=value)."""
        proc = subprocess.run(["podman", "ps", "--all", "--filter", f"label={label}", "--format", "{{.Names}}"],
                              capture_output=True, text=True, env=podman_env(), check=True)  # fmt: skip
        return proc.stdout.split()

    def remove(self, label: str) -> None:
        for name in self.containers(label):
            subprocess.run(["podman", "rm", "--force", name], capture_output=True, env=podman_env(), check=False)


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    """`podman system service` on a private socket for the session; containers it runs use runc, as every
    container here does."""
    if shutil.which("podman") is None:
        pytest.skip("podman is missing: `scripts/setup.sh` installs it")
    socket = tmp_path_factory.mktemp("engine") / "docker.sock"
    service = subprocess.Popen(["podman", "--runtime", "runc", "system", "service", "--time=0", f"unix://{socket}"],
                               env=podman_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"podman system service did not start: {service.communicate()[1][-2000:]!r}")
            time.sleep(0.1)
        yield DockerEngine(socket)
    finally:
        service.terminate()
        try:
            service.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


@pytest.fixture(scope="session")
def triton_image() -> str:
    """The stand-in for NVIDIA's Triton image (tests/image/triton.Dockerfile), tagged as
    nvcr.io/nvidia/tritonserver:24.10-py3: NGC cannot be reached here."""
    if shutil.which("podman") is None:
        pytest.skip("podman is missing: `scripts/setup.sh` installs it")
    proc = subprocess.run([str(BUILD_SCRIPT), "--test-triton"], capture_output=True, text=True, env=podman_env(),
                          check=False)  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"scripts/build-image.sh --test-triton failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout.strip().splitlines()[-1]
