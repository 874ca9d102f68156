"""Generate the ModelAnalysis CustomResourceDefinition from the pydantic models.

`python -m modelanalysis.kube.crd --write` rewrites crds/ and the chart's copy; a test checks they match.
The JSON schema pydantic makes is turned into a Kubernetes *structural* schema: references inlined, titles
and defaults dropped (the operator applies defaults itself, so the API server never rewrites what a GitOps
tool committed), optional values as plain types, and CEL rules where OpenAPI alone cannot say it.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from modelanalysis.core.inputs import ONE_SOURCE_OF_DATA
from modelanalysis.core.spec import (
    DEFAULT_MAX_SEARCH_CONCURRENCY,
    DEFAULT_MAX_SEARCH_RATE,
    DEFAULT_MIN_SEARCH_RATE,
    MAX_CONCURRENCY,
    MAX_RATE_SPAN,
    MAX_VARIANTS,
    MODEL_NAME_CEL,
    MODEL_NAME_MESSAGE,
    ONE_KIND_OF_LOAD,
)
from modelanalysis.kube.resource import (
    ARGS_CEL,
    ARGS_MESSAGE,
    GROUP,
    INPUT_DATA_CEL,
    INPUT_DATA_MESSAGE,
    INPUT_DATA_NEEDS_CLAIM,
    KIND,
    MAX_POINTS,
    PLACEMENT_CEL,
    PLACEMENT_MESSAGE,
    PLURAL,
    SHARED_MEMORY_CEL,
    SHARED_MEMORY_MESSAGE,
    SHORT_NAMES,
    SINGULAR,
    SUB_PATH_CEL,
    SUB_PATH_MESSAGE,
    VERSION,
    VERSIONS_CEL,
    VERSIONS_MESSAGE,
    ModelAnalysisSpec,
    ModelAnalysisStatus,
)

CRD_FILE = f"{PLURAL}.{GROUP}.yaml"
REPO_ROOT = Path(__file__).resolve().parents[3]
CRD_PATHS = [REPO_ROOT / "crds" / CRD_FILE, REPO_ROOT / "charts" / "model-analyzer" / "crds" / CRD_FILE]


def _size_or_1(field: str) -> str:
    return f"(has({field}) ? size({field}) : 1)"


def _doubling_steps_cel(max_concurrency: str) -> str:
    """len(doubling_steps(m)) in CEL: 1, 2, 4, ... up to m is k+1 steps for 2**(k-1) < m <= 2**k."""
    text, k = "", 0
    while 2**k < MAX_CONCURRENCY:
        text += f"{max_concurrency} <= {2**k} ? {k + 1} : "
        k += 1
    return f"({text}{k + 1})"


# The points an analysis may measure (an upper bound: a search measures fewer): every model's config variants
# (core/variants.py) x batch sizes x concurrency steps (core/spec.py: concurrency_steps).
_SEARCH = "self.concurrencySearch"
_VARIANTS = (
    "self.models.map(m, has(m.configSearch) ? 1 + "
    + " * ".join(_size_or_1(f"m.configSearch.{f}") for f in ("instanceCounts", "maxBatchSizes", "dynamicBatching"))
    + " : 1).sum()"
)
# A request-rate search's steps (core/spec.py: RequestRateSearch.steps): minRate doubled while under maxRate, and
# maxRate itself.
_RATE_SEARCH = "self.requestRateSearch"
_MIN_RATE = f"(has({_RATE_SEARCH}.minRate) ? double({_RATE_SEARCH}.minRate) : {float(DEFAULT_MIN_SEARCH_RATE)})"
_MAX_RATE = f"(has({_RATE_SEARCH}.maxRate) ? double({_RATE_SEARCH}.maxRate) : {float(DEFAULT_MAX_SEARCH_RATE)})"
_RATE_STEPS = (
    f"([{', '.join(str(float(2**k)) for k in range(17))}].filter(f, {_MIN_RATE} * f < {_MAX_RATE}).size() + 1)"
)
_STEPS = (
    f"(has(self.requestRate) ? size(self.requestRate) : has({_RATE_SEARCH}) ? {_RATE_STEPS} : "
    f"has(self.concurrency) ? size(self.concurrency) : has({_SEARCH}) ? "
    + _doubling_steps_cel(
        f"(has({_SEARCH}.maxConcurrency) ? {_SEARCH}.maxConcurrency : {DEFAULT_MAX_SEARCH_CONCURRENCY})"
    )
    + " : 1)"
)

# An input settings block that names no input-data file (random, zero, or no data at all).
_NO_DATA_FILE = "(!has({0}) || !has({0}.data) || {0}.data == 'random' || {0}.data == 'zero')"

_ONE_SOURCE_CEL = "!(has(self.data) && has(self.dataConfigMap))"

_VERSIONS = "(has(self.triton) && has(self.triton.versions) ? size(self.triton.versions) : 1)"

# Rules the OpenAPI schema cannot express, each with the sentence a user sees when kubectl refuses. A path
# names fields by their wire names; `[]` steps into a list's items.
CEL_RULES: dict[str, list[dict[str, str]]] = {
    "": [
        {
            "rule": f"{_VERSIONS} * {_VARIANTS} * {_size_or_1('self.batchSizes')} * {_STEPS} <= {MAX_POINTS}",
            "message": f"Triton versions x models (with their config variants) x batchSizes x concurrency steps must "
            f"be at most {MAX_POINTS} points (status keeps each one); split the sweep into several analyses",
        },
        {
            "rule": "!(has(self.requestRate) || has(self.requestRateSearch)) || "
            "(!has(self.concurrency) && !has(self.concurrencySearch))",
            "message": ONE_KIND_OF_LOAD,
        },
        {
            "rule": f"has(self.modelRepository.pvc) || ({_NO_DATA_FILE.format('self.inputs')} && "
            f"self.models.all(m, {_NO_DATA_FILE.format('m.inputs')}))",
            "message": INPUT_DATA_NEEDS_CLAIM,
        },
        {
            "rule": "self.models.all(m, self.models.filter(x, x.name == m.name).size() == 1)",
            "message": "each model may be listed only once in models",
        },
    ],
    "modelRepository": [
        {
            "rule": "has(self.pvc) != has(self.uri)",
            "message": "modelRepository needs exactly one of pvc (a claim in this namespace) or uri (s3://, gs://, as://)",
        }
    ],
    "models[].configSearch": [
        {
            "rule": " * ".join(_size_or_1(f"self.{f}") for f in ("instanceCounts", "maxBatchSizes", "dynamicBatching"))
            + f" <= {MAX_VARIANTS}",
            "message": f"configSearch may combine at most {MAX_VARIANTS} variants (instanceCounts x maxBatchSizes x "
            "dynamicBatching); list fewer values",
        }
    ],
    "models[].name": [{"rule": MODEL_NAME_CEL, "message": MODEL_NAME_MESSAGE}],
    "modelRepository.pvc.subPath": [{"rule": SUB_PATH_CEL, "message": SUB_PATH_MESSAGE}],
    "results.pvc.subPath": [{"rule": SUB_PATH_CEL, "message": SUB_PATH_MESSAGE}],
    "requestRateSearch": [
        {
            "rule": f"{_MAX_RATE.replace(_RATE_SEARCH, 'self')} >= {_MIN_RATE.replace(_RATE_SEARCH, 'self')} && "
            f"{_MAX_RATE.replace(_RATE_SEARCH, 'self')} <= {_MIN_RATE.replace(_RATE_SEARCH, 'self')} * "
            f"{float(MAX_RATE_SPAN)}",
            "message": f"requestRateSearch needs minRate <= maxRate <= {MAX_RATE_SPAN} x minRate (at most 17 "
            "doublings)",
        }
    ],
    "inputs": [{"rule": _ONE_SOURCE_CEL, "message": ONE_SOURCE_OF_DATA}],
    "models[].inputs": [{"rule": _ONE_SOURCE_CEL, "message": ONE_SOURCE_OF_DATA}],
    "inputs.data": [{"rule": INPUT_DATA_CEL, "message": INPUT_DATA_MESSAGE}],
    "models[].inputs.data": [{"rule": INPUT_DATA_CEL, "message": INPUT_DATA_MESSAGE}],
    "inputs.sharedMemory": [{"rule": SHARED_MEMORY_CEL, "message": SHARED_MEMORY_MESSAGE}],
    "models[].inputs.sharedMemory": [{"rule": SHARED_MEMORY_CEL, "message": SHARED_MEMORY_MESSAGE}],
    "triton": [{"rule": VERSIONS_CEL, "message": VERSIONS_MESSAGE}],
    "triton.versions": [
        {
            "rule": "self.all(v, self.filter(x, x == v).size() == 1)",
            "message": "triton.versions lists a version twice; list each once",
        }
    ],
    "triton.args": [{"rule": ARGS_CEL, "message": ARGS_MESSAGE}],
    "loadGenerator": [{"rule": PLACEMENT_CEL, "message": PLACEMENT_MESSAGE}],
}

_DROP = {"title", "default", "$defs", "additionalProperties", "discriminator"}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        # Optional[X] is anyOf [X, null]: the field may simply be omitted, so keep X.
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        if len(branches) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return _structural({**branches[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "exclusiveMinimum":  # JSON Schema's number form -> OpenAPI v3.0's boolean form
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        else:
            out[key] = _structural(value, defs)
    additional = node.get("additionalProperties")
    if isinstance(additional, dict) and "properties" not in node:
        out["additionalProperties"] = _structural(additional, defs)  # a map, e.g. nodeSelector
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out.pop("additionalProperties", None)
    return out


def openapi_schema(model: type[Any], *, mode: str = "validation") -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode=mode)
    return dict(_structural(raw, raw.get("$defs", {})))


def spec_schema() -> dict[str, Any]:
    schema = openapi_schema(ModelAnalysisSpec)
    for path, rules in CEL_RULES.items():
        target = schema
        for part in filter(None, path.split(".")):
            name, into_items = part.removesuffix("[]"), part.endswith("[]")
            target = target["properties"][name]
            if into_items:
                target = target["items"]
        target["x-kubernetes-validations"] = rules
    return schema


def status_schema() -> dict[str, Any]:
    schema = openapi_schema(ModelAnalysisStatus, mode="serialization")
    schema.pop("required", None)
    # kopf keeps its own bookkeeping in status too; let it through.
    schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


def crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": KIND, "plural": PLURAL, "singular": SINGULAR, "shortNames": SHORT_NAMES},
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Progress", "type": "string", "jsonPath": ".status.progress"},
                        {
                            "name": "Best Throughput",
                            "type": "number",
                            "jsonPath": ".status.bestThroughput",
                            "description": "Highest throughput so far (infer/sec).",
                        },
                        {
                            "name": "Best",
                            "type": "string",
                            "jsonPath": ".status.best.summary",
                            "description": "The point to deploy: best by spec.objective within spec.constraints.",
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "Profiles models on a Triton server at each batch size and concurrency.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }


def render() -> str:
    header = "# Generated by `python -m modelanalysis.kube.crd --write` from the pydantic models. Do not edit.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="write crds/ and the chart's copy")
    args = parser.parse_args(argv)
    text = render()
    if not args.write:
        sys.stdout.write(text)
        return 0
    for path in CRD_PATHS:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
