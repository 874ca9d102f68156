"""`--triton-launch-mode docker` for real: the CLI starts Triton's container through podman's Docker-compatible
Engine API (`podman system service` on a socket of its own), profiles, and removes the container.

NGC (nvcr.io) cannot be reached here, so NVIDIA's image cannot be pulled: the Triton image is a stand-in built
locally (tests/image/triton.Dockerfile, the same CPU tritonserver 2.51.0 the other tests run, at NVIDIA's paths)
and tagged as nvcr.io/nvidia/tritonserver:24.10-py3, the release that shipped that server. Each test labels its
containers with a label of its own, so what it finds left behind is its own.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelanalysis.core.results import AnalysisResult
from tests.image.conftest import DockerEngine, podman_env
from tests.integration.conftest import FAST_FLAGS, REPO_ROOT, cli_env, copy_models, triton_processes

pytestmark = [pytest.mark.image, pytest.mark.timeout(900)]

RELEASE = "24.10-py3"
SERVER_VERSION = "2.51.0"
CLI = Path(sys.executable).parent / "model-analyzer"


def rows(export: Path) -> list[dict[str, str]]:
    path = export / "metrics-model-inference.csv"
    if not path.exists():
        return []
    found = list(csv.reader(io.StringIO(path.read_text())))
    return [dict(zip(found[0], row, strict=True)) for row in found[1:]]


def said(proc: subprocess.CompletedProcess[str]) -> str:
    """What the CLI printed, as one line (the console wraps it at its width)."""
    return " ".join((proc.stdout + proc.stderr).split())


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"


class Run:
    """One test's CLI runs in docker mode, on its own model copy and with its own container label."""

    def __init__(self, engine: DockerEngine, tmp_path: Path) -> None:
        self.engine = engine
        self.models = copy_models(REPO_ROOT, tmp_path / "models", ("add_sub", "matmul"))
        self.export = tmp_path / "results"
        self.cwd = tmp_path
        self.label = f"dev.modelanalysis.test={uuid.uuid4().hex[:12]}"

    def argv(self, *extra: str, models: str = "add_sub") -> list[str]:
        return [str(CLI), "profile", "--triton-launch-mode", "docker", "--model-folder", str(self.models),
                "--model-names", models, "--triton-docker-labels", self.label, *FAST_FLAGS,
                "--export", "--export-path", str(self.export), *extra]  # fmt: skip

    def env(self, **changes: str) -> dict[str, str]:
        return {**cli_env(), **self.engine.env(), **changes}

    def __call__(self, *extra: str, models: str = "add_sub", **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*extra, models=models), cwd=self.cwd, env=self.env(**env),
                              capture_output=True, text=True, timeout=600, check=False)  # fmt: skip

    def start(self, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(*extra), cwd=self.cwd, env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip

    def containers(self) -> list[str]:
        return self.engine.containers(self.label)

    def wait_for_a_row(self, proc: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 300
        while not rows(self.export):
            assert proc.poll() is None, f"the CLI ended before measuring a point: {proc.communicate()}"
            assert time.monotonic() < deadline, "no CSV row appeared"
            time.sleep(0.1)

    def result(self) -> AnalysisResult:
        return AnalysisResult.model_validate_json((self.export / "analysis.json").read_text())


@pytest.fixture
def run(docker_engine: DockerEngine, triton_image: str, tmp_path: Path) -> Iterator[Run]:
    made = Run(docker_engine, tmp_path)
    yield made
    docker_engine.remove(made.label)


def test_docker_mode_profiles_in_the_release_asked_for_and_removes_its_container(run: Run) -> None:
    proc = run("--triton-version", RELEASE, "--batch", "1", "--concurrency", "1,2", models="add_sub,matmul")
    assert proc.returncode == 0, output(proc)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert f"nvcr.io/nvidia/tritonserver:{RELEASE}, in a container" in said(proc)
    measured = rows(run.export)
    assert [(r["Model"], r["Batch"], r["Concurrency"]) for r in measured] == [
        (model, "1", c) for model in ("add_sub", "matmul") for c in ("1", "2")
    ], output(proc)
    assert all(float(r["Throughput (infer/sec)"]) > 0 for r in measured)
    result = run.result()
    assert (result.triton_version, result.server_version) == (RELEASE, SERVER_VERSION)
    assert not [n for n in result.notes if "asked for" in n], result.notes
    assert (run.export / "triton-server.log").read_text().strip(), "the container's log is kept with the results"
    assert run.containers() == []
    assert triton_processes(run.models) == {}  # the container's processes are this machine's too


def test_an_image_that_holds_another_release_is_said(run: Run) -> None:
    proc = run("--triton-version", "24.08-py3", "--triton-docker-image", f"nvcr.io/nvidia/tritonserver:{RELEASE}",
               "--batch", "1", "--concurrency", "1")  # fmt: skip
    assert proc.returncode == 0, output(proc)
    said = [n for n in run.result().notes if "asked for" in n]
    assert said and "holds release 24.10" in said[0] and SERVER_VERSION in said[0], run.result().notes
    assert run.containers() == []


def test_ctrl_c_keeps_the_points_and_removes_the_container(run: Run) -> None:
    proc = run.start("--triton-version", RELEASE, "--batch", "1,2,4,8", "--concurrency", "1,2")
    try:
        run.wait_for_a_row(proc)
        assert run.containers(), "the running container carries the run's labels"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert 1 <= len(rows(run.export)) < 8 and run.result().interrupted
    assert run.containers() == []


def test_a_container_left_by_a_killed_run_is_removed_by_the_next_run(run: Run) -> None:
    proc = run.start("--triton-version", RELEASE, "--batch", "1,2,4,8", "--concurrency", "1,2")
    try:
        run.wait_for_a_row(proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # nothing of the CLI runs any more: no chance to clean up
        proc.wait()
    left = run.containers()
    assert len(left) == 1, left
    again = run("--triton-version", RELEASE, "--batch", "1", "--concurrency", "1", "--export-path",
                str(run.cwd / "again"))  # fmt: skip
    assert again.returncode == 0, output(again)
    assert f"removed 1 Triton container(s) left by a run that was killed: {left[0]}" in said(again), output(again)
    assert run.containers() == []


def busy_port() -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    return listener


@pytest.mark.parametrize("case", ["no-socket", "no-such-tag", "unpullable-image", "port-in-use"])
def test_bad_input_is_one_sentence_and_leaves_no_container(run: Run, case: str) -> None:
    listener = busy_port()
    extra, env, sentence = {
        "no-socket": ((), {"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
                      "No Docker Engine API answers at unix:///nonexistent/docker.sock"),
        # NGC is unreachable here, so a tag that does not exist reads as an image that cannot be pulled.
        "no-such-tag": (("--triton-version", "99.01-py3"), {},
                        "Image nvcr.io/nvidia/tritonserver:99.01-py3 is not here and cannot be pulled"),
        "unpullable-image": (("--triton-docker-image", "localhost/no-such-triton:1"), {},
                             "Image localhost/no-such-triton:1 is not here and cannot be pulled"),
        "port-in-use": (("--triton-version", RELEASE, "--triton-http-port", str(listener.getsockname()[1])), {},
                        f"Port {listener.getsockname()[1]} on 127.0.0.1 (--http-port) is already in use"),
    }[case]  # fmt: skip
    try:
        proc = run(*extra, "--batch", "1", "--concurrency", "1", **env)
    finally:
        listener.close()
    assert proc.returncode == 1, output(proc)
    assert sentence in said(proc), output(proc)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert run.containers() == []


def test_the_original_tools_docker_run_command_works_with_the_project_image(
    image: str, docker_engine: DockerEngine, triton_image: str, tmp_path: Path
) -> None:
    """The seeds' procedure, `docker run -v /var/run/docker.sock:... --net=host IMAGE --batch ... --triton-version
    ...`: the image's CLI starts Triton next to itself through the mounted socket. The image runs as user 10001,
    not root, so it is given the socket's group (`--group-add`), as Docker's socket is group-owned (docker)."""
    models = copy_models(REPO_ROOT, tmp_path / "models", ("add_sub",))
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o777)  # written by the image's user
    group = 2375  # a group of its own for the socket, as Docker's `docker` group
    os.chown(docker_engine.socket, 0, group)
    docker_engine.socket.chmod(0o660)
    label = f"dev.modelanalysis.test={uuid.uuid4().hex[:12]}"
    command = [
        "podman", "run", "--rm", "--group-add", str(group),
        "-v", f"{docker_engine.socket}:/var/run/docker.sock", "-v", f"{models}:{models}", "-v", f"{results}:/results",
        "--net=host", image,
        "--batch", "1,2", "--concurrency", "1", "--model-names", "add_sub", "--triton-version", RELEASE,
        "--model-folder", str(models), "--export", "--export-path", "/results/",
        "--triton-docker-labels", label, *FAST_FLAGS,
    ]  # fmt: skip
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=podman_env(), timeout=600, check=False)
        assert proc.returncode == 0, output(proc)
        assert [(r["Batch"], r["Concurrency"]) for r in rows(results)] == [("1", "1"), ("2", "1")], output(proc)
        result = AnalysisResult.model_validate_json((results / "analysis.json").read_text())
        assert result.server_version == SERVER_VERSION
        assert docker_engine.containers(label) == []
    finally:
        docker_engine.remove(label)
        docker_engine.socket.chmod(0o600)
