"""What the training rows held, and the request values outside it.

A value can fit its column's dtype (`inputs` refuses what does not) and still be one the
model never saw: a category absent from training, a number beyond every training value.
LightGBM scores those silently (an unseen category as missing, a large number as the largest
bin), so `serve` flags them: in the response's `warnings`, and counted per row in the
prediction log (`warnings`); or, with `serving: {on_invalid: reject}` in the model's spec,
refuses the request with 422.

The domain comes from the version's reference rows in the registry (every training row up to
20,000, a seeded sample beyond, so a very rare training value may be flagged) and, for a
column an `encode` feature reads, that feature's fitted categories. Date/time columns are not
checked: serving times after the training period is the normal case.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped]

from .inputs import InputColumn
from .problems import MAX_PROBLEMS, Problem


@dataclass(frozen=True)
class Outside:
    """A request's values outside the domain: the first MAX_PROBLEMS of them, row by row and
    in signature order within a row, how many in all, and how many in each row."""

    listed: list[Problem]
    count: int
    per_row: list[int]


@dataclass(frozen=True)
class Domain:
    ranges: dict[str, tuple[float, float]]
    categories: dict[str, frozenset[Any]]
    order: dict[str, int]  # signature order

    def outside(self, values: Mapping[str, list[Any]], rows: int) -> Outside:
        """The values outside the domain. A Problem is made only for those listed: a request
        of December rows has a `month` outside the training months in every row."""
        flagged = [
            (column, flags)
            for column in self._columns
            if (flags := self._flagged(column, values[column])) is not None
        ]
        if flagged:
            per_row = list(map(sum, zip(*(flags for _, flags in flagged), strict=True)))
        else:
            per_row = [0] * rows
        listed: list[Problem] = []
        for row, count in enumerate(per_row):
            if len(listed) >= MAX_PROBLEMS:
                break
            if count:
                listed += [
                    self._problem(row, column, values[column][row])
                    for column, flags in flagged
                    if flags[row]
                ]
        return Outside(listed[:MAX_PROBLEMS], sum(per_row), per_row)

    @cached_property
    def _columns(self) -> list[str]:
        """The checked columns, in signature order."""
        return sorted({*self.ranges, *self.categories}, key=self.order.__getitem__)

    def _flagged(self, column: str, values: list[Any]) -> list[bool] | None:
        """Whether each value is outside; None when none is, as in most columns of most
        requests, found by a min and max or a set difference in C."""
        if column in self.ranges:
            low, high = self.ranges[column]
            # a C scan for None first: most columns of most requests have none to drop
            present = [v for v in values if v is not None] if None in values else values
            if not present or (low <= min(present) and max(present) <= high):
                return None
            return [v is not None and not low <= v <= high for v in values]
        unseen = set(values).difference(self.categories[column])
        unseen.discard(None)
        return [v in unseen for v in values] if unseen else None

    def _problem(self, row: int, column: str, value: Any) -> Problem:
        if column in self.ranges:
            low, high = self.ranges[column]
            return Problem(
                row,
                column,
                "out_of_range",
                f"{reprlib.repr(value)} is outside the training range "
                f"{_number(low)} to {_number(high)}",
            )
        return Problem(
            row,
            column,
            "unseen",
            f"{reprlib.repr(value)} is a category the training rows never held",
        )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def training_domain(
    reference: Path, state: Mapping[str, Any], inputs: Sequence[InputColumn]
) -> Domain:
    """The domain of a version's inputs; empty when it keeps no reference rows."""
    frame = pd.read_parquet(reference) if reference.is_file() else pd.DataFrame()
    fitted: dict[str, set[Any]] = {}
    for spec in state["features"]:
        if spec["op"] == "encode" and "categories" in spec.get("fitted", {}):
            fitted.setdefault(str(spec["column"]), set()).update(spec["fitted"]["categories"])
    ranges: dict[str, tuple[float, float]] = {}
    categories: dict[str, frozenset[Any]] = {}
    for column in inputs:
        dtype = pd.api.types.pandas_dtype(column.dtype)
        series = frame[column.name].dropna() if column.name in frame.columns else None
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
            continue
        if pd.api.types.is_numeric_dtype(dtype):
            if series is not None and len(series):
                low, high = float(series.min()), float(series.max())
                if math.isfinite(low) and math.isfinite(high):
                    ranges[column.name] = (low, high)
        elif series is not None or column.name in fitted:
            seen = set(series.tolist()) if series is not None else set()
            categories[column.name] = frozenset(seen | fitted.get(column.name, set()))
    return Domain(ranges, categories, {c.name: i for i, c in enumerate(inputs)})
