"""The spec's JSON Schema, for editor completion and validation as you type."""

from __future__ import annotations

import json
from typing import Any

SCHEMA_ID = "https://mlcompile.dev/schemas/mlcompile.schema.json"


def spec_json_schema() -> dict[str, Any]:
    from mlcompile.spec.models import Spec

    schema = _optional_everywhere(Spec.model_json_schema(by_alias=True))
    # Hydra's defaults list is consumed before validation, so the model never sees it.
    schema["properties"]["defaults"] = {
        "type": "array",
        "description": "Hydra defaults list: config groups to compose, e.g. "
        "'- model_preset@models.delayed: lgbm_binary', and '_self_'.",
        "items": {"anyOf": [{"type": "string"}, {"type": "object"}]},
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    return schema


def _optional_everywhere(node: Any) -> Any:
    """Drop `required`: presets and profiles fill keys the file never writes, and the editor
    sees the file alone. `mlcompile validate` checks required keys after composition."""
    if isinstance(node, dict):
        return {k: _optional_everywhere(v) for k, v in node.items() if k != "required"}
    if isinstance(node, list):
        return [_optional_everywhere(v) for v in node]
    return node


def spec_json_schema_text() -> str:
    return json.dumps(spec_json_schema(), indent=2, sort_keys=True) + "\n"
