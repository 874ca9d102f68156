"""A node agent that plays the kubelet for the test control plane, running each pod's containers as
local processes.

It registers Nodes (by default one `gpu-node-1` advertising one `nvidia.com/gpu`; more, tainted or not, as
`NodeSpec`s at start or with `add_node` while it runs), watches the pods the
scheduler binds to them, and for each pod:

- gives it its own loopback address 127.X.Y.N as podIP (from a random block; never reused within a session);
- runs the project's image as a real container (podman/runc, host network; see PROJECT IMAGE below) and
  resolves any other image to a local program (IMAGE RULES below), with its env (fieldRef,
  configMapKeyRef, secretKeyRef, envFrom);
- shows it its volumes at their mountPath in a private mount namespace (`unshare -m` + `mount --bind`):
  PVC -> the bound PV's hostPath, emptyDir -> a fresh folder, configMap/secret/downwardAPI -> files, the
  projected service-account volume -> a real bound token from the TokenRequest API plus ca.crt and the
  namespace, so in-pod clients authenticate as the pod's ServiceAccount and RBAC applies to them;
- runs readinessProbes and writes pod status as a kubelet does (phase, conditions, podIP,
  containerStatuses with exit codes and termination messages), restarting per restartPolicy;
- on deletion stops the processes (SIGTERM, SIGKILL after the grace period) and deletes the pod with
  grace period 0. Finished pods are left for their owners (the Job controller counts them).

Not done: liveness/startup probes, resource limits, user IDs outside the project's image (local processes
run as the agent's user), kube-proxy (Service ClusterIPs route nowhere; talk to pods by podIP), image pulls.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, watch

Json = dict[str, Any]

RUNNING_OUR_PROJECT_SUFFIX = "/modelanalysis"
TRITON_REPOSITORY = "nvcr.io/nvidia/tritonserver"
TRITON_ADDRESS_FLAGS = ("--http-address", "--grpc-address", "--metrics-address")
MERGE_PATCH = "application/merge-patch+json"
KUBELET_CONDITIONS = {"PodReadyToStartContainers", "PodScheduled", "Initialized", "ContainersReady", "Ready"}
MAX_MESSAGE_BYTES = 4096  # as the kubelet caps termination messages
RESTART_BACKOFF_CAP_S = 10.0  # the kubelet caps at 5 min; tests want restarts visible quickly

log = logging.getLogger("tests.cluster.node_agent")

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = REPO_ROOT / "scripts" / "containers.conf"
DEFAULT_CONTAINER_ENV = {"PATH", "HOME", "LANG"}  # the agent's defaults for local processes; an image has its own


def podman_env() -> dict[str, str]:
    """The environment podman itself runs with (not the container's)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF)),
        "HOME": os.environ.get("HOME", "/root"),
    }


def find_project_image() -> tuple[str | None, str]:
    """PROJECT IMAGE: the local image that pods naming `*/modelanalysis:*` run, and why.

    $MODELANALYSIS_NODE_IMAGE names it (`venv` for none); otherwise it is the image scripts/build-image.sh
    built from this checkout, if podman is here and that image is up to date (`--check`, which builds
    nothing). None: those pods run as local processes from the test venv (the fallback for developers
    without podman or before the image is built).
    """
    given = os.environ.get("MODELANALYSIS_NODE_IMAGE", "")
    if given == "venv":
        return None, "MODELANALYSIS_NODE_IMAGE=venv"
    if given:
        return given, "MODELANALYSIS_NODE_IMAGE"
    if shutil.which("podman") is None:
        return None, "podman is not installed"
    check = subprocess.run(
        [str(REPO_ROOT / "scripts" / "build-image.sh"), "--check"],
        capture_output=True, text=True, env={**os.environ, **podman_env()}, check=False,
    )  # fmt: skip
    if check.returncode != 0:
        return None, "the image of this checkout is not built (scripts/build-image.sh)"
    return check.stdout.strip().splitlines()[-1], "scripts/build-image.sh --check"


def api_unavailable(error: Exception) -> bool:
    """The API server could not be reached or was not ready (a restart): a kubelet tries again later."""
    if isinstance(error, client.ApiException):
        return error.status in (0, 429, 500, 502, 503, 504)
    return isinstance(error, (urllib3.exceptions.HTTPError, ConnectionError))


class NotRunnable(Exception):
    """The pod cannot run here at all (e.g. an image with no local equivalent): the pod fails."""


class NotYet(Exception):
    """Something the pod needs is missing for now (a ConfigMap, an unbound PVC): retried."""


@dataclass
class NodeSpec:
    name: str = "gpu-node-1"
    # Nominal capacity, large enough for charts written for real GPU nodes; nothing is enforced.
    cpu: str = "32"
    memory: str = "128Gi"
    pods: str = "110"
    gpus: int = 1
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[Json] = field(default_factory=list)  # e.g. {"key": "nvidia.com/gpu", "effect": "NoSchedule"}


GPU_TAINT: Json = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def several_nodes(count: int) -> list[NodeSpec]:
    """`count` GPU nodes gpu-node-1..N, the last of several tainted `nvidia.com/gpu=present:NoSchedule` as
    GPU nodes of most clusters are ($MODELANALYSIS_TEST_NODES for `python -m tests.cluster up`)."""
    nodes = [NodeSpec(name=f"gpu-node-{i}") for i in range(1, count + 1)]
    if count > 1:
        nodes[-1].taints.append(GPU_TAINT)
    return nodes


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def image_repository(image: str) -> str:
    """`ghcr.io/x/y:tag@sha256:...` -> `ghcr.io/x/y` (a colon after the last slash starts the tag)."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def cuda_runtime_lib() -> Path | None:
    """perf_analyzer (tritonclient 2.50) needs libcudart.so.12 from nvidia-cuda-runtime-cu12."""
    path = Path(sysconfig.get_paths()["purelib"]) / "nvidia" / "cuda_runtime" / "lib"
    return path if path.is_dir() else None


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str]


def resolve_image(image: str, command: list[str], args: list[str], pod_ip: str, base_env: dict[str, str]) -> Launch:
    """IMAGE RULES: what each image means on this machine."""
    repository = image_repository(image)
    venv_bin = str(Path(sys.executable).parent)
    env = dict(base_env)
    env["PATH"] = os.pathsep.join([venv_bin, base_env["PATH"]])
    if repository == TRITON_REPOSITORY:
        # Real Triton from the nvidia-pytriton wheel; its ports bind to the pod's own address, so every
        # Triton pod can keep the default ports without colliding.
        from modelanalysis.adapters.local_triton import TritonNotFound, find_local_triton

        if command and Path(command[0]).name != "tritonserver":
            raise NotRunnable(f"image {image}: only the `tritonserver` command runs here, not {command[0]!r}")
        try:
            triton = find_local_triton()
        except TritonNotFound as error:
            raise NotRunnable(f"image {image}: {error}") from error
        server_args = _without_flags([*command[1:], *args], TRITON_ADDRESS_FLAGS)
        server_args += [f"{flag}={pod_ip}" for flag in TRITON_ADDRESS_FLAGS]
        return Launch(triton.command(server_args), triton.env(env))
    if is_project_image(image):
        # This project's image without podman (the fallback): its commands (model-analyzer, kopf,
        # perf_analyzer, python) from our venv.
        argv = [*command, *args]
        if not argv:
            raise NotRunnable(f"image {image}: set the container's command; there is no image entrypoint here")
        lib = cuda_runtime_lib()
        if lib is not None:
            env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(lib), env.get("LD_LIBRARY_PATH")) if p)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return Launch(argv, env)
    if repository in ("python", "docker.io/library/python", "library/python"):
        # The python image's default command is python3; ours is the interpreter running the tests.
        argv = [*command, *args] if command else ["python3", *args]
        if Path(argv[0]).name.startswith("python"):
            argv[0] = sys.executable
        env.setdefault("PYTHONUNBUFFERED", "1")
        return Launch(argv, env)
    raise NotRunnable(
        f"image {image} is not runnable here: the node agent runs only {TRITON_REPOSITORY}:*, "
        f"*{RUNNING_OUR_PROJECT_SUFFIX}:* and python:* images"
    )


def is_project_image(image: str) -> bool:
    repository = image_repository(image)
    return repository.endswith(RUNNING_OUR_PROJECT_SUFFIX) or repository == RUNNING_OUR_PROJECT_SUFFIX[1:]


def remove_containers(names: Sequence[str] = (), label: str | None = None) -> None:
    """`podman rm -f` by name or by label (stops at once: the grace period is over when this runs)."""
    if names:
        argv = ["podman", "rm", "--force", "--ignore", "--time", "0", *names]
    elif label:
        argv = ["podman", "rm", "--force", "--ignore", "--time", "0", "--filter", f"label={label}"]
    else:
        return
    subprocess.run(argv, env=podman_env(), capture_output=True, check=False, timeout=60)


def _without_flags(args: list[str], flags: Sequence[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in flags:
            skip = True  # `--flag value`
        elif not arg.startswith(tuple(f"{flag}=" for flag in flags)):
            out.append(arg)
    return out


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion; $$(VAR) escapes; unknown references stay as written."""
    out = []
    i = 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("$(", i) and (end := value.find(")", i)) != -1:
            name = value[i + 2 : end]
            out.append(env.get(name, value[i : end + 1]))
            i = end + 1
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


@dataclass
class Mount:
    source: Path
    target: str
    read_only: bool = False


STASH = "/run/modelanalysis-node-agent"


def mount_namespace_argv(argv: list[str], mounts: Sequence[Mount], home: Path, working_dir: str | None) -> list[str]:
    """Wrap argv so it runs in its own mount namespace with the mounts in place.

    `unshare -m --propagation private` keeps every bind mount private to this process tree; the host's
    paths are untouched apart from empty mount points. `setpriv --pdeathsig KILL` has the kernel kill the
    process if the agent's thread that started it dies. Both exec, so the Popen PID is the program's.

    Every source is first bound into a private tmpfs (the stash), and mounted at its target from there:
    mount(8) resolves a source path when it runs, so a mount at, say, /tmp (an emptyDir under a read-only
    root filesystem) made first would otherwise hide sources that live under /tmp. The folders this node's
    programs need (the venv, the interpreter, the project's source) are stashed too and bound back after
    the mounts, so a mount over a folder that holds them (a checkout under /tmp) does not hide them: a real
    container has its own root instead.
    """
    ordered = sorted(mounts, key=lambda m: m.target.rstrip("/").count("/"))
    restore = [p for p in needed_paths() if any(covers(m.target, p) for m in ordered)]
    q = shlex.quote
    lines = ["set -e", f"cd {q(str(home))}"]  # before the mounts, so it stays reachable
    lines += [f"mkdir -p {STASH}", f"mount -t tmpfs stash {STASH}"]
    sources = [(m.source, m.source.is_dir()) for m in ordered] + [(p, True) for p in restore]
    for i, (source, is_dir) in enumerate(sources):
        lines.append(f"mkdir {STASH}/{i}" if is_dir else f": > {STASH}/{i}")
        lines.append(f"mount --bind {q(str(source))} {STASH}/{i}")
    for i, mount in enumerate(ordered):
        dst = q(mount.target)
        if mount.source.is_dir():
            lines.append(f"mkdir -p {dst}")
        else:
            lines.append(f'mkdir -p "$(dirname {dst})"; [ -e {dst} ] || : > {dst}')
        lines.append(f"mount --bind {STASH}/{i} {dst}")
        if mount.read_only:
            lines.append(f"mount -o remount,bind,ro {dst}")
    for i, path in enumerate(restore, start=len(ordered)):
        lines += [f"mkdir -p {q(str(path))}", f"mount --bind {STASH}/{i} {q(str(path))}"]
    if working_dir:
        lines.append(f"mkdir -p {q(working_dir)} && cd {q(working_dir)}")
    lines.append('exec "$@"')
    return [
        *("setpriv", "--pdeathsig", "KILL", "--"),
        *("unshare", "-m", "--propagation", "private", "--"),
        *("bash", "-c", "\n".join(lines), "pod", *argv),
    ]


SYSTEM_DIRS = {"/", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc", "/proc", "/sys", "/dev"}


def needed_paths() -> list[Path]:
    """Host folders every program this node starts needs: the interpreter, the venv, the project's source.
    Only the outermost of nested ones, so each is bound back once."""
    import modelanalysis

    needed = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).parent, Path(modelanalysis.__file__).parent}
    return sorted(p for p in needed if not any(q != p and q in p.parents for q in needed))


def covers(target: str, path: Path) -> bool:
    """Whether a mount at `target` would hide `path`."""
    target_path = Path(os.path.normpath(target))
    return path == target_path or target_path in path.parents


def hidden_by(target: str) -> Path | None:
    """A system folder that a mount at `target` would hide, if any: pods share the host's filesystem here
    (a real container has its own root), so a mount over /usr or /etc would break every program."""
    target_path = Path(os.path.normpath(target))
    return target_path if str(target_path) in SYSTEM_DIRS else None


def check_mount_namespaces() -> None:
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            "the node agent needs mount namespaces (root or CAP_SYS_ADMIN) to show pods their volumes: "
            f"`unshare -m` failed: {result.stderr.strip()}"
        )


@dataclass
class ContainerRun:
    spec: Json
    log_path: Path
    termination_file: Path
    init: bool = False
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    restart_count: int = 0
    state: Json = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Json = field(default_factory=dict)
    ready: bool = False
    done: bool = False  # terminated and will not restart
    next_start: float = 0.0
    probe_due: float = 0.0
    probe_successes: int = 0
    probe_failures: int = 0
    log_offset: int = 0  # where this run's output starts in the (appended) log file
    container: str | None = None  # the podman container's name, when it runs in the project's image

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def container_id(self) -> str:
        return f"podman://{self.container}" if self.container else f"local://{self.process.pid if self.process else 0}"

    def status(self) -> Json:
        return {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": self.spec.get("image", ""),
            **({"containerID": self.container_id} if self.process else {}),
            "ready": self.ready,
            "started": "running" in self.state,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }


class PodRunner:
    """One pod's life on the node, in its own thread."""

    def __init__(self, agent: NodeAgent, pod: Json) -> None:
        self.agent = agent
        self.pod = pod
        meta = pod["metadata"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.uid: str = meta["uid"]
        self.key = f"{self.namespace}/{self.name}"
        self.dir = agent.work_dir / "pods" / f"{self.namespace}_{self.name}_{self.uid[:8]}"
        self.pod_ip = ""
        self.start_time = ""
        self.failure: tuple[str, str] | None = None  # pod-level (reason, message)
        self.waiting_reason: tuple[str, str] | None = None
        self.mounts_by_container: dict[str, list[Mount]] = {}
        self.init_containers: list[ContainerRun] = []
        self.containers: list[ContainerRun] = []
        self.conditions: dict[str, tuple[str, str]] = {}  # type -> (status, lastTransitionTime)
        self.last_sent: str | None = None
        self.removed = threading.Event()
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._main, name=f"pod {self.key}", daemon=True)

    # -- events from the watch ---------------------------------------------------------------------

    def update(self, pod: Json) -> None:
        with self.lock:
            self.pod = pod
        self.wake.set()

    def mark_removed(self) -> None:
        self.removed.set()
        self.wake.set()

    @property
    def deleting(self) -> bool:
        return self.pod["metadata"].get("deletionTimestamp") is not None

    @property
    def spec(self) -> Json:
        return dict(self.pod["spec"])

    # -- main loop ---------------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("pod %s: agent error", self.key)
            self.failure = ("NodeAgentError", f"the node agent failed on this pod; see {self.agent.log_file}")
            self._kill_all(grace=0)
            self._send_status()
        finally:
            self._kill_all(grace=2)

    def _run(self) -> None:
        spec = self.spec
        self.pod_ip = "127.0.0.1" if spec.get("hostNetwork") else self.agent.allocate_ip()
        self.start_time = now()
        self.dir.mkdir(parents=True, exist_ok=True)
        log_dir = self.agent.pod_log_dir
        for init, key in ((True, "initContainers"), (False, "containers")):
            for c in spec.get(key) or []:
                run = ContainerRun(
                    spec=c,
                    init=init,
                    log_path=log_dir / f"{self.namespace}_{self.name}_{c['name']}.log",
                    termination_file=self.dir / "termination" / c["name"],
                )
                (self.init_containers if init else self.containers).append(run)
        self._send_status()

        # 1. Volumes and env: retried until present (as the kubelet does), unless the pod goes away.
        while not self._stopping():
            try:
                self._prepare()
                self.waiting_reason = None
                break
            except NotRunnable as error:
                self.failure = ("NotRunnable", str(error))
                self._event("Failed", str(error), warning=True)
                for run in [*self.init_containers, *self.containers]:
                    run.state = {"waiting": {"reason": "ErrImagePull", "message": str(error)}}
                    run.done = True
                break
            except NotYet as error:
                if self.waiting_reason != ("CreateContainerConfigError", str(error)):
                    log.info("pod %s waits: %s", self.key, error)
                self.waiting_reason = ("CreateContainerConfigError", str(error))
                for run in [*self.init_containers, *self.containers]:
                    run.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(error)}}
            except Exception as error:
                if not api_unavailable(error):
                    raise
                log.info("pod %s waits for the API server: %s", self.key, error)
            self._send_status()
            self.wake.wait(1.0)
            self.wake.clear()

        # 2. Run: init containers one by one, then all containers together.
        while not self.removed.is_set():
            if self.deleting:
                self._terminate_and_delete()
                break
            if self.failure is None:
                self._step()
            self._send_status()
            self.wake.wait(1.0 if self._phase() in ("Succeeded", "Failed") else 0.2)
            self.wake.clear()
        self.removed.wait()  # a deleted pod may linger on finalizers; nothing more to do for it

    def _stopping(self) -> bool:
        if self.removed.is_set():
            return True
        if self.deleting:
            self._terminate_and_delete()
            self.removed.wait()
            return True
        return False

    def _step(self) -> None:
        pending_init = [c for c in self.init_containers if not c.done]
        active = pending_init[:1] if pending_init else self.containers
        for run in active:
            if run.process is None:
                if not run.done and time.monotonic() >= run.next_start:
                    self._start(run)
            elif run.process.poll() is not None:
                self._on_exit(run)
            elif not run.init:
                self._probe(run)

    # -- containers --------------------------------------------------------------------------------

    def _start(self, run: ContainerRun) -> None:
        c = run.spec
        if self.agent.project_image and is_project_image(c.get("image", "")):
            self._start_container(run)
            return
        try:
            launch = resolve_image(
                c.get("image", ""),
                list(c.get("command") or []),
                [expand(a, run.env) for a in c.get("args") or []],
                self.pod_ip,
                run.env,
            )
        except NotRunnable as error:
            self.failure = ("NotRunnable", str(error))
            self._event("Failed", str(error), warning=True, container=run.name)
            run.state = {"waiting": {"reason": "ErrImagePull", "message": str(error)}}
            run.done = True
            return
        launch.argv = [expand(a, run.env) for a in launch.argv]
        run.termination_file.parent.mkdir(parents=True, exist_ok=True)
        run.termination_file.write_bytes(b"")
        hosts = self.dir / "hosts"
        hosts.write_text(self._hosts_file())
        mounts = [
            *self.mounts_by_container[run.name],
            Mount(run.termination_file, c.get("terminationMessagePath") or "/dev/termination-log"),
            Mount(hosts, "/etc/hosts"),
        ]
        home = self.dir / "root"  # the working directory when the pod sets none (a real image's WORKDIR)
        home.mkdir(exist_ok=True)
        argv = mount_namespace_argv(launch.argv, mounts, home, c.get("workingDir"))
        run.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(run.log_path, "ab") as out:
            out.write(f"--- {now()} start {shlex.join(launch.argv)}\n".encode())
            out.flush()
            run.log_offset = out.tell()
            run.process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=launch.env,
                start_new_session=True,
            )
        log.info("pod %s: started %s (pid %d): %s", self.key, run.name, run.process.pid, shlex.join(launch.argv))
        run.state = {"running": {"startedAt": now()}}
        self._event("Started", f"Started container {run.name}", container=run.name)
        probe = c.get("readinessProbe")
        run.ready = probe is None
        run.probe_due = time.monotonic() + float((probe or {}).get("initialDelaySeconds", 0))
        run.probe_successes = run.probe_failures = 0

    def _start_container(self, run: ContainerRun) -> None:
        """The project's image as a real container: `podman run` (runc) in the host's network namespace, as
        the node's other pods share it, with the pod's volumes, user, groups, read-only root filesystem,
        capabilities, environment, service-account token and termination message. The podman client stays
        attached (its output is the container's log, its exit status the container's, and it passes
        SIGTERM on); a container left behind by a killed client is removed by name."""
        c = run.spec
        image = self.agent.project_image
        assert image is not None
        run.termination_file.parent.mkdir(parents=True, exist_ok=True)
        run.termination_file.write_bytes(b"")
        run.termination_file.chmod(0o666)  # as the kubelet leaves it: writable by any user the pod runs as
        hosts = self.dir / "hosts"
        hosts.write_text(self._hosts_file())
        hosts.chmod(0o644)
        run.container = f"k8s_{run.name}_{self.name}_{self.namespace}_{self.uid[:8]}_{run.restart_count}"
        argv = [
            "podman", "run", "--rm", "--name", run.container, "--network", "host", "--pull", "never",
            "--label", f"io.modelanalysis.node-agent={self.agent.session}", "--log-driver", "none",
        ]  # fmt: skip
        pod_sc = self.spec.get("securityContext") or {}
        sc = {**pod_sc, **(c.get("securityContext") or {})}
        if "runAsUser" in sc:
            argv += ["--user", f"{sc['runAsUser']}:{sc.get('runAsGroup', sc['runAsUser'])}"]
        for group in [*([pod_sc["fsGroup"]] if "fsGroup" in pod_sc else []), *pod_sc.get("supplementalGroups", [])]:
            argv += ["--group-add", str(group)]
        if sc.get("readOnlyRootFilesystem"):
            argv += ["--read-only", "--read-only-tmpfs=false"]  # only the pod's volumes are writable
        if sc.get("allowPrivilegeEscalation") is False:
            argv += ["--security-opt", "no-new-privileges"]
        capabilities = sc.get("capabilities") or {}
        argv += [a for cap in capabilities.get("drop", []) for a in ("--cap-drop", cap.lower())]
        argv += [a for cap in capabilities.get("add", []) for a in ("--cap-add", cap.lower())]
        mounts = [
            *self.mounts_by_container[run.name],
            Mount(run.termination_file, c.get("terminationMessagePath") or "/dev/termination-log"),
            Mount(hosts, "/etc/hosts", read_only=True),
        ]
        for mount in mounts:
            argv += ["--volume", f"{mount.source}:{mount.target}:{'ro' if mount.read_only else 'rw'}"]
        defaults = self._default_env()
        for name, value in run.env.items():
            if not (name in DEFAULT_CONTAINER_ENV and defaults.get(name) == value):
                argv += ["--env", f"{name}={value}"]
        if c.get("workingDir"):
            argv += ["--workdir", c["workingDir"]]
        command = [expand(a, run.env) for a in c.get("command") or []]
        args = [expand(a, run.env) for a in c.get("args") or []]
        if command:
            argv += ["--entrypoint", json.dumps(command)]
        argv += [image, *args]
        run.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(run.log_path, "ab") as out:
            out.write(f"--- {now()} start {image} (for {c.get('image')}): {shlex.join([*command, *args])}\n".encode())
            out.flush()
            run.log_offset = out.tell()
            run.process = subprocess.Popen(
                ["setpriv", "--pdeathsig", "KILL", "--", *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=podman_env(),
                start_new_session=True,
            )
        log.info("pod %s: started container %s (%s): %s", self.key, run.container, image, shlex.join(argv))
        run.state = {"running": {"startedAt": now()}}
        self._event("Started", f"Started container {run.name}", container=run.name)
        probe = c.get("readinessProbe")
        run.ready = probe is None
        run.probe_due = time.monotonic() + float((probe or {}).get("initialDelaySeconds", 0))
        run.probe_successes = run.probe_failures = 0

    def _on_exit(self, run: ContainerRun) -> None:
        assert run.process is not None
        code = run.process.returncode
        exit_code = 128 - code if code < 0 else code  # killed by signal N -> 128+N, as runtimes report
        message = run.termination_file.read_bytes()[:MAX_MESSAGE_BYTES].decode(errors="replace")
        if not message and exit_code != 0 and run.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = _log_tail(run.log_path, run.log_offset)
        terminated: Json = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": run.state.get("running", {}).get("startedAt", now()),
            "finishedAt": now(),
            "containerID": run.container_id,
        }
        if message:
            terminated["message"] = message
        log.info("pod %s: %s exited with %d", self.key, run.name, exit_code)
        run.process = None
        run.ready = False
        policy = self.spec.get("restartPolicy", "Always")
        restart = not self.deleting and (
            (policy == "Always" and not run.init) or (policy in ("Always", "OnFailure") and exit_code != 0)
        )
        if restart:
            run.last_state = {"terminated": terminated}
            run.restart_count += 1
            delay = min(RESTART_BACKOFF_CAP_S, 2.0 ** (run.restart_count - 1))
            run.next_start = time.monotonic() + delay
            self._event("BackOff", f"Back-off restarting failed container {run.name}", warning=True, container=run.name)
            run.state = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {delay:.0f}s restarting failed container",
                }
            }
        else:
            run.state = {"terminated": terminated}
            run.done = True
            if run.init and exit_code != 0:
                # A failed init container that will not restart fails the pod; the rest never start.
                for other in self.containers:
                    other.done = True
                    other.state = {"waiting": {"reason": "PodInitializing"}}

    def _probe(self, run: ContainerRun) -> None:
        probe = run.spec.get("readinessProbe")
        if probe is None or time.monotonic() < run.probe_due:
            return
        run.probe_due = time.monotonic() + float(probe.get("periodSeconds", 10))
        ok = self._run_probe(run, probe)
        if ok:
            run.probe_successes, run.probe_failures = run.probe_successes + 1, 0
            if run.probe_successes >= int(probe.get("successThreshold", 1)):
                run.ready = True
        else:
            run.probe_successes, run.probe_failures = 0, run.probe_failures + 1
            if run.probe_failures >= int(probe.get("failureThreshold", 3)):
                run.ready = False

    def _port(self, run: ContainerRun, port: int | str) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for p in run.spec.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
        raise ValueError(f"no container port named {port!r}")

    def _run_probe(self, run: ContainerRun, probe: Json) -> bool:
        timeout = float(probe.get("timeoutSeconds", 1))
        try:
            if "httpGet" in probe:
                get = probe["httpGet"]
                scheme = str(get.get("scheme", "HTTP")).lower()
                host, port = get.get("host") or self.pod_ip, self._port(run, get["port"])
                url = f"{scheme}://{host}:{port}{get.get('path', '/')}"
                headers = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}
                request = urllib.request.Request(url, headers=headers)
                with _NO_PROXY.open(request, timeout=timeout) as response:
                    return 200 <= response.status < 400
            if "tcpSocket" in probe:
                tcp = probe["tcpSocket"]
                with socket.create_connection((tcp.get("host") or self.pod_ip, self._port(run, tcp["port"])), timeout):
                    return True
            if "exec" in probe and run.container:
                result = subprocess.run(
                    ["podman", "exec", run.container, *probe["exec"]["command"]],
                    env=podman_env(),
                    capture_output=True,
                    timeout=timeout + 5,  # podman exec itself takes a moment
                )
                return result.returncode == 0
            if "exec" in probe:
                assert run.process is not None
                # Inside the container's mount namespace, with its env, as the kubelet would.
                result = subprocess.run(
                    ["nsenter", "-t", str(run.process.pid), "-m", "--", *probe["exec"]["command"]],
                    env=run.env | {"PATH": os.pathsep.join([str(Path(sys.executable).parent), run.env["PATH"]])},
                    capture_output=True,
                    timeout=timeout,
                )
                return result.returncode == 0
            if "grpc" in probe:
                port = int(probe["grpc"]["port"])
                with socket.create_connection((self.pod_ip, port), timeout):  # reachability only
                    return True
        except (OSError, ValueError, subprocess.TimeoutExpired, urllib.error.URLError):
            return False
        return False

    def _kill_all(self, grace: float) -> None:
        runs = [r for r in [*self.init_containers, *self.containers] if r.process is not None]
        for run in runs:
            _signal_group(run.process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for run in runs:
            assert run.process is not None
            try:
                run.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(run.process, signal.SIGKILL)
                run.process.wait()
        for run in runs:
            # Anything the container forked is in its process group too.
            _signal_group(run.process, signal.SIGKILL)
        # A killed podman client leaves its container running: remove it (a no-op once it has exited).
        remove_containers([r.container for r in runs if r.container])

    def _event(self, reason: str, message: str, warning: bool = False, container: str | None = None) -> None:
        """An Event as a kubelet records it, so `kubectl describe pod` tells what happened."""
        stamp = now()
        field_path = {}
        if container:
            kind = "initContainers" if any(r.name == container for r in self.init_containers) else "containers"
            field_path = {"fieldPath": f"spec.{kind}{{{container}}}"}
        body = {
            "metadata": {"name": f"{self.name}.{uuid.uuid4().hex[:16]}", "namespace": self.namespace},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": self.name,
                "namespace": self.namespace,
                "uid": self.uid,
                **field_path,
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": "kubelet", "host": self.spec.get("nodeName", "")},
            "reportingComponent": "kubelet",
            "reportingInstance": self.spec.get("nodeName", ""),
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            client.CoreV1Api(self.agent.api).create_namespaced_event(self.namespace, body)
        except client.ApiException as error:  # an Event is best effort, as in the kubelet
            log.debug("pod %s: event %s not recorded: %s", self.key, reason, error)

    def _terminate_and_delete(self) -> None:
        meta = self.pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = self.spec.get("terminationGracePeriodSeconds", 30)
        running = [r for r in [*self.init_containers, *self.containers] if r.process is not None]
        if running:
            log.info("pod %s: deleting, stopping containers (grace %ss)", self.key, grace)
            self._event("Killing", "Stopping containers")
            self._kill_all(float(grace))
            for run in running:
                self._on_exit(run)
            self._send_status()
        try:
            client.CoreV1Api(self.agent.api).delete_namespaced_pod(
                self.name,
                self.namespace,
                grace_period_seconds=0,
                body=client.V1DeleteOptions(grace_period_seconds=0, preconditions=client.V1Preconditions(uid=self.uid)),
            )
        except client.ApiException as error:
            if error.status not in (404, 409):
                raise

    # -- volumes and env -----------------------------------------------------------------------------

    def _prepare(self) -> None:
        spec = self.spec
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        host_paths: dict[str, Path] = {}
        for name, volume in volumes.items():
            host_paths[name] = self._volume(name, volume)
        for run in [*self.init_containers, *self.containers]:
            run.env = self._env(run.spec)
            mounts = []
            for vm in run.spec.get("volumeMounts") or []:
                if vm["name"] not in host_paths:
                    raise NotRunnable(f"container {run.name} mounts unknown volume {vm['name']!r}")
                source = host_paths[vm["name"]]
                sub = vm.get("subPath") or expand(vm.get("subPathExpr", ""), run.env)
                if sub:
                    source = source / sub
                    if not source.exists():
                        source.mkdir(parents=True)  # as the kubelet creates missing subPaths
                hidden = hidden_by(vm["mountPath"])
                if hidden is not None:
                    raise NotRunnable(
                        f"container {run.name}: mountPath {vm['mountPath']} would hide {hidden}, which programs "
                        "on this node (the test node agent, sharing the host's filesystem) need; use another path"
                    )
                mounts.append(Mount(source, vm["mountPath"], bool(vm.get("readOnly"))))
            self.mounts_by_container[run.name] = mounts

    def _volume(self, name: str, volume: Json) -> Path:
        core = client.CoreV1Api(self.agent.api)
        target = self.dir / "volumes" / name
        if "emptyDir" in volume:
            target.mkdir(parents=True, exist_ok=True)
            target.chmod(0o777)  # as the kubelet makes it, for whatever user the pod runs as
            return self._owned_by_fs_group(target)
        if "hostPath" in volume:
            path = Path(volume["hostPath"]["path"])
            if volume["hostPath"].get("type") in ("DirectoryOrCreate",):
                path.mkdir(parents=True, exist_ok=True)
            return path
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            pvc = self._read(core.read_namespaced_persistent_volume_claim, claim, self.namespace)
            if pvc.spec.volume_name is None or pvc.status.phase != "Bound":
                raise NotYet(f"PersistentVolumeClaim {claim} is not bound yet")
            pv = core.read_persistent_volume(pvc.spec.volume_name)
            source = pv.spec.host_path.path if pv.spec.host_path else pv.spec.local.path if pv.spec.local else None
            if source is None:
                raise NotRunnable(f"PersistentVolume {pv.metadata.name} is neither hostPath nor local")
            return Path(source)
        files: dict[str, bytes] = {}
        if "configMap" in volume or "secret" in volume:
            files = self._object_files(volume)
        elif "downwardAPI" in volume:
            files = self._downward_files(volume["downwardAPI"].get("items", []))
        elif "projected" in volume:
            for source in volume["projected"].get("sources") or []:
                if "serviceAccountToken" in source:
                    token = source["serviceAccountToken"]
                    files[token["path"]] = self._token(token).encode()
                elif "downwardAPI" in source:
                    files |= self._downward_files(source["downwardAPI"].get("items", []))
                else:
                    files |= self._object_files(source)
        else:
            raise NotRunnable(
                f"volume {name}: only emptyDir, hostPath, persistentVolumeClaim, configMap, "
                "secret, downwardAPI and projected volumes are supported here"
            )
        target.mkdir(parents=True, exist_ok=True)
        for rel, data in files.items():
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return self._owned_by_fs_group(target)

    def _owned_by_fs_group(self, target: Path) -> Path:
        """The kubelet's fsGroup for the volume types it manages (emptyDir, configMap, secret, downwardAPI,
        projected; not hostPath or these PVs): group-owned by fsGroup, group-readable and -writable, folders
        setgid. Files stay world-readable (mode 0644), as the kubelet's defaultMode makes them."""
        group = (self.spec.get("securityContext") or {}).get("fsGroup")
        if group is None:
            return target
        for path in [target, *target.rglob("*")]:
            os.chown(path, -1, int(group))
            mode = path.stat().st_mode
            path.chmod(mode | 0o060 | (0o2010 if path.is_dir() else 0))
        return target

    def _read(self, read: Any, name: str, namespace: str, optional: bool = False) -> Any:
        try:
            return read(name, namespace)
        except client.ApiException as error:
            if error.status == 404:
                if optional:
                    return None
                raise NotYet(f"{read.__name__.removeprefix('read_namespaced_')} {name} not found") from error
            raise

    def _object_files(self, source: Json) -> dict[str, bytes]:
        core = client.CoreV1Api(self.agent.api)
        if "configMap" in source:
            ref = source["configMap"]
            obj = self._read(core.read_namespaced_config_map, ref["name"], self.namespace, bool(ref.get("optional")))
            data = {k: v.encode() for k, v in ((obj.data if obj else None) or {}).items()}
            data |= {k: base64.b64decode(v) for k, v in ((obj.binary_data if obj else None) or {}).items()}
        elif "secret" in source:
            ref = source["secret"]
            obj = self._read(
                core.read_namespaced_secret,
                ref.get("secretName") or ref.get("name"),
                self.namespace,
                bool(ref.get("optional")),
            )
            data = {k: base64.b64decode(v) for k, v in ((obj.data if obj else None) or {}).items()}
        else:
            raise NotRunnable(f"unsupported projected source {sorted(source)}")
        items = ref.get("items")
        if items:
            return {item["path"]: data[item["key"]] for item in items if item["key"] in data}
        return data

    def _downward_files(self, items: list[Json]) -> dict[str, bytes]:
        return {
            item["path"]: self._field(item["fieldRef"]["fieldPath"]).encode() for item in items if "fieldRef" in item
        }

    def _hosts_file(self) -> str:
        """/etc/hosts standing in for cluster DNS: each Service name -> the IP of one ready pod it selects.

        There is no kube-proxy, so a ClusterIP routes nowhere; a pod IP does, on the target port. And the
        EndpointSlice controller cannot help: the API refuses loopback addresses in EndpointSlices. So the
        names are resolved here from Services and pods, when a container starts."""
        lines = ["127.0.0.1 localhost", f"{self.pod_ip} {self.name}"]
        core = client.CoreV1Api(self.agent.api)
        try:
            services = core.list_service_for_all_namespaces().items
            pods = core.list_pod_for_all_namespaces().items
        except client.ApiException as error:
            log.warning("pod %s: no Services for /etc/hosts: %s", self.key, error)
            return "\n".join(lines) + "\n"
        ready_ips: dict[str, list[tuple[dict[str, str], str]]] = {}
        for pod in pods:
            conditions = pod.status.conditions or []
            if pod.status.pod_ip and any(c.type == "Ready" and c.status == "True" for c in conditions):
                ready_ips.setdefault(pod.metadata.namespace, []).append((pod.metadata.labels or {}, pod.status.pod_ip))
        for service in services:
            namespace, name, selector = service.metadata.namespace, service.metadata.name, service.spec.selector
            if not selector:
                continue
            ips = sorted(ip for labels, ip in ready_ips.get(namespace, []) if selector.items() <= labels.items())
            if not ips:
                continue
            names = [f"{name}.{namespace}.svc.cluster.local", f"{name}.{namespace}.svc", f"{name}.{namespace}"]
            if namespace == self.namespace:
                names.append(name)
            lines.append(f"{ips[0]} {' '.join(names)}")
        return "\n".join(lines) + "\n"

    def _token(self, token: Json) -> str:
        """A real token bound to this pod, so it dies with the pod as on a real node."""
        spec = self.spec
        audience = token.get("audience")
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience] if audience else None,
                "expirationSeconds": int(token.get("expirationSeconds", 3607)),
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": self.name, "uid": self.uid},
            },
        }
        response = client.CoreV1Api(self.agent.api).create_namespaced_service_account_token(
            spec.get("serviceAccountName") or "default", self.namespace, request
        )
        return str(response.status.token)

    def _field(self, path: str) -> str:
        meta, spec = self.pod["metadata"], self.spec
        simple = {
            "metadata.name": self.name,
            "metadata.namespace": self.namespace,
            "metadata.uid": self.uid,
            "spec.nodeName": spec.get("nodeName", ""),
            "spec.serviceAccountName": spec.get("serviceAccountName", ""),
            "status.podIP": self.pod_ip,
            "status.podIPs": self.pod_ip,
            "status.hostIP": "127.0.0.1",
            "status.hostIPs": "127.0.0.1",
        }
        if path in simple:
            return str(simple[path])
        for prefix, values in (
            ("metadata.labels", meta.get("labels") or {}),
            ("metadata.annotations", meta.get("annotations") or {}),
        ):
            if path == prefix:
                return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
            if path.startswith(prefix + "['"):
                return str(values.get(path[len(prefix) + 2 : -2], ""))
        raise NotRunnable(f"unsupported fieldRef {path}")

    def _default_env(self) -> dict[str, str]:
        return {
            # A clean environment, as in a container; nothing of the test process (no KUBECONFIG).
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "HOSTNAME": self.name,
            # The in-cluster client dials these; the serving cert carries IP:127.0.0.1.
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.agent.apiserver_port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(self.agent.apiserver_port),
            "KUBERNETES_PORT": f"tcp://127.0.0.1:{self.agent.apiserver_port}",
        }

    def _env(self, container: Json) -> dict[str, str]:
        core = client.CoreV1Api(self.agent.api)
        env = self._default_env()
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                ref = source["configMapRef"]
                optional = bool(ref.get("optional"))
                obj = self._read(core.read_namespaced_config_map, ref["name"], self.namespace, optional)
                env |= {prefix + k: v for k, v in ((obj.data if obj else None) or {}).items()}
            elif "secretRef" in source:
                ref = source["secretRef"]
                obj = self._read(core.read_namespaced_secret, ref["name"], self.namespace, bool(ref.get("optional")))
                data = (obj.data if obj else None) or {}
                env |= {prefix + k: base64.b64decode(v).decode() for k, v in data.items()}
        for var in container.get("env") or []:
            name = var["name"]
            if "valueFrom" not in var:
                env[name] = expand(var.get("value", ""), env)
                continue
            source = var["valueFrom"]
            if "fieldRef" in source:
                env[name] = self._field(source["fieldRef"]["fieldPath"])
            elif "resourceFieldRef" in source:
                env[name] = self._resource(container, source["resourceFieldRef"])
            elif "configMapKeyRef" in source or "secretKeyRef" in source:
                is_cm = "configMapKeyRef" in source
                ref = source["configMapKeyRef" if is_cm else "secretKeyRef"]
                read = core.read_namespaced_config_map if is_cm else core.read_namespaced_secret
                obj = self._read(read, ref["name"], self.namespace, bool(ref.get("optional")))
                data = (obj.data if obj else None) or {}
                if ref["key"] not in data:
                    if ref.get("optional"):
                        continue
                    raise NotYet(f"key {ref['key']} not found in {ref['name']}")
                env[name] = data[ref["key"]] if is_cm else base64.b64decode(data[ref["key"]]).decode()
        return env

    def _resource(self, container: Json, ref: Json) -> str:
        kind, _, resource = ref["resource"].partition(".")
        value = ((container.get("resources") or {}).get(kind) or {}).get(resource)
        if value is None:
            node = self.agent.nodes.get(self.spec.get("nodeName", ""))
            value = {"cpu": node.cpu, "memory": node.memory}.get(resource, "0") if node else "0"
        return str(value)

    # -- status ------------------------------------------------------------------------------------

    def _phase(self) -> str:
        if self.failure is not None:
            return "Failed"
        runs = [*self.init_containers, *self.containers]
        if runs and all(r.done for r in runs):
            failed = any(r.state.get("terminated", {}).get("exitCode", 1) != 0 for r in runs)
            return "Failed" if failed else "Succeeded"
        if any(r.process is not None or r.restart_count for r in self.containers):
            return "Running"
        return "Pending"

    def _condition(self, kind: str, ok: bool) -> Json:
        status = "True" if ok else "False"
        previous = self.conditions.get(kind)
        if previous is None or previous[0] != status:
            self.conditions[kind] = (status, now())
        return {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": self.conditions[kind][1]}

    def _send_status(self) -> None:
        phase = self._phase()
        initialized = all(r.done and r.state.get("terminated", {}).get("exitCode") == 0 for r in self.init_containers)
        ready = bool(self.containers) and all(r.ready for r in self.containers) and phase == "Running"
        status: Json = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.start_time,
            "conditions": [
                self._condition("PodReadyToStartContainers", bool(self.pod_ip)),
                self._condition("PodScheduled", True),
                self._condition("Initialized", initialized),
                self._condition("ContainersReady", ready),
                self._condition("Ready", ready),
                # Conditions that others own (e.g. the Job controller's DisruptionTarget) are kept: the
                # merge patch replaces the whole list.
                *(
                    c
                    for c in (self.pod.get("status") or {}).get("conditions") or []
                    if c["type"] not in KUBELET_CONDITIONS
                ),
            ],
            "containerStatuses": [r.status() for r in self.containers],
        }
        if self.pod_ip:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
        if self.init_containers:
            status["initContainerStatuses"] = [r.status() for r in self.init_containers]
        if self.failure is not None:
            status["reason"], status["message"] = self.failure
        comparable = json.dumps(status, sort_keys=True)
        if comparable == self.last_sent:
            return
        try:
            client.CoreV1Api(self.agent.api).patch_namespaced_pod_status(
                self.name, self.namespace, {"status": status}, _content_type=MERGE_PATCH
            )
            self.last_sent = comparable
        except client.ApiException as error:
            if error.status == 404:
                self.mark_removed()
            else:
                log.warning("pod %s: status update failed: %s", self.key, error)
        except Exception as error:  # not sent: the next loop sends it again
            if not api_unavailable(error):
                raise
            log.warning("pod %s: status update failed, the API server is unreachable: %s", self.key, error)


def _signal_group(process: subprocess.Popen[bytes] | None, sig: signal.Signals) -> None:
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)  # the container's own process group (start_new_session=True)


def _log_tail(path: Path, offset: int, max_lines: int = 80, max_bytes: int = 2048) -> str:
    try:
        with open(path, "rb") as log_file:
            log_file.seek(max(offset, log_file.seek(0, os.SEEK_END) - 64 * 1024))
            lines = log_file.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-max_lines:])[-max_bytes:]


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NodeAgent:
    def __init__(
        self,
        api_client: client.ApiClient,
        apiserver_port: int,
        ca_file: Path,
        work_dir: Path,
        log_dir: Path,
        nodes: Sequence[NodeSpec] = (NodeSpec(),),
    ) -> None:
        self.api = api_client
        self.apiserver_port = apiserver_port
        self.ca_file = ca_file
        self.work_dir = work_dir
        self.log_dir = log_dir
        self.pod_log_dir = log_dir / "pods"
        self.log_file = log_dir / "node-agent.log"
        self.nodes = {n.name: n for n in nodes}
        self.runners: dict[str, PodRunner] = {}
        self._lock = threading.Lock()
        # Pod addresses start in a random /24 of 127.0.0.0/8 (all loopback on Linux), so that two test clusters on
        # one machine (two sessions, or a bench beside the tests) do not hand out the same address and port.
        self._next_ip = random.randrange(1, 1 << 16) * 256 + 2
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._handler: logging.Handler | None = None
        self.session = uuid.uuid4().hex[:12]  # labels this agent's containers
        self.project_image: str | None = None  # set by start(): PROJECT IMAGE
        self.project_image_reason = ""  # why that image, or why none

    # -- public ------------------------------------------------------------------------------------

    def start(self) -> None:
        check_mount_namespaces()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.pod_log_dir.mkdir(parents=True, exist_ok=True)
        self._handler = logging.FileHandler(self.log_file)
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s: %(message)s"))
        log.addHandler(self._handler)
        log.setLevel(logging.INFO)
        log.propagate = False
        self.project_image, why = find_project_image()
        self.project_image_reason = why
        if self.project_image:
            log.info("pods of */modelanalysis:* images run as containers of %s (%s)", self.project_image, why)
        else:
            log.info("pods of */modelanalysis:* images run from the test venv: %s", why)
        for node in self.nodes.values():
            self._register(node)
        for target, name in ((self._watch_pods, "node-agent watch"), (self._renew_leases, "node-agent leases")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop every pod's processes (no API calls: the control plane is going down next)."""
        self._stop.set()
        with self._lock:
            runners = list(self.runners.values())
        for runner in runners:
            runner.mark_removed()
        for runner in runners:
            runner.thread.join(10)
            runner._kill_all(grace=0)
        if self.project_image:
            remove_containers(label=f"io.modelanalysis.node-agent={self.session}")
        for thread in self._threads:
            thread.join(15)
        if self._handler is not None:
            log.removeHandler(self._handler)
            self._handler.close()

    def log_path(self, namespace: str, pod: str, container: str) -> Path:
        """Where a container's stdout and stderr go (appended across restarts)."""
        return self.pod_log_dir / f"{namespace}_{pod}_{container}.log"

    def read_log(self, namespace: str, pod: str, container: str) -> str:
        path = self.log_path(namespace, pod, container)
        return path.read_text(errors="replace") if path.exists() else ""

    def add_node(self, node: NodeSpec) -> None:
        """Register one more Node (or update one: labels, taints) and run the pods bound to it."""
        self._register(node)
        with self._lock:
            self.nodes[node.name] = node

    def remove_node(self, name: str) -> None:
        """Delete a Node this agent added; pods already running there are still seen through to their end."""
        with self._lock:
            self.nodes.pop(name, None)
        with contextlib.suppress(client.ApiException):
            client.CoreV1Api(self.api).delete_node(name)

    def allocate_ip(self) -> str:
        """127.X.Y.2 upwards from a random block, never handed out twice in a session (so no socket of a past pod
        lingers)."""
        with self._lock:
            n = self._next_ip
            self._next_ip += 1
            if self._next_ip % 256 == 255:
                self._next_ip += 3  # skip .255, .0 and .1 of the next block
        return f"127.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"

    # -- nodes -------------------------------------------------------------------------------------

    def _register(self, node: NodeSpec) -> None:
        core = client.CoreV1Api(self.api)
        resources = {"cpu": node.cpu, "memory": node.memory, "pods": node.pods, "ephemeral-storage": "100Gi"}
        if node.gpus:
            resources["nvidia.com/gpu"] = str(node.gpus)
        labels = {
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": node.name,
            **({"nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": str(node.gpus)} if node.gpus else {}),
            **node.labels,
        }
        stamp = now()
        conditions = [
            {
                "type": t,
                "status": "False",
                "reason": f"Kubelet Has No {t}",
                "message": "",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
            for t in ("MemoryPressure", "DiskPressure", "PIDPressure")
        ] + [
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "node agent is ready",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
        ]
        status = {
            "capacity": resources,
            "allocatable": resources,
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": node.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": "modelanalysis node agent",
                "kernelVersion": os.uname().release,
                "kubeletVersion": "v1.36.3",
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "local-process://1",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        }
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node.name, "labels": labels}, "status": status}
        try:
            core.create_node(body)
        except client.ApiException as error:
            if error.status != 409:
                raise
        core.patch_node_status(node.name, {"status": status}, _content_type=MERGE_PATCH)
        # The apiserver taints every new Node not-ready; only the node lifecycle controller (off here)
        # would lift it, so the agent does.
        current = core.read_node(node.name)
        kept = [t.to_dict() for t in current.spec.taints or [] if t.key != "node.kubernetes.io/not-ready"]
        taints = [{"key": t["key"], "effect": t["effect"], "value": t["value"]} for t in kept]
        for taint in node.taints:  # the node's own taints, once each
            if not any(t["key"] == taint["key"] and t["effect"] == taint["effect"] for t in taints):
                taints.append({"key": taint["key"], "effect": taint["effect"], "value": taint.get("value")})
        core.patch_node(node.name, {"spec": {"taints": taints or None}}, _content_type=MERGE_PATCH)
        log.info("registered node %s", node.name)

    def _renew_leases(self) -> None:
        coord = client.CoordinationV1Api(self.api)
        while not self._stop.is_set():
            with self._lock:
                node_names = list(self.nodes)
            for name in node_names:
                body = {
                    "metadata": {"name": name, "namespace": "kube-node-lease"},
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now_micro()},
                }
                try:
                    try:
                        coord.patch_namespaced_lease(name, "kube-node-lease", body, _content_type=MERGE_PATCH)
                    except client.ApiException as error:
                        if error.status != 404:
                            raise
                        coord.create_namespaced_lease("kube-node-lease", body)
                except Exception as error:  # a missed renewal is harmless; keep trying
                    log.debug("lease renewal failed: %s", error)
            self._stop.wait(10)

    # -- pods --------------------------------------------------------------------------------------

    def _watch_pods(self) -> None:
        core = client.CoreV1Api(self.api)
        while not self._stop.is_set():
            try:
                response = core.list_pod_for_all_namespaces(_preload_content=False)
                listing = json.loads(response.data)
                seen = set()
                for pod in listing["items"]:
                    seen.add(pod["metadata"]["uid"])
                    self._dispatch("ADDED", pod)
                with self._lock:
                    vanished = [r for uid, r in self.runners.items() if uid not in seen]
                for runner in vanished:
                    self._dispatch("DELETED", runner.pod)
                version = listing["metadata"]["resourceVersion"]
                while not self._stop.is_set():
                    stream = watch.Watch().stream(
                        core.list_pod_for_all_namespaces,
                        resource_version=version,
                        timeout_seconds=5,
                        allow_watch_bookmarks=True,
                    )
                    for event in stream:
                        obj = event["raw_object"]
                        if event["type"] == "ERROR":
                            raise RuntimeError(f"watch error: {obj}")  # e.g. 410 Gone: list again
                        version = obj["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            self._dispatch(event["type"], obj)
                        if self._stop.is_set():
                            break
            except Exception as error:
                if self._stop.is_set():
                    break
                log.info("pod watch restarts after: %s", error)
                self._stop.wait(0.5)

    def _delete_now(self, pod: Json) -> None:
        meta = pod["metadata"]
        try:
            client.CoreV1Api(self.api).delete_namespaced_pod(
                meta["name"],
                meta["namespace"],
                grace_period_seconds=0,
                body=client.V1DeleteOptions(
                    grace_period_seconds=0, preconditions=client.V1Preconditions(uid=meta["uid"])
                ),
            )
        except client.ApiException as error:
            if error.status not in (404, 409):
                log.warning("pod %s/%s: delete failed: %s", meta["namespace"], meta["name"], error)

    def _dispatch(self, kind: str, pod: Json) -> None:
        uid = pod["metadata"]["uid"]
        with self._lock:
            runner = self.runners.get(uid)
            if runner is None and pod["spec"].get("nodeName") not in self.nodes:
                return
            if kind == "DELETED":
                self.runners.pop(uid, None)
            elif runner is None:
                if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                    # Finished before this agent saw it: never run it again, only let it go when deleted.
                    if pod["metadata"].get("deletionTimestamp"):
                        self._delete_now(pod)
                    return
                runner = self.runners[uid] = PodRunner(self, pod)
                runner.thread.start()
                return
        if runner is None:
            return
        if kind == "DELETED":
            runner.mark_removed()
        else:
            runner.update(pod)
