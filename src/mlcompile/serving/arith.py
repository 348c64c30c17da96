"""`expr` features that NumPy computes exactly as DuckDB does, without a query per request.

DuckDB takes about a millisecond to plan and run even a one-row query; a served row needs
its features in microseconds. Arithmetic on numbers is the common case (`sched_dep_time //
100`, `2013 - plane_year`), and there DuckDB's result is known exactly: DOUBLE arithmetic is
IEEE 754 as in NumPy, BIGINT arithmetic is exact. So an expression made only of column
references, number literals, `+ - * /` and integer `//` is translated from DuckDB's own parse
tree; anything else (a function, a CASE, a decimal literal, `//` on a DOUBLE) is not
translated, and the version is served by the batch path instead (`NotCompiled`).

Each expression is compiled twice from the one tree: over NumPy columns, and over the Python
floats of a single row (`Scalar`), where a NumPy call on one value costs more than the
arithmetic. Python's float arithmetic is the same IEEE 754 double arithmetic as NumPy's, so
both give the same bits.

Integers are carried as float64, which is exact below 2**53. A value at or beyond that, and a
division by zero (an error or an infinity in DuckDB), raise `Inexact` while a request is
computed, and that request goes through the batch path, which gives DuckDB's own answer or
error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from mlcompile.expressions import expression_tree

EXACT = 2.0**53


class NotCompiled(Exception):
    """A feature the fast path does not compute; the batch path serves the version."""


class Inexact(Exception):
    """A request whose values the fast path cannot compute exactly; the batch path serves it."""


class Num(NamedTuple):
    """A numeric column: float64 values, NaN where missing. `sql` is the DuckDB type the batch
    path would give the column ("BIGINT" or "DOUBLE"), None when expressions may not read it
    (another integer width, a one-hot column). A tuple: a request makes dozens, and a frozen
    dataclass costs three times as much to make."""

    values: np.ndarray
    sql: str | None


def any_of(mask: np.ndarray) -> bool:
    """`mask.any()`, which for the few values of a small request costs ten times more than
    looking through them as a list."""
    return bool(mask.any()) if mask.size > 64 else True in mask.tolist()


@dataclass
class Work:
    """The working columns of one request: raw inputs, then each feature's output."""

    rows: int
    columns: dict[str, Any]


Compiled = Callable[[Work], Num]
# one row: its working values (floats, NaN where missing) -> the expression's value
Scalar = Callable[[dict[str, Any]], float]


class Expression(NamedTuple):
    """An expression compiled over columns and over one row, and its DuckDB result type."""

    columns: Compiled
    row: Scalar
    sql: str


def compile_expression(expr: str, columns: Mapping[str, str]) -> Expression:
    """`expr` compiled over the working columns and over one row, and the DuckDB type of its
    result. `columns` maps each working column to its kind (BIGINT and DOUBLE are the
    readable ones). Raises NotCompiled for an expression outside the translated subset. Call
    the column form under `np.errstate(all="ignore")`: an overflow is an infinity, which the
    caller checks for (Python's floats overflow to an infinity too)."""
    tree = expression_tree(expr)
    if tree is None:
        raise NotCompiled(f"expression {expr!r} is refused")
    compute, scalar, sql = _node(tree, columns)

    # a NULL reaches pandas as NaN with the sign bit clear; -NaN is a NaN too, not those bytes
    def canonical(work: Work) -> Num:
        values = compute(work).values
        return Num(np.where(np.isnan(values), np.nan, values), sql)

    def canonical_row(row: dict[str, Any]) -> float:
        value = scalar(row)
        return math.nan if value != value else value

    return Expression(canonical, canonical_row, sql)


def _node(node: Mapping[str, Any], columns: Mapping[str, str]) -> Expression:
    kind = node.get("class")
    if kind == "COLUMN_REF":
        return _column(node, columns)
    if kind == "CONSTANT":
        return _constant(node)
    if kind == "FUNCTION" and not node.get("schema") and not node.get("catalog"):
        name = node.get("function_name")
        arguments = [a["expression"] for a in node.get("arguments") or []]
        if name == "-" and len(arguments) == 1:
            inner, inner_row, sql = _node(arguments[0], columns)
            return Expression(
                lambda work: Num(-inner(work).values, sql), lambda row: -inner_row(row), sql
            )
        if name in _BINARY and len(arguments) == 2:
            return _binary(str(name), arguments, columns)
    raise NotCompiled(f"{kind} {node.get('function_name', '')} is not translated")


def _column(node: Mapping[str, Any], columns: Mapping[str, str]) -> Expression:
    names = node.get("column_names") or []
    if len(names) != 1:  # a qualified name (table.column) is not translated
        raise NotCompiled(f"column reference {names} is not translated")
    name = names[0]
    matches = [c for c in columns if c.lower() == str(name).lower()]
    if len(matches) != 1:
        raise NotCompiled(f"column {name!r} is not one working column")
    (column,) = matches
    sql = columns[column]
    if sql not in ("BIGINT", "DOUBLE"):
        raise NotCompiled(f"column {column!r} is not a BIGINT or DOUBLE column")

    def read(work: Work) -> Num:
        value: Num = work.columns[column]
        if sql == "BIGINT" and value.sql == "DOUBLE":
            # a missing value made the batch path's column float64: DOUBLE in DuckDB, where
            # `//` divides without truncating. One row is NaN either way; more go to DuckDB.
            raise Inexact(f"column {column!r} is DOUBLE in this request")
        if sql == "BIGINT" and any_of(np.abs(value.values) >= EXACT):
            raise Inexact(f"column {column!r} holds an integer beyond 2**53")
        return value

    def read_row(row: dict[str, Any]) -> float:
        value: float = row[column]
        if sql == "BIGINT" and abs(value) >= EXACT:
            raise Inexact(f"column {column!r} holds an integer beyond 2**53")
        return value

    return Expression(read, read_row, sql)


def _constant(node: Mapping[str, Any]) -> Expression:
    literal = node.get("literal") or {}
    text = str(literal.get("text"))
    if literal.get("kind") in ("INTEGER", "BIGINT") and abs(int(text)) < EXACT:
        sql, number = "BIGINT", float(int(text))
    elif literal.get("kind") == "DOUBLE":
        sql, number = "DOUBLE", float(text)
    else:
        raise NotCompiled(f"literal {text!r} ({literal.get('kind')}) is not translated")
    return Expression(lambda work: Num(np.full(work.rows, number), sql), lambda row: number, sql)


def _checked_integers(values: np.ndarray) -> np.ndarray:
    if any_of(np.abs(values) >= EXACT):
        raise Inexact("an integer result beyond 2**53")
    return values


def _nonzero(values: np.ndarray) -> np.ndarray:
    if any_of(values == 0):
        raise Inexact("a division by zero")
    return values


def _nonzero_value(value: float) -> float:
    if value == 0:
        raise Inexact("a division by zero")
    return value


def _divide_integers(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # BIGINT // truncates toward zero; a - fmod(a, b) is an exact multiple of b
    quotient: np.ndarray = (a - np.fmod(a, b)) / b
    return quotient


def _divide_integer(a: float, b: float) -> float:
    # as NumPy's fmod, an infinity or NaN gives NaN (math.fmod raises for an infinity)
    remainder = math.fmod(a, b) if math.isfinite(a) else math.nan
    return (a - remainder) / b


# each operator over columns and over one row's floats
_BINARY: dict[
    str, tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], Callable[[float, float], float]]
] = {
    "+": (np.add, lambda a, b: a + b),
    "-": (np.subtract, lambda a, b: a - b),
    "*": (np.multiply, lambda a, b: a * b),
    "/": (lambda a, b: a / _nonzero(b), lambda a, b: a / _nonzero_value(b)),
    "//": (
        lambda a, b: _divide_integers(a, _nonzero(b)),
        lambda a, b: _divide_integer(a, _nonzero_value(b)),
    ),
}


def _binary(
    name: str, arguments: list[Mapping[str, Any]], columns: Mapping[str, str]
) -> Expression:
    (left, left_row, left_sql), (right, right_row, right_sql) = (
        _node(a, columns) for a in arguments
    )
    if all(a.get("class") == "CONSTANT" for a in arguments):
        # DuckDB folds two literals as INTEGER, which overflows at 2**31: not translated
        raise NotCompiled("arithmetic on two literals is not translated")
    integers = left_sql == right_sql == "BIGINT"
    if name == "//" and not integers:
        raise NotCompiled("// on a DOUBLE is not translated")
    sql = "BIGINT" if integers and name != "/" else "DOUBLE"
    operate, operate_row = _BINARY[name]

    def apply(work: Work) -> Num:
        out = operate(left(work).values, right(work).values)
        return Num(_checked_integers(out) if sql == "BIGINT" else out, sql)

    def apply_row(row: dict[str, Any]) -> float:
        out = operate_row(left_row(row), right_row(row))
        if sql == "BIGINT" and abs(out) >= EXACT:
            raise Inexact("an integer result beyond 2**53")
        return out

    return Expression(apply, apply_row, sql)
