"""The Jinja2 environment for generated code.

Autoescaping is for HTML; generated Python needs its own rule: every value from a spec
enters the code through `py` (a Python literal via repr) or `json`, never as raw text. The
environment is strict about undefined names so a template typo fails at build time.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jinja2 import Environment, StrictUndefined


def py_literal(value: Any) -> str:
    """A Python expression that evaluates to `value`; only plain data is accepted."""
    if value is None or isinstance(value, bool | int | str):
        return repr(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return f"float({str(value)!r})"
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(
            f"{py_literal(str(k))}: {py_literal(v)}" for k, v in sorted(value.items())
        )
        return "{" + items + "}"
    raise TypeError(f"cannot put a {type(value).__name__} into generated code")


def identifier(text: str, prefix: str = "n") -> str:
    """A Python identifier derived from any text: letters, digits and underscores only."""
    cleaned = re.sub(r"\W", "_", text, flags=re.ASCII).strip("_") or prefix
    if cleaned[0].isdigit():
        cleaned = f"{prefix}_{cleaned}"
    return cleaned


def comment(text: str) -> str:
    """Text safe inside a `#` comment: one line, no control characters."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029]", " ", text)


def make_environment(loader: Any) -> Environment:
    env = Environment(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["py"] = py_literal
    env.filters["json"] = lambda v: json.dumps(v, sort_keys=True)
    env.filters["ident"] = identifier
    env.filters["comment"] = comment
    return env
