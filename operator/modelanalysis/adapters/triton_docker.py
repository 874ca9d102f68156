"""Start Triton in a container through the Docker Engine API: Model Analyzer's `--triton-launch-mode docker`.

The container is a sibling of this process, made by whatever answers the Engine API on the socket
(`DOCKER_HOST`, else /var/run/docker.sock): Docker, or podman's `system service`. It shares the host's network,
so the ports chosen here are the server's, whether this CLI runs on the host or in a container started with
`--net=host` (the original tool's procedure). The model folder is mounted read-only at the same path, which is
why that procedure mounts it at the same path in both containers.

Nothing is left running: the container is removed when the run ends, on Ctrl-C, and on SIGTERM; a container
left by a run that was killed outright is found by its labels and removed by the next run, once the run that
started it is seen to be gone (its process, or its own container).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelanalysis.adapters.triton_server import StartedTriton, TritonStartError

DEFAULT_IMAGE_REPOSITORY = "nvcr.io/nvidia/tritonserver"
DEFAULT_SHM_SIZE = "1g"  # the shared memory NVIDIA's Triton containers are usually given; the Python backend uses it
LABEL_ROLE = "dev.modelanalysis.role"
ROLE = "triton-server"
# Who started the container: enough for a later run to tell whether that run is still alive.
LABEL_HOST = "dev.modelanalysis.cli-host"
LABEL_PID = "dev.modelanalysis.cli-pid"
LABEL_PID_NS = "dev.modelanalysis.cli-pid-namespace"
LABEL_PROCESS_START = "dev.modelanalysis.cli-process-start"
LABEL_CONTAINER = "dev.modelanalysis.cli-container"  # set when the CLI itself runs in a container
# NVIDIA's images say which release and which server version they hold in these variables.
RELEASE_ENV = "NVIDIA_TRITON_SERVER_VERSION"
SERVER_VERSION_ENV = "TRITON_SERVER_VERSION"


def image_for(version: str, image: str | None) -> str:
    """The image to run: `--triton-docker-image` if given, else NVIDIA's image of that Triton release."""
    return image or f"{DEFAULT_IMAGE_REPOSITORY}:{version}"


@dataclass(frozen=True)
class Owner:
    """This CLI run, as the labels of the containers it starts record it."""

    host: str
    pid: int
    pid_namespace: str
    process_start: str
    container: str | None

    @classmethod
    def this_process(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid(), _pid_namespace(), _process_start(os.getpid()) or "",
                   own_container_id())  # fmt: skip

    def labels(self) -> dict[str, str]:
        labels = {LABEL_ROLE: ROLE, LABEL_HOST: self.host, LABEL_PID: str(self.pid),
                  LABEL_PID_NS: self.pid_namespace, LABEL_PROCESS_START: self.process_start}  # fmt: skip
        if self.container:
            labels[LABEL_CONTAINER] = self.container
        return labels


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _process_start(pid: int) -> str | None:
    """The process' start time in clock ticks since boot (field 22 of /proc/PID/stat): a pid reused by another
    process has another start time. None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


CONTAINER_ID = re.compile(r"/containers/(?:storage/overlay-containers/)?([0-9a-f]{64})/")


def own_container_id() -> str | None:
    """The id of the container this process runs in, if any: Docker and podman both bind-mount /etc/hostname
    from a folder named by the container's id."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 4 and fields[4] == "/etc/hostname" and (found := CONTAINER_ID.search(fields[3])):
            return found.group(1)
    return None


def left_behind(labels: dict[str, str], me: Owner, container_running: Any) -> bool:
    """Whether a container with these labels was left by a run that is gone. `container_running(id)` asks the
    Engine API about the run's own container. A run in another pid namespace, not in a container the API
    knows, cannot be judged: it is left alone."""
    if (owner_container := labels.get(LABEL_CONTAINER)) and owner_container != me.container:
        return not container_running(owner_container)
    if labels.get(LABEL_HOST) != me.host or labels.get(LABEL_PID_NS) != me.pid_namespace:
        return False
    pid = labels.get(LABEL_PID, "")
    if not pid.isdigit() or int(pid) == me.pid:
        return False
    return _process_start(int(pid)) != labels.get(LABEL_PROCESS_START)


@dataclass(frozen=True)
class DockerLaunch:
    """How to run the server's container (Model Analyzer's triton_docker_* settings)."""

    image: str
    shm_size: str = DEFAULT_SHM_SIZE
    gpus: str = "auto"  # auto: every GPU where the host has NVIDIA's; all; none; or GPU ids/UUIDs, comma-separated
    mounts: tuple[str, ...] = ()  # more volumes, host:container[:ro|rw]
    labels: dict[str, str] = field(default_factory=dict)


def device_requests(gpus: str, host_has_gpus: bool) -> list[dict[str, Any]]:
    """The GPUs to ask for (docker.types.DeviceRequest's arguments; `docker run --gpus` does the same): none
    without GPUs, so a CPU-only server runs as it is."""
    choice = gpus.strip().lower()
    if choice == "none" or (choice == "auto" and not host_has_gpus):
        return []
    if choice in ("auto", "all"):
        return [{"driver": "nvidia", "count": -1, "capabilities": [["gpu"]]}]
    return [{"driver": "nvidia", "device_ids": [g.strip() for g in gpus.split(",") if g.strip()],
             "capabilities": [["gpu"]]}]  # fmt: skip


def volumes(model_repository: Path, mounts: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """The model folder read-only at its own path, then the extra mounts as given."""
    found = {str(model_repository.resolve()): {"bind": str(model_repository.resolve()), "mode": "ro"}}
    for mount in mounts:
        parts = mount.split(":")
        well_formed = len(parts) in (2, 3) and all(parts[:2]) and (len(parts) == 2 or parts[2] in ("ro", "rw"))
        if not well_formed:
            raise TritonStartError(f"--triton-docker-mounts {mount!r} is not host:container[:ro|rw]")
        found[parts[0]] = {"bind": parts[1], "mode": parts[2] if len(parts) == 3 else "rw"}
    return found


def host_has_nvidia_gpus() -> bool:
    return Path("/dev/nvidiactl").exists() or any(Path("/dev").glob("nvidia[0-9]*"))


class TritonContainer(StartedTriton):
    """Triton in a container from `launch.image`, on the host's network, removed when stopped."""

    what = "the Triton container"

    def __init__(self, launch: DockerLaunch, model_repository: Path, log_path: Path, **kwargs: Any) -> None:
        kwargs.setdefault("startup_timeout_s", 120.0)  # a container also starts its runtime
        super().__init__(model_repository, log_path, **kwargs)
        self.launch = launch
        self.client: Any = None
        self.container: Any = None
        self.removed_leftovers: list[str] = []

    def _connect(self) -> Any:
        import docker  # a dependency only this launch mode uses

        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        try:
            client = docker.from_env()
            client.ping()
        except docker.errors.DockerException as exc:
            if "Permission denied" in str(exc):
                raise TritonStartError(
                    f"This user (uid {os.getuid()}) may not use the Docker Engine API socket at {where}: in a "
                    f"container add `--group-add {_socket_group(where)}` (the socket's group), on a host join the "
                    "socket's group (usually docker)."
                ) from None
            raise TritonStartError(
                f"No Docker Engine API answers at {where} ({_short(exc)}): start Docker (or `podman system "
                "service`), mount its socket into this container (-v /var/run/docker.sock:/var/run/docker.sock), "
                "or set DOCKER_HOST; or use --triton-launch-mode local."
            ) from None
        return client

    def _launch(self, args: list[str]) -> None:
        import docker

        self.client = self._connect()
        me = Owner.this_process()
        try:
            self._remove_leftovers(me)
            image = self._image()
        except docker.errors.DockerException as exc:  # the engine failed a call: a sentence, not a traceback
            said = _short(exc)
            raise TritonStartError(f"The Docker Engine API failed a call before Triton started: {said}") from None
        name = f"modelanalysis-triton-{me.pid}-{self.ports['--http-port']}"
        try:
            self.container = self.client.containers.run(
                image,
                command=["tritonserver", *args],
                detach=True,
                network_mode="host",
                volumes=volumes(self.model_repository, self.launch.mounts),
                shm_size=self.launch.shm_size,
                labels={**self.launch.labels, **me.labels()},
                device_requests=[docker.types.DeviceRequest(**r)
                                 for r in device_requests(self.launch.gpus, host_has_nvidia_gpus())],
                name=name,
            )  # fmt: skip
        except docker.errors.APIError as exc:
            # run() creates, then starts: a container that was created but would not start is removed too.
            with contextlib.suppress(docker.errors.APIError):
                self.client.containers.get(name).remove(force=True)
            raise TritonStartError(
                f"The Triton container from {self.launch.image} did not start: {_short(exc)}"
            ) from None

    def _image(self) -> Any:
        """The image, pulled on first use as the original tool did; a sentence when it cannot be had."""
        import docker

        name = self.launch.image
        try:
            return self.client.images.get(name)
        except docker.errors.ImageNotFound:
            pass
        repository, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
        error = ""
        try:
            # The low-level stream, because the registry's own words (no such tag, unreachable, denied) come as
            # events in it, which images.pull() drops.
            for event in self.client.api.pull(repository, tag=tag, stream=True, decode=True):
                error = error or str(event.get("error") or "")
        except docker.errors.APIError as exc:
            error = _short(exc)
        if not error:
            with contextlib.suppress(docker.errors.ImageNotFound):
                return self.client.images.get(name)
            error = "the engine reports no error, yet has no such image"
        raise TritonStartError(pull_failure(name, error))

    def _remove_leftovers(self, me: Owner) -> None:
        import docker

        def running(container_id: str) -> bool:
            try:
                return str(self.client.containers.get(container_id).status) == "running"
            except docker.errors.NotFound:
                return False

        for old in self.client.containers.list(all=True, filters={"label": f"{LABEL_ROLE}={ROLE}"}):
            if left_behind(dict(old.labels), me, running):
                with contextlib.suppress(docker.errors.NotFound):
                    old.remove(force=True)
                self.removed_leftovers.append(str(old.name))

    def _exited(self) -> str | None:
        import docker

        try:
            self.container.reload()
        except docker.errors.NotFound:
            return "the Triton container was removed"
        if self.container.status in ("created", "running"):
            return None
        self._save_log(self.container)
        code = self.container.attrs.get("State", {}).get("ExitCode")
        return f"the Triton container exited with status {code}"

    def image_versions(self) -> tuple[str, str]:
        """(release, server version) as the image's own environment states them ("" where it does not)."""
        if self.container is None:
            return "", ""
        env = dict(e.split("=", 1) for e in self.container.attrs.get("Config", {}).get("Env") or [] if "=" in e)
        return env.get(RELEASE_ENV, ""), env.get(SERVER_VERSION_ENV, "")

    def _save_log(self, container: Any) -> None:
        with contextlib.suppress(Exception):  # a log that cannot be read must not hide why the run stopped
            self.log_path.write_bytes(container.logs())

    def stop(self, timeout_s: float = 15.0) -> None:
        container, self.container = self.container, None
        if container is None:
            return
        import docker

        try:
            with contextlib.suppress(docker.errors.APIError):  # already gone (NotFound is an APIError)
                container.stop(timeout=int(timeout_s))
        finally:  # a second Ctrl-C while it stops must not leave it behind
            self._save_log(container)
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)


NO_SUCH_TAG = ("manifest unknown", "not found", "no such image", "does not exist")


def pull_failure(image: str, error: str) -> str:
    """What to do about an image the engine could not pull, from the registry's words."""
    said = error.strip().splitlines()[0][:300] if error.strip() else "no reason given"
    if any(words in said.lower() for words in NO_SUCH_TAG):
        return (f"Image {image} does not exist in its registry ({said}): check --triton-version (a release such as "
                "24.08-py3) or --triton-docker-image.")  # fmt: skip
    return (f"Image {image} is not here and cannot be pulled ({said}): `docker login` to its registry, pull it "
            "where the registry is reachable and load it here (`docker load`), or name a local image with "
            "--triton-docker-image.")  # fmt: skip


def _socket_group(where: str) -> str:
    """The group id owning a unix socket's file, for the sentence that says to join it."""
    try:
        return str(os.stat(where.removeprefix("unix://")).st_gid)
    except OSError:
        return "<the socket's group id>"


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
