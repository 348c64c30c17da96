"""A version's fitted features compiled, when it loads, into NumPy steps for a request's rows,
and each step's one-row form on Python floats for a request of one row.

The batch path (`runtime.features.apply_features`) builds a pandas frame and, for an `expr`,
runs a DuckDB query: right for a million rows, about 100 ms for one. The evaluator computes
the same model inputs from the validated request values (the lists `inputs.read_rows` gives)
with the same NumPy operations the batch path ends in, and hands LightGBM the float64 matrix
its pandas path would have built (category codes as floats, NaN for missing). So a served row
gets the batch path's features bit for bit; `tests/serving/test_fast_path.py` checks that for
every December row of the flights example.

What is not compiled is served by the batch path, whole: a version with a `custom` feature,
an expression outside `arith`'s subset, an input dtype other than int64/Int64/float64, text,
category or a time without timezone (`compile_features` returns None and says why); and a
request whose values the compiled steps cannot compute exactly (`Inexact`: an infinity the
batch path would refuse, an integer beyond 2**53).
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from mlcompile.runtime.features import OTHER, date_part_of, lightgbm_names

from .arith import Inexact, NotCompiled, Num, Work, any_of, compile_expression

NUMERIC = ("BIGINT", "DOUBLE", "number")
# From this many rows, a time column's parts come from a pandas series: building it costs
# more than a Python call per time for fewer.
SERIES_ROWS = 64


class Cat(NamedTuple):
    """Category codes over `levels` (-1 where missing or not a level)."""

    codes: np.ndarray
    levels: tuple[Any, ...]


Step = Callable[[Work], None]
Row = dict[str, Any]  # one row's working values: see `_Compiler`
RowStep = Callable[[Row], None]
Built = tuple[Step, RowStep, Any]  # a feature op's step, its one-row form, its output's kind


def _float_array(values: Sequence[Any]) -> np.ndarray:
    return np.array(values, dtype="float64")  # None becomes NaN


def _input_kind(dtype_text: str) -> str:
    dtype = pd.api.types.pandas_dtype(dtype_text)
    if dtype_text in ("int64", "Int64"):
        return "BIGINT"
    if dtype_text == "float64":
        return "DOUBLE"
    if isinstance(dtype, pd.CategoricalDtype) or (
        pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_datetime64_any_dtype(dtype)
    ):
        return "text"
    if pd.api.types.is_datetime64_any_dtype(dtype) and getattr(dtype, "tz", None) is None:
        return "time"
    raise NotCompiled(f"input dtype {dtype_text} is not compiled")


def _read_numbers(columns: Sequence[tuple[str, str, str]]) -> Step:
    """The numeric inputs (name, kind, signature dtype) as float64 columns, made in one call:
    one NumPy array per column costs more than the few values of a small request."""
    names = [name for name, _, _ in columns]

    def read(work: Work) -> None:
        block = _float_array([work.columns[name] for name in names])
        for (name, kind, dtype_text), values in zip(columns, block, strict=True):
            # a missing value makes an int64 column float64 in the batch path: DOUBLE in SQL
            exact = dtype_text != "int64" or None not in work.columns[name]
            work.columns[name] = Num(values, kind if exact else "DOUBLE")

    return read


def _read_row_numbers(names: Sequence[str]) -> RowStep:
    """The numeric inputs of one row as floats, NaN where missing (as `_float_array`)."""

    def read(row: Row) -> None:
        for name in names:
            value = row[name]
            row[name] = math.nan if value is None else float(value)

    return read


def _numeric(work: Work, column: str) -> np.ndarray:
    value = work.columns[column]
    if not isinstance(value, Num):
        raise Inexact(f"column {column!r} is not numeric here")
    return value.values


def _store(work: Work, name: str, value: Any) -> None:
    work.columns[name] = value


def _store_finite(work: Work, name: str, value: Num) -> None:
    """For the ops whose float arithmetic can overflow (expr, scale); the others cannot make
    an infinity from the finite inputs the request checks let in."""
    if any_of(np.isinf(value.values)):
        raise Inexact(f"feature {name!r} holds an infinity")  # the batch path refuses it
    work.columns[name] = value


_DATE_PARTS: dict[str, Callable[[dt.datetime], int]] = {
    "year": lambda t: t.year,
    "month": lambda t: t.month,
    "day": lambda t: t.day,
    "hour": lambda t: t.hour,
    "minute": lambda t: t.minute,
    "dayofweek": lambda t: t.weekday(),
    "dayofyear": lambda t: t.timetuple().tm_yday,
    "week": lambda t: t.isocalendar()[1],
}


def _levels_index(levels: Sequence[Any]) -> dict[Any, int]:
    """Each level's code, and -1 for a missing value (None, never a fitted level)."""
    index: dict[Any, int] = {}
    for i, level in enumerate(levels):
        index.setdefault(level, i)
    index[None] = -1
    return index


def _codes(values: Sequence[Any], index: Mapping[Any, int], other: int | None) -> np.ndarray:
    missing = -1 if other is None else other
    # map and dict.get look every value up in C loops: no Python step per row
    found = map(index.get, values, repeat(missing))
    return np.fromiter(found, dtype="int64", count=len(values))


class _Compiler:
    def __init__(self, signature: Mapping[str, str]) -> None:
        self.kinds: dict[str, str] = {}
        self.dtypes = dict(signature)
        self.levels: dict[str, tuple[Any, ...]] = {}  # of each category column
        numbers: list[tuple[str, str, str]] = []
        for name, dtype_text in signature.items():
            self.kinds[name] = _input_kind(dtype_text)
            if self.kinds[name] in NUMERIC:  # the others are read as the request has them
                numbers.append((name, self.kinds[name], dtype_text))
        self.steps: list[Step] = [_read_numbers(numbers)] if numbers else []
        self.row_steps: list[RowStep] = [_read_row_numbers([name for name, _, _ in numbers])]

    def source(self, spec: Mapping[str, Any], wanted: Sequence[str]) -> str:
        column = str(spec.get("column"))
        if self.kinds.get(column) not in wanted:
            raise NotCompiled(f"column {column!r} is {self.kinds.get(column)}, not {wanted}")
        return column

    def add(self, spec: Mapping[str, Any]) -> None:
        op, name, fitted = str(spec["op"]), str(spec["name"]), spec.get("fitted") or {}
        build = getattr(self, f"_{op}", None)
        if build is None:
            raise NotCompiled(f"feature {name!r} ({op}) is not compiled")
        step, row_step, kind = build(spec, fitted, name)
        self.steps.append(step)
        self.row_steps.append(row_step)
        if isinstance(kind, dict):  # one-hot: several columns
            self.kinds.update(kind)
        else:
            self.kinds[name] = kind

    # One method per feature op: (spec, fitted, name) -> (step over columns, the same step
    # over one row, kind of the output). In a row, a number is a float (NaN where missing), a
    # category its code (-1 where missing or not a level), text and times as the request has
    # them. Python's float arithmetic is NumPy's float64 arithmetic; NumPy's own functions
    # (log1p) are called on the row's float too, so both forms give the same bits.

    def _passthrough(self, spec: Mapping[str, Any], fitted: Any, name: str) -> Built:
        column = str(spec.get("column"))
        if column not in self.kinds:
            raise NotCompiled(f"column {column!r} is unknown")

        def step(work: Work) -> None:
            _store(work, name, work.columns[column])

        def row_step(row: Row) -> None:
            row[name] = row[column]

        if column in self.levels:
            self.levels[name] = self.levels[column]
        return step, row_step, self.kinds[column]

    def _log(self, spec: Mapping[str, Any], fitted: Any, name: str) -> Built:
        column = self.source(spec, NUMERIC)

        def step(work: Work) -> None:
            values = _numeric(work, column)
            kept = np.where(values >= 0, values, np.nan)
            _store(work, name, Num(np.log1p(kept), "DOUBLE"))

        def row_step(row: Row) -> None:
            value = row[column]
            row[name] = float(np.log1p(value if value >= 0 else math.nan))

        return step, row_step, "DOUBLE"

    def _date_part(self, spec: Mapping[str, Any], fitted: Any, name: str) -> Built:
        column = self.source(spec, ("time",))
        part_name = str(spec.get("part"))
        part = _DATE_PARTS.get(part_name)
        if part is None:
            raise NotCompiled(f"date part {part_name!r} is unknown")
        dtype = self.dtypes[column]

        def step(work: Work) -> None:
            times = work.columns[column]
            if len(times) >= SERIES_ROWS:  # the batch path's own pandas accessors, in C
                found = date_part_of(pd.Series(times, dtype=dtype), part_name).to_numpy()
            else:
                found = np.array([np.nan if t is None else part(t) for t in times], "float64")
            _store(work, name, Num(found, "DOUBLE"))

        def row_step(row: Row) -> None:
            time = row[column]
            row[name] = math.nan if time is None else float(part(time))

        return step, row_step, "DOUBLE"

    def _bucket(self, spec: Mapping[str, Any], fitted: Any, name: str) -> Built:
        column = self.source(spec, NUMERIC)
        edges = np.asarray(fitted["edges"])
        edge_list = edges.tolist()

        def step(work: Work) -> None:
            values = _numeric(work, column)
            index = np.searchsorted(edges, values, side="right").astype("float64")
            _store(work, name, Num(np.where(np.isnan(values), np.nan, index), "DOUBLE"))

        def row_step(row: Row) -> None:
            value = row[column]
            row[name] = math.nan if value != value else float(bisect_right(edge_list, value))

        return step, row_step, "DOUBLE"

    def _impute(self, spec: Mapping[str, Any], fitted: Any, name: str) -> Built:
        value = fitted["value"]
        column = str(spec.get("column"))
        kind = self.kinds.get(column)
        if kind == "text" and isinstance(value, str):

            def fill_text(work: Work) -> None:
                values = work.columns[column]
                _store(work, name, [value if v is None else v for v in values])

            def fill_text_row(row: Row) -> None:
                found = row[column]
                row[name] = value if found is None else found

            return fill_text, fill_text_row, "text"
        number = isinstance(value, int | float) and not isinstance(value, bool)
        integer = isinstance(value, int) and not isinstance(value, bool)
        if not number or kind not in ("DOUBLE", "BIGINT") or (kind == "BIGINT" and not integer):
            raise NotCompiled(f"impute of a {kind} column with {value!r} is not compiled")
        filler = float(value)

        def fill(work: Work) -> None:
            found = work.columns[column]
            values = found.values
            _store(work, name, Num(np.where(np.isnan(values), filler, values), found.sql))

        def fill_row(row: Row) -> None:
            found = row[column]
            row[name] = filler if found != found else found

        return fill, fill_row, kind

    def _encode(self, spec: Mapping[str, Any], fitted: Any, name: str) -> Built:
        column = self.source(spec, ("text",))
        method = spec.get("method") or "category"
        if method == "frequency":
            table = {value: float(freq) for value, freq in fitted["frequencies"]}

            def frequency(work: Work) -> None:
                values = work.columns[column]
                found = [np.nan if v is None else table.get(v, 0.0) for v in values]
                _store(work, name, Num(np.array(found, dtype="float64"), "DOUBLE"))

            def frequency_row(row: Row) -> None:
                found = row[column]
                row[name] = math.nan if found is None else table.get(found, 0.0)

            return frequency, frequency_row, "DOUBLE"
        levels = tuple(fitted["categories"]) + ((OTHER,) if fitted.get("other") else ())
        index = _levels_index(levels[: len(fitted["categories"])])
        other = len(levels) - 1 if fitted.get("other") else None
        missing = -1 if other is None else other

        def codes(work: Work) -> np.ndarray:
            return _codes(work.columns[column], index, other)

        def code(row: Row) -> int:
            return index.get(row[column], missing)

        if method == "category":
            self.levels[name] = levels

            def category_row(row: Row) -> None:
                row[name] = code(row)

            return (
                (lambda work: _store(work, name, Cat(codes(work), levels))),
                category_row,
                "category",
            )
        if method == "ordinal":

            def ordinal(work: Work) -> None:
                found = codes(work)
                _store(work, name, Num(np.where(found >= 0, found, np.nan), "DOUBLE"))

            def ordinal_row(row: Row) -> None:
                found = code(row)
                row[name] = float(found) if found >= 0 else math.nan

            return ordinal, ordinal_row, "DOUBLE"
        if method == "onehot":
            names = list(fitted["columns"])

            def onehot(work: Work) -> None:
                found = codes(work)
                for i, output in enumerate(names):
                    work.columns[output] = Num((found == i).astype("float64"), None)

            def onehot_row(row: Row) -> None:
                found = code(row)
                for i, output in enumerate(names):
                    row[output] = float(found == i)

            return onehot, onehot_row, dict.fromkeys(names, "number")
        raise NotCompiled(f"encode method {method!r} is not compiled")

    def _scale(self, spec: Mapping[str, Any], fitted: Any, name: str) -> Built:
        column = self.source(spec, NUMERIC)
        center, scale = fitted["center"], fitted["scale"]

        def step(work: Work) -> None:
            _store_finite(work, name, Num((_numeric(work, column) - center) / scale, "DOUBLE"))

        def row_step(row: Row) -> None:
            if scale == 0:  # Python raises where NumPy makes an infinity or NaN
                raise Inexact(f"feature {name!r} divides by a zero scale")
            row[name] = _finite((row[column] - center) / scale, name)

        return step, row_step, "DOUBLE"

    def _expr(self, spec: Mapping[str, Any], fitted: Any, name: str) -> Built:
        compute, compute_row, sql = compile_expression(str(spec["expr"]), self.kinds)

        def step(work: Work) -> None:
            result = compute(work)
            # DuckDB hands a BIGINT with a NULL back as float64: DOUBLE when read again
            exact = sql != "BIGINT" or not any_of(np.isnan(result.values))
            _store_finite(work, name, Num(result.values, sql if exact else "DOUBLE"))

        def row_step(row: Row) -> None:
            row[name] = _finite(compute_row(row), name)

        return step, row_step, sql


def _finite(value: float, name: str) -> float:
    if value in (math.inf, -math.inf):
        raise Inexact(f"feature {name!r} holds an infinity")  # the batch path refuses it
    return value


def _model_input(
    column: str, kind: str | None, categories: Sequence[Any] | None, levels: Sequence[Any] | None
) -> tuple[Callable[[Work], np.ndarray], Callable[[Row], float]]:
    """How one model input becomes a float64 column as LightGBM's pandas path makes it, and
    the float of one row."""
    if categories is not None:
        if kind == "category":
            if tuple(categories) != levels:
                raise NotCompiled(f"{column!r} has other levels than training")

            def coded(work: Work) -> np.ndarray:
                found: Cat = work.columns[column]
                return np.where(found.codes >= 0, found.codes, np.nan)

            def coded_row(row: Row) -> float:
                found: int = row[column]
                return float(found) if found >= 0 else math.nan

            return coded, coded_row
        if kind == "text":
            index = _levels_index(categories)

            def looked_up(work: Work) -> np.ndarray:
                found = _codes(work.columns[column], index, None)
                return np.where(found >= 0, found, np.nan)

            def looked_up_row(row: Row) -> float:
                found = index.get(row[column], -1)
                return float(found) if found >= 0 else math.nan

            return looked_up, looked_up_row
        raise NotCompiled(f"model input {column!r} is {kind}, not a category")
    if kind not in NUMERIC:
        raise NotCompiled(f"model input {column!r} is {kind}, not a number")
    return (lambda work: _numeric(work, column)), (lambda row: row[column])


@dataclass(frozen=True)
class Evaluator:
    """Model inputs for validated request values, as the batch path computes them."""

    steps: tuple[Step, ...]
    outputs: tuple[Callable[[Work], np.ndarray], ...]
    row_steps: tuple[RowStep, ...]
    row_outputs: tuple[Callable[[Row], float], ...]

    def matrix(self, values: Mapping[str, list[Any]], rows: int) -> np.ndarray:
        """The (rows, model inputs) float64 matrix; raises Inexact when the batch path must
        compute it."""
        if rows == 1:
            return self._row({name: column[0] for name, column in values.items()})[np.newaxis]
        work = Work(rows, dict(values))
        # an overflow makes an infinity, which the steps refuse (Inexact): no warning
        with np.errstate(all="ignore"):
            for step in self.steps:
                step(work)
        matrix = np.empty((rows, len(self.outputs)), dtype="float64")
        for i, output in enumerate(self.outputs):
            matrix[:, i] = output(work)
        return matrix

    def _row(self, row: Row) -> np.ndarray:
        """The model inputs of one row (each column's value, as `read_rows` reads it; the
        steps add the features to `row`), as the matrix's one row: computed on Python floats,
        where a NumPy call on one value costs more than the arithmetic."""
        for step in self.row_steps:
            step(row)
        return np.array([output(row) for output in self.row_outputs], dtype="float64")


def compile_features(state: Mapping[str, Any], booster: Any) -> tuple[Evaluator | None, str]:
    """The evaluator of a fitted feature state for `booster`, or None and why not."""
    try:
        compiler = _Compiler(state["input_signature"])
        for spec in state["features"]:
            compiler.add(spec)
        columns = list(state["output_columns"])
        categorical = state["categorical"]
        if booster.feature_name() != lightgbm_names(columns):
            raise NotCompiled("the model's feature names are not the state's output columns")
        expected = [list(categorical[c]) for c in columns if c in categorical]
        if list(booster.pandas_categorical or []) != expected:
            raise NotCompiled("the model's categories are not the state's")
        outputs = [
            _model_input(c, compiler.kinds.get(c), categorical.get(c), compiler.levels.get(c))
            for c in columns
        ]
    except NotCompiled as exc:
        return None, str(exc)
    return (
        Evaluator(
            tuple(compiler.steps),
            tuple(column for column, _ in outputs),
            tuple(compiler.row_steps),
            tuple(row for _, row in outputs),
        ),
        "compiled",
    )
