"""pytest fixtures for the real test control plane: `cluster` (one per session) and `namespace`."""

from __future__ import annotations

import re
import uuid
from collections.abc import Generator, Iterator

import pytest
from kubernetes import client

from tests.cluster.build import ensure_binaries
from tests.cluster.controlplane import Cluster, running_cluster, wait_for_default_service_account

_cluster_log_dir: list[str] = []


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the node agent, all on 127.0.0.1.

    Builds the binaries on first use (minutes on a cold machine; CI runs `python -m tests.cluster build`
    before pytest so that happens in its own step)."""
    with running_cluster(log=lambda message: print(f"\n[tests.cluster] {message}")) as running:
        _cluster_log_dir.append(str(running.log_dir))
        yield running


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting: the control plane finishes it)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].rstrip("-")
    name = f"{slug}-{uuid.uuid4().hex[:6]}"
    api = cluster.api_client()
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    wait_for_default_service_account(api, name)
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except client.ApiException as error:
            if error.status != 404:
                raise
        api.close()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the binaries (minutes, once per machine) before any test starts, so the build never counts
    against a test's timeout."""
    if session.config.option.collectonly:
        return
    if any(item.get_closest_marker("cluster") for item in session.items):
        ensure_binaries(log=lambda message: print(f"[tests.cluster] {message}", flush=True))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and "cluster" in getattr(item, "fixturenames", ()) and _cluster_log_dir:
        report.sections.append(
            (
                "test cluster logs",
                "component logs (etcd, kube-*, node-agent.log, pods/NAMESPACE_POD_CONTAINER.log) in "
                + _cluster_log_dir[0],
            )
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _cluster_log_dir:
        terminalreporter.write_line(f"test cluster logs: {_cluster_log_dir[0]}")
