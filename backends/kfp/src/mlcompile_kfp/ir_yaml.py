"""The IR's YAML text, written directly from the dict the kfp SDK builds of its PipelineSpec.

PyYAML's representer is pure Python even with libyaml's emitter, and makes a node per value:
for a pipeline of 1,000 steps it costs more than the rest of writing the IR. The document is
JSON-like (string keys; strings, numbers, booleans, null, lists, mappings), so it is written
here in the layout PyYAML uses (keys sorted, block style, a collection of scalars on one
line), with a scalar left plain only when it is a name no YAML 1.1 reader takes for anything
but a string: `yaml.safe_load` of the text gives back the same documents.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

# A plain scalar: a name or a version (`0.0.1`, never a number), not a YAML indicator, and
# nothing a flow collection would split (`,[]{}`); the words YAML 1.1 readers (PyYAML, go-yaml
# v2) take for booleans or null are quoted.
_PLAIN = re.compile(r"(?:--?)?[A-Za-z_][A-Za-z0-9_./-]*|[0-9]+(?:\.[0-9]+){2,}")
_NOT_PLAIN = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})
# A quoted scalar holds printable ASCII as it is (an allow-list): anything else is escaped, as
# PyYAML's default writer does, so that no control, format or bidirectional character (or one
# a reader takes for a line break) reaches the file.
_ESCAPED = re.compile("[^\x20-\x7e]")
# A simple key (`key: value`) is at most 1024 characters; an IR's keys are names.
_MAX_KEY = 1000


class UnsupportedValue(TypeError):
    """A value this writer does not handle; the caller falls back to PyYAML."""


def dump_documents(documents: Iterable[Any]) -> str:
    """YAML text of `documents`, the second and later each after a `---` line."""
    texts = []
    for document in documents:
        if _is_block(document):
            lines: list[str] = []
            _block(document, "", lines, "")
            texts.append("\n".join(lines) + "\n")
        else:
            texts.append(_inline(document) + "\n")
    return "---\n".join(texts)


def _block(value: dict[str, Any] | list[Any], indent: str, lines: list[str], lead: str) -> None:
    """Append a collection in block style to `lines`: its first line starts with `lead` (the
    dash of the list item it is), the lines after it with `indent`."""
    if isinstance(value, dict):
        for key, item in sorted(value.items()):
            head = lead + _key(key) + ":"
            lead = indent
            if not _is_block(item):
                lines.append(head + " " + _inline(item))
            else:
                lines.append(head)
                # a list under a key is not indented further, as PyYAML writes it
                inner = indent + "  " if isinstance(item, dict) else indent
                _block(item, inner, lines, inner)
    else:
        for item in value:
            head = lead + "- "
            lead = indent
            if _is_block(item):
                _block(item, indent + "  ", lines, head)
            else:
                lines.append(head + _inline(item))


def _is_block(value: Any) -> bool:
    """A collection of scalars only goes on one line (PyYAML's `default_flow_style=None`)."""
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list):
        return False
    return any(isinstance(item, dict | list) for item in value)


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)}: {_scalar(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(item) for item in value) + "]"
    return _scalar(value)


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise UnsupportedValue(f"a mapping key of type {type(key).__name__}")
    text = _string(key)
    if len(text) > _MAX_KEY:
        raise UnsupportedValue("a mapping key too long for a simple key")
    return text


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return _string(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    raise UnsupportedValue(f"a value of type {type(value).__name__}")


def _string(text: str) -> str:
    if _PLAIN.fullmatch(text) and text.lower() not in _NOT_PLAIN:
        return text
    if not _ESCAPED.search(text):
        return "'" + text.replace("'", "''") + "'"
    # JSON's string escapes are YAML's too; the rest of what is not printable ASCII gets YAML's
    # \u or \U escape (never a surrogate pair, which YAML readers do not join).
    return _ESCAPED.sub(_escape, json.dumps(text, ensure_ascii=False))


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _float(value: float) -> str:
    """As PyYAML writes a float: YAML 1.1 needs a `.` in it, and spells the infinities."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value).lower()
    if "." not in text and "e" in text:
        text = text.replace("e", ".0e", 1)
    return text
