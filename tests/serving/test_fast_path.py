"""The compiled evaluator against the batch path: the same model inputs bit for bit, the
same predictions, over HTTP from a real `mlcompile serve` on loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlcompile.runtime.registry import Registry
from mlcompile.runtime.train import booster, model_inputs
from mlcompile.serving.arith import Inexact, NotCompiled, Num, Work, compile_expression
from mlcompile.serving.evaluator import compile_features
from mlcompile.serving.inputs import columns_frame, input_columns, read_rows
from mlcompile.serving.onerow import OneRow

from .conftest import FLIGHTS, json_rows
from .serve_process import Sandbox, Served


def _as_lightgbm_reads(frame: pd.DataFrame) -> np.ndarray:
    """The float64 matrix LightGBM's pandas path builds: category codes, NaN for missing."""
    columns = {
        c: (s.cat.codes.replace(-1, np.nan) if isinstance(s.dtype, pd.CategoricalDtype) else s)
        for c, s in frame.items()
    }
    return pd.DataFrame(columns).to_numpy(dtype="float64", na_value=np.nan)


def test_compiled_features_are_the_batch_features_bit_for_bit(
    trained_flights: Path, december: pd.DataFrame
) -> None:
    bundle = Registry(trained_flights / ".mlcompile" / "registry").get(FLIGHTS, 1).bundle()
    state = bundle.meta["feature_state"]
    model = booster(bundle)
    evaluator, why = compile_features(state, model)
    assert evaluator is not None, why
    columns = input_columns(state["input_signature"])
    rows = json_rows(december)
    values = read_rows(rows, columns)
    batch = model_inputs(bundle, columns_frame(values, columns))
    fast = evaluator.matrix(values, len(rows))
    assert fast.shape == (len(december), len(state["output_columns"]))
    assert fast.tobytes() == _as_lightgbm_reads(batch).tobytes()
    assert model.predict(fast).tobytes() == model.predict(batch).tobytes()
    # a request of one row is computed on Python floats: each row's bits are the matrix's
    for i in range(len(rows)):
        one = evaluator.matrix(read_rows(rows[i : i + 1], columns), 1)
        assert one.tobytes() == fast[i].tobytes(), (i, rows[i])
    # below SERIES_ROWS, a time's parts are taken one by one: the same bits
    for start in range(0, len(rows), 63):
        chunk = rows[start : start + 63]
        small = evaluator.matrix(read_rows(chunk, columns), len(chunk))
        assert small.tobytes() == fast[start : start + len(chunk)].tobytes(), start


def test_the_single_row_path_predicts_each_row_as_the_batch_path(
    trained_flights: Path, december: pd.DataFrame
) -> None:
    bundle = Registry(trained_flights / ".mlcompile" / "registry").get(FLIGHTS, 1).bundle()
    model = booster(bundle)
    matrix = np.ascontiguousarray(_as_lightgbm_reads(model_inputs(bundle, december)))
    one_row = OneRow(model)
    singles = np.concatenate([one_row.predict(row) for row in matrix])
    assert singles.tobytes() == model.predict(matrix, num_threads=1).tobytes()
    with pytest.raises(ValueError, match="contiguous float64 row"):
        one_row.predict(matrix[:, 0])


def test_every_december_row_served_over_http_as_batch_scoring_scored_it(
    trained_flights: Path, december: pd.DataFrame, flights_sandbox: Sandbox
) -> None:
    scored = pd.read_parquet(trained_flights / "outputs" / "december_delay_scores.parquet")
    assert len(scored) == len(december)
    served = Served(flights_sandbox, FLIGHTS).started()
    try:
        rows = json_rows(december)
        answers: list[dict[str, Any]] = []
        answers += [served.post([row])[1]["predictions"][0] for row in rows[:200]]
        for start in range(200, len(rows), 1000):
            status, body = served.post(rows[start : start + 1000])
            assert status == 200, body
            answers += body["predictions"]
    finally:
        assert served.stop() == 143, served.output
    assert "served by the batch path" not in served.output
    assert [a["probability"] for a in answers] == scored["probability"].tolist()
    assert [a["label"] for a in answers] == scored["label"].tolist()


def _duckdb(expr: str, frame: pd.DataFrame) -> Any:
    con = duckdb.connect()
    con.register("feature_rows", frame)
    try:
        return con.sql(f"SELECT ({expr}) AS value FROM feature_rows").df()["value"]
    except duckdb.Error:
        return None


@pytest.mark.parametrize(
    "expr",
    ["a // 100", "2013 - x", "-(a + 2) * x", "a / b", "a // b", "(a - b) * 3 + x / 7", "-a // 7"],
)
def test_translated_expressions_compute_what_duckdb_computes(expr: str) -> None:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "a": pd.array(rng.integers(-5000, 5000, 300), dtype="Int64"),
            "b": pd.array(rng.integers(-3, 4, 300), dtype="Int64"),
            "x": rng.normal(0, 1e3, 300),
        }
    )
    frame.loc[::17, "a"] = pd.NA
    frame.loc[::13, "x"] = np.nan
    compiled = compile_expression(expr, {"a": "BIGINT", "b": "BIGINT", "x": "DOUBLE"})

    def columns(rows: pd.DataFrame) -> dict[str, np.ndarray]:
        return {c: rows[c].to_numpy(dtype="float64", na_value=np.nan) for c in rows}

    expected = _duckdb(expr, frame)
    try:
        got = compiled.columns(
            Work(len(frame), {c: Num(v, None) for c, v in columns(frame).items()})
        )
    except Inexact:  # a division by zero: DuckDB errs or gives an infinity
        assert expected is None or np.isinf(expected.astype("float64")).any()
        frame = frame[frame["b"] != 0].reset_index(drop=True)
        expected = _duckdb(expr, frame)
        got = compiled.columns(
            Work(len(frame), {c: Num(v, None) for c, v in columns(frame).items()})
        )
    want = expected.to_numpy(dtype="float64", na_value=np.nan)
    assert got.values.tobytes() == want.tobytes()
    # the one-row form, on Python floats, gives each row's bits
    values = columns(frame)
    rows = [compiled.row({c: float(v[i]) for c, v in values.items()}) for i in range(len(frame))]
    assert np.array(rows, dtype="float64").tobytes() == want.tobytes()


@pytest.mark.parametrize(
    "expr", ["abs(a)", "a * 1.5", "x // 2", "CASE WHEN a > 0 THEN 1 ELSE 0 END", "2 * 3 + a", "s"]
)
def test_other_expressions_are_left_to_duckdb(expr: str) -> None:
    with pytest.raises(NotCompiled):
        compile_expression(expr, {"a": "BIGINT", "x": "DOUBLE", "s": "text"})


def test_integers_beyond_two_to_the_53_go_to_the_batch_path() -> None:
    compiled = compile_expression("a + 1", {"a": "BIGINT"})
    with pytest.raises(Inexact):
        compiled.columns(Work(2, {"a": Num(np.array([1.0, 2.0**53]), "BIGINT")}))
    with pytest.raises(Inexact):
        compiled.row({"a": 2.0**53})


def test_an_int64_column_with_a_missing_value_goes_to_the_batch_path(
    trained_flights: Path, december: pd.DataFrame
) -> None:
    """The batch path reads such a column as float64, DOUBLE in DuckDB, where
    `sched_dep_time // 100` divides without truncating: the compiled steps leave the request
    to it, and the served predictions are the batch path's."""
    bundle = Registry(trained_flights / ".mlcompile" / "registry").get(FLIGHTS, 1).bundle()
    state = bundle.meta["feature_state"]
    assert state["input_signature"]["sched_dep_time"] == "int64"
    model = booster(bundle)
    evaluator, _ = compile_features(state, model)
    assert evaluator is not None
    columns = input_columns(state["input_signature"])
    rows = json_rows(december.head(3))
    rows[1]["sched_dep_time"] = None
    values = read_rows(rows, columns)
    with pytest.raises(Inexact):
        evaluator.matrix(values, len(rows))
    batch = model_inputs(bundle, columns_frame(values, columns))
    assert batch["dep_hour"].iloc[0] == rows[0]["sched_dep_time"] / 100  # divided, not truncated
    alone = read_rows(rows[1:2], columns)  # the missing value alone is NaN either way
    one_batch = model_inputs(bundle, columns_frame(alone, columns))
    assert evaluator.matrix(alone, 1).tobytes() == _as_lightgbm_reads(one_batch).tobytes()


def test_a_custom_feature_is_served_by_the_batch_path(trained_flights: Path) -> None:
    bundle = Registry(trained_flights / ".mlcompile" / "registry").get(FLIGHTS, 1).bundle()
    state = json.loads(json.dumps(bundle.meta["feature_state"]))
    state["features"][0] = {**state["features"][0], "op": "custom", "function": "m:f"}
    evaluator, why = compile_features(state, booster(bundle))
    assert evaluator is None and "custom" in why
