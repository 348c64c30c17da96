from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pytest

from mlcompile.errors import DataValidationError, StepError, UsageError
from mlcompile.runtime.validate import raise_if_invalid, validate_frame


def schema(columns: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {
        "name": "flights_schema",
        "strict": False,
        "coerce": False,
        "columns": columns,
        **options,
    }


FLIGHTS_RULES = {
    "year": {"dtype": "int", "checks": [{"check": "isin", "values": [2013]}]},
    "month": {"dtype": "int", "checks": [{"check": "in_range", "min": 1, "max": 12}]},
    "dep_delay": {"dtype": "float", "nullable": True},
    "carrier": {"dtype": "str", "checks": [{"check": "regex", "pattern": "[A-Z0-9]{2}"}]},
    "origin": {"dtype": "category", "checks": [{"check": "isin", "values": ["EWR", "JFK", "LGA"]}]},
    "distance": {"dtype": "int", "checks": [{"check": "gt", "value": 0}]},
}


def test_clean_flights_pass(flights: pd.DataFrame) -> None:
    out, report = validate_frame(flights, schema(FLIGHTS_RULES), "flights", "fail")
    assert report == {
        "source": "flights",
        "schema": "flights_schema",
        "passed": True,
        "on_invalid": "fail",
        "rows": len(flights),
        "failures": [],
    }
    pd.testing.assert_frame_equal(out, flights)
    raise_if_invalid(report)


def test_report_of_a_failing_rule(flights: pd.DataFrame) -> None:
    rules = {
        **FLIGHTS_RULES,
        "dep_delay": {"dtype": "float", "checks": [{"check": "le", "value": 60}]},
    }
    _, report = validate_frame(flights, schema(rules), "flights", "fail")
    late = flights["dep_delay"][flights["dep_delay"] > 60]
    missing = flights["dep_delay"].isna()
    assert report["passed"] is False
    by_check = {(f["column"], f["check"]): f for f in report["failures"]}
    assert set(by_check) == {("dep_delay", "le(60)"), ("dep_delay", "not_nullable")}
    too_late = by_check[("dep_delay", "le(60)")]
    assert too_late["failing_rows"] == len(late)
    assert len(too_late["examples"]) == 5
    assert set(too_late["examples"]) <= set(late)
    nulls = by_check[("dep_delay", "not_nullable")]
    assert nulls["failing_rows"] == int(missing.sum())
    assert nulls["examples"] == [None]  # JSON-safe: NaN became null


def test_fail_raises_and_warn_passes_data_through(flights: pd.DataFrame) -> None:
    rules = {"origin": {"checks": [{"check": "notin", "values": ["JFK"]}]}}
    _, failing = validate_frame(flights, schema(rules), "flights", "fail")
    with pytest.raises(DataValidationError) as caught:
        raise_if_invalid(failing)
    message = str(caught.value)
    assert "source 'flights'" in message and "flights_schema" in message
    assert "origin: notin(['JFK'])" in message
    out, warned = validate_frame(flights, schema(rules), "flights", "warn")
    assert warned["passed"] is False and warned["on_invalid"] == "warn"
    raise_if_invalid(warned)
    assert len(out) == len(flights)


def test_int_is_tolerant_of_nulls_but_not_fractions() -> None:
    frame = pd.DataFrame(
        {
            "with_nulls": [1.0, None, 3.0],
            "nullable_int": pd.array([1, None, 3], dtype="Int64"),
            "fractional": [1.0, 2.5, 3.0],
            "text": ["1", "2", "x"],
        }
    )
    columns = {c: {"dtype": "int", "nullable": True} for c in frame.columns}
    _, report = validate_frame(frame, schema(columns), "s", "fail")
    failures = {(f["column"], f["check"]): f["examples"] for f in report["failures"]}
    assert failures == {
        ("fractional", "dtype(int)"): [2.5],
        ("text", "dtype(int)"): ["1", "2", "x"],
    }


def test_dtypes_of_each_kind(flights: pd.DataFrame) -> None:
    frame = flights.head(50).assign(
        when=pd.to_datetime(flights["time_hour"].head(50)),
        flag=True,
        kind=pd.Categorical(["a"] * 50),
    )
    good = {
        "when": {"dtype": "datetime"},
        "flag": {"dtype": "bool"},
        "kind": {"dtype": "category"},
        "carrier": {"dtype": "str"},
        "dep_delay": {"dtype": "float"},
        "hour": {"dtype": "float"},  # an integer column is acceptable as float
    }
    assert validate_frame(frame, schema(good), "s", "fail")[1]["passed"]
    wrong = {
        "time_hour": {"dtype": "datetime"},
        "hour": {"dtype": "bool"},
        "flag": {"dtype": "str"},
    }
    _, report = validate_frame(frame, schema(wrong), "s", "fail")
    assert {f["column"] for f in report["failures"]} == {"time_hour", "hour", "flag"}


def test_coerce_converts_and_reports_what_does_not_convert() -> None:
    frame = pd.DataFrame(
        {"when": ["2013-01-01 05:00", "not a date", None], "n": ["1", "2", "three"]}
    )
    columns = {
        "when": {"dtype": "datetime", "nullable": True},
        "n": {"dtype": "int", "nullable": True},
    }
    out, report = validate_frame(frame, schema(columns, coerce=True), "raw", "warn")
    assert pd.api.types.is_datetime64_any_dtype(out["when"])
    assert str(out["n"].dtype) == "Int64" and out["n"].tolist()[:2] == [1, 2]
    assert [(f["column"], f["check"], f["examples"]) for f in report["failures"]] == [
        ("n", "coerce(int)", ["three"]),
        ("when", "coerce(datetime)", ["not a date"]),
    ]


def test_required_strict_and_unique(flights: pd.DataFrame) -> None:
    columns = {"flight": {"unique": True}, "gate_number": {"required": True}}
    sample = flights.head(200)[["flight", "carrier"]]
    _, report = validate_frame(sample, schema(columns, strict=True), "f", "fail")
    checks = {(f["column"], f["check"]): f for f in report["failures"]}
    assert set(checks) == {("gate_number", "required"), ("carrier", "strict"), ("flight", "unique")}
    duplicated = sample["flight"].duplicated(keep=False)
    assert checks[("flight", "unique")]["failing_rows"] == int(duplicated.sum())
    assert checks[("gate_number", "required")]["failing_rows"] == 200
    optional = {"gate_number": {"required": False}}
    assert validate_frame(sample, schema(optional), "f", "fail")[1]["passed"]


def test_string_checks() -> None:
    frame = pd.DataFrame({"code": ["JFK", "EWR", "jfk", "LGAX"]})
    rules = [
        {"check": "regex", "pattern": "[A-Z]{3}"},
        {"check": "str_length", "min": 3, "max": 3},
    ]
    _, report = validate_frame(frame, schema({"code": {"checks": rules}}), "s", "fail")
    failures = {f["check"]: f["examples"] for f in report["failures"]}
    # The regex must match the whole value, not just a prefix.
    assert failures == {"regex('[A-Z]{3}')": ["jfk", "LGAX"], "str_length(3, 3)": ["LGAX"]}


def test_bad_rules_are_usage_errors() -> None:
    frame = pd.DataFrame({"x": [1]})
    for rules, message in [
        ({"checks": [{"check": "between"}]}, "unknown check 'between'"),
        ({"checks": [{"check": "ge"}]}, "check 'ge' needs 'value'"),
        ({"checks": [{"check": "regex", "pattern": "("}]}, "invalid regex"),
        ({"dtype": "decimal"}, "unknown dtype 'decimal'"),
    ]:
        with pytest.raises(UsageError, match=message):
            validate_frame(frame, schema({"x": rules}), "s", "fail")


def test_pandera_yaml_schema_file(tmp_path: Path, flights: pd.DataFrame) -> None:
    written = pa.DataFrameSchema(
        {"distance": pa.Column(int, pa.Check.le(1000)), "carrier": pa.Column(str)}
    )
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "flights.yaml").write_text(written.to_yaml())
    params = {"name": "from_file", "file": "schemas/flights.yaml"}
    _, report = validate_frame(flights, params, "flights", "fail", tmp_path)
    assert report["schema"] == "from_file"
    [failure] = report["failures"]
    assert failure["column"] == "distance"
    assert failure["failing_rows"] == int((flights["distance"] > 1000).sum())
    with pytest.raises(StepError, match="file not found"):
        validate_frame(flights, {"name": "x", "file": "nope.yaml"}, "flights", "fail", tmp_path)
    for broken in ("columns: [unclosed", "[1, 2]", "columns:\n  x:\n    dtype: notatype"):
        (tmp_path / "broken.yaml").write_text(broken)
        with pytest.raises(StepError, match="schema 'x': invalid pandera YAML"):
            params = {"name": "x", "file": "broken.yaml"}
            validate_frame(flights, params, "flights", "fail", tmp_path)


def test_examples_of_any_type_are_written_as_text() -> None:
    frame = pd.DataFrame({"raw": [b"\x00bytes", 1.5, None]})
    _, report = validate_frame(
        frame, schema({"raw": {"dtype": "str", "nullable": True}}), "s", "warn"
    )
    assert report["failures"][0]["examples"] == ["b'\\x00bytes'", 1.5]
