"""The catalogue of diagnostic codes: the one place codes are declared, and what reads it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlcompile import codes
from mlcompile.codes import CORE, Catalogue, catalogues
from mlcompile.codes_doc import markdown
from mlcompile.errors import Diagnostic, Severity, SourceSpan, render_sarif

REPO = Path(__file__).resolve().parents[1]
SOURCES = [REPO / "src", *sorted((REPO / "backends").glob("*/src"))]
LITERAL = re.compile(r"""["']([A-Z][0-9]{3})["']""")


def _python_files() -> list[Path]:
    return [p for root in SOURCES for p in sorted(root.rglob("*.py"))]


def _is_catalogue(path: Path) -> bool:
    return path.name == "codes.py"


def test_no_code_is_written_as_a_literal_outside_a_catalogue() -> None:
    found = [
        f"{path.relative_to(REPO)}: {match}"
        for path in _python_files()
        if not _is_catalogue(path)
        for match in LITERAL.findall(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_every_declared_code_is_reported_somewhere() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in _python_files() if not _is_catalogue(p))
    unused = []
    for path in _python_files():
        if _is_catalogue(path):
            declared = re.findall(r"^([A-Z_]+) = _c\(", path.read_text(encoding="utf-8"), re.M)
            unused += [name for name in declared if f"codes.{name}" not in text]
    assert unused == []


def test_plugins_have_their_own_prefixes() -> None:
    found = {c.owner: c.prefixes for c in catalogues()}
    assert found["mlcompile"] == ("E", "W")
    assert found["mlcompile-kfp"] == ("K",)
    assert found["mlcompile-zenml"] == ("Z",)
    every = [str(code) for catalogue in catalogues() for code in catalogue]
    assert len(every) == len(set(every))


def test_a_catalogue_refuses_foreign_prefixes_and_duplicates() -> None:
    mine = Catalogue("mine", ("Q",))
    mine.code("Q100", "q", "a doc", "an example")
    with pytest.raises(ValueError, match="prefix"):
        mine.code("E999", "e", "a doc", "an example")
    with pytest.raises(ValueError, match="twice"):
        mine.code("Q100", "q", "a doc", "an example")


def test_the_default_severity_comes_from_the_catalogue() -> None:
    assert Diagnostic(codes.UNGATED_DEPLOYMENT, "m").severity is Severity.WARNING
    assert Diagnostic(codes.UNKNOWN_NAME, "m").severity is Severity.ERROR
    plain = Diagnostic(codes.UNKNOWN_NAME, "m")
    assert type(plain.code) is str and plain.code == "E301"
    assert json.loads(json.dumps(plain.to_dict()))["severity"] == "error"


def test_sarif_rules_come_from_the_catalogue() -> None:
    found = [
        Diagnostic(codes.UNKNOWN_NAME, "unknown source 'x'", SourceSpan("spec.yaml", 3, 9)),
        Diagnostic(codes.UNGATED_DEPLOYMENT, "no gate"),
    ]
    rules = json.loads(render_sarif(found, "0"))["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["E301", "W101"]
    assert rules[0]["name"] == "unknown-name"
    assert rules[0]["shortDescription"]["text"] == CORE["E301"].doc
    assert [r["defaultConfiguration"]["level"] for r in rules] == ["error", "warning"]


def test_the_diagnostics_page_is_not_stale(tmp_path: Path) -> None:
    page = REPO / "docs" / "diagnostics.md"
    assert page.read_text(encoding="utf-8") == markdown(), (
        "docs/diagnostics.md is stale: run `python -m mlcompile.codes_doc docs/diagnostics.md`"
    )
    out = tmp_path / "diagnostics.md"
    subprocess.run([sys.executable, "-m", "mlcompile.codes_doc", str(out)], check=True)
    assert out.read_text(encoding="utf-8") == markdown()
    for catalogue in catalogues():
        for code in catalogue:
            assert f"### {code}: {code.name}" in markdown()
