"""What the API server says about a child the operator would create, said in terms of the spec the user wrote.

The spec passes some Kubernetes fields through untouched (Triton's env, resources, tolerations, affinity and
nodeSelector, the load generator's too): the CRD keeps them open, so the API server checks them only when the
pod or Job is made. The operator asks it first, with a dry run, and a refusal fails the analysis naming the
spec field to fix, instead of failing every retry to create the child.
"""

from __future__ import annotations

import json
import re

from pydantic import ValidationError

# Where each part of a child comes from in the spec. Paths are as the API server writes them; a Job's pod
# fields sit under spec.template.
_POD_FIELDS = {
    "containers[0].envFrom": "modelRepository.credentialsSecret",
    "containers[0].env": "triton.env",
    "containers[0].resources": "triton.resources",
    "containers[0].args": "triton.args",
    "containers[0].image": "triton.image",
    "nodeSelector": "triton.nodeSelector",
    "tolerations": "triton.tolerations",
    "affinity": "triton.affinity",
}
_JOB_FIELDS = {
    "containers[0].resources": "loadGenerator.resources",
    "nodeSelector": "loadGenerator.nodeSelector",
    "tolerations": "loadGenerator.tolerations",
    "affinity": "loadGenerator.affinity",
}
SPEC_FIELDS = {
    "Pod": {f"spec.{child}": f"spec.{spec}" for child, spec in _POD_FIELDS.items()},
    "Job": {f"spec.template.spec.{child}": f"spec.{spec}" for child, spec in _JOB_FIELDS.items()},
}
# What the API server puts before the reason: `Pod "x" is invalid: ` or `Pod in version "v1" cannot be handled
# as a Pod: ` (a value of the wrong type), then maybe `strict decoding error: ` (an unknown field).
_PREAMBLE = re.compile(r'^[\w.]+ (?:"[^"]*" is invalid|in version "[^"]*" cannot be handled as an? \w+): ')


def api_message(body: str | bytes | None) -> str:
    """The `message` of the Status the API server answered with, else the body as text."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else (body or "")
    try:
        return str(json.loads(text).get("message") or text)
    except (ValueError, AttributeError):
        return text


def client_message(error: ValidationError) -> str:
    """The first error the Kubernetes client found in a manifest before sending it, as the API server words
    its own: `spec.containers[0].env[0].name: Field required`."""
    first = error.errors()[0]
    body_path = [part for part in first["loc"][1:]]  # the first part is the argument's position (the body)
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in body_path).lstrip(".")
    return f"{path}: {first['msg']}"


def spec_fields(kind: str, message: str) -> tuple[str, list[str]]:
    """`message` with each child field path replaced by the spec field it comes from, and those spec fields."""
    found: list[str] = []
    for child, spec in SPEC_FIELDS.get(kind, {}).items():
        # Whole path segments only: containers[0].env must not match inside containers[0].envFrom.
        pattern = re.compile(re.escape(child) + r"(?![A-Za-z0-9])")
        if pattern.search(message):
            message = pattern.sub(spec, message)
            found.append(spec)
    return message, found


def refusal_message(what: str, kind: str, api_says: str, fallback_field: str) -> str:
    """One sentence: the child the spec describes, why the API server refuses it, and which field to fix."""
    reason, fields = spec_fields(kind, _PREAMBLE.sub("", api_says.strip()).rstrip("."))
    field = fields[0] if fields else fallback_field
    return f"the {what} this spec describes is invalid ({reason}); fix {field} and apply the analysis again."
