"""Find a Triton Inference Server binary that can run on this machine.

Either a `tritonserver` on PATH (as in NVIDIA's container images) or the complete server that the
`nvidia-pytriton` wheel ships, which runs on the CPU with the Python backend.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path


class TritonNotFound(RuntimeError):
    """No runnable tritonserver was found; the message says how to get one."""


@dataclass(frozen=True)
class LocalTriton:
    binary: Path
    backend_dir: Path | None = None
    library_dirs: tuple[Path, ...] = field(default_factory=tuple)
    # The Python backend's stub takes its Python environment (prefix, site-packages) from the `python3` it
    # finds on PATH. For the pytriton wheel that is this interpreter, so models import the packages of the
    # environment the wheel lives in (numpy), not whatever the system Python has.
    python_bin_dir: Path | None = None

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment the server needs: its shared libraries on LD_LIBRARY_PATH."""
        env = dict(os.environ if base is None else base)
        if self.library_dirs:
            paths = [str(p) for p in self.library_dirs]
            if env.get("LD_LIBRARY_PATH"):
                paths.append(env["LD_LIBRARY_PATH"])
            env["LD_LIBRARY_PATH"] = os.pathsep.join(paths)
        if self.python_bin_dir is not None:
            env["PATH"] = os.pathsep.join(p for p in (str(self.python_bin_dir), env.get("PATH")) if p)
        return env

    def command(self, args: list[str]) -> list[str]:
        cmd = [str(self.binary)]
        if self.backend_dir is not None:
            cmd.append(f"--backend-directory={self.backend_dir}")
        return cmd + list(args)


def _pytriton_install() -> LocalTriton | None:
    try:
        import pytriton  # type: ignore[import-untyped]  # optional dependency
    except ImportError:
        return None
    binary = Path(pytriton.__file__).parent / "tritonserver" / "bin" / "tritonserver"
    if not binary.exists():
        return None
    return _with_layout(binary)


def _with_layout(binary: Path) -> LocalTriton:
    """The server at `binary`, with the backends and libraries of the install it sits in.

    A server in a `<root>/bin/` folder (NVIDIA's image: /opt/tritonserver; the pytriton wheel:
    pytriton/tritonserver) has its backends in `<root>/backends`; the wheel's also needs its bundled
    libraries and the Python backend stub for this interpreter. Without --backend-directory a server
    outside /opt/tritonserver finds no backend at all.
    """
    root = binary.parent.parent
    backend_dir = root / "backends"
    if binary.parent.name != "bin" or not backend_dir.is_dir():
        return LocalTriton(binary=binary)
    _install_python_stub(root)
    libs = root.parent.parent / "nvidia_pytriton.libs"
    if not libs.is_dir():
        return LocalTriton(binary=binary, backend_dir=backend_dir)
    return LocalTriton(
        binary=binary, backend_dir=backend_dir, library_dirs=(libs,), python_bin_dir=Path(sys.executable).parent
    )


def _install_python_stub(root: Path) -> None:
    """The Python backend runs models through a stub built for the interpreter's minor version, which
    must sit beside libtriton_python.so; the wheel ships one per version in a separate folder."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    target = root / "backends" / "python" / "triton_python_backend_stub"
    if stub.exists() and not target.exists():
        tmp = target.with_suffix(".tmp")
        shutil.copy2(stub, tmp)
        tmp.replace(target)


def find_local_triton(server_path: Path | None = None) -> LocalTriton:
    """Return the tritonserver to start: `server_path` if given, else one on PATH, else the pytriton one."""
    if server_path is not None:
        if not (server_path.is_file() and os.access(server_path, os.X_OK)):
            raise TritonNotFound(
                f"--triton-server-path {server_path} is not an executable file; "
                "point it at a tritonserver binary or leave it out to use the one found automatically."
            )
        return _with_layout(server_path.resolve())
    on_path = shutil.which("tritonserver")
    if on_path:
        return _with_layout(Path(on_path).resolve())
    install = _pytriton_install()
    if install is not None:
        return install
    raise TritonNotFound(
        "No tritonserver found: install one with `pip install nvidia-pytriton` (CPU-capable, ships the "
        "Python backend), put tritonserver on PATH, pass --triton-server-path, or use a running server "
        "with --triton-url."
    )
