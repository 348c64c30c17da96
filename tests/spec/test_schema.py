"""The checked-in JSON Schema is current, and it accepts the example and rejects bad shapes."""

from __future__ import annotations

import json

import jsonschema

from mlcompile.spec.schema import spec_json_schema_text, spec_reference_markdown
from mlcompile.spec.yaml_loader import load_yaml_file
from tests.conftest import EXAMPLE, REPO

SCHEMA_FILE = REPO / "schemas" / "mlcompile.schema.json"


def test_checked_in_schema_is_not_stale() -> None:
    assert SCHEMA_FILE.read_text() == spec_json_schema_text(), (
        "schemas/mlcompile.schema.json is stale: run `mlcompile schema --out schemas/mlcompile.schema.json`"
    )


def test_schema_validates_the_example_and_catches_typos() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    spec = load_yaml_file(EXAMPLE / "mlcompile.yaml", "mlcompile.yaml").data
    jsonschema.validate(spec, schema)
    spec["models"]["delayed"]["taks"] = "binary"
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(spec))
    assert any("taks" in e.message for e in errors)


def test_spec_reference_doc_is_not_stale() -> None:
    doc = REPO / "docs" / "spec-reference.md"
    assert doc.read_text() == spec_reference_markdown(), (
        "docs/spec-reference.md is stale: run `mlcompile schema --markdown --out docs/spec-reference.md`"
    )
