from __future__ import annotations

import json
import math
import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlcompile.errors import DataValidationError, StepError, UsageError
from mlcompile.runtime.features import apply_features, expr_references, fit_features, model_frame

from .helpers import features_params


def fit(frame: pd.DataFrame, *features: dict[str, Any], **extra: Any) -> dict[str, Any]:
    target = "arr_delay" if "arr_delay" in frame.columns else None
    params = features_params("regression", "arr_delay", list(features))
    return fit_features(frame, {**params, "target": target, **extra})


def fitted(state: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f["fitted"] for f in state["features"] if f["name"] == name)


FITTED_FEATURES = [
    {"name": "dep_filled", "op": "impute", "column": "dep_delay", "strategy": "median"},
    {"name": "dist_std", "op": "scale", "column": "distance", "method": "standard"},
    {"name": "dist_q", "op": "bucket", "column": "distance", "quantiles": 4},
    {"name": "dest_cat", "op": "encode", "column": "dest", "method": "category"},
    {"name": "dest_freq", "op": "encode", "column": "dest", "method": "frequency"},
]


@pytest.fixture
def halves(delays: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows, and test rows whose distributions differ visibly from them."""
    train, test = delays.iloc[:10_000], delays.iloc[10_000:].copy()
    test["dep_delay"] += 100
    test["distance"] *= 3
    test["dest"] = "ZZZ"
    return train.reset_index(drop=True), test.reset_index(drop=True)


def test_fitted_values_come_from_training_rows_only(
    halves: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, test = halves
    state = fit(train, *FITTED_FEATURES)
    both = pd.concat([train, test])
    assert fitted(state, "dep_filled")["value"] == train["dep_delay"].median()
    assert fitted(state, "dep_filled")["value"] != both["dep_delay"].median()
    assert fitted(state, "dist_std") == {
        "center": train["distance"].mean(),
        "scale": train["distance"].std(ddof=0),
    }
    assert fitted(state, "dist_std")["center"] != both["distance"].mean()
    edges = np.quantile(train["distance"], [0.25, 0.5, 0.75])
    assert fitted(state, "dist_q")["edges"] == sorted(set(edges.tolist()))
    assert fitted(state, "dest_cat")["categories"] == sorted(train["dest"].unique())
    assert "ZZZ" not in fitted(state, "dest_cat")["categories"]
    frequencies = dict(map(tuple, fitted(state, "dest_freq")["frequencies"]))
    assert frequencies == (train["dest"].value_counts() / len(train)).to_dict()


def test_applying_is_row_by_row(halves: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, test = halves
    state = fit(train, *FITTED_FEATURES)
    # A row's features do not depend on which other rows are transformed with it: nothing
    # about the scored rows leaks into their features.
    whole = apply_features(test, state)
    for part in (test.iloc[:7], test.iloc[500:501], test.sample(50, random_state=1)):
        expected = whole.iloc[part.index].reset_index(drop=True)
        pd.testing.assert_frame_equal(apply_features(part, state), expected)
    assert whole["dest_cat"].isna().all()  # the unseen destination is missing, not a new category
    assert (whole["dest_freq"] == 0.0).all()


def test_state_is_json_and_applies_identically(delays: pd.DataFrame) -> None:
    features = [
        *FITTED_FEATURES,
        {"name": "carrier", "op": "encode", "column": "carrier", "method": "onehot"},
        {"name": "hour", "op": "date_part", "column": "time_hour", "part": "hour"},
    ]
    state = fit(delays, *features, carry=["origin"])
    reloaded = json.loads(json.dumps(state, allow_nan=False))
    pd.testing.assert_frame_equal(apply_features(delays, reloaded), apply_features(delays, state))
    out = apply_features(delays, reloaded)
    assert list(out.columns) == [*state["output_columns"], "arr_delay", "origin"]
    assert state["input_signature"] == {
        "dep_delay": "float64",
        "distance": "int64",
        "dest": "str",
        "carrier": "str",
        "time_hour": "str",
    }
    # What the model trains on after a Parquet round trip equals what scoring computes.
    pd.testing.assert_frame_equal(model_frame(out, state), out[state["output_columns"]])


def test_log_and_date_parts() -> None:
    frame = pd.DataFrame(
        {"x": [-1.0, 0.0, math.e - 1, None], "t": ["2013-01-07T10:30:00Z"] * 3 + [None]}
    )
    parts = ["year", "month", "day", "hour", "minute", "dayofweek", "dayofyear", "week"]
    state = fit(
        frame,
        {"name": "lx", "op": "log", "column": "x"},
        *({"name": p, "op": "date_part", "column": "t", "part": p} for p in parts),
    )
    out = apply_features(frame, state)
    assert out["lx"].tolist() == pytest.approx([math.nan, 0.0, 1.0, math.nan], nan_ok=True)
    assert out.loc[0, parts].tolist() == [2013, 1, 7, 10, 30, 0, 7, 2]
    assert out.loc[3, parts].isna().all()


def test_bucket_edges_are_cut_points() -> None:
    frame = pd.DataFrame({"delay": [-20.0, 0.0, 10.0, 15.0, 60.0, 500.0, None]})
    state = fit(frame, {"name": "b", "op": "bucket", "column": "delay", "bins": [0, 15, 60]})
    assert apply_features(frame, state)["b"].tolist()[:6] == [0, 1, 1, 2, 3, 3]
    assert math.isnan(apply_features(frame, state)["b"].iloc[6])


def test_impute_strategies() -> None:
    frame = pd.DataFrame({"n": [1.0, 2.0, 2.0, 10.0, None], "s": ["b", "a", "b", "a", None]})
    state = fit(
        frame,
        {"name": "mean", "op": "impute", "column": "n", "strategy": "mean"},
        {"name": "median", "op": "impute", "column": "n", "strategy": "median"},
        {"name": "mode", "op": "impute", "column": "s", "strategy": "most_frequent"},
        {"name": "zero", "op": "impute", "column": "n", "strategy": "constant", "value": 0},
        {"name": "mode_code", "op": "encode", "column": "mode", "method": "ordinal"},
        model_inputs=["mean", "median", "zero", "mode_code"],
    )
    last = apply_features(frame, state).iloc[4]
    # Ties for the most frequent value break by value: "a" before "b".
    assert (last["mean"], last["median"], last["zero"], last["mode_code"]) == (3.75, 2.0, 0, 0)


def test_onehot_names_are_safe_and_rare_values_fold() -> None:
    train = pd.DataFrame({"kind": ["a:b", "a,b", "x", "x", "x", "y", "y", "z", None]})
    spec = {"name": "k", "op": "encode", "column": "kind", "method": "onehot", "max_categories": 3}
    state = fit(train, spec)
    # Ties in frequency break by value; the rest and unseen values go to __other__.
    assert fitted(state, "k")["categories"] == ["a,b", "x", "y"]
    assert state["output_columns"] == ["k__a_b", "k__x", "k__y", "k____other__"]
    scored = apply_features(pd.DataFrame({"kind": ["x", "a:b", "new", None]}), state)
    assert scored.to_numpy().tolist() == [[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    colliding = fit(pd.DataFrame({"kind": ["a:b", "a,b"]}), {**spec, "max_categories": None})
    assert colliding["output_columns"] == ["k__a_b", "k__a_b_2"]


def test_category_encoding_is_fixed_from_training(delays: pd.DataFrame) -> None:
    spec = {"name": "carrier", "op": "encode", "column": "carrier", "max_categories": 5}
    state = fit(delays, spec)
    top = delays["carrier"].value_counts().index[:5]
    assert fitted(state, "carrier")["categories"] == sorted(top)
    out = apply_features(pd.DataFrame({"carrier": ["UA", "HA", "XX", None]}), state)
    assert list(out["carrier"].cat.categories) == [*sorted(top), "__other__"]
    assert out["carrier"].astype(object).tolist()[:3] == ["UA", "__other__", "__other__"]
    assert pd.isna(out["carrier"].iloc[3])


def test_scale_minmax_and_constant_columns() -> None:
    frame = pd.DataFrame({"x": [2.0, 4.0, 6.0], "c": [5.0, 5.0, 5.0]})
    state = fit(
        frame,
        {"name": "mm", "op": "scale", "column": "x", "method": "minmax"},
        {"name": "cs", "op": "scale", "column": "c"},
    )
    out = apply_features(frame, state)
    assert out["mm"].tolist() == [0.0, 0.5, 1.0]
    assert out["cs"].tolist() == [0.0, 0.0, 0.0]


def test_expr_reads_raw_columns_and_earlier_features(delays: pd.DataFrame) -> None:
    state = fit(
        delays,
        {"name": "gain", "op": "expr", "expr": "dep_delay - ARR_DELAY"},
        {"name": "gain_per_hour", "op": "expr", "expr": 'gain / nullif("air_time", 0) * 60'},
        model_inputs=["gain_per_hour"],
    )
    assert state["input_signature"] == {
        "dep_delay": "float64",
        "arr_delay": "float64",
        "air_time": "float64",
    }
    out = apply_features(delays, state)
    expected = (delays["dep_delay"] - delays["arr_delay"]) / delays["air_time"] * 60
    assert out["gain_per_hour"].to_numpy() == pytest.approx(expected.to_numpy(), nan_ok=True)
    assert expr_references("'dep_delay' || origin", ["dep_delay", "origin"]) == ["origin"]


@pytest.mark.parametrize(
    "expr, message",
    [
        ("dep_delay - avg(dep_delay) OVER ()", "a window \\(OVER\\) computes over other rows"),
        ("(SELECT max(dep_delay) FROM feature_rows)", "a subquery reads other rows"),
        ("(FROM feature_rows SELECT max(dep_delay))", "a subquery reads other rows"),
        ("avg(dep_delay)", "'avg' is an aggregate"),
        # closing the wrapper's parenthesis would reorder the rows under their features
        ("dep_delay) AS value FROM feature_rows ORDER BY dep_delay DESC --", "DuckDB cannot"),
        ("no_such_column + 1", "expression failed: .*no_such_column"),
        ("read_csv('/etc/passwd') IS NULL", "expression failed"),
    ],
)
def test_bad_expressions(delays: pd.DataFrame, expr: str, message: str) -> None:
    with pytest.raises(StepError, match=f"feature 'bad' \\(expr\\): {message}"):
        fit(delays.head(100), {"name": "bad", "op": "expr", "expr": expr})


@pytest.fixture
def custom_module() -> Iterator[str]:
    module = types.ModuleType("mlc_custom_features")
    module.speed = lambda df: df["distance"] / df["air_time"]  # type: ignore[attr-defined]
    module.frame = lambda df: df[["distance", "hour"]]  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield module.__name__
    del sys.modules[module.__name__]


def test_custom_functions(
    delays: pd.DataFrame, custom_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an installed module: the operator allows it (project files need no grant)
    monkeypatch.setenv("MLCOMPILE_ALLOW_MODULES", custom_module)
    spec = {"name": "speed", "op": "custom", "function": f"{custom_module}:speed"}
    out = apply_features(delays, fit(delays, spec))
    assert out["speed"].tolist() == (delays["distance"] / delays["air_time"]).tolist()
    for function, message in [
        ("frame", "returned 2 columns"),
        ("missing", "cannot load"),
    ]:
        bad = {"name": "f", "op": "custom", "function": f"{custom_module}:{function}"}
        with pytest.raises(StepError, match=message):
            fit(delays, bad)


def test_errors_name_the_model_feature_and_column(delays: pd.DataFrame) -> None:
    with pytest.raises(
        StepError, match=r"feature 'd' \(passthrough\): column 'dep_dlay' .*dep_delay"
    ):
        fit(delays, {"name": "d", "op": "passthrough", "column": "dep_dlay"})
    with pytest.raises(StepError, match=r"model input 'carrier' is str.*encode"):
        fit(delays, {"name": "carrier", "op": "passthrough", "column": "carrier"})
    with pytest.raises(StepError, match="must be numeric"):
        fit(delays, {"name": "l", "op": "log", "column": "carrier"})
    with pytest.raises(UsageError, match="unknown op 'polynomial'"):
        fit(delays, {"name": "p", "op": "polynomial", "column": "hour"})
    with pytest.raises(StepError, match="target column 'arr_delay' is not in the training rows"):
        no_target = delays.drop(columns="arr_delay")
        fit(no_target, {"name": "h", "op": "passthrough", "column": "hour"}, target="arr_delay")
    state = fit(delays, {"name": "h", "op": "passthrough", "column": "hour"})
    with pytest.raises(StepError, match="the data lacks input columns \\['hour'\\]"):
        apply_features(delays.drop(columns="hour"), state)


def test_names_lightgbm_rejects_are_mapped_not_refused(delays: pd.DataFrame) -> None:
    state = fit(delays, {"name": 'a:b "c"', "op": "passthrough", "column": "hour"})
    frame = model_frame(apply_features(delays, state), state)
    assert list(frame.columns) == ["a_b__c_"]
    assert state["output_columns"] == ['a:b "c"']


def test_expressions_cannot_run_statements(delays: pd.DataFrame) -> None:
    with pytest.raises(StepError, match='syntax error at or near ";"'):
        fit(delays, {"name": "x", "op": "expr", "expr": "hour * 2; PRAGMA version"})
    state = fit(delays, {"name": "x", "op": "expr", "expr": "length('a;b') + hour"})
    assert (
        apply_features(delays.head(3), state)["x"].tolist() == (delays["hour"].head(3) + 3).tolist()
    )


def test_infinities_in_input_columns_are_a_data_failure(delays: pd.DataFrame) -> None:
    """An inf read by a feature is refused when fitting and when applying, naming the raw
    column and counting its rows: LightGBM would bin it with the largest distances."""
    features = [
        {"name": "dist_std", "op": "scale", "column": "distance", "method": "standard"},
        {"name": "dep_delay", "op": "passthrough", "column": "dep_delay"},
    ]
    broken = delays.assign(distance=delays["distance"].astype("float64"))
    broken.loc[[3, 5, 8], "distance"] = [np.inf, -np.inf, np.inf]
    with pytest.raises(
        DataValidationError,
        match=rf"input column holds inf or -inf: 'distance' in 3 of {len(delays)} rows",
    ):
        fit(broken, *features)
    state = fit(delays.assign(distance=delays["distance"].astype("float64")), *features)
    with pytest.raises(DataValidationError, match="'distance' in 3 of"):
        apply_features(broken, state)


def test_infinities_made_by_an_expression_are_a_data_failure(delays: pd.DataFrame) -> None:
    zero_air_time = delays.assign(air_time=delays["air_time"].where(delays.index % 100 != 0, 0))
    rows = int((zero_air_time["air_time"] == 0).sum())
    speed = {"name": "speed", "op": "expr", "expr": "distance / air_time"}
    # caught where it is made, before a later feature scales it
    scaled = {"name": "speed_std", "op": "scale", "column": "speed", "method": "standard"}
    with pytest.raises(
        DataValidationError, match=rf"feature 'speed' holds inf or -inf: 'speed' in {rows} of"
    ):
        fit(zero_air_time, speed, scaled)
    state = fit(delays, speed, scaled)
    with pytest.raises(DataValidationError, match=rf"'speed' in {rows} of {len(delays)} rows"):
        apply_features(zero_air_time, state)
