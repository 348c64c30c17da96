"""Request rows checked against a model's input signature and turned into a typed frame.

The signature (`feature_state.input_signature`) maps each raw column the fitted features read
to the dtype it had in training. Every value is checked against that dtype before a frame is
built: its JSON type, that a number is finite and fits the dtype (no silent wrap-around of
1e20 into an int64), that a date/time has a timezone offset exactly when the training times
had one, that text is valid Unicode. Building the frame then cannot fail or overflow, and
every problem of a request is reported at once, each naming its row and column.

A missing value is JSON null, or NaN (which Python's json module writes for a missing float).
"""

from __future__ import annotations

import datetime as dt
import math
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from mlcompile.errors import UsageError

from .problems import Problem, Refused


class _Bad(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


Read = Callable[[Any], Any]  # a present JSON value -> the value to store; raises _Bad
# a column's present values -> what `read` gives each, or None if one might be refused
Bulk = Callable[[list[Any]], list[Any] | None]
Build = Callable[[list[Any]], pd.Series]


@dataclass(frozen=True)
class InputColumn:
    """How one signature column reads JSON values."""

    name: str
    dtype: str  # as the signature writes it
    read: Read
    build: Build
    json: Any  # the JSON types it takes, as a type msgspec decodes (body.py)
    nullable: bool = True
    uniform: bool = False  # all values strings, or all numbers
    bulk: Bulk | None = None


def input_columns(signature: Mapping[str, str]) -> tuple[InputColumn, ...]:
    """The readers of a model's signature. Raises UsageError for a dtype JSON cannot fill,
    so such a model is refused when it loads rather than fed values nobody checked."""
    return tuple(_input_column(name, dtype) for name, dtype in signature.items())


def _input_column(name: str, text: str) -> InputColumn:
    try:
        dtype = pd.api.types.pandas_dtype(text)
    except TypeError:
        dtype = None
    if dtype is not None:
        if pd.api.types.is_bool_dtype(dtype):
            nullable = isinstance(dtype, pd.BooleanDtype)
            json = bool | None if nullable else bool
            return InputColumn(name, text, _bool(text), _typed(dtype), json, nullable)
        if pd.api.types.is_integer_dtype(dtype):
            return InputColumn(
                name,
                text,
                _integer(text, dtype),
                _integers(dtype),
                int | None,
                bulk=_integers_bulk(dtype),
            )
        if pd.api.types.is_float_dtype(dtype):
            return InputColumn(
                name,
                text,
                _number(text, dtype),
                _typed(dtype),
                float | None,
                bulk=_numbers_bulk(dtype),
            )
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return InputColumn(
                name,
                text,
                _time(text, dtype),
                _times(dtype),
                str | None,
                bulk=_times_bulk(dtype),
            )
        if isinstance(dtype, pd.CategoricalDtype):
            return InputColumn(
                name,
                text,
                _category(text),
                _objects_as(dtype),
                str | int | float | None,
                uniform=True,
                bulk=_text_bulk,
            )
        if pd.api.types.is_string_dtype(dtype):  # str, string and object
            return InputColumn(
                name, text, _text(text), _objects_as(dtype), str | None, bulk=_text_bulk
            )
    raise UsageError(
        f"input column '{name}' has training dtype {text}, which mlcompile serve cannot read "
        "from JSON (it reads numbers, integers, booleans, text, categories and date/times)"
    )


# ---- reading one value --------------------------------------------------------------------


def _got(value: Any) -> str:
    # repr escapes what cannot be printed, a lone surrogate included
    return f"got {type(value).__name__} {reprlib.repr(value)}"


def _is_number(value: Any) -> bool:
    # bool is an int subclass in Python, but true/false where a number belongs is a mistake
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: float, text: str) -> None:
    if not math.isfinite(value):
        raise _Bad("range", f"{value} is not a finite number (training dtype {text})")


def _bool(text: str) -> Read:
    def read(value: Any) -> Any:
        if not isinstance(value, bool):
            raise _Bad("type", f"expected true or false (training dtype {text}), {_got(value)}")
        return value

    return read


def _integer(text: str, dtype: Any) -> Read:
    info = np.iinfo(getattr(dtype, "numpy_dtype", dtype))
    low, high = int(info.min), int(info.max)

    def read(value: Any) -> Any:
        if not _is_number(value):
            raise _Bad("type", f"expected an integer (training dtype {text}), {_got(value)}")
        number = value
        if isinstance(value, float):
            _finite(value, text)
            if not value.is_integer():
                raise _Bad("type", f"expected an integer (training dtype {text}), {_got(value)}")
            number = int(value)
        if not low <= number <= high:
            raise _Bad(
                "range",
                f"{reprlib.repr(value)} is outside the range of {text} ({low} to {high})",
            )
        return number

    return read


def _number(text: str, dtype: Any) -> Read:
    largest = float(np.finfo(getattr(dtype, "numpy_dtype", dtype)).max)

    def read(value: Any) -> Any:
        if not _is_number(value):
            raise _Bad("type", f"expected a number (training dtype {text}), {_got(value)}")
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits
            number = math.inf
        if isinstance(value, float):
            _finite(value, text)
        if abs(number) > largest:
            raise _Bad("range", f"{reprlib.repr(value)} is outside the range of {text}")
        return number

    return read


# datetime64[ns] holds 1677-09-21 to 2262-04-11 only; coarser units hold all of Python's years
_NS_RANGE = (
    pd.Timestamp.min.ceil("us").to_pydatetime(),
    pd.Timestamp.max.floor("us").to_pydatetime(),
)


def _time(text: str, dtype: Any) -> Read:
    tz = getattr(dtype, "tz", None)
    unit = dtype.unit if tz is not None else np.datetime_data(dtype)[0]
    expected = f"expected an ISO 8601 date/time string (training dtype {text})"

    def read(value: Any) -> Any:
        if not isinstance(value, str):
            raise _Bad("type", f"{expected}, {_got(value)}")
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _Bad("type", f"{expected}, {_got(value)}") from None
        if tz is None and parsed.tzinfo is not None:
            raise _Bad(
                "timezone",
                f"{reprlib.repr(value)} has a timezone offset, but the training times had "
                f"none (dtype {text}): send the time as the training data wrote it, "
                "without an offset",
            )
        if tz is not None and parsed.tzinfo is None:
            raise _Bad(
                "timezone",
                f"{reprlib.repr(value)} has no timezone offset, but the training times had "
                f"one (dtype {text}): add one, such as Z or +01:00",
            )
        if unit == "ns":
            naive = parsed.astimezone(dt.UTC).replace(tzinfo=None) if tz else parsed
            if not _NS_RANGE[0] <= naive <= _NS_RANGE[1]:
                raise _Bad(
                    "range",
                    f"{reprlib.repr(value)} is outside the range of {text} "
                    "(1677-09-22 to 2262-04-11)",
                )
        return parsed

    return read


def _unicode(value: str, text: str) -> str:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _Bad(
                "text",
                f"{reprlib.repr(value)} is not valid Unicode text: a lone surrogate at "
                f"character {exc.start} (training dtype {text})",
            ) from None
    return value


def _text(text: str) -> Read:
    def read(value: Any) -> Any:
        if not isinstance(value, str):
            raise _Bad("type", f"expected a string (training dtype {text}), {_got(value)}")
        return _unicode(value, text)

    return read


_INT64 = np.iinfo(np.int64)


def _category(text: str) -> Read:
    def read(value: Any) -> Any:
        if isinstance(value, str):
            return _unicode(value, text)
        if not _is_number(value):
            raise _Bad(
                "type", f"expected a string or a number (training dtype {text}), {_got(value)}"
            )
        if isinstance(value, float):
            _finite(value, text)
        elif not _INT64.min <= value <= _INT64.max:
            raise _Bad("range", f"{reprlib.repr(value)} is outside the range of int64")
        return value

    return read


# ---- reading a column at once: the common case of a large request, checked in C loops ------
# Each returns what the one-value readers give for every value, or None when any might be
# refused; those columns are then read value by value, which words each problem.

_NONE = type(None)


def _integers_bulk(dtype: Any) -> Bulk:
    info = np.iinfo(getattr(dtype, "numpy_dtype", dtype))
    low, high = int(info.min), int(info.max)

    def bulk(values: list[Any]) -> list[Any] | None:
        # bool is a subclass of int but not int itself: set(map(type)) tells them apart.
        # Python ints stay Python ints (no float64 on the way), so 2**53 + 1 is checked exactly
        present = [v for v in values if v is not None] if None in values else values
        if not set(map(type, present)) <= {int}:
            return None
        if present and not (low <= min(present) and max(present) <= high):
            return None
        return values

    return bulk


def _numbers_bulk(dtype: Any) -> Bulk:
    largest = float(np.finfo(getattr(dtype, "numpy_dtype", dtype)).max)

    def bulk(values: list[Any]) -> list[Any] | None:
        if not set(map(type, values)) <= {float, int, _NONE}:
            return None
        try:
            # NumPy converts each value as float() does (None and NaN become NaN)
            array = np.array(values, dtype=np.float64)
        except OverflowError:  # an integer of hundreds of digits
            return None
        missing = np.isnan(array)
        # an infinity is larger than the largest float too
        if np.any(np.abs(array[~missing]) > largest):
            return None
        numbers: list[Any] = array.tolist()
        if missing.any():  # a missing value is None, as the one-value reading gives it
            numbers = [None if m else v for v, m in zip(numbers, missing.tolist(), strict=True)]
        return numbers

    return bulk


def _times_bulk(dtype: Any) -> Bulk | None:
    """Times without a timezone, as the training times had them (a timezone's checks convert
    each value: read one by one)."""
    if getattr(dtype, "tz", None) is not None:
        return None
    ns = np.datetime_data(dtype)[0] == "ns"

    def bulk(values: list[Any]) -> list[Any] | None:
        if not set(map(type, values)) <= {str, _NONE}:
            return None
        present = [v for v in values if v is not None] if None in values else values
        try:
            parsed = list(map(dt.datetime.fromisoformat, present))
        except ValueError:
            return None
        if not parsed:
            return values
        if set(map(attrgetter("tzinfo"), parsed)) != {None}:
            return None
        if ns and not (_NS_RANGE[0] <= min(parsed) and max(parsed) <= _NS_RANGE[1]):
            return None
        if present is values:
            return parsed
        times = iter(parsed)
        return [None if v is None else next(times) for v in values]

    return bulk


def _text_bulk(values: list[Any]) -> list[Any] | None:
    if not set(map(type, values)) <= {str, _NONE}:
        return None
    # one C pass over the joined text; filter(None) drops the missing values (and empty text)
    joined = "".join(filter(None, values))
    if not joined.isascii():
        try:
            joined.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: read one by one, which says where
            return None
    return values


# ---- building a column from values already read ---------------------------------------------


def _typed(dtype: Any) -> Build:
    return lambda values: pd.Series(values, dtype=dtype)


def _integers(dtype: Any) -> Build:
    def build(values: list[Any]) -> pd.Series:
        # a NumPy integer column cannot hold a missing value: it becomes float, which
        # LightGBM reads as missing (a nullable Int64 keeps <NA>)
        if isinstance(dtype, np.dtype) and None in values:  # a C scan
            return pd.Series(values, dtype="float64")
        return pd.Series(values, dtype=dtype)

    return build


def _times(dtype: Any) -> Build:
    if getattr(dtype, "tz", None) is None:
        return _typed(dtype)
    return lambda values: (
        pd.to_datetime(pd.Series(values, dtype=object), utc=True)
        .dt.tz_convert(dtype.tz)
        .astype(dtype)
    )


def _objects_as(dtype: Any) -> Build:
    return lambda values: pd.Series(values, dtype=object).astype(dtype)


# ---- rows -> frame --------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _mixed(values: list[Any], column: InputColumn) -> list[Problem]:
    """The rows of a category column whose values are not of the first value's kind: the
    prediction log stores a column with one type, strings or numbers."""
    first = next((row for row, v in enumerate(values) if v is not None), None)
    if first is None:
        return []
    strings = isinstance(values[first], str)
    expected = "a string" if strings else "a number"
    return [
        Problem(
            row,
            column.name,
            "type",
            f"expected {expected}, as in row {first}: a column holds strings or numbers, "
            f"not both, {_got(value)}",
        )
        for row, value in enumerate(values)
        if value is not None and isinstance(value, str) != strings
    ]


def columns_frame(values: Mapping[str, list[Any]], columns: Sequence[InputColumn]) -> pd.DataFrame:
    """The frame of values `read_rows` read, typed as in training."""
    return pd.DataFrame({column.name: column.build(values[column.name]) for column in columns})


BULK_ROWS = 16  # below, the checks of a column at once cost more than they save


def read_values(values: list[Any], column: InputColumn) -> list[Any] | None:
    """A column's values, one a row (None or NaN where missing), read as `read_rows` reads
    them; or None when one might be refused, which `read_rows` then words."""
    if column.bulk is not None and len(values) >= BULK_ROWS:
        read = column.bulk(values)
    else:
        try:
            read = [None if _missing(v) else column.read(v) for v in values]
        except _Bad:
            return None
        if column.uniform and _mixed(read, column):
            return None
    if read is None or (not column.nullable and None in read):
        return None
    return read


def read_rows(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[InputColumn]
) -> dict[str, list[Any]]:
    """Each signature column's values of `rows`, checked and read (None where missing).
    Raises Refused (422) with the problems, each row's in signature order."""
    problems: list[Problem] = []
    built: dict[str, list[Any]] = {}
    for column in columns:
        try:
            # a C loop over the rows, where a comprehension calling row.get costs twice as much
            present = list(map(itemgetter(column.name), rows))
        except KeyError:  # a row without the column: read one by one, which says which
            quick = None
        else:
            quick = read_values(present, column)
        if quick is not None:
            built[column.name] = quick
            continue
        values: list[Any] = []
        for index, row in enumerate(rows):
            if column.name not in row:
                problems.append(
                    Problem(index, column.name, "missing", "required column is missing")
                )
                values.append(None)
                continue
            value = row[column.name]
            if _missing(value):
                if not column.nullable:
                    problems.append(
                        Problem(
                            index,
                            column.name,
                            "null",
                            f"a value is required: training dtype {column.dtype} had no "
                            "missing values",
                        )
                    )
                values.append(None)
                continue
            try:
                values.append(column.read(value))
            except _Bad as bad:
                problems.append(Problem(index, column.name, bad.kind, bad.message))
                values.append(None)
        if column.uniform:
            problems.extend(_mixed(values, column))
        built[column.name] = values
    if problems:
        problems.sort(key=lambda p: p.row or 0)  # stable: columns stay in signature order
        raise Refused(422, problems)
    return built
