"""Request bodies read straight into a model's input columns (serving/body.py): ordinary
bodies in msgspec's one typed pass, the others read again by parse_rows and read_rows, with
the same values or problems either way (test_inputs.py reads each of its bodies both ways)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlcompile.runtime.registry import Registry
from mlcompile.serving.body import BodyReader
from mlcompile.serving.inputs import BULK_ROWS, input_columns, read_rows
from mlcompile.serving.problems import Refused
from mlcompile.serving.request import parse_rows

from .conftest import FLIGHTS, json_rows

pytestmark = pytest.mark.xdist_group("flights-serving")


@pytest.fixture(scope="module")
def reader(trained_flights: Path) -> BodyReader:
    bundle = Registry(trained_flights / ".mlcompile" / "registry").get(FLIGHTS, 1).bundle()
    return BodyReader(input_columns(bundle.meta["feature_state"]["input_signature"]))


def _body(rows: list[dict[str, Any]]) -> bytes:
    return json.dumps({"rows": rows}).encode()


def _slow(reader: BodyReader, body: bytes, max_rows: int) -> tuple[int, Any]:
    rows = parse_rows(body, max_rows)
    return len(rows), read_rows(rows, reader.columns)


@pytest.mark.parametrize("size", [1, BULK_ROWS - 1, 400])
def test_december_rows_take_the_typed_pass_and_read_as_rows_do(
    reader: BodyReader, december: pd.DataFrame, size: int
) -> None:
    # the other raw columns of a flight (dep_time, tailnum, ...) are in the body too
    rows = json_rows(december.head(size))
    assert len(rows[0]) > len(reader.columns)
    body = _body(rows)
    typed = reader.typed(body, 10_000)
    assert typed is not None
    assert typed == _slow(reader, body, 10_000)
    # a missing value is None in both, not NaN
    assert size < 400 or None in typed[1]["plane_year"]


@pytest.mark.parametrize(
    "change",
    [
        {"temp": math.nan},  # Python's json module writes NaN, which JSON has not
        {"distance": 1400.0},  # an integer written as a float
        {"carrier": "\ud800"},  # a lone surrogate, as an escape
        {"distance": 2**64},
        {"distance": "1400"},
        {"time_hour": "2013-01-01T05:00:00Z"},
        {"seats": True},
    ],
)
@pytest.mark.parametrize("size", [1, 2 * BULK_ROWS])
def test_what_the_typed_pass_does_not_take_is_read_again(
    reader: BodyReader, december: pd.DataFrame, change: dict[str, Any], size: int
) -> None:
    rows = json_rows(december.head(size))
    rows[-1].update(change)
    body = _body(rows)
    assert reader.typed(body, 10_000) is None
    try:
        expected = _slow(reader, body, 10_000)
    except Refused as refused:
        with pytest.raises(Refused) as caught:
            reader.read(body, 10_000)
        assert caught.value.problems == refused.problems
    else:
        assert reader.read(body, 10_000) == expected


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (b'{"rows": []}', 422, "body"),
        (b'{"rows": [{}, 1]}', 422, "body"),
        (b'{"other": 1}', 422, "body"),
        (b'{"rows": [{"x": 1}, {"x": 2}, {"x": 3}]}', 413, "too_large"),
        (b'{"rows": [{"x": 1}]} trailing', 422, "body"),
    ],
)
def test_a_body_that_is_not_rows_is_refused_as_parse_rows_refuses_it(
    body: bytes, status: int, kind: str
) -> None:
    reader = BodyReader(input_columns({"x": "float64"}))
    with pytest.raises(Refused) as caught:
        reader.read(body, 2)
    assert caught.value.status == status
    assert [p.kind for p in caught.value.problems] == [kind]


def test_any_column_name_is_read_and_other_keys_are_skipped() -> None:
    # names no Python identifier could be, and a key repeated in a row (the last one counts,
    # as in every JSON reader here)
    signature = {"class": "float64", "a b": "int64", "ünï": "category", "1": "bool"}
    reader = BodyReader(input_columns(signature))
    row = {"class": 0.5, "a b": 3, "ünï": "é", "1": False, "nested": {"rows": [1]}}
    body = json.dumps({"rows": [row] * 20}).encode().replace(b'"a b": 3', b'"a b": 2, "a b": 3')
    typed = reader.typed(body, 20)
    assert typed == (20, {name: [row[name]] * 20 for name in signature})
    assert typed == _slow(reader, body, 20)


@pytest.mark.parametrize("name", ['say "hi"', "back\\slash", "tab\there"])
def test_a_name_msgspec_cannot_match_is_read_row_by_row(name: str) -> None:
    reader = BodyReader(input_columns({name: "float64", "x": "int64"}))
    body = _body([{name: 1.5, "x": 2}] * 20)
    assert reader.typed(body, 20) is None
    assert reader.read(body, 20) == (20, {name: [1.5] * 20, "x": [2] * 20})
