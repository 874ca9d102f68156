"""Fixtures for the image tests: the project's image, built by scripts/build-image.sh (a no-op when it is up
to date), and a way to run commands in it as a cluster would (user 10001, read-only root filesystem).

The real-Triton fixtures of the integration tests are reused for the perf_analyzer test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
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
