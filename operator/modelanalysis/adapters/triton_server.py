"""Start and stop a Triton server this tool launches (here a local process; adapters/triton_docker.py: a
container), with explicit model control."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from modelanalysis.adapters.local_triton import LocalTriton


class TritonStartError(RuntimeError):
    """The server could not be started; the message says why and how to fix it."""


@dataclass(frozen=True)
class TritonEndpoints:
    """Where a Triton server answers: host:port for HTTP and gRPC, and the full metrics URL."""

    http: str
    grpc: str
    metrics_url: str

    @classmethod
    def from_url(cls, url: str, metrics_url: str | None = None, grpc_url: str | None = None) -> TritonEndpoints:
        """From `--triton-url host:port` (the HTTP port; gRPC and metrics are the next two, as by default,
        unless given)."""
        hostport = url.split("://", 1)[-1].rstrip("/")
        host, _, port_text = hostport.rpartition(":")
        if not host or not port_text.isdigit():
            raise ValueError(f"--triton-url {url!r} is not host:port (for example localhost:8000)")
        port = int(port_text)
        return cls(
            http=f"{host}:{port}",
            grpc=grpc_url.split("://", 1)[-1].rstrip("/") if grpc_url else f"{host}:{port + 1}",
            metrics_url=metrics_url or f"http://{host}:{port + 2}/metrics",
        )


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct free ports: every socket is held open until all are chosen (one closed before the next
    bind may be handed out again: CI once started Triton with its HTTP and gRPC ports the same)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            s = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind((host, 0))
            ports.append(int(s.getsockname()[1]))
        return ports


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


class StartedTriton:
    """A Triton server this tool starts and stops: its ports (0: chosen free), the flags every launch gives it,
    and the wait until it is ready. Models are loaded only on request (explicit model control), so the server
    starts with none loaded and the baseline measures the bare server. Subclasses say how it runs (a child
    process, a container) through `_launch`, `_exited` and `stop`."""

    what = "tritonserver"

    def __init__(
        self,
        model_repository: Path,
        log_path: Path,
        host: str = "127.0.0.1",
        http_port: int = 0,
        grpc_port: int = 0,
        metrics_port: int = 0,
        metrics_interval_ms: int = 500,
        startup_timeout_s: float = 60.0,
    ) -> None:
        self.model_repository = model_repository
        self.log_path = log_path
        self.host = host
        self.ports = {
            "--http-port": http_port,
            "--grpc-port": grpc_port,
            "--metrics-port": metrics_port,
        }
        self.metrics_interval_ms = metrics_interval_ms
        self.startup_timeout_s = startup_timeout_s

    @property
    def endpoints(self) -> TritonEndpoints:
        p = self.ports
        return TritonEndpoints(
            http=f"{self.host}:{p['--http-port']}",
            grpc=f"{self.host}:{p['--grpc-port']}",
            metrics_url=f"http://{self.host}:{p['--metrics-port']}/metrics",
        )

    def _claim_ports(self) -> None:
        unset = [flag for flag, port in self.ports.items() if port == 0]
        given = {port for port in self.ports.values() if port}
        # Drawn distinct, with one spare for each port given (the system may hand out a port given but not bound).
        drawn = [port for port in free_ports(len(unset) + len(given), self.host) if port not in given]
        chosen = dict(zip(unset, drawn, strict=False))
        for flag, port in self.ports.items():
            if port == 0:
                self.ports[flag] = chosen[flag]
            elif port_in_use(self.host, port):
                raise TritonStartError(
                    f"Port {port} on {self.host} ({flag}) is already in use: stop what listens there, "
                    f"pick another with {flag.replace('--', '--triton-')}, or profile that server with --triton-url."
                )

    def server_args(self) -> list[str]:
        return [
            f"--model-repository={self.model_repository.resolve()}",
            "--model-control-mode=explicit",
            "--allow-metrics=true",
            "--allow-gpu-metrics=true",
            "--allow-cpu-metrics=true",
            f"--metrics-interval-ms={self.metrics_interval_ms}",
            f"--http-address={self.host}",
            f"--grpc-address={self.host}",
            f"--metrics-address={self.host}",
            *(f"{flag}={port}" for flag, port in self.ports.items()),
        ]

    def start(self) -> TritonEndpoints:
        if not self.model_repository.is_dir():
            raise TritonStartError(f"Model folder {self.model_repository} does not exist; pass --model-folder DIR.")
        self._claim_ports()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._launch(self.server_args())
        self._wait_ready()
        return self.endpoints

    def _launch(self, args: list[str]) -> None:
        raise NotImplementedError

    def _exited(self) -> str | None:
        """Why the server is gone (a sentence), or None while it runs."""
        raise NotImplementedError

    def _wait_ready(self) -> None:
        url = f"http://{self.endpoints.http}/v2/health/ready"
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if (gone := self._exited()) is not None:
                self.stop()
                raise TritonStartError(f"{gone} while starting: {self.log_tail()} (full log: {self.log_path})")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        self.stop()
        raise TritonStartError(
            f"{self.what} did not become ready in {self.startup_timeout_s:.0f} s; see {self.log_path}"
        )

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        errors = [line for line in text if line.startswith("E") or "error" in line.lower()]
        return " | ".join((errors or text)[-lines:])

    def stop(self, timeout_s: float = 15.0) -> None:
        raise NotImplementedError

    def __enter__(self) -> TritonEndpoints:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


PR_SET_PDEATHSIG = 1


def _parent_death_signal() -> Callable[[], None] | None:
    """What the child runs before exec: ask Linux to SIGTERM it when the process that started it dies, even by
    SIGKILL (prctl PR_SET_PDEATHSIG), so that a killed CLI leaves no server behind. libc is looked up here, in
    the parent: the child only makes the one call. None where there is no prctl (not Linux)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_signal() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))

    return set_signal


class TritonServerProcess(StartedTriton):
    """A tritonserver child process serving `model_repository` on `host`, stopped on exit (and when this
    process is killed)."""

    def __init__(self, triton: LocalTriton, model_repository: Path, log_path: Path, **kwargs: Any) -> None:
        super().__init__(model_repository, log_path, **kwargs)
        self.triton = triton
        self.process: subprocess.Popen[bytes] | None = None

    def _launch(self, args: list[str]) -> None:
        log = self.log_path.open("wb")
        try:
            self.process = subprocess.Popen(
                self.triton.command(args),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.triton.env(),
                preexec_fn=_parent_death_signal(),
            )
        except OSError as exc:
            raise TritonStartError(f"Could not run {self.triton.binary}: {exc}") from exc
        finally:
            log.close()

    def _exited(self) -> str | None:
        assert self.process is not None
        if self.process.poll() is None:
            return None
        return f"tritonserver exited with status {self.process.returncode}"

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
