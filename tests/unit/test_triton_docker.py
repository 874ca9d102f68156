"""The docker launch mode's decisions, without an engine: which mode, which image, which GPUs and volumes, which
leftover containers are a killed run's, what a failed pull tells the user, and whether the server that ran is the
release asked for."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import typer

from modelanalysis.adapters.triton_docker import (
    LABEL_CONTAINER,
    Owner,
    device_requests,
    image_for,
    left_behind,
    pull_failure,
    volumes,
)
from modelanalysis.adapters.triton_server import TritonStartError
from modelanalysis.cli_common import LaunchMode, launch_mode, parse_labels
from modelanalysis.core.releases import server_version_of, version_mismatch

ME = Owner(host="box", pid=os.getpid(), pid_namespace="pid:[1]", process_start="100", container=None)


def test_the_launch_mode_comes_from_the_flag_then_the_url_then_the_environment() -> None:
    assert launch_mode(None, None) == LaunchMode.LOCAL
    assert launch_mode(None, "h:8000") == LaunchMode.REMOTE
    assert launch_mode(None, None, "docker") == LaunchMode.DOCKER
    assert launch_mode(None, "h:8000", "docker") == LaunchMode.REMOTE  # a named server wins over a default
    assert launch_mode(LaunchMode.DOCKER, None, "local") == LaunchMode.DOCKER


@pytest.mark.parametrize(
    ("asked", "url", "default"),
    [(LaunchMode.REMOTE, None, None), (LaunchMode.DOCKER, "h:8000", None), (None, None, "c_api")],
)
def test_a_launch_mode_that_cannot_work_is_refused(asked: LaunchMode | None, url: str | None, default: str) -> None:
    with pytest.raises(typer.Exit):
        launch_mode(asked, url, default)


def test_labels_are_key_value_pairs() -> None:
    assert parse_labels("team=vision, tier=dev") == {"team": "vision", "tier": "dev"}
    assert parse_labels(None) == {}
    with pytest.raises(typer.Exit):
        parse_labels("team")


def test_the_image_is_nvidias_release_unless_one_is_named() -> None:
    assert image_for("24.08-py3", None) == "nvcr.io/nvidia/tritonserver:24.08-py3"
    assert image_for("24.08-py3", "registry.local/triton:mine") == "registry.local/triton:mine"


def test_gpus_are_asked_for_only_where_there_are_some_or_the_user_says() -> None:
    every = [{"driver": "nvidia", "count": -1, "capabilities": [["gpu"]]}]
    assert device_requests("auto", host_has_gpus=False) == []
    assert device_requests("auto", host_has_gpus=True) == every
    assert device_requests("all", host_has_gpus=False) == every
    assert device_requests("none", host_has_gpus=True) == []
    assert device_requests("0, GPU-abc", host_has_gpus=True) == [
        {"driver": "nvidia", "device_ids": ["0", "GPU-abc"], "capabilities": [["gpu"]]}
    ]


def test_the_model_folder_is_mounted_read_only_at_its_own_path(tmp_path: Path) -> None:
    found = volumes(tmp_path, ("/data:/data:ro", "/cache:/root/.cache"))
    assert found[str(tmp_path)] == {"bind": str(tmp_path), "mode": "ro"}
    assert found["/data"] == {"bind": "/data", "mode": "ro"}
    assert found["/cache"] == {"bind": "/root/.cache", "mode": "rw"}
    with pytest.raises(TritonStartError, match="is not host:container"):
        volumes(tmp_path, ("/data",))


def labels_of(owner: Owner) -> dict[str, str]:
    return owner.labels()


def test_a_container_is_a_leftover_only_when_the_run_that_started_it_is_surely_gone() -> None:
    gone = Owner(host="box", pid=2**22 + 7, pid_namespace="pid:[1]", process_start="5", container=None)
    assert left_behind(labels_of(gone), ME, lambda _id: True)  # no such process any more
    assert not left_behind(labels_of(ME), ME, lambda _id: True)  # this run's own
    elsewhere = Owner(host="other", pid=2**22 + 7, pid_namespace="pid:[1]", process_start="5", container=None)
    assert not left_behind(labels_of(elsewhere), ME, lambda _id: False)  # another host's process: cannot tell
    # A run that itself ran in a container is judged by that container.
    boxed = Owner(host="c1", pid=1, pid_namespace="pid:[9]", process_start="1", container="a" * 64)
    assert left_behind(labels_of(boxed), ME, lambda _id: False)
    assert not left_behind(labels_of(boxed), ME, lambda _id: True)
    assert labels_of(boxed)[LABEL_CONTAINER] == "a" * 64


def test_a_failed_pull_says_whether_the_tag_is_missing_or_the_registry_cannot_be_reached() -> None:
    missing = pull_failure("nvcr.io/nvidia/tritonserver:99.01-py3", "manifest unknown: manifest unknown")
    assert "does not exist in its registry" in missing and "--triton-version" in missing
    unreachable = pull_failure("nvcr.io/nvidia/tritonserver:24.08-py3", 'Get "https://nvcr.io/v2/": no such host')
    assert "cannot be pulled" in unreachable and "docker login" in unreachable


def test_a_release_gives_its_server_version() -> None:
    assert server_version_of("22.01-py3") == "2.18.0"
    assert server_version_of("24.08-py3") == "2.49.0"
    assert server_version_of("24.10") == "2.51.0"
    assert server_version_of("20.02-py3") is None  # before the rule
    assert server_version_of("latest") is None


def test_a_server_that_is_not_the_release_asked_for_is_said() -> None:
    assert version_mismatch("24.10-py3", "2.51.0") is None
    assert version_mismatch("latest", "2.51.0") is None  # nothing known to compare with
    said = version_mismatch("24.08-py3", "2.51.0")
    assert said is not None and "2.49.0" in said and "2.51.0" in said
    image = version_mismatch("24.08-py3", "2.51.0", "24.10", "2.51.0")
    assert image is not None and "holds release 24.10" in image
    assert version_mismatch("24.10-py3", "2.51.0", "24.10", "2.51.0") is None
