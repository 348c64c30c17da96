"""The alias rule the spec, the registry and the CLI share."""

from __future__ import annotations

import re

import pytest

from mlcompile.names import ALIAS_MAX_LENGTH, ALIAS_PATTERN, ALIAS_RULE, alias_problem


@pytest.mark.parametrize("alias", ["production", "staging", "champion-2", "a", "v2_candidate"])
def test_good_aliases(alias: str) -> None:
    assert alias_problem(alias) is None
    assert re.search(ALIAS_PATTERN, alias)


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("", "empty"),
        ("../../evil", "not a word"),
        ("3", "not a word"),  # MODEL@3 means version 3
        ("prod\n", "not a word"),
        ("in production", "not a word"),
        ("-rf", "not a word"),
        ("é", "not a word"),
        ("a" * 5000, "5000 characters"),
    ],
)
def test_bad_aliases(alias: str, message: str) -> None:
    problem = alias_problem(alias)
    assert problem is not None and message in problem and ALIAS_RULE in problem
    assert not re.fullmatch(ALIAS_PATTERN.strip("^$"), alias)


def test_the_longest_alias() -> None:
    assert alias_problem("a" * ALIAS_MAX_LENGTH) is None
    assert alias_problem("a" * (ALIAS_MAX_LENGTH + 1)) is not None
