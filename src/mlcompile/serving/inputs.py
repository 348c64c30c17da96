"""Request rows checked against a model's input signature and turned into a typed frame.

The signature (`feature_state.input_signature`) maps each raw column the fitted features read
to the dtype it had in training. Every problem in a request is reported at once, each naming
the row index and the column, in the shape FastAPI uses for its own validation errors.
"""

from __future__ import annotations

import datetime as dt
import math
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd  # type: ignore[import-untyped]


@dataclass(frozen=True)
class Problem:
    row: int
    column: str
    kind: str  # "missing" or "type"
    message: str

    def detail(self) -> dict[str, Any]:
        return {
            "loc": ["body", "rows", self.row, self.column],
            "msg": self.message,
            "type": self.kind,
        }


class InvalidRows(Exception):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} invalid values")
        self.problems = list(problems)


def _kind(dtype: str) -> str:
    """What JSON values a training dtype accepts: number, integer, text, time, bool or any."""
    try:
        parsed = pd.api.types.pandas_dtype(dtype)
    except TypeError:
        return "any"
    if pd.api.types.is_bool_dtype(parsed):
        return "bool"
    if pd.api.types.is_integer_dtype(parsed):
        return "integer"
    if pd.api.types.is_numeric_dtype(parsed):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(parsed):
        return "time"
    if isinstance(parsed, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_string_dtype(parsed):  # str, string and object
        return "text"
    return "any"


EXPECTED = {
    "bool": "true or false",
    "integer": "an integer",
    "number": "a number",
    "time": "a date/time string (ISO 8601)",
    "category": "a string or a number",
    "text": "a string",
}


def _is_number(value: Any) -> bool:
    # bool is an int subclass in Python, but true/false where a number belongs is a mistake
    return isinstance(value, int | float) and not isinstance(value, bool)


def _accepts(kind: str, value: Any) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "integer":
        return _is_number(value) and (isinstance(value, int) or float(value).is_integer())
    if kind == "number":
        return _is_number(value)
    if kind == "time":
        if not isinstance(value, str):
            return False
        try:
            dt.datetime.fromisoformat(value)
        except ValueError:
            return False
        return True
    if kind == "category":
        return isinstance(value, str) or _is_number(value)
    if kind == "text":
        return isinstance(value, str)
    return True


def _column(values: list[Any], dtype: str, kind: str) -> pd.Series:
    """The column with its training dtype where the values allow it (an integer column with
    a missing value becomes float, which LightGBM reads as missing)."""
    if kind == "time":
        return pd.Series(pd.to_datetime(values, format="ISO8601")).astype(dtype)
    if kind == "integer" and any(v is None for v in values) and dtype[:1].islower():
        return pd.Series(values, dtype="float64")
    if kind == "any":
        return pd.Series(values, dtype=object)
    return pd.Series(values).astype(dtype)


def rows_frame(rows: Sequence[Mapping[str, Any]], signature: Mapping[str, str]) -> pd.DataFrame:
    """The signature's columns of `rows`, typed as in training; extra columns are dropped.
    JSON null is a missing value, as it was in the training data."""
    kinds = {column: _kind(dtype) for column, dtype in signature.items()}
    problems: list[Problem] = []
    for index, row in enumerate(rows):
        for column, kind in kinds.items():
            if column not in row:
                problems.append(Problem(index, column, "missing", "required column is missing"))
                continue
            value = row[column]
            if isinstance(value, float) and math.isnan(value):
                continue
            if value is not None and not _accepts(kind, value):
                problems.append(
                    Problem(
                        index,
                        column,
                        "type",
                        f"expected {EXPECTED[kind]} (training dtype {signature[column]}), "
                        f"got {type(value).__name__} {reprlib.repr(value)}",
                    )
                )
    if problems:
        raise InvalidRows(problems)
    return pd.DataFrame(
        {
            column: _column([row[column] for row in rows], signature[column], kind)
            for column, kind in kinds.items()
        }
    )
