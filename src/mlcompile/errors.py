"""Diagnostics, the error tree and exit codes.

Stdlib only: every layer raises these, and the CLI renders them. A user mistake is never a
bare exception: it is a `Diagnostic` with a code, a location and a hint.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from enum import IntEnum, StrEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    INVALID = 2
    DATA_INVALID = 3
    GATE_FAILED = 4
    BACKEND_FAILED = 5
    STALE = 6  # `build --check`: the emitted artifacts on disk are out of date
    DRIFT = 7  # `monitor`: checks failed and no retrained model replaced the watched one


@dataclass(frozen=True, order=True)
class SourceSpan:
    """A position in a file: 1-based line and column, as editors show them."""

    file: str
    line: int = 0
    column: int = 0
    end_line: int = 0
    end_column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


# Every code declared so far, by code: a reporter's catalogue is imported before it reports.
_DECLARED: dict[str, Code] = {}


class Code(str):
    """A diagnostic code as a catalogue declares it (mlcompile.codes): compares, prints and
    serialises as the bare code, and carries what the catalogue says about it."""

    name: str
    severity: Severity
    doc: str
    example: str

    def __new__(cls, code: str, *, name: str, severity: Severity, doc: str, example: str) -> Code:
        self = super().__new__(cls, code)
        self.name, self.severity, self.doc, self.example = name, severity, doc, example
        _DECLARED[code] = self
        return self


def declared(code: str) -> Code | None:
    """What the catalogue says about `code`, once its catalogue is imported."""
    return _DECLARED.get(code)


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: SourceSpan | None = None
    hint: str | None = None
    # left out: the code's default severity from its catalogue
    severity: Severity | None = None
    path: str | None = None  # the dotted key path in the composed spec, when there is one

    def __post_init__(self) -> None:
        # a plain str, so that records copy, pickle and compare like any other string
        object.__setattr__(self, "code", str(self.code))
        if self.severity is None:
            known = declared(self.code)
            chosen = known.severity if known is not None else Severity.ERROR
        else:
            chosen = Severity(self.severity)
        object.__setattr__(self, "severity", chosen)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["span"] = asdict(self.span) if self.span else None
        return out

    def sort_key(self) -> tuple[Any, ...]:
        span = self.span or SourceSpan("")
        return (span.file, span.line, span.column, self.code, self.message)


class MlcompileError(Exception):
    """Base of every error the CLI turns into an exit code instead of a traceback."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.diagnostics = list(diagnostics)


class SpecError(MlcompileError):
    """The spec, its composition or the command line is invalid (exit 2)."""

    exit_code = ExitCode.INVALID

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        ordered = sorted(diagnostics, key=Diagnostic.sort_key)
        count = sum(1 for d in ordered if d.severity == "error")
        super().__init__(f"{count} error{'s' if count != 1 else ''} in the spec", ordered)


class UsageError(MlcompileError):
    exit_code = ExitCode.INVALID


class DataValidationError(MlcompileError):
    """Data failed a schema whose policy is "fail" (exit 3)."""

    exit_code = ExitCode.DATA_INVALID


class GateFailed(MlcompileError):
    """A metric gate failed; nothing downstream of it may deploy (exit 4)."""

    exit_code = ExitCode.GATE_FAILED


class BackendError(MlcompileError):
    """A backend could not render, or an orchestrator run failed (exit 5)."""

    exit_code = ExitCode.BACKEND_FAILED


class StepError(MlcompileError):
    """A pipeline step failed on its data for a reason the user can fix (exit 5)."""

    exit_code = ExitCode.BACKEND_FAILED


# What the system says when a folder cannot take a write, rather than what a bug would cause.
WRITE_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
)


class WriteError(MlcompileError):
    """mlcompile cannot write where it must: a read-only folder or file system, a missing
    permission, a full disk (exit 5)."""

    exit_code = ExitCode.BACKEND_FAILED

    def __init__(self, path: object, reason: OSError) -> None:
        why = reason.strerror or str(reason)
        super().__init__(
            f"cannot write {path}: {why} (mlcompile needs to write there: make it writable "
            "by this user, or choose another folder)"
        )
        self.path = str(path)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate, or listing the few that exist."""
    import difflib

    options = sorted(set(candidates))
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    if not options:
        return None
    shown = ", ".join(f"'{o}'" for o in options[:8])
    more = f" and {len(options) - 8} more" if len(options) > 8 else ""
    return f"known names: {shown}{more}"


# ---- renderers -------------------------------------------------------------------------


def printable(text: str) -> str:
    """`text` safe to print on a terminal: control, format and separator characters (ANSI
    escapes, bidi overrides, line breaks inside a name) shown as escapes, never acted on."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def render_human(diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None) -> str:
    """`file:line:col: E201 message`, the offending source line with a caret, and the hint.
    Spec text in messages is hostile input, so everything printed goes through `printable`."""
    lines: list[str] = []
    for d in diagnostics:
        where = f"{printable(str(d.span))}: " if d.span else ""
        lines.append(f"{where}{d.severity} {d.code}: {printable(d.message)}")
        snippet = _snippet(d.span, sources or {})
        if snippet:
            lines.extend(snippet)
        if d.hint:
            lines.append(f"  hint: {printable(d.hint)}")
    return "\n".join(lines)


def _snippet(span: SourceSpan | None, sources: dict[str, str]) -> list[str]:
    if span is None or span.line <= 0 or span.file not in sources:
        return []
    text_lines = sources[span.file].splitlines()
    if span.line > len(text_lines):
        return []
    text = text_lines[span.line - 1]
    gutter = f"{span.line:>4} | "
    before = printable(text[: max(span.column - 1, 0)])
    caret = " " * (len(gutter) + len(before)) + "^"
    return [gutter + printable(text), caret]


def render_json(diagnostics: Sequence[Diagnostic]) -> str:
    return json.dumps({"diagnostics": [d.to_dict() for d in diagnostics]}, indent=2, sort_keys=True)


def _gh_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(diagnostics: Sequence[Diagnostic]) -> str:
    """GitHub Actions workflow commands: each diagnostic becomes an annotation on its line."""
    out = []
    for d in diagnostics:
        level = "error" if d.severity == "error" else "warning"
        props = []
        if d.span:
            props.append(f"file={_gh_escape(d.span.file, prop=True)}")
            if d.span.line > 0:
                props.append(f"line={d.span.line}")
                props.append(f"col={d.span.column}")
        props.append(f"title={_gh_escape(d.code, prop=True)}")
        message = d.message + (f" (hint: {d.hint})" if d.hint else "")
        out.append(f"::{level} {','.join(props)}::{_gh_escape(message)}")
    return "\n".join(out)


def render_sarif(diagnostics: Sequence[Diagnostic], tool_version: str) -> str:
    """SARIF 2.1.0, the format code-scanning dashboards ingest."""
    rules = [_sarif_rule(code) for code in sorted({d.code for d in diagnostics})]
    results = []
    for d in diagnostics:
        result: dict[str, Any] = {
            "ruleId": d.code,
            "level": "error" if d.severity == "error" else "warning",
            "message": {"text": d.message + (f" (hint: {d.hint})" if d.hint else "")},
        }
        if d.span:
            region = {"startLine": max(d.span.line, 1), "startColumn": max(d.span.column, 1)}
            result["locations"] = [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": d.span.file},
                        "region": region,
                    }
                }
            ]
        results.append(result)
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "mlcompile",
                        "version": tool_version,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=True)


def _sarif_rule(code: str) -> dict[str, Any]:
    known = declared(code)
    if known is None:
        return {"id": code}
    level = "error" if known.severity is Severity.ERROR else "warning"
    return {
        "id": code,
        "name": known.name,
        "shortDescription": {"text": known.doc},
        "defaultConfiguration": {"level": level},
        "help": {"text": f"for example: {known.example}"},
    }
