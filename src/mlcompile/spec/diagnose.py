"""Turn pydantic's validation errors into located diagnostics with hints."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from mlcompile import codes
from mlcompile.errors import Diagnostic, did_you_mean
from mlcompile.names import ALIAS_PATTERN, ALIAS_RULE
from mlcompile.spec.compose import Composed
from mlcompile.spec.models import CUSTOM_PATTERN
from mlcompile.spec.yaml_loader import KeyPath


def data_path(data: Any, loc: tuple[int | str, ...], kind: str) -> tuple[KeyPath, bool]:
    """Follow pydantic's `loc` through the data, dropping the union-member tags it inserts.

    Returns the key path and whether the last element of `loc` was such a tag (the error is
    about the value as a whole failing one member of a union).
    """
    path: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            node = node[part]  # type: ignore[index]
        elif last and kind in ("missing", "extra_forbidden"):
            node = None  # the key the error is about: missing, or not allowed
        elif last:
            return tuple(path), True
        elif isinstance(node, dict) and loc[index + 1] in node:
            continue  # a union member's tag, followed by a real key
        else:
            node = None
        path.append(part)
    return tuple(path), False


def _fields_at(model: type[BaseModel], path: KeyPath) -> list[str] | None:
    """The keys allowed at `path` below `model`, following dicts, lists and unions."""
    current: Any = model
    for part in path:
        current = _step(current, part)
        if current is None:
            return None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return None


def _step(annotation: Any, part: str | int) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            if part in (name, field.alias):
                return _unwrap(field.annotation)
        return None
    origin = typing.get_origin(annotation)
    if origin is dict:
        return _unwrap(typing.get_args(annotation)[1])
    if origin is list:
        return _unwrap(typing.get_args(annotation)[0])
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Annotated; of a union, keep the (first) model member."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            inner = _unwrap(arg)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
            if typing.get_origin(inner) in (dict, list):
                return inner
        return None
    return annotation


def _dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path) or "the top level"


def diagnostics_from_validation(
    exc: ValidationError, composed: Composed, root: type[BaseModel], prefix: KeyPath = ()
) -> list[Diagnostic]:
    """Diagnostics for `exc`, raised by validating the data at `prefix` against `root`."""
    raw = []
    for error in exc.errors(include_url=False):
        path, whole_value = data_path(composed.data, (*prefix, *error["loc"]), error["type"])
        raw.append((error, path, whole_value))
    # A value failing a union reports one error per member; keep the most specific ones.
    deeper = {p for _, p, _ in raw}
    out: list[Diagnostic] = []
    seen: set[tuple[str, KeyPath, str]] = set()
    for error, path, whole_value in raw:
        if whole_value and any(len(o) > len(path) and o[: len(path)] == path for o in deeper):
            continue
        diagnostic = _one(error, path, composed, root, len(prefix))
        key = (diagnostic.code, path, diagnostic.message)
        if key not in seen:
            seen.add(key)
            out.append(diagnostic)
    return out


def _one(
    error: Any, path: KeyPath, composed: Composed, root: type[BaseModel], skip: int
) -> Diagnostic:
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    dotted = _dotted(path)
    if kind == "extra_forbidden":
        parent, key = path[:-1], str(path[-1])
        allowed = _fields_at(root, parent[skip:]) or []
        return Diagnostic(
            codes.UNKNOWN_KEY,
            f"unknown key '{key}' in {_dotted(parent)}",
            composed.key_span(path),
            did_you_mean(key, allowed),
            path=dotted,
        )
    if kind == "missing":
        parent, key = path[:-1], str(path[-1])
        return Diagnostic(
            codes.MISSING_KEY,
            f"missing required key '{key}' in {_dotted(parent)}",
            composed.span(parent),
            f"add '{key}:'",
            path=dotted,
        )
    value = error.get("input")
    shown = "" if isinstance(value, dict | list) or kind in _SECRET_KINDS else f" (got {value!r})"
    pattern = str((error.get("ctx") or {}).get("pattern"))
    hint = _PATTERN_HINTS.get(pattern) or _TYPE_HINTS.get(
        kind, "see docs/spec-reference.md for this key's type"
    )
    return Diagnostic(
        codes.INVALID_VALUE, f"{dotted}: {message}{shown}", composed.span(path), hint, path=dotted
    )


# Errors whose input may be a secret: the message never repeats what was written.
_SECRET_KINDS = frozenset({"credentials", "credential_ref"})

# The rules behind the patterns a key must match, in words.
_PATTERN_HINTS = {
    ALIAS_PATTERN: ALIAS_RULE,
    CUSTOM_PATTERN: "write 'module:function', e.g. 'project_features.speed:compute'",
}

# What to write instead, by pydantic error type; messages already say what was expected.
_TYPE_HINTS = {
    "int_parsing": "write a whole number, e.g. 42",
    "int_from_float": "write a whole number, e.g. 42",
    "float_parsing": "write a number, e.g. 0.5",
    "finite_number": "write a finite number: NaN and infinity make every comparison false",
    "bool_parsing": "write true or false",
    "string_type": "write plain text here (quote it if YAML reads it as something else)",
    "dict_type": "write a mapping: one 'key: value' per line, or {key: value}",
    "model_type": "write a mapping: one 'key: value' per line, or {key: value}",
    "list_type": "write a list: [a, b] or one '- item' per line",
    "literal_error": "use one of the values listed",
    "union_tag_invalid": "use one of the kinds listed",
    "greater_than": "use a larger value",
    "greater_than_equal": "use a larger value",
    "less_than": "use a smaller value",
    "less_than_equal": "use a smaller value",
    "too_short": "add at least one entry",
    "string_too_long": "shorten the name",
    "string_pattern_mismatch": "see docs/spec-reference.md for the allowed form",
    "value_error": "see docs/spec-reference.md for this section",
    "credential_ref": "set the secret in the environment and name the variable here",
    "credentials": "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or "
    "MLFLOW_TRACKING_TOKEN) in the environment instead",
}
