"""Feature expressions as DuckDB's parser reads them: one row-wise value, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcompile import expressions
from mlcompile.expressions import accepted_before, expression_problem, remember


@pytest.mark.parametrize(
    "expr",
    [
        "sched_dep_time // 100",
        "2013 - plane_year",
        "CASE WHEN distance > 1000 THEN 'long' ELSE 'short' END",
        "coalesce(temp, 0) * 1.8 + 32",
        "CAST(distance AS DOUBLE) / NULLIF(air_time, 0)",
        "length('a;b') + hour",
        "list_transform([1, 2], x -> x + hour)[1]",
        "hour * 2 -- a trailing comment cannot swallow the wrapper",
        "hour /* an inline comment */ + 1",
        "origin IN ('EWR', 'JFK')",
    ],
)
def test_row_wise_expressions_are_accepted(expr: str) -> None:
    assert expression_problem(expr) is None


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("a) AS value FROM feature_rows ORDER BY a DESC --", "cannot read"),
        ("a) AS value, (b", "changes the query"),
        ("a) AS value FROM feature_rows UNION ALL SELECT (b", "changes the query"),
        ("(FROM feature_rows SELECT max(a))", "subquery"),
        ("(SELECT max(a) FROM feature_rows)", "subquery"),
        ("a IN (FROM feature_rows SELECT a)", "subquery"),
        ("EXISTS (SELECT 1)", "subquery"),
        ("a = ANY([1, 2])", "subquery"),
        ("a - avg(a) OVER ()", "window"),
        ("lag(a) OVER (ORDER BY b)", "window"),
        ("avg(a)", "aggregate"),
        ("1 + count(*)", "aggregate"),
        ("coalesce(a, sum(a) FILTER (WHERE a > 0))", "aggregate"),
        ("unnest([a, b])", "number of rows"),
        ("a, b", "several values"),
        ("*", "many columns"),
        ("COLUMNS('dep_.*')", "many columns"),
        ("$1", "parameter"),
        ("a; DROP TABLE x", "cannot read"),
        ("a /* unclosed", "cannot read"),
        ("", "empty"),
        ("   ", "empty"),
        ("(" * 2000 + "1" + ")" * 2000, "cannot read"),
        ("a" * 10_001, "more than"),
    ],
)
def test_everything_else_is_refused(expr: str, reason: str) -> None:
    problem = expression_problem(expr)
    assert problem is not None and reason in problem, problem


def test_accepted_verdicts_are_kept_per_expression(tmp_path: Path) -> None:
    assert not accepted_before(tmp_path, "hour + 1")
    remember(tmp_path, "hour + 1")
    assert accepted_before(tmp_path, "hour + 1")
    assert not accepted_before(tmp_path, "hour + 2")
    assert list((tmp_path / expressions.CACHE_DIR).glob("*.ok"))


def test_a_read_only_project_just_parses_again(tmp_path: Path) -> None:
    (tmp_path / ".mlcompile").write_text("a file where the cache folder would go")
    remember(tmp_path, "hour + 1")
    assert not accepted_before(tmp_path, "hour + 1")


def test_every_aggregate_has_a_name_with_a_letter() -> None:
    """Operators are functions in DuckDB's parse tree; `expression_problem` asks for the
    list of aggregates only for functions with a letter in their name."""
    rows = (
        expressions.sandbox()
        .execute(
            "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'aggregate'"
        )
        .fetchall()
    )
    assert rows and all(any(c.isalpha() for c in name) for (name,) in rows)
    assert expression_problem("1 + sum(hour)") is not None
