"""The Jinja2 environment for generated code, and the one rule for spec text in it.

Autoescaping is for HTML; generated code needs its own rule: every value from a spec enters
through `py` (a Python literal), `json`, `ident` (an identifier) or `comment` (one comment
line), never as raw text. Each of them is built on the same allow-list: printable ASCII
(space to `~`). Every other character is written as an escape, so no spec text can bring a
line break, a separator that `str.splitlines` and the Python compiler count differently
(U+0085, U+2028, form feed, ...), or a bidi or zero-width character that makes code read
differently from what runs. `check_generated` asserts the result, so a template that lets
raw text through fails the build instead of emitting it. The environment is strict about
undefined names so a template typo fails at build time.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jinja2 import Environment, StrictUndefined

from mlcompile.errors import BackendError

# Characters outside the allow-list, and the only line ending generated text may use.
_OUTSIDE = re.compile(r"[^\x20-\x7e]")
# Line ends as Python's tokenizer sees them: \r\n, \r or \n, nothing else.
_SOURCE_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def escape_char(char: str) -> str:
    r"""`char` as a Python-style escape: \x.., \u.... or \U........"""
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def py_literal(value: Any) -> str:
    """A Python expression that evaluates to `value`; only plain data is accepted.

    Strings are written with `ascii`, which escapes everything but printable ASCII.
    """
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, str):
        # str() first: a str subclass (a StepKind) is written as its text, not its repr
        return ascii(str(value))
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
    """A Python identifier derived from any text: ASCII letters, digits and underscores."""
    cleaned = re.sub(r"\W", "_", text, flags=re.ASCII).strip("_") or prefix
    if cleaned[0].isdigit():
        cleaned = f"{prefix}_{cleaned}"
    return cleaned


def comment(text: str) -> str:
    r"""Text safe inside a `#` comment: printable ASCII, every other character escaped."""
    return _OUTSIDE.sub(lambda found: escape_char(found.group()), text)


def source_lines(text: str) -> list[str]:
    """The lines of Python source as the compiler counts them (`str.splitlines` also splits
    at U+0085, U+2028, form feed and more, which the compiler keeps inside a line)."""
    return _SOURCE_LINE.findall(text)


def check_generated(path: str, text: str, allowed: str = "\n") -> str:
    """`text` unchanged when it holds only printable ASCII and `allowed`; a BackendError
    naming the first other character otherwise (a template let raw spec text through)."""
    found = re.compile(f"[^\\x20-\\x7e{re.escape(allowed)}]").search(text)
    if found is None:
        return text
    before = source_lines(text[: found.start()])
    ended = not before or before[-1].endswith(("\n", "\r"))
    line = len(before) + 1 if ended else len(before)
    column = 1 if ended else len(before[-1]) + 1
    raise BackendError(
        f"generated {path} has the character {escape_char(found.group())} at line {line}, "
        f"column {column}: spec text must enter generated code through the py, json, ident "
        "or comment filters"
    )


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
    env.filters["json"] = lambda v: json.dumps(v, sort_keys=True, ensure_ascii=True)
    env.filters["ident"] = identifier
    env.filters["comment"] = comment
    return env
