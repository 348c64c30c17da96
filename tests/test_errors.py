"""The human renderer prints spec text, which is hostile input: nothing in it may act on the
terminal (ANSI escapes, bidi overrides, line breaks inside a name)."""

from __future__ import annotations

from mlcompile.errors import Diagnostic, SourceSpan, printable, render_human

HOSTILE = "a\x1b[31mred\u202eevil\x85next\u2028line"


def test_printable_escapes_what_a_terminal_would_act_on() -> None:
    shown = printable(HOSTILE)
    assert shown.isprintable()
    assert shown == "a\\x1b[31mred\\u202eevil\\x85next\\u2028line"
    assert printable("plain 'text' \\ é") == "plain 'text' \\ é"


def test_human_output_is_printable_and_the_caret_stays_under_its_column() -> None:
    # YAML itself breaks lines at NEL and U+2028, so a source line can hold only the others
    source = 'gates: {"a\x1b[31mred\u202eevil": 1, bad: 2}\n'
    column = source.index("bad") + 1
    span = SourceSpan("spec.yaml", 1, column)
    text = render_human(
        [Diagnostic("E201", f"unknown key in gates.{HOSTILE}", span, f"hint {HOSTILE}")],
        {"spec.yaml": source},
    )
    assert all(line.isprintable() for line in text.splitlines())
    assert len(text.splitlines()) == 4
    _, source_line, caret, _ = text.splitlines()
    assert source_line[caret.index("^") :].startswith("bad")
