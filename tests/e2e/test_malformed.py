"""Malformed manifests that admission cannot judge, against the installed chart: each is accepted, and ends Failed
with a condition that names the spec field and says how to fix it. The operator creates nothing for them, never
retries them for ever, never restarts, and afterwards still profiles a good analysis.

What admission refuses is in tests/test_kube_apply.py (REFUSED). What is left is what only the API server can
say about the pod or Job the spec describes (Kubernetes' own fields, passed through), a NUL that CEL cannot see
inside an env entry, and what only exists at run time (a claim). All are applied at once and waited for together.

Then names that objects of the user's own already hold (kube/ownership.py): each child kind's, and a results
folder on the claim that an earlier analysis of the same name wrote.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from modelanalysis.core.sweep import Point
from modelanalysis.kube import names
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


# ---- names someone else's objects already hold ------------------------------------------------------------


def users_pod(name: str) -> Json:
    """A pod of the user's own that stays Pending (no node has the label it asks for), restricted-compliant."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"team": "mine"}},
        "spec": {
            "nodeSelector": {"example.com/no-such-node": "true"},
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "c", "image": "registry.example.com/mine:1", "command": ["sleep", "3600"],
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }  # fmt: skip


def users_job(name: str) -> Json:
    """A Job of the user's own, suspended: it never starts a pod, and the Job controller leaves it alone."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"team": "mine"}},
        "spec": {
            "suspend": True,
            "template": {"spec": {"restartPolicy": "Never",
                                  "containers": [{"name": "c", "image": "registry.example.com/mine:1"}]}},
        },
    }  # fmt: skip


def users_configmap(name: str) -> Json:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"payload": "keep-me"}}


def as_made(obj: Json) -> Json:
    """What the user made of an object and who owns it: identity, labels, owners, spec or data (the status a
    Pending pod or a suspended Job gets from the scheduler or the Job controller is theirs to change)."""
    meta = obj["metadata"]
    kept = {k: meta.get(k) for k in ("uid", "name", "labels", "annotations", "ownerReferences", "finalizers",
                                      "deletionTimestamp", "generation")}  # fmt: skip
    return {"metadata": kept, "spec": obj.get("spec"), "data": obj.get("data")}


# Each analysis's name makes the child name the user's object already holds.
POINT = Point(model="add_sub", batch_size=1, concurrency=1)
COLLISIONS = [
    ("victim", "ConfigMap", "victim-results", users_configmap),
    ("podvictim", "Pod", names.triton_pod_name("podvictim", 1), users_pod),
    ("jobvictim", "Job", names.point_job_name("jobvictim", 1, POINT), users_job),
    ("resvictim", "Job", names.results_job_name("resvictim", 1), users_job),
]


def test_a_child_name_the_users_object_holds_fails_the_analysis_and_the_object_is_never_touched(
    operator: Operator, kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str
) -> None:
    """The issue as a user met it: a ConfigMap <name>-results of their own lost its data to the analysis's
    results. For each child kind (results ConfigMap, Triton pod, point Job, results Job) an object made
    beforehand under the child's name ends the analysis Failed (NameInUse) with a condition naming it, and the
    object is exactly as it was, before and after the analysis is deleted (garbage collection takes only what
    the analysis owns)."""
    kubectl.apply([make(name) for _, _, name, make in COLLISIONS], namespace)
    kind_of = {"ConfigMap": "configmap", "Pod": "pod", "Job": "job"}
    before = {name: kubectl.get(kind_of[kind], name, "-n", namespace) for _, kind, name, _ in COLLISIONS}

    kubectl.apply([analysis_manifest(analysis, models=("add_sub",), batch_sizes=(1,), concurrency=(1,))
                   for analysis, *_ in COLLISIONS], namespace)  # fmt: skip
    uids = {}
    for analysis, kind, name, _ in COLLISIONS:
        obj = analyses.wait_finished(analysis)
        uids[analysis] = obj["metadata"]["uid"]
        status, ready = obj["status"], conditions(obj)["Ready"]
        assert status["phase"] == "Failed", (analysis, status)
        assert (ready["status"], ready["reason"]) == ("False", "NameInUse"), (analysis, ready)
        assert ready["message"].startswith(f"{kind} {name} already exists and is not this analysis's"), ready
        assert "rename the analysis" in ready["message"] and "Traceback" not in ready["message"]
        assert not status.get("points"), status  # refused before anything ran
        events = analyses.wait_events(analysis, {"NameInUse"})
        assert ("Warning", "NameInUse") in {(e["type"], e["reason"]) for e in events}

    def unchanged() -> None:
        for _, kind, name, _ in COLLISIONS:
            now = kubectl.get(kind_of[kind], name, "-n", namespace)
            if kind == "ConfigMap":  # nobody else writes it: byte for byte, resourceVersion included
                assert now == before[name], (name, now)
            else:
                assert as_made(now) == as_made(before[name]), name

    unchanged()
    # The operator made nothing else under those analyses: no Triton pod, no Job, no ConfigMap of theirs.
    for analysis, *_ in COLLISIONS:
        assert analyses.children(analysis, uids[analysis]) == []

    kubectl("delete", "modelanalyses", *(a for a, *_ in COLLISIONS), "-n", namespace, "--timeout=60s")
    time.sleep(3)  # the garbage collector works asynchronously: give it the time it would take to do harm
    unchanged()
    assert kubectl.get("configmap", "victim-results", "-n", namespace)["data"] == {"payload": "keep-me"}


def test_an_analysis_deleted_and_created_again_keeps_the_earlier_results_on_the_claim(
    operator: Operator, kubectl: Kubectl, analyses: Analyses, volumes: Volumes, namespace: str
) -> None:
    """README's rule: a results folder holding files an analysis did not write (an earlier analysis of the same
    name, deleted and created again) is moved to <name>.earlier-<time>, never written over; status and an Event
    say where."""
    manifest = analysis_manifest("again", models=("add_sub",), batch_sizes=(1,), concurrency=(1,))
    analyses.apply(manifest)
    first = analyses.wait_finished("again")
    assert first["status"]["phase"] == "Succeeded", first["status"]
    folder = volumes.results / "again"
    earlier = {p.name: p.read_bytes() for p in folder.iterdir()}
    owner = json.loads(earlier[".modelanalysis-owner.json"])
    assert (owner["uid"], owner["generation"]) == (first["metadata"]["uid"], 1)
    kubectl("delete", "modelanalysis", "again", "-n", namespace, "--timeout=60s")

    analyses.apply(manifest)
    second = analyses.wait_finished("again")
    assert second["status"]["phase"] == "Succeeded", second["status"]
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    [kept] = [p for p in volumes.results.iterdir() if p.name.startswith("again.earlier-")]
    assert {p.name: p.read_bytes() for p in kept.iterdir()} == earlier
    assert json.loads((folder / ".modelanalysis-owner.json").read_text())["uid"] == second["metadata"]["uid"]
    notes = second["status"].get("notes") or []
    assert any(f"moved to {kept.name}" in note for note in notes), notes
    events = analyses.wait_events("again", {"EarlierResultsKept"})
    assert any(kept.name in e["message"] for e in events if e["reason"] == "EarlierResultsKept")
