"""TritonControl against a real tritonserver."""

from __future__ import annotations

import pytest

from tests.integration.conftest import RunningTriton

pytestmark = pytest.mark.integration


def test_unload_returns_once_triton_has_finished_unloading(running_triton: RunningTriton) -> None:
    # Triton answers the unload request at once and drops the instances (their memory) over a second later.
    control = running_triton.control()
    try:
        control.load("matmul")
        control.unload("matmul")
        index = [entry for entry in control.client.get_model_repository_index() if entry["name"] == "matmul"]
        assert [(entry["state"], entry.get("reason")) for entry in index] == [("UNAVAILABLE", "unloaded")]
        assert "successfully unloaded 'matmul'" in running_triton.server.log_path.read_text()
    finally:
        control.close()
