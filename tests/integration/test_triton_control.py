"""TritonControl against a real tritonserver."""

from __future__ import annotations

import pytest

from modelanalysis.core.spec import ConfigSearch, ModelTarget
from modelanalysis.core.variants import config_override, model_variants
from tests.integration.conftest import RunningTriton, triton_processes

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


def test_a_config_variant_loads_through_the_override_and_runs_with_its_instance_count(
    running_triton: RunningTriton,
) -> None:
    """The repository's config.pbtxt says 1 instance; the variant asks for 2 and dynamic batching. Triton
    serves the variant (two Python stub processes), and the repository is not written."""
    control = running_triton.control()
    config_file = running_triton.model_repo / "add_sub" / "config.pbtxt"
    before = config_file.read_text()
    try:
        control.load("add_sub")
        own = control.raw_model_config("add_sub")
        variant = model_variants(
            ModelTarget(name="add_sub", config_search=ConfigSearch(instance_counts=[2], dynamic_batching=[True]))
        )[1]
        control.load("add_sub", config=config_override(own, variant))
        assert control.model_config("add_sub").instance_group == "2:CPU"
        assert "dynamic_batching" in control.raw_model_config("add_sub")
        # One stub process per instance, named <model>_<group>_<n> on its command line (the previous load's
        # instance may still be on its way out: count the names).
        stubs = [c for c in triton_processes(running_triton.model_repo).values() if "triton_python_backend_stub" in c]
        instances = {word for cmd in stubs for word in cmd.split() if word.startswith("add_sub_0_")}
        assert instances == {"add_sub_0_0", "add_sub_0_1"}, stubs
        control.load("add_sub", config=own)  # its own config again (a plain load would keep the override)
        assert control.model_config("add_sub").instance_group == "1:CPU"
        assert config_file.read_text() == before
    finally:
        control.unload("add_sub")
        control.close()
