"""Malformed manifests that admission cannot judge, against the installed chart: each is accepted, and ends Failed
with a condition that names the spec field and says how to fix it. The operator creates nothing for them, never
retries them for ever, never restarts, and afterwards still profiles a good analysis.

What admission refuses is in tests/test_kube_apply.py (REFUSED). What is left is what only the API server can
say about the pod or Job the spec describes (Kubernetes' own fields, passed through), a NUL that CEL cannot see
inside an env entry, and what only exists at run time (a claim). All are applied at once and waited for together.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.e2e.conftest import (
    RESULTS_CLAIM,
    Analyses,
    Json,
    Kubectl,
    Operator,
    Volumes,
    analysis_manifest,
    conditions,
)

pytestmark = pytest.mark.cluster


def bad(name: str, words: list[str], **spec: Any) -> tuple[Json, list[str]]:
    """An analysis whose spec is the small good one with `spec`'s sections merged in."""
    manifest = analysis_manifest(name, models=("add_sub",), batch_sizes=(1,), concurrency=(1,))
    for section, value in spec.items():
        if isinstance(value, dict) and isinstance(manifest["spec"].get(section), dict):
            manifest["spec"][section] = {**manifest["spec"][section], **value}
        else:
            manifest["spec"][section] = value
    return manifest, words


LONGEST_NAME = "a" * 253
DOTTED_NAME = "a" * 59 + "." + "b" * 193  # a dot where a derived name is cut

ACCEPTED_THEN_FAILED = [
    # The Triton pod's Kubernetes fields, as the API server judges them.
    bad("env-name-with-equals", ["spec.triton.env[0].name", "other than '='"],
        triton={"env": [{"name": "A=B", "value": "x"}]}),
    bad("env-without-name", ["spec.triton.env[0].name", "required"], triton={"env": [{"value": "x"}]}),
    bad("env-misspelt-field", ["spec.triton.env[0].valu"], triton={"env": [{"name": "A", "valu": "x"}]}),
    bad("env-value-a-number", ["spec.triton.env[0].value", "string"], triton={"env": [{"name": "A", "value": 5}]}),
    bad("env-value-nul", ["spec.triton.env", "NUL"], triton={"env": [{"name": "A", "value": "a\x00b"}]}),
    bad("cpu-not-a-quantity", ["spec.triton.resources", "limits.cpu is 'lots'", "500m"],
        triton={"resources": {"limits": {"cpu": "lots"}}}),
    bad("memory-negative", ["spec.triton.resources.limits[memory]", "greater than or equal to 0"],
        triton={"resources": {"limits": {"memory": "-1Gi"}}}),
    bad("requests-above-limits", ["spec.triton.resources.requests", "less than or equal to cpu limit"],
        triton={"resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}}),
    bad("resources-misspelt", ["spec.triton.resources.limitz"], triton={"resources": {"limitz": {"cpu": "1"}}}),
    bad("toleration-operator", ["spec.triton.tolerations[0].operator", '"Equal", "Exists"'],
        triton={"tolerations": [{"key": "k", "operator": "Maybe"}]}),
    bad("toleration-effect-typo", ["spec.triton.tolerations[0].effect", '"NoSchedule"'],
        triton={"tolerations": [{"key": "k", "operator": "Exists", "effect": "NoScheduel"}]}),
    bad("affinity-wrong-type", ["spec.triton.affinity.nodeAffinity"], triton={"affinity": {"nodeAffinity": "yes"}}),
    bad("affinity-misspelt", ["spec.triton.affinity.nodeAfinity"], triton={"affinity": {"nodeAfinity": {}}}),
    bad("node-selector-key", ["spec.triton.nodeSelector", "bad key!"], triton={"nodeSelector": {"bad key!": "x"}}),
    bad("node-selector-value", ["spec.triton.nodeSelector", "a valid label"], triton={"nodeSelector": {"k": "a b"}}),
    # The load generator's, judged on a dry run of the first point's Job.
    bad("job-memory-not-a-quantity", ["spec.loadGenerator", "requests.memory is 'lots'"],
        loadGenerator={"resources": {"requests": {"memory": "lots"}}}),
    bad("job-node-selector-key", ["spec.loadGenerator.nodeSelector", "-bad"],
        loadGenerator={"placement": "Anywhere", "nodeSelector": {"-bad": "x"}}),
    bad("job-toleration-without-key", ["spec.loadGenerator.tolerations[0].operator", "must be Exists"],
        loadGenerator={"tolerations": [{"operator": "Equal"}]}),
    bad("job-affinity-misspelt", ["spec.loadGenerator.affinity.podAffinity.x"],
        loadGenerator={"placement": "Anywhere", "affinity": {"podAffinity": {"x": 1}}}),
    # What only exists at run time, under the longest names an analysis can have.
    bad(LONGEST_NAME, ["results.pvc.claimName 'no-such-results'", "create it or fix the name"],
        results={"pvc": {"claimName": "no-such-results"}}),
    bad(DOTTED_NAME, ["modelRepository.pvc.claimName 'no-such-models'", "create it or fix the name"],
        modelRepository={"pvc": {"claimName": "no-such-models"}}),
]  # fmt: skip


def restart_counts(operator: Operator) -> dict[str, int]:
    counts = {}
    for pod in operator.pods():
        statuses = pod.get("status", {}).get("containerStatuses", [])
        counts[pod["metadata"]["name"]] = sum(c.get("restartCount", 0) for c in statuses)
    return counts


def test_malformed_manifests_fail_saying_what_to_fix_and_the_operator_carries_on(
    operator: Operator, kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str
) -> None:
    cases = ACCEPTED_THEN_FAILED
    before = restart_counts(operator)
    assert len(before) == 1 and set(before.values()) == {0}, before

    # All at once: each is accepted by admission.
    kubectl.apply([copy.deepcopy(manifest) for manifest, _ in cases], namespace)

    for manifest, words in cases:
        name = manifest["metadata"]["name"]
        obj = analyses.wait_finished(name)
        status = obj["status"]
        message = status.get("message", "")
        assert status["phase"] == "Failed", (name[:40], status)
        ready = conditions(obj)["Ready"]
        assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec"), (name[:40], ready)
        for word in words:
            assert word in ready["message"], (name[:40], ready["message"])
        assert ready["message"] == message
        assert "fix" in message and "Traceback" not in message and "\n" not in message, message
        assert not status.get("tritonPod") and not status.get("points"), status

    # Nothing was created for any of them, nothing was retried, and the operator never restarted.
    assert kubectl.get("pods,jobs", "-n", namespace)["items"] == []
    events = kubectl.get("events", "-n", namespace)["items"]
    assert not [e["message"] for e in events if e["reason"] == "RunError"]
    assert restart_counts(operator) == before

    # A good analysis still runs to the end.
    analyses.apply(analysis_manifest("good", models=("add_sub",), batch_sizes=(1,), concurrency=(1,)))
    good = analyses.wait_finished("good")
    assert good["status"]["phase"] == "Succeeded", good["status"]
    assert good["status"]["pointsDone"] == 1
    assert good["status"]["results"].startswith(f"pvc://{RESULTS_CLAIM}/")
    assert restart_counts(operator) == before
