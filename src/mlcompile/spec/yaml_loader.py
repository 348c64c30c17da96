"""Load YAML into plain Python data and remember where every key and value came from.

We compose the YAML node graph (libyaml, through PyYAML) and build the data ourselves instead
of letting a constructor build objects: it
keeps the position of every node, lets us report *every* duplicate key (a constructor stops
at the first), refuses Python tags before anything is built, and bounds alias expansion so a
billion-laughs document is an error instead of an out-of-memory kill.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcompile import codes
from mlcompile.errors import Diagnostic, SourceSpan

KeyPath = tuple[str | int, ...]

# A spec that expands past this many values is an attack or a mistake, not a pipeline.
MAX_NODES = 200_000
MAX_DEPTH = 64
# Integers are 64-bit wherever a spec's numbers go (JSON, LightGBM, numpy, Arrow).
INT_RANGE = range(-(2**63), 2**63)

_STD = "tag:yaml.org,2002:"
_SAFE_TAGS = {
    _STD + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")
}


@dataclass
class Located:
    """Parsed data plus the span of every key path, for a single file."""

    data: Any
    file: str
    text: str
    spans: dict[KeyPath, SourceSpan] = field(default_factory=dict)
    key_spans: dict[KeyPath, SourceSpan] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def _span(file: str, node: Any) -> SourceSpan:
    start, end = node.start_mark, node.end_mark
    return SourceSpan(file, start.line + 1, start.column + 1, end.line + 1, end.column + 1)


class _Builder:
    def __init__(self, file: str, out: Located) -> None:
        self.file = file
        self.out = out
        self.count = 0
        self.too_big = False

    def error(self, code: str, message: str, node: Any, hint: str | None = None) -> None:
        self.out.diagnostics.append(Diagnostic(code, message, _span(self.file, node), hint))

    def build(self, node: Any, path: KeyPath, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES or depth > MAX_DEPTH:
            if not self.too_big:
                self.too_big = True
                what = "nests too deeply" if depth > MAX_DEPTH else "expands to too many values"
                self.error(
                    codes.TOO_LARGE,
                    f"the document {what} (limits: depth {MAX_DEPTH}, {MAX_NODES} values)",
                    node,
                    "anchors and aliases that multiply each other are refused",
                )
            return None
        self.out.spans.setdefault(path, _span(self.file, node))
        tag = str(node.tag)
        if tag not in _SAFE_TAGS:
            self.error(
                codes.UNSAFE_TAG,
                f"the YAML tag '{tag}' is not allowed",
                node,
                "a spec holds plain data: mappings, lists, strings, numbers, booleans and null",
            )
            return None
        if node.id == "mapping":
            return self._mapping(node, path, depth)
        if node.id == "sequence":
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self.scalar(node)

    def scalar(self, node: Any) -> Any:
        try:
            value = _scalar(str(node.tag), node.value)
        except ValueError:  # Python refuses to read integers of more than 4,300 digits
            value = None
        else:
            if not isinstance(value, int) or isinstance(value, bool) or value in INT_RANGE:
                return value
        shown = (
            node.value
            if len(node.value) <= 24
            else f"{node.value[:20]}... ({len(node.value)} characters)"
        )
        self.error(
            codes.INTEGER_RANGE,
            f"the integer {shown} is out of range",
            node,
            "integers in a spec fit in 64 bits (at most 9223372036854775807)",
        )
        return None

    def _mapping(self, node: Any, path: KeyPath, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if str(key_node.tag) == _STD + "merge":
                merged.update(self._merge_sources(value_node, path, depth))
                continue
            if key_node.id != "scalar":
                self.error(
                    codes.NOT_PLAIN_DATA,
                    "mapping keys must be plain strings",
                    key_node,
                    "write the key as text",
                )
                continue
            key = str(self.scalar(key_node))
            if key in first_seen:
                line = first_seen[key].start_mark.line + 1
                self.error(
                    codes.DUPLICATE_KEY,
                    f"duplicate key '{key}' (first defined on line {line})",
                    key_node,
                    "YAML keeps only one of them; remove or rename the other",
                )
                continue
            first_seen[key] = key_node
            self.out.key_spans[(*path, key)] = _span(self.file, key_node)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def _merge_sources(self, node: Any, path: KeyPath, depth: int) -> dict[str, Any]:
        sources = node.value if node.id == "sequence" else [node]
        merged: dict[str, Any] = {}
        for source in sources:
            value = self.build(source, path, depth + 1)
            if isinstance(value, dict):
                for key, item in value.items():
                    merged.setdefault(key, item)
            else:
                self.error(
                    codes.NOT_PLAIN_DATA,
                    "a merge key ('<<') takes a mapping or a list of mappings",
                    source,
                )
        return merged


def _scalar(tag: str, value: str) -> Any:
    """Scalars as YAML 1.1 reads them, the dialect Hydra and OmegaConf use for config groups."""
    kind = tag.removeprefix(_STD)
    if kind in ("null", "bool", "int", "float"):
        from yaml import ScalarNode

        return getattr(_constructor(), f"construct_yaml_{kind}")(ScalarNode(tag, value))
    # Timestamps stay text: the spec is plain data, and columns are parsed by the runtime.
    return value


@functools.cache
def _constructor() -> Any:
    """One constructor for every scalar (it keeps no state for them): a large spec has tens
    of thousands."""
    from yaml.constructor import SafeConstructor

    return SafeConstructor()


def parse_yaml(text: str, file: str) -> Located:
    """Parse one YAML document. Problems come back as diagnostics, never as exceptions."""
    import yaml

    out = Located(data=None, file=file, text=text)
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        span = SourceSpan(file, mark.line + 1, mark.column + 1) if mark else SourceSpan(file)
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.context_mark and exc.problem:
            where = exc.context_mark
            problem += (
                f" ({exc.context}, started on line {where.line + 1}, column {where.column + 1})"
            )
        out.diagnostics.append(
            Diagnostic(
                codes.YAML_SYNTAX,
                f"YAML syntax error: {problem}",
                span,
                "check indentation, colons, quotes and brackets at or just before this point",
            )
        )
        return out
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        out.diagnostics.append(
            Diagnostic(
                codes.YAML_SYNTAX,
                f"the character U+{ord(char):04X} is not allowed in YAML",
                SourceSpan(file, line, column),
                "remove control characters from the file",
            )
        )
        return out
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        out.diagnostics.append(
            Diagnostic(
                codes.YAML_SYNTAX,
                f"YAML error: {first}",
                SourceSpan(file, 1, 1),
                "save the file as plain YAML",
            )
        )
        return out
    if root is None:
        out.diagnostics.append(
            Diagnostic(
                codes.NOT_PLAIN_DATA,
                "the file is empty",
                SourceSpan(file, 1, 1),
                "a spec needs at least 'name'",
            )
        )
        return out
    out.data = _Builder(file, out).build(root, ())
    return out


def load_yaml_file(path: Path, display: str) -> Located:
    """Read and parse a file; unreadable or non-UTF-8 files become located diagnostics."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        located = Located(data=None, file=display, text="")
        reason = exc.strerror or str(exc)
        located.diagnostics.append(
            Diagnostic(
                codes.FILE_UNREADABLE, f"cannot read the file: {reason}", SourceSpan(display)
            )
        )
        return located
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        located = Located(data=None, file=display, text="")
        located.diagnostics.append(
            Diagnostic(
                codes.YAML_SYNTAX,
                f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
                SourceSpan(display, line, column),
                "save the file as UTF-8",
            )
        )
        return located
    return parse_yaml(text.removeprefix("\ufeff"), display)


def inner_span(text: str, span: SourceSpan, value: str, offset: int) -> SourceSpan | None:
    """Where character `offset` of the text scalar `value` written at `span` of `text` is:
    inside a literal block (`|`), or on a one-line scalar written without escapes. None
    when the value's characters do not map one to one onto the file's (a folded block,
    escapes, a value over several lines of a quoted scalar)."""
    lines = text.splitlines()
    offset = max(0, min(offset, len(value)))
    if not 0 < span.line <= len(lines):
        return None
    first = lines[span.line - 1]
    head = first[span.column - 1 :]
    if head.startswith("|"):
        if any(c.isdigit() for c in head[1:].split("#", 1)[0]):
            return None  # an explicit indentation indicator: rare enough to skip
        body = lines[span.line :]
        indent = next((len(line) - len(line.lstrip(" ")) for line in body if line.strip()), None)
        if indent is None:
            return None
        row = value.count("\n", 0, offset)
        column = offset - (value.rfind("\n", 0, offset) + 1)
        return SourceSpan(span.file, span.line + 1 + row, indent + column + 1)
    if "\n" in value.rstrip("\n"):
        return None
    quote = 1 if head[:1] in ("'", '"') else 0
    if head[quote : quote + len(value)] != value:
        return None
    return SourceSpan(span.file, span.line, span.column + quote + offset)
