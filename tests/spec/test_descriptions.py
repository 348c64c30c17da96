"""Every key of the spec has a description: editor completion (the JSON Schema) and
docs/spec-reference.md show it."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import REPO

SCHEMA = REPO / "schemas" / "mlcompile.schema.json"
REFERENCE = REPO / "docs" / "spec-reference.md"


def _undescribed(node: Any, where: str) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in (node.get("properties") or {}).items():
            if not (isinstance(value, dict) and str(value.get("description", "")).strip()):
                found.append(f"{where}.{key}")
        for key, value in node.items():
            found += _undescribed(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _undescribed(value, f"{where}[{index}]")
    return found


def test_every_key_in_the_json_schema_has_a_description() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert len(schema["$defs"]) > 20  # the walk reaches the nested models
    assert _undescribed(schema, "") == []


def test_every_key_in_the_reference_has_a_description() -> None:
    rows = [
        line
        for line in REFERENCE.read_text().splitlines()
        if line.startswith("| `") and line.count("|") >= 5
    ]
    assert len(rows) > 100
    empty = [
        row.split("|")[1].strip() for row in rows if not row.rstrip("|").split("|")[-1].strip()
    ]
    assert empty == []
