"""Keep the chart's values.schema.json in step with values.yaml, so nothing is written twice by hand.

values.yaml holds each value's documentation (its helm-docs `# --` comment); values.schema.json holds the types
and bounds `helm install` checks. This script writes each documented value's comment into the schema as its
`description` and checks that the two files name the same values: a key documented in values.yaml with no
schema, or a schema property no value has, is an error.

    .venv/bin/python scripts/values_schema.py           # check (exit 1 and say what differs)
    .venv/bin/python scripts/values_schema.py --write   # rewrite the descriptions in values.schema.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

CHART = Path(__file__).resolve().parents[1] / "charts" / "model-analyzer"
VALUES, SCHEMA = CHART / "values.yaml", CHART / "values.schema.json"
KEY = re.compile(r"^(\s*)([A-Za-z][A-Za-z0-9_]*):")
COMMENT = re.compile(r"^(\s*)#\s?(.*)$")


def documented(values_text: str) -> dict[tuple[str, ...], str]:
    """Each key path of values.yaml that has a `# --` comment, with the comment's text (lines joined)."""
    found: dict[tuple[str, ...], str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in values_text.splitlines():
        comment = COMMENT.match(line)
        if comment:
            text = comment[2]
            if text.startswith("-- "):
                pending = [text[3:].strip()]
            elif pending is not None:
                pending.append(text.strip())
            continue
        key = KEY.match(line)
        if key is None:
            if not line.strip():
                pending = None  # a comment parted from its key by a blank line documents no key
            continue
        indent = len(key[1])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key[2]))
        if pending:
            found[tuple(k for _, k in stack)] = " ".join(pending)
        pending = None
    return found


def schema_node(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for part in path:
        node = (node or {}).get("properties", {}).get(part)
        if node is None:
            return None
    return node


def value_keys(values: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    keys: set[tuple[str, ...]] = set()
    if isinstance(values, dict):
        for k, v in values.items():
            keys.add((*prefix, k))
            keys |= value_keys(v, (*prefix, k))
    return keys


def schema_keys(node: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    keys: set[tuple[str, ...]] = set()
    for k, child in (node.get("properties") or {}).items():
        keys.add((*prefix, k))
        keys |= schema_keys(child, (*prefix, k))
    return keys


def problems(values_text: str, schema: dict[str, Any]) -> list[str]:
    import yaml

    docs = documented(values_text)
    found = [f"{'.'.join(p)} is documented in values.yaml but has no schema" for p in docs if
             schema_node(schema, p) is None]  # fmt: skip
    values = yaml.safe_load(values_text)
    top = {k for k in (schema.get("properties") or {}) if k != "global"}  # `global` is Helm's own
    found += [f"{k} is in values.schema.json but not in values.yaml" for k in sorted(top - set(values))]
    found += [f"{'.'.join(p)} is in values.yaml but not in values.schema.json" for p in sorted(
        p for p in value_keys(values) if len(p) == 1 and schema_node(schema, p) is None)]  # fmt: skip
    return found


def with_descriptions(values_text: str, schema: dict[str, Any]) -> dict[str, Any]:
    updated = json.loads(json.dumps(schema))
    for path, text in documented(values_text).items():
        node = schema_node(updated, path)
        if node is not None:
            node["description"] = text
    return updated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    values_text, schema = VALUES.read_text(), json.loads(SCHEMA.read_text())
    found = problems(values_text, schema)
    for problem in found:
        print(f"values_schema: {problem}", file=sys.stderr)
    generated = json.dumps(with_descriptions(values_text, schema), indent=2) + "\n"
    if args.write:
        SCHEMA.write_text(generated)
    elif generated != SCHEMA.read_text():
        print("values_schema: the descriptions in values.schema.json differ from values.yaml's comments: run "
              "`python scripts/values_schema.py --write`", file=sys.stderr)  # fmt: skip
        return 1
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
