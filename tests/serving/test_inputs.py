"""Request values checked against a model's input signature (serving/inputs.py): the
flights example's model, whose inputs are integers, text, a date/time and a nullable Int64,
and single columns of the other dtypes a signature can hold. Every body here is also read
as the server reads it (serving/body.py), which must give the same values or problems."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mlcompile.errors import UsageError
from mlcompile.runtime.artifacts import parquet_bytes, table_parquet_bytes
from mlcompile.runtime.registry import Registry
from mlcompile.runtime.score import score_frame
from mlcompile.serving.app import create_app
from mlcompile.serving.body import BodyReader
from mlcompile.serving.inputs import BULK_ROWS, InputColumn, columns_frame, input_columns, read_rows
from mlcompile.serving.predlog import Entry, entries_frame, entries_table
from mlcompile.serving.problems import MAX_PROBLEMS, Refused

from .conftest import FLIGHTS, json_rows, post_rows

pytestmark = pytest.mark.xdist_group("flights-serving")

# a real flight: UA 1545, Newark to Houston, 2013-01-01 05:15 (docs/serving.md sends it too)
ROW = {
    "carrier": "UA",
    "origin": "EWR",
    "dest": "IAH",
    "distance": 1400,
    "month": 1,
    "sched_dep_time": 515,
    "time_hour": "2013-01-01T05:00:00",
    "temp": 39.0,
    "humid": 54.8,
    "wind_speed": 12.6,
    "precip": 0.0,
    "visib": 10.0,
    "plane_year": 1999.0,
    "seats": 149,
}
INT64_MAX = 2**63 - 1


@pytest.fixture(scope="module")
def bundle(trained_flights: Path) -> Any:
    return Registry(trained_flights / ".mlcompile" / "registry").get(FLIGHTS, 1).bundle()


@pytest.fixture(scope="module")
def signature(bundle: Any) -> dict[str, str]:
    return dict(bundle.meta["feature_state"]["input_signature"])


def _read(rows: list[dict[str, Any]], columns: tuple[InputColumn, ...]) -> dict[str, list[Any]]:
    """What `read_rows` reads of the rows, after checking that their body, as Python's json
    module writes it, reads the same through the server's BodyReader: values or refusal."""
    body = json.dumps({"rows": rows}).encode()
    try:
        values = read_rows(rows, columns)
    except Refused as refused:
        with pytest.raises(Refused) as caught:
            BodyReader(columns).read(body, len(rows))
        assert (caught.value.status, caught.value.problems) == (refused.status, refused.problems)
        raise
    assert BodyReader(columns).read(body, len(rows)) == (len(rows), values)
    return values


def _frame(rows: list[dict[str, Any]], signature: dict[str, str]) -> pd.DataFrame:
    columns = input_columns(signature)
    return columns_frame(_read(rows, columns), columns)


def _refusal(signature: dict[str, str], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with pytest.raises(Refused) as caught:
        _frame(rows, signature)
    assert caught.value.status == 422
    return [p.to_dict() for p in caught.value.problems]


def test_the_signature_is_the_one_these_tests_are_about(signature: dict[str, str]) -> None:
    assert signature["distance"] == "int64" and signature["seats"] == "Int64"
    assert signature["carrier"] == "str" and signature["time_hour"] == "datetime64[us]"


def test_a_valid_row_gets_the_training_dtypes(signature: dict[str, str]) -> None:
    frame = _frame([ROW], signature)
    assert {c: str(d) for c, d in frame.dtypes.items()} == signature
    assert frame.loc[0, "time_hour"] == pd.Timestamp("2013-01-01 05:00")


@pytest.mark.parametrize(
    ("column", "value", "kind", "says"),
    [
        ("time_hour", "2013-01-01T05:00:00+02:00", "timezone", "has a timezone offset"),
        ("time_hour", "2013-01-01T05:00:00Z", "timezone", "has a timezone offset"),
        ("time_hour", "1 Jan 2013", "type", "expected an ISO 8601 date/time"),
        ("time_hour", 1356998400, "type", "got int 1356998400"),
        ("distance", 1e20, "range", "1e+20 is outside the range of int64"),
        ("distance", 9.3e18, "range", "outside the range of int64"),
        ("distance", 2**70, "range", f"{2**70} is outside the range of int64"),
        ("distance", -(2**63) - 1, "range", "outside the range of int64"),
        ("distance", float("inf"), "range", "inf is not a finite number"),
        ("distance", 1400.5, "type", "expected an integer"),
        ("distance", "1400", "type", "got str '1400'"),
        ("seats", 2**63, "range", "outside the range of Int64"),
        ("temp", float("-inf"), "range", "-inf is not a finite number"),
        ("temp", 10**400, "range", "is outside the range of float64"),
        ("temp", True, "type", "expected a number"),
        ("carrier", "\ud800", "text", "a lone surrogate at character 0"),
        ("carrier", "U\udfffA", "text", "a lone surrogate at character 1"),
        ("carrier", 7, "type", "expected a string"),
    ],
)
# a large request's columns are first checked at once, then value by value if one may not fit
@pytest.mark.parametrize("before", [1, 2 * BULK_ROWS])
def test_a_value_that_does_not_fit_is_located(
    signature: dict[str, str], column: str, value: Any, kind: str, says: str, before: int
) -> None:
    (problem,) = _refusal(signature, [ROW] * before + [{**ROW, column: value}])
    assert (problem["row"], problem["column"], problem["kind"]) == (before, column, kind)
    assert says in problem["message"]


@pytest.mark.parametrize("before", [0, 2 * BULK_ROWS])
def test_edge_values_that_fit_are_kept_exactly(signature: dict[str, str], before: int) -> None:
    rows = [ROW] * before + [
        {**ROW, "distance": INT64_MAX, "seats": -(2**63)},
        {**ROW, "distance": 1400.0, "time_hour": "2013-W01-2T05:00"},  # ISO week date
    ]
    frame = _frame(rows, signature).iloc[before:]
    assert frame["distance"].tolist() == [INT64_MAX, 1400]
    assert frame["seats"].tolist() == [-(2**63), 149]
    assert frame["time_hour"].iloc[1] == pd.Timestamp("2013-01-01 05:00")


def test_null_and_nan_are_missing_values(signature: dict[str, str]) -> None:
    rows = [
        {**ROW, "distance": float("nan"), "seats": float("nan"), "carrier": None},
        {**ROW, "distance": None, "seats": None, "time_hour": None},
    ]
    frame = _frame(rows, signature)
    # a NumPy int64 cannot hold a missing value: float, as LightGBM reads it; Int64 keeps <NA>
    assert str(frame["distance"].dtype) == "float64" and frame["distance"].isna().all()
    assert str(frame["seats"].dtype) == "Int64" and frame["seats"].isna().all()
    assert frame["carrier"].isna().tolist() == [True, False]
    assert frame["time_hour"].isna().tolist() == [False, True]


def test_every_problem_at_once_each_rows_in_signature_order(signature: dict[str, str]) -> None:
    rows = [
        {**ROW, "time_hour": "2013-01-01T05:00Z", "distance": 1e20},
        ROW,
        {k: v for k, v in ROW.items() if k != "dest"} | {"carrier": None, "month": 1.5},
    ]
    found = [(p["row"], p["column"], p["kind"]) for p in _refusal(signature, rows)]
    order = list(signature)
    assert found == sorted(found, key=lambda p: (p[0], order.index(p[1])))
    assert set(found) == {
        (0, "time_hour", "timezone"),
        (0, "distance", "range"),
        (2, "dest", "missing"),
        (2, "month", "type"),
    }


def test_a_long_list_of_problems_is_cut_and_counted(signature: dict[str, str]) -> None:
    problems = _refusal(signature, [{**ROW, "distance": "x", "month": "y"}] * 300)
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1] == {
        "row": None,
        "column": None,
        "kind": "more",
        "message": f"{600 - MAX_PROBLEMS} more problems not listed",
    }


@pytest.mark.parametrize(
    ("dtype", "value", "kind"),
    [
        ("bool", None, "null"),  # NumPy bool has no missing value
        ("bool", 1, "type"),
        ("float32", 1e39, "range"),
        ("uint8", 256, "range"),
        ("uint8", -1, "range"),
        ("int32", 2**31, "range"),
        ("datetime64[ns]", "1500-01-01", "range"),
        ("datetime64[ns]", "2300-01-01T00:00:00", "range"),
        ("datetime64[ns, UTC]", "2013-01-01T05:00:00", "timezone"),
        ("category", 2**64, "range"),
        ("category", float("inf"), "range"),
        ("category", ["a"], "type"),
        ("object", {"a": 1}, "type"),
    ],
)
def test_other_dtypes_refuse_what_they_cannot_hold(dtype: str, value: Any, kind: str) -> None:
    (problem,) = _refusal({"x": dtype}, [{"x": value}])
    assert (problem["row"], problem["column"], problem["kind"]) == (0, "x", kind)


@pytest.mark.parametrize(
    ("dtype", "values", "expected"),
    [
        ("boolean", [True, None], [True, pd.NA]),
        ("float32", [1.5, 3], [1.5, 3.0]),
        ("uint8", [255, 0.0], [255, 0]),
        ("datetime64[ns]", ["1700-01-01", "2013-01-01T05:00:00.25"], None),
        ("category", ["a", None, "b"], ["a", float("nan"), "b"]),
        ("object", ["a", None], ["a", None]),
        ("string", ["a", None], ["a", pd.NA]),
    ],
)
def test_other_dtypes_keep_what_they_can_hold(
    dtype: str, values: list[Any], expected: list[Any] | None
) -> None:
    frame = _frame([{"x": v} for v in values], {"x": dtype})
    assert str(frame["x"].dtype) == dtype
    if expected is not None:
        assert [
            "nan" if isinstance(v, float) and math.isnan(v) else v for v in frame["x"].tolist()
        ] == ["nan" if isinstance(v, float) and math.isnan(v) else v for v in expected]


def test_times_with_an_offset_become_the_training_timezone() -> None:
    frame = _frame(
        [{"t": "2013-01-01T05:00:00+02:00"}, {"t": "2013-01-01T05:00:00Z"}],
        {"t": "datetime64[ns, UTC]"},
    )
    assert frame["t"].tolist() == [
        pd.Timestamp("2013-01-01 03:00", tz="UTC"),
        pd.Timestamp("2013-01-01 05:00", tz="UTC"),
    ]


def test_many_times_are_read_at_once_as_one_by_one() -> None:
    # a large request's times are parsed in one pass, missing values kept in place
    columns = input_columns({"t": "datetime64[ns]"})
    rows = [{"t": "2013-01-01T05:00:00"}, {"t": None}] * BULK_ROWS
    assert _read(rows, columns) == {"t": [dt.datetime(2013, 1, 1, 5), None] * BULK_ROWS}
    (problem,) = _refusal({"t": "datetime64[ns]"}, [*rows, {"t": "2300-01-01"}])
    assert (problem["row"], problem["kind"]) == (2 * BULK_ROWS, "range")


def test_a_category_column_holds_strings_or_numbers_not_both() -> None:
    problems = _refusal({"c": "category"}, [{"c": None}, {"c": "a"}, {"c": 1}, {"c": "b"}])
    assert [(p["row"], p["kind"]) for p in problems] == [(2, "type")]
    assert "as in row 1" in problems[0]["message"]


def test_a_dtype_json_cannot_fill_is_refused_when_the_model_loads() -> None:
    with pytest.raises(UsageError, match="input column 'gap' has training dtype timedelta64"):
        input_columns({"ok": "float64", "gap": "timedelta64[ns]"})


# ---- over the API -----------------------------------------------------------------------


def test_refused_values_over_the_api_are_422_and_never_logged(
    trained_flights: Path, tmp_path: Path
) -> None:
    log_dir = tmp_path / "predictions"
    registry = trained_flights / ".mlcompile" / "registry"
    with TestClient(create_app(registry, FLIGHTS, "production", log_dir)) as client:
        for change in (
            {"time_hour": "2013-01-01T05:00:00+02:00"},
            {"distance": 1e20},
            {"distance": 2**70},
            {"carrier": "\ud800"},
        ):
            response = post_rows(client, [ROW, {**ROW, **change}])
            assert response.status_code == 422, response.text
            ((column, _),) = change.items()
            (error,) = response.json()["errors"]
            assert (error["row"], error["column"]) == (1, column)
        ok = client.post("/predict", json={"rows": [{**ROW, "distance": INT64_MAX}]})
        assert ok.status_code == 200
    logged = pd.read_parquet(log_dir)
    assert logged["request_id"].tolist() == [ok.json()["request_id"]]
    assert logged["distance"].tolist() == [INT64_MAX]


def test_december_rows_get_the_batch_predictions(
    flights_client: TestClient, december: pd.DataFrame, bundle: Any
) -> None:
    rows = pd.concat([december.head(200), december.tail(200)], ignore_index=True)
    assert rows[["temp", "plane_year", "seats"]].isna().any().all(), "want missing values"
    expected = score_frame(bundle, rows, [])
    payload = json_rows(rows)
    response = flights_client.post("/predict", json={"rows": payload})
    assert response.status_code == 200, response.text
    assert pd.DataFrame(response.json()["predictions"]).equals(expected)
    # Python clients write a missing float as NaN, not null: the same missing value
    with_nan = [{k: math.nan if v is None else v for k, v in row.items()} for row in payload]
    again = post_rows(flights_client, with_nan)
    assert again.status_code == 200, again.text
    assert pd.DataFrame(again.json()["predictions"]).equals(expected)


# ---- anything JSON can hold ---------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities too: Python's json module reads and writes them
    | st.text(st.characters(categories=["Lu", "Nd", "Zs", "Cc", "Cs"]), max_size=8)
    | st.sampled_from(["2013-12-01T05:00:00", "2013-W49-7", "2013-12-01T05:00+05:00", "UA"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner),
    max_leaves=3,
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_json_is_either_refused_in_place_or_scored_and_loggable(
    data: st.DataObject, signature: dict[str, str], bundle: Any
) -> None:
    rows = []
    for _ in range(data.draw(st.integers(1, 4))):
        changed = data.draw(st.lists(st.sampled_from(sorted(signature)), max_size=3))
        rows.append({**ROW, **{c: data.draw(JSON_VALUES) for c in changed}})
    columns = input_columns(signature)
    try:
        values = _read(rows, columns)
    except Refused as refused:
        event("refused")
        for problem in refused.problems:
            assert problem.row is not None and 0 <= problem.row < len(rows)
            assert problem.column in signature
            problem.message.encode("utf-8")  # fits in a response
        return
    event("scored")
    scored = score_frame(bundle, columns_frame(values, columns), [])
    assert len(scored) == len(rows)
    predictions = {str(c): scored[c].tolist() for c in scored.columns}
    now = dt.datetime.now(dt.UTC)
    entry = Entry("r", now, 1, columns, values, predictions, len(rows), [0] * len(rows), "p", {})
    data = parquet_bytes(entries_frame([entry]))
    table = entries_table([entry])  # the log's way, without a frame, for most dtypes
    assert table is None or table_parquet_bytes(table) == data
