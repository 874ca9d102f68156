"""Fair Triton slots on the real control plane: with one slot (`maxTritonPods=1`), a namespace that applied four
analyses first does not keep a second namespace's single analysis waiting behind all of them. It starts within one
slot turn, and while it waits its status says its place in the queue."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.cluster.controlplane import wait_for_default_service_account
from tests.e2e.conftest import (
    CHART,
    OPERATOR_NAMESPACE,
    RELEASE,
    WAIT_S,
    Analyses,
    Json,
    Kubectl,
    Operator,
    Volumes,
    _helm,
    analysis_manifest,
    volumes_in,
)

pytestmark = pytest.mark.cluster

WAITING = ("", "Pending", "Queued")
BUSY = [f"busy-{i}" for i in range(4)]


def phases(kubectl: Kubectl, namespace: str) -> dict[str, Json]:
    return {
        o["metadata"]["name"]: o.get("status") or {} for o in kubectl.get("modelanalyses", "-n", namespace)["items"]
    }


def test_a_second_namespace_waits_one_slot_turn_not_behind_every_analysis_of_the_first(
    operator: Operator, kubectl: Kubectl, analyses: Analyses, namespace: str, volumes: Volumes, tmp_path: Path
) -> None:
    old_pods = [p["metadata"]["name"] for p in operator.pods()]
    upgraded = _helm(operator.cluster, "upgrade", RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE,
                     "--reuse-values", "--set", "maxTritonPods=1", "--wait", "--timeout", "180s")  # fmt: skip
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    operator.wait_ready(exclude=old_pods)

    quiet = f"{namespace[:50]}-q"
    kubectl("create", "namespace", quiet)
    api = operator.cluster.api_client()
    try:
        wait_for_default_service_account(api, quiet)
    finally:
        api.close()  # type: ignore[no-untyped-call]
    try:
        with volumes_in(kubectl, quiet, tmp_path / "quiet"):
            # Apart in time, so that their age orders them: busy-0 .. busy-3, then the quiet one.
            for name in BUSY:
                analyses.apply(analysis_manifest(name, models=["add_sub"], batch_sizes=[1], concurrency=[1]))
                time.sleep(1.1)
            kubectl.apply(analysis_manifest("alone", models=["add_sub"], batch_sizes=[1], concurrency=[1]), quiet)

            started: dict[str, float] = {}
            queued_messages: list[str] = []
            deadline = time.monotonic() + WAIT_S * 2
            while len([s for s in started if s.endswith(":finished")]) < len(BUSY) + 1:
                assert time.monotonic() < deadline, f"not all finished: {started}"
                seen = {**phases(kubectl, namespace), **{f"quiet/{k}": v for k, v in phases(kubectl, quiet).items()}}
                for name, status in seen.items():
                    phase = status.get("phase", "")
                    if phase not in WAITING:
                        started.setdefault(name, time.monotonic())
                    if phase in ("Succeeded", "Failed"):
                        assert phase == "Succeeded", f"{name}: {json.dumps(status)[:2000]}"
                        started.setdefault(f"{name}:finished", time.monotonic())
                    if name == "quiet/alone" and phase == "Queued":
                        queued_messages.append(status.get("message", ""))
                time.sleep(0.3)
    finally:
        kubectl.run("delete", "modelanalyses", "--all", "-n", quiet, "--timeout=90s", check=False, timeout=120)
        kubectl.run("delete", "namespace", quiet, "--wait=false", check=False)

    order = sorted((t, name) for name, t in started.items() if not name.endswith(":finished"))
    names = [name for _, name in order]
    # busy-0 takes the slot first; when it frees, the quiet namespace (never served) goes next or, at worst,
    # one more busy analysis that already waited for a turn goes before it; never all of them.
    assert names.index("quiet/alone") <= 2, names
    assert names[0] == "busy-0", names
    assert any(m.startswith("queued: ") and "for a Triton pod, 1 of 1 in use" in m for m in queued_messages), (
        queued_messages
    )
