"""The allow-list every spec value passes on its way into generated code."""

from __future__ import annotations

import ast
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcompile.backends.templating import (
    check_generated,
    comment,
    identifier,
    make_environment,
    py_literal,
    source_lines,
)
from mlcompile.errors import BackendError
from mlcompile.testing.project import FORMAT_CHARACTERS, LINE_SEPARATORS

# Every character at which str.splitlines ends a line, found by asking it.
SPLITTERS = "".join(
    char for char in map(chr, range(0x110000)) if len(f"a{char}b".splitlines()) == 2
)
PRINTABLE_ASCII = frozenset(map(chr, range(0x20, 0x7F)))
# Any text, lone surrogates included (a str can hold them).
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=60)


def test_the_corpus_has_every_splitter_and_format_character() -> None:
    assert set(SPLITTERS) - {"\n"} == set(LINE_SEPARATORS)
    bidi = {chr(c) for c in (0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))}
    assert bidi | {"\u200b", "\u200c", "\u200d", "\ufeff"} == set(FORMAT_CHARACTERS)


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_comment_keeps_printable_ascii_and_escapes_the_rest(text: str) -> None:
    out = comment(text)
    assert set(out) <= PRINTABLE_ASCII
    if set(text) <= PRINTABLE_ASCII:
        assert out == text


@settings(max_examples=300, deadline=None)
@given(st.recursive(ANY_TEXT | st.integers() | st.floats(), lambda inner: st.lists(inner)))
def test_py_literal_is_printable_ascii_and_evaluates_to_the_value(value: object) -> None:
    text = py_literal(value)
    assert set(text) <= PRINTABLE_ASCII
    got = eval(text, {"__builtins__": {"float": float}})  # float('nan') and the like
    assert repr(got) == repr(value)


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_identifier_is_an_ascii_python_identifier(text: str) -> None:
    out = identifier(text)
    assert out.isascii() and out.isidentifier()


@pytest.mark.parametrize("char", [*SPLITTERS, *FORMAT_CHARACTERS], ids=ascii)
def test_no_filter_lets_a_separator_or_format_character_through(char: str) -> None:
    env = make_environment(None)
    text = f"a{char}b"
    for name in ("py", "json", "comment", "ident"):
        assert char not in env.filters[name](text), name
    assert json.loads(env.filters["json"](text)) == text
    assert ast.literal_eval(py_literal({text: [text]})) == {text: [text]}


@pytest.mark.parametrize("char", SPLITTERS, ids=ascii)
def test_source_lines_are_the_lines_the_compiler_numbers(char: str) -> None:
    text = f"# a{char}# b\ndef f():\n    return 1\n"
    namespace: dict[str, object] = {}
    exec(compile(text, "<test>", "exec"), namespace)
    first = namespace["f"].__code__.co_firstlineno  # type: ignore[attr-defined]
    lines = source_lines(text)
    assert "".join(lines) == text
    assert lines[first - 1].startswith("def f():")


def test_check_generated_names_the_character_and_its_line() -> None:
    assert check_generated("m.py", "a = 1\n") == "a = 1\n"
    with pytest.raises(BackendError, match=r"m\.py has the character \\x85 at line 2, column 4"):
        check_generated("m.py", "a = 1\n# x\x85def f(): pass\n")
    with pytest.raises(BackendError, match=r"\\u202e at line 1, column 6"):
        check_generated("m.py", "x = '\u202e'\n")
    with pytest.raises(BackendError, match=r"\\x09"):
        check_generated("m.py", "\tx = 1\n")
    assert check_generated("Makefile", "all:\n\ttrue\n", allowed="\n\t") == "all:\n\ttrue\n"
