"""ir_yaml: the IR's YAML reads back as the same documents, for any JSON-like value."""

from __future__ import annotations

import math

import pytest
import yaml
from mlcompile_kfp.ir_yaml import UnsupportedValue, dump_documents

# Strings a careless writer leaves plain and a YAML 1.1 reader takes for something else, or
# that need quoting or escapes; plain names and versions stay plain.
AWKWARD = [
    *["yes", "No", "ON", "off", "y", "N", "true", "False", "null", "~", "", " ", "-", "---"],
    *["1", "-2", "0o17", "0x1f", "1_000", "1e3", "1.5", ".inf", "-.inf", ".nan", "2024-01-01"],
    *["12:30:00", "a: b", "a #b", "#x", "&a", "*a", "!t", "%d", "@x", "`x`", "|", ">", "?", "<<"],
    *["a,b", "[x]", "{x}", "it's", 'say "hi"', "tab\there", "line\nbreak", "cr\r", "\x00\x07"],
    *["\x7f", "\x85", "\u2028", "\ufeff", "é ü", "日本", "emoji \U0001f600", "back\\slash"],
    *["bidi \u202e\u2066 zero\u200b width", "lone \ud800 surrogate"],
    *["exec-evaluate", "system.Dataset", "0.0.1", "--executor_input", "-c", "a/b.c_d"],
]


def test_documents_read_back_equal() -> None:
    first = {
        "strings": AWKWARD,
        "as_keys": {text: text for text in AWKWARD},
        "numbers": [0, -1, 10**20, 0.5, 1e-05, 1e22, -2.5e-300, True, False, None],
        "nested": {"empty": {}, "none": [], "lists": [[1, [2, {}]], {"a": [1, 2]}], "one": [{}]},
        "flow": {"a": 1, "b": "x y"},
    }
    documents = [first, {"platforms": {"kubernetes": {"x": [{"k": "v"}]}}}, [], "top", 3]
    text = dump_documents(documents)
    assert list(yaml.safe_load_all(text)) == documents
    assert dump_documents(documents) == text


def test_the_text_is_printable_ascii() -> None:
    """Every other character is escaped: no control, format or bidirectional character can
    make the file read differently from what kfp loads."""
    text = dump_documents([{text: [text] for text in AWKWARD}])
    assert set(text) <= {chr(c) for c in range(0x20, 0x7F)} | {"\n"}


def test_scalars_are_quoted_only_when_needed() -> None:
    text = dump_documents([{"a": ["exec-evaluate", "0.0.1", "yes", "1", "x: y"]}])
    assert text == "a: [exec-evaluate, 0.0.1, 'yes', '1', 'x: y']\n"


def test_the_infinities_and_nan_read_back() -> None:
    [read] = yaml.safe_load_all(dump_documents([[math.inf, -math.inf, math.nan]]))
    assert read[:2] == [math.inf, -math.inf] and math.isnan(read[2])


@pytest.mark.parametrize("document", [{"a": (1, 2)}, {1: "a"}, {"k" * 1001: 1}])
def test_what_it_does_not_write_is_refused(document: object) -> None:
    with pytest.raises(UnsupportedValue):
        dump_documents([document])
