"""find_local_triton with an explicit --triton-server-path: the install's backends and libraries come along."""

from __future__ import annotations

import sys
from pathlib import Path

from modelanalysis.adapters.local_triton import find_local_triton


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_pytriton_layout_gets_backends_libraries_and_stub(tmp_path: Path) -> None:
    root = tmp_path / "site" / "pytriton" / "tritonserver"
    binary = executable(root / "bin" / "tritonserver")
    (root / "backends" / "python").mkdir(parents=True)
    (tmp_path / "site" / "nvidia_pytriton.libs").mkdir()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    executable(root / "python_backend_stubs" / version / "triton_python_backend_stub")

    triton = find_local_triton(binary)

    assert triton.backend_dir == root / "backends"
    assert triton.library_dirs == (tmp_path / "site" / "nvidia_pytriton.libs",)
    assert (root / "backends" / "python" / "triton_python_backend_stub").is_file()
    assert triton.command(["--x"]) == [str(binary), f"--backend-directory={root / 'backends'}", "--x"]
    # The stub takes its Python environment from the python3 first on PATH: this interpreter's.
    env = triton.env({"PATH": "/usr/bin"})
    assert env["PATH"] == f"{Path(sys.executable).parent}:/usr/bin"
    assert env["LD_LIBRARY_PATH"] == str(tmp_path / "site" / "nvidia_pytriton.libs")


def test_image_layout_gets_backends_only(tmp_path: Path) -> None:
    binary = executable(tmp_path / "opt" / "tritonserver" / "bin" / "tritonserver")
    (tmp_path / "opt" / "tritonserver" / "backends").mkdir()

    triton = find_local_triton(binary)

    assert triton.backend_dir == tmp_path / "opt" / "tritonserver" / "backends"
    assert triton.library_dirs == ()
    assert triton.env({"PATH": "/usr/bin"}) == {"PATH": "/usr/bin"}  # an image's server keeps its own Python


def test_lone_binary_is_started_as_is(tmp_path: Path) -> None:
    binary = executable(tmp_path / "tritonserver")

    triton = find_local_triton(binary)

    assert triton.backend_dir is None
    assert triton.command(["--x"]) == [str(binary), "--x"]
