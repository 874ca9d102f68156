"""The generated CRD: the committed copies are what the models generate, and the schema is one the API
server accepts as structural, with no defaults it would write into users' objects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelanalysis.kube import crd
from modelanalysis.kube.resource import SUB_PATH_CEL, SUB_PATH_MESSAGE, ModelAnalysisSpec, ModelAnalysisStatus

REPO = Path(__file__).resolve().parents[2]
COMMITTED = [
    REPO / "crds" / "modelanalyses.modelanalyzer.dev.yaml",
    REPO / "charts" / "model-analyzer" / "crds" / "modelanalyses.modelanalyzer.dev.yaml",
]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(REPO)))
def test_committed_crd_is_what_the_models_generate(path: Path) -> None:
    assert path in crd.CRD_PATHS
    assert path.exists(), f"{path} is missing: run `python -m modelanalysis.kube.crd --write`"
    assert path.read_text() == crd.render(), (
        f"{path.relative_to(REPO)} is out of date with the pydantic models in modelanalysis/kube/resource.py: "
        "run `python -m modelanalysis.kube.crd --write` and commit both copies"
    )


def schema() -> dict[str, Any]:
    [version] = crd.crd()["spec"]["versions"]
    result: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return result


def walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node, with a JSON-path-like location for messages."""
    if not isinstance(node, dict):
        return
    yield path, node
    for name, sub in (node.get("properties") or {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")
    for key in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(node.get(key) or []):
            yield from walk(sub, f"{path}/{key}[{i}]")


def test_schema_is_structural() -> None:
    """What the API server's structural-schema check asks: types everywhere, no references, no type-less
    alternatives (the operator's status is read back by kopf and the CLI, so the status schema counts too)."""
    nodes = list(walk(schema()))
    assert len(nodes) > 50  # the walk reached the nested models
    for path, node in nodes:
        assert "$ref" not in node, path
        assert "$defs" not in node and "definitions" not in node, path
        assert "nullable" not in node or node.get("type"), path
        for key in ("anyOf", "oneOf", "allOf"):
            assert key not in node, f"{path}: {key} (Optional fields must become a plain type)"
        if "/" not in path:  # a node under properties/items/additionalProperties
            assert node.get("type") or node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        if node.get("type") == "object" and "properties" in node and "additionalProperties" in node:
            pytest.fail(f"{path}: properties and additionalProperties together are not structural")
        for key in ("title", "examples", "const"):
            assert key not in node, f"{path}: {key}"


def test_no_defaults_anywhere() -> None:
    """The operator applies defaults itself; a schema default would make the API server rewrite what a GitOps
    tool committed (and show drift)."""
    for path, node in walk(schema()):
        assert "default" not in node, f"{path} has a default"

    def keys(node: Any) -> Iterator[str]:  # every mapping key, however deep, in the file as committed
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from keys(value)
        elif isinstance(node, list):
            for item in node:
                yield from keys(item)

    assert "default" not in set(keys(yaml.safe_load(crd.render())))


def test_every_spec_field_is_in_the_schema() -> None:
    """Unknown fields are pruned (or refused) by the API server, so each field the models know must be there."""

    def wire_names(model: type[Any]) -> set[str]:
        return {f.alias or n for n, f in model.model_fields.items()}

    spec = schema()["properties"]["spec"]
    assert set(spec["properties"]) == wire_names(ModelAnalysisSpec)
    assert set(spec["required"]) == {"models", "modelRepository"}
    status = schema()["properties"]["status"]
    assert set(status["properties"]) == wire_names(ModelAnalysisStatus)


def test_kubernetes_values_stay_open() -> None:
    triton = schema()["properties"]["spec"]["properties"]["triton"]["properties"]
    for name in ("resources", "affinity"):
        assert triton[name] == {**triton[name], "type": "object", "x-kubernetes-preserve-unknown-fields": True}
    for name in ("tolerations", "env"):
        assert triton[name]["items"]["x-kubernetes-preserve-unknown-fields"] is True
    assert triton["nodeSelector"]["additionalProperties"] == {"type": "string", "maxLength": 63}  # a label value


def test_every_number_list_map_and_string_of_the_spec_has_an_upper_bound() -> None:
    """A hostile or mistyped manifest cannot ask for a billion of anything: admission refuses it, naming the
    bound. Kubernetes' own pod fields passed through (resources, affinity, each toleration and env entry) are
    bounded in size here and checked by the API server when the pod is created."""
    bounded = 0
    for path, node in walk(schema()["properties"]["spec"], "spec"):
        kind = node.get("type")
        if kind in ("integer", "number"):
            assert "maximum" in node, f"{path}: a number without a maximum"
        elif kind == "array":
            assert "maxItems" in node, f"{path}: a list without maxItems"
        elif kind == "string":
            assert "maxLength" in node or "enum" in node, f"{path}: a string without maxLength"
        elif kind == "object" and "properties" not in node:
            assert "maxProperties" in node, f"{path}: a map without maxProperties"
        else:
            continue
        bounded += 1
    assert bounded > 30


def test_sub_paths_carry_the_traversal_rule_with_a_sentence() -> None:
    spec = schema()["properties"]["spec"]["properties"]
    for location in (spec["modelRepository"], spec["results"]):
        [rule] = location["properties"]["pvc"]["properties"]["subPath"]["x-kubernetes-validations"]
        assert rule == {"rule": SUB_PATH_CEL, "message": SUB_PATH_MESSAGE}


def test_cel_rules_cover_what_openapi_cannot() -> None:
    spec = schema()["properties"]["spec"]
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert any("self.models" in r for r in rules)
    repo_rules = [r["rule"] for r in spec["properties"]["modelRepository"]["x-kubernetes-validations"]]
    assert repo_rules == ["has(self.pvc) != has(self.uri)"]
    for path, node in walk(schema()):
        for rule in node.get("x-kubernetes-validations", []):
            assert rule.get("message"), f"{path}: every CEL rule says what to fix"


def test_exclusive_minimum_is_openapi_v3_0s_boolean() -> None:
    stability = schema()["properties"]["spec"]["properties"]["measurement"]["properties"]["stabilityPercentage"]
    assert (stability["minimum"], stability["exclusiveMinimum"]) == (0, True)


def test_status_lets_kopf_keep_its_bookkeeping() -> None:
    status = schema()["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    assert "required" not in status


def test_the_crd_has_the_status_subresource_and_printer_columns() -> None:
    [version] = crd.crd()["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Phase"] == ".status.phase"
    assert columns["Progress"] == ".status.progress"
