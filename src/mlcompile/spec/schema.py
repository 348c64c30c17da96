"""The spec's JSON Schema, for editor completion and validation as you type."""

from __future__ import annotations

import json
from typing import Any

SCHEMA_ID = "https://mlcompile.dev/schemas/mlcompile.schema.json"


def spec_json_schema() -> dict[str, Any]:
    from mlcompile.spec.models import Spec

    schema: dict[str, Any] = _optional_everywhere(Spec.model_json_schema(by_alias=True))
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


def spec_reference_markdown() -> str:
    """docs/spec-reference.md: every section and key, generated from the models."""
    from pydantic import BaseModel

    from mlcompile.spec.models import Spec

    lines = [
        "# Spec reference",
        "",
        "Generated from the spec's models by `mlcompile schema --markdown`; do not edit by hand.",
        "Keys marked *required* must be present after composition (presets may supply them).",
        "",
    ]
    seen: set[type[BaseModel]] = set()
    queue: list[tuple[str, type[BaseModel]]] = [("the spec (top level)", Spec)]
    while queue:
        title, model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        lines += [f"## {model.__name__}: {title}", ""]
        if model.__doc__:
            lines += [" ".join(model.__doc__.split()), ""]
        lines += ["| key | type | default | description |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            key = field.alias or name
            default = "*required*" if field.is_required() else _default_text(field)
            kind = _type_text(field.annotation)
            lines.append(f"| `{key}` | {kind} | {default} | {field.description or ''} |")
            for nested in _models_in(field.annotation):
                queue.append((f"`{key}` in {model.__name__}", nested))
        lines.append("")
    return "\n".join(lines + _metric_tables())


def _metric_tables() -> list[str]:
    """The metrics each task produces, from the list the runtime computes."""
    from mlcompile.tasks import METRICS, lower_is_better

    lines = [
        "## Metrics by task",
        "",
        "What `models.<m>.metrics` may list and gates and monitors may check. Every metric is",
        "measured on the test split and, as `validation.<metric>`, on the validation split (the",
        "rows early stopping holds out); `<metric>.lower` and `<metric>.upper` are the ends of",
        "its bootstrap interval on the test split. A metric without a value on some rows is",
        "listed under `undefined` in metrics.json with the reason.",
        "",
    ]
    for task, metrics in METRICS.items():
        lines += [f"### {task}", "", "| metric | better | meaning |", "|---|---|---|"]
        for name, meaning in metrics.items():
            better = "lower" if lower_is_better(name) else "higher"
            lines.append(f"| `{name}` | {better} | {meaning} |")
        lines.append("")
    return lines


def _default_text(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        return f"`{json.dumps(value.model_dump() if hasattr(value, 'model_dump') else value)}`"
    return f"`{json.dumps(field.default)}`"


def _type_text(annotation: Any) -> str:
    return "`" + _type_name(annotation).replace("|", "\\|") + "`"


def _type_name(annotation: Any) -> str:
    import types
    import typing

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin is not None:
        return (
            f"{getattr(origin, '__name__', str(origin))}[{', '.join(_type_name(a) for a in args)}]"
        )
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _models_in(annotation: Any) -> list[Any]:
    import typing

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found
