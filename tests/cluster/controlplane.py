"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager and
kube-scheduler as child processes, plus the Python node agent, behind one context manager.

Every component listens on a free loopback port, logs to its own file under `log_dir`, and is stopped
by PID in reverse order of start (etcd last, since kube-apiserver hangs on exit without it), with SIGKILL
for whatever has not exited after a short grace. Each child also gets SIGKILL from the kernel if the
thread that started it ends (`setpriv --pdeathsig`), so a killed test run leaves nothing behind: start
the cluster from a thread that outlives it (pytest's and `python -m tests.cluster`'s main thread do).
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from kubernetes import client, config

from tests.cluster.build import ensure_binaries
from tests.cluster.node_agent import NodeAgent, NodeSpec, several_nodes

Log = Callable[[str], None]

START_TIMEOUT_S = 90.0
STOP_GRACE_S = 5.0  # the data is throwaway: no reason to wait out kube-apiserver's slow graceful exit


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


LEAF_EXTENSIONS = (
    "keyUsage=critical,digitalSignature,keyEncipherment\n"
    "authorityKeyIdentifier=keyid,issuer\n"
    "subjectKeyIdentifier=hash\n"
)


def make_certificates(pki: Path) -> None:
    """One CA; a serving cert valid for 127.0.0.1 (the in-cluster client dials that IP); an admin client
    cert in system:masters; an RSA key pair that signs and verifies service-account tokens."""
    pki.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "30",
        "-subj",
        "/CN=modelanalysis-test-ca",
        # Python 3.13's ssl (the project's image) verifies strictly (VERIFY_X509_STRICT): a CA without key
        # usage, or a leaf without an authority key identifier, is refused, as kubeadm's never are.
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=pki,
    )
    (pki / "serving.ext").write_text(
        "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
        "extendedKeyUsage=serverAuth\n" + LEAF_EXTENSIONS
    )
    (pki / "client.ext").write_text("extendedKeyUsage=clientAuth\n" + LEAF_EXTENSIONS)
    for name, subject, ext in (
        ("apiserver", "/CN=kube-apiserver", "serving.ext"),
        ("admin", "/CN=admin/O=system:masters", "client.ext"),
    ):
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            subject,
            cwd=pki,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            ext,
            "-out",
            f"{name}.crt",
            cwd=pki,
        )
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def write_kubeconfig(path: Path, server: str, pki: Path) -> None:
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")}}],
        "users": [
            {
                "name": "admin",
                "user": {"client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key")},
            }
        ],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
        "current-context": "test",
    }
    path.write_text(yaml.safe_dump(kubeconfig))
    path.chmod(0o600)


@dataclass
class Component:
    name: str
    process: subprocess.Popen[bytes]
    log_file: Path
    args: list[str] = field(default_factory=list)  # to start it again the same way (restart)


@dataclass
class Cluster:
    """What tests and `python -m tests.cluster` get: a running control plane plus its node agent."""

    kubeconfig: Path
    bin_dir: Path
    log_dir: Path
    work_dir: Path
    server: str
    ca_file: Path
    agent: NodeAgent
    env: dict[str, str] = field(default_factory=dict)
    plane: ControlPlane | None = field(default=None, repr=False)

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def restart_apiserver(self) -> None:
        """Stop kube-apiserver abruptly (SIGKILL: as a crashed or rescheduled one goes) and start it again on the
        same port, with the same etcd and flags; returns once it is ready. Every client sees connections
        refused meanwhile, as during a control-plane upgrade."""
        assert self.plane is not None, "a cluster started by running_cluster() can restart its API server"
        self.plane.restart("kube-apiserver")


class ControlPlane:
    def __init__(self, bin_dir: Path, work_dir: Path, log_dir: Path, log: Log = print) -> None:
        self.bin_dir = bin_dir
        self.work_dir = work_dir
        self.log_dir = log_dir
        self.log = log
        self.pki = work_dir / "pki"
        self.kubeconfig = work_dir / "admin.kubeconfig"
        self.apiserver_port = free_port()
        self.server = f"https://127.0.0.1:{self.apiserver_port}"
        self.components: list[Component] = []
        # Where each component answers when it is healthy, and the TLS context to ask it with.
        self.health: dict[str, tuple[str, ssl.SSLContext | None]] = {}

    # -- processes ---------------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> Component:
        log_file = self.log_dir / f"{name}.log"
        with open(log_file, "ab") as out:
            process = subprocess.Popen(
                # The kernel kills the component if this Python process dies without tearing down.
                ["setpriv", "--pdeathsig", "KILL", "--", str(self.bin_dir / name), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own session: a Ctrl-C at the terminal reaches only us, and we stop the components in
                # order (etcd going first would leave kube-apiserver hanging).
                start_new_session=True,
            )
        component = Component(name, process, log_file, args)
        self.components.append(component)
        return component

    def restart(self, name: str) -> None:
        """Kill one component and start it again in its place (the stop order stays the start order)."""
        (index,) = [i for i, c in enumerate(self.components) if c.name == name]
        old = self.components.pop(index)
        old.process.kill()
        old.process.wait()
        self.log(f"{name} killed; starting it again")
        new = self._spawn(name, old.args)
        self.components.insert(index, self.components.pop())
        url, context = self.health[name]
        self._wait_healthy(new, url, context)

    def _wait_healthy(self, component: Component, url: str, context: ssl.SSLContext | None) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        last_error = ""
        while time.monotonic() < deadline:
            if component.process.poll() is not None:
                raise RuntimeError(
                    f"{component.name} exited with {component.process.returncode} during start; "
                    f"see {component.log_file}:\n{_tail(component.log_file)}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2, context=context) as response:
                    if response.status == 200:
                        return
            except OSError as error:
                last_error = str(error)
            time.sleep(0.2)
        raise RuntimeError(
            f"{component.name} not healthy at {url} after {START_TIMEOUT_S:.0f} s ({last_error}); "
            f"see {component.log_file}"
        )

    def start(self) -> None:
        make_certificates(self.pki)
        write_kubeconfig(self.kubeconfig, self.server, self.pki)
        pki = self.pki

        etcd_port, etcd_peer_port = free_port(), free_port()
        etcd = self._spawn(
            "etcd",
            [
                "--name=default",
                f"--data-dir={self.work_dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{etcd_peer_port}",
                "--listen-metrics-urls=",
                "--unsafe-no-fsync",  # test data: durability does not matter, speed does
            ],
        )
        self._wait_healthy(etcd, f"http://127.0.0.1:{etcd_port}/health", None)

        apiserver = self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                # Without it the apiserver looks for an interface with a default route, and may exit.
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                f"--cert-dir={self.work_dir / 'apiserver-certs'}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--service-account-issuer={self.server}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                # No Endpoints for the `kubernetes` Service: nothing could route to it anyway (no kube-proxy).
                "--endpoint-reconciler-type=none",
                "--anonymous-auth=false",
            ],
        )
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        self.health["kube-apiserver"] = (f"{self.server}/readyz", context)
        self._wait_healthy(apiserver, f"{self.server}/readyz", context)

        kcm_port = free_port()
        kcm = self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                # Node lifecycle is off: the node agent owns its Nodes' readiness and taints.
                "--controllers=*,-node-lifecycle-controller",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                "--use-service-account-credentials=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={kcm_port}",
                f"--cert-dir={self.work_dir / 'kcm-certs'}",
                "--leader-elect=false",
                "--cluster-name=modelanalysis-test",
            ],
        )
        scheduler_port = free_port()
        scheduler = self._spawn(
            "kube-scheduler",
            [
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={scheduler_port}",
                f"--cert-dir={self.work_dir / 'scheduler-certs'}",
                "--leader-elect=false",
            ],
        )
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # their self-signed serving certs are made in memory at start
        self._wait_healthy(kcm, f"https://127.0.0.1:{kcm_port}/healthz", insecure)
        self._wait_healthy(scheduler, f"https://127.0.0.1:{scheduler_port}/healthz", insecure)

    def stop(self) -> None:
        for component in reversed(self.components):
            process = component.process
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    self.log(f"{component.name} still running {STOP_GRACE_S:.0f} s after SIGTERM: SIGKILL")
                    process.kill()
                    process.wait()
        self.components.clear()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_for_default_service_account(api: client.ApiClient, namespace: str, timeout_s: float = 60.0) -> None:
    """Pods are refused until their namespace's `default` ServiceAccount exists."""
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            core.read_namespaced_service_account("default", namespace)
            return
        except client.ApiException as error:
            if error.status != 404:
                raise
        time.sleep(0.2)
    raise TimeoutError(f"no default ServiceAccount in namespace {namespace} after {timeout_s:.0f} s")


def default_log_dir() -> Path:
    """Logs outlive the run; MODELANALYSIS_CLUSTER_LOG_DIR puts them where CI collects artifacts."""
    root = os.environ.get("MODELANALYSIS_CLUSTER_LOG_DIR")
    if root:
        path = Path(root) / time.strftime("cluster-%Y%m%d-%H%M%S")
        path.mkdir(parents=True, exist_ok=True)
        return path
    return Path(tempfile.mkdtemp(prefix="modelanalysis-cluster-logs-"))


@contextlib.contextmanager
def running_cluster(
    log: Log = print, log_dir: Path | None = None, nodes: list[NodeSpec] | None = None
) -> Iterator[Cluster]:
    """Build or reuse the binaries, start everything, yield the Cluster, and always tear it all down.

    Nodes: `nodes`, else $MODELANALYSIS_TEST_NODES GPU nodes (the last of several tainted), else one."""
    if nodes is None:
        nodes = several_nodes(int(os.environ.get("MODELANALYSIS_TEST_NODES", "1")))
    bin_dir = ensure_binaries(log)
    log_dir = log_dir or default_log_dir()
    work_dir = Path(tempfile.mkdtemp(prefix="modelanalysis-cluster-"))
    log(f"test cluster: component logs in {log_dir}")
    plane = ControlPlane(bin_dir, work_dir, log_dir, log)
    agent: NodeAgent | None = None
    try:
        started = time.monotonic()
        plane.start()
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))
        agent = NodeAgent(
            api_client=api,
            apiserver_port=plane.apiserver_port,
            ca_file=plane.pki / "ca.crt",
            work_dir=work_dir / "agent",
            log_dir=log_dir,
            nodes=nodes,
        )
        agent.start()
        wait_for_default_service_account(api, "default")
        log(f"test cluster: ready at {plane.server} in {time.monotonic() - started:.1f} s")
        env = dict(os.environ)
        env["KUBECONFIG"] = str(plane.kubeconfig)
        # Our kubectl (same version as the server) and helm come first; the machine's own kubectl may be
        # outside the supported version skew.
        env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
        yield Cluster(
            kubeconfig=plane.kubeconfig,
            bin_dir=bin_dir,
            log_dir=log_dir,
            work_dir=work_dir,
            server=plane.server,
            ca_file=plane.pki / "ca.crt",
            agent=agent,
            env=env,
            plane=plane,
        )
    finally:
        if agent is not None:
            agent.stop()
        plane.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
