"""Feature engineering: fit on the training rows, apply anywhere from the fitted state.

`fit_features` learns every statistic (means, quantiles, categories, frequencies) from the
training rows only and returns a JSON-safe state; `apply_features` recomputes the model
inputs from raw rows and that state alone, so training, evaluation and scoring compute
features the same way.

Features run in the listed (dependency) order over a working frame that starts as the raw
rows; each feature's output is stored under its name, so later features, `expr` ones
included, may read earlier ones, and a feature named like a raw column replaces that column
for the features after it. Fixed conventions:

- `bucket` edges are cut points: the output is how many edges are <= the value (0 below
  the first edge, len(edges) above the last), so no value falls outside every bucket;
- `encode` with `max_categories` keeps the most frequent training categories (ties broken
  by value) and maps the rest, and unseen values, to `__other__`; without it, unseen values
  become missing (`category`, `ordinal`, `frequency` give NaN / 0.0, `onehot` all zeros);
- `custom` functions are stateless and their input columns are unknown, so they add nothing
  to the input signature.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from mlcompile.errors import DataValidationError, StepError, UsageError, did_you_mean
from mlcompile.expressions import TABLE, expression_problem, wrap
from mlcompile.featureops import PLAN_OPS, Reads

from .artifacts import json_safe
from .custom import load_function
from .ingest import isolated_connection

OTHER = "__other__"
UNSAFE_NAME = re.compile(r'[\[\]{}",:\s]')
DATE_PARTS = ("year", "month", "day", "hour", "minute", "dayofweek", "dayofyear", "week")
_DT_ACCESSORS = {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}  # pandas 4 names

Frame = Any  # pandas ships no type information; named for the reader
Fitted = dict[str, Any]


class _Feature:
    """One feature spec plus the context needed for error messages."""

    def __init__(self, spec: Mapping[str, Any], model: str) -> None:
        self.spec = spec
        self.model = model
        self.name = str(spec["name"])
        self.op = str(spec["op"])

    def fail(self, message: str) -> StepError:
        return StepError(f"model '{self.model}': feature '{self.name}' ({self.op}): {message}")

    def arg(self, key: str) -> Any:
        if self.spec.get(key) is None:
            raise UsageError(
                f"model '{self.model}': feature '{self.name}' ({self.op}) needs '{key}'"
            )
        return self.spec[key]

    def option(self, key: str) -> Any:
        """An option of the operation, or its declared default when the plan leaves it out."""
        value = self.spec.get(key)
        return value if value is not None else PLAN_OPS[self.op].defaults[key]

    def column(self, work: Frame) -> Any:
        name = self.arg("column")
        if name not in work.columns:
            hint = did_you_mean(str(name), map(str, work.columns))
            raise self.fail(f"column '{name}' is not in the data" + (f" ({hint})" if hint else ""))
        return work[name]

    def numeric(self, work: Frame) -> Any:
        series = self.column(work)
        if not pd.api.types.is_numeric_dtype(series.dtype):
            raise self.fail(f"column '{series.name}' must be numeric, not {series.dtype}")
        return series.astype("float64")


# ---- category helpers ------------------------------------------------------------------


def value_sort_key(value: Any) -> tuple[str, Any]:
    # Grouping by type name keeps mixed-type columns sortable and the order reproducible.
    return (type(value).__name__, value)


def _kept_categories(series: Any, max_categories: int | None) -> tuple[list[Any], bool]:
    """The training categories to keep, sorted, and whether the rest fold into OTHER."""
    counts = series.dropna().value_counts(sort=False)
    values = [json_safe(v) for v in counts.index.tolist()]
    pairs = zip(values, counts.tolist(), strict=True)
    ranked = sorted(pairs, key=lambda p: (-p[1], value_sort_key(p[0])))
    folded = max_categories is not None and len(ranked) > max_categories
    kept = [v for v, _ in (ranked[:max_categories] if folded else ranked)]
    return sorted(kept, key=value_sort_key), folded


def _as_category(series: Any, categories: Sequence[Any]) -> Any:
    # pandas is retiring the silent drop of values outside the categories: drop them first.
    known = series.where(series.isin(categories) | series.isna())
    return pd.Series(pd.Categorical(known, categories=categories), index=series.index)


def _fold(series: Any, fitted: Fitted) -> Any:
    """Categorical values over the kept categories; the rest become OTHER when folding."""
    levels = list(fitted["categories"])
    if fitted["other"]:
        known = series.isin(levels) | series.isna()
        series = series.astype(object).where(known, OTHER)
        levels.append(OTHER)
    return _as_category(series, levels)


def _safe_names(prefix: str, values: Sequence[Any]) -> list[str]:
    return lightgbm_names([f"{prefix}__{value}" for value in values])


def lightgbm_names(columns: Sequence[str]) -> list[str]:
    """Column names LightGBM accepts (it refuses JSON punctuation and spaces), still unique
    and readable in the model text; features keep their own names everywhere else."""
    names: list[str] = []
    for column in columns:
        base = UNSAFE_NAME.sub("_", str(column))
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return names


# ---- operations ------------------------------------------------------------------------


def _no_fit(feature: _Feature, work: Frame) -> Fitted:
    return {}


def _passthrough(feature: _Feature, work: Frame, fitted: Fitted) -> Any:
    return feature.column(work)


def _log(feature: _Feature, work: Frame, fitted: Fitted) -> Any:
    values = feature.numeric(work)
    return np.log1p(values.where(values >= 0))


def _date_part(feature: _Feature, work: Frame, fitted: Fitted) -> Any:
    part = feature.arg("part")
    if part not in DATE_PARTS:
        raise UsageError(f"model '{feature.model}': unknown date part '{part}' ({DATE_PARTS})")
    series = feature.column(work)
    if not pd.api.types.is_datetime64_any_dtype(series.dtype):
        try:
            series = pd.to_datetime(series, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise feature.fail(f"column '{series.name}' is not a date or time: {exc}") from None
    return date_part_of(series, part)


def date_part_of(series: pd.Series, part: str) -> pd.Series:
    """A part (one of DATE_PARTS) of each time of a datetime series, as float64 (NaN where
    missing); serving computes a large request's parts with it too."""
    if part == "week":
        return series.dt.isocalendar().week.astype("float64")
    return getattr(series.dt, _DT_ACCESSORS.get(part, part)).astype("float64")


def _fit_bucket(feature: _Feature, work: Frame) -> Fitted:
    if feature.spec.get("bins") is not None:
        return {"edges": sorted(float(b) for b in feature.spec["bins"])}
    quantiles = int(feature.arg("quantiles"))
    values = feature.numeric(work).dropna()
    if values.empty:
        raise feature.fail("no training values to fit quantiles on")
    cuts = np.quantile(values, [i / quantiles for i in range(1, quantiles)])
    return {"edges": sorted({float(c) for c in cuts})}


def _bucket(feature: _Feature, work: Frame, fitted: Fitted) -> Any:
    values = feature.numeric(work)
    index = np.searchsorted(np.asarray(fitted["edges"]), values.to_numpy(), side="right")
    return pd.Series(index, index=values.index, dtype="float64").where(values.notna())


def _fit_impute(feature: _Feature, work: Frame) -> Fitted:
    strategy = feature.option("strategy")
    if strategy == "constant":
        return {"value": feature.arg("value")}
    if strategy == "most_frequent":
        kept, _ = _kept_categories(feature.column(work), 1)
        value = kept[0] if kept else None
    elif strategy in ("mean", "median"):
        value = float(getattr(feature.numeric(work), strategy)())
    else:
        raise UsageError(f"model '{feature.model}': unknown impute strategy '{strategy}'")
    if value is None or pd.isna(value):
        raise feature.fail("the column has no training values to impute from")
    return {"value": value}


def _impute(feature: _Feature, work: Frame, fitted: Fitted) -> Any:
    return feature.column(work).fillna(fitted["value"])


def _fit_encode(feature: _Feature, work: Frame) -> Fitted:
    method = feature.option("method")
    series = feature.column(work)
    if method == "frequency":
        counts = series.dropna().value_counts(sort=False) / len(series)
        pairs = [[json_safe(v), float(f)] for v, f in counts.items()]
        return {"frequencies": sorted(pairs, key=lambda p: value_sort_key(p[0]))}
    limit = feature.spec.get("max_categories") if method in ("category", "onehot") else None
    categories, folded = _kept_categories(series, limit)
    fitted: Fitted = {"categories": categories, "other": folded}
    if method == "onehot":
        fitted["columns"] = _safe_names(feature.name, [*categories, *([OTHER] if folded else [])])
    elif method not in ("category", "ordinal"):
        raise UsageError(f"model '{feature.model}': unknown encode method '{method}'")
    return fitted


def _encode(feature: _Feature, work: Frame, fitted: Fitted) -> Any:
    method = feature.option("method")
    series = feature.column(work)
    if method == "frequency":
        table = {value: freq for value, freq in fitted["frequencies"]}
        return series.map(table).astype("float64").fillna(0.0).where(series.notna())
    encoded = _fold(series, fitted)
    if method == "category":
        return encoded
    codes = encoded.cat.codes.to_numpy()
    if method == "ordinal":
        return pd.Series(codes, index=series.index, dtype="float64").where(codes >= 0)
    columns = {name: (codes == i).astype("int8") for i, name in enumerate(fitted["columns"])}
    return pd.DataFrame(columns, index=series.index)


def _fit_scale(feature: _Feature, work: Frame) -> Fitted:
    values = feature.numeric(work)
    method = feature.option("method")
    if method == "standard":
        std = float(values.std(ddof=0))
        # A constant training column carries no scale; dividing by 1 keeps it finite.
        return {"center": float(values.mean()), "scale": std if std > 0 else 1.0}
    if method == "minmax":
        low, high = float(values.min()), float(values.max())
        return {"center": low, "scale": high - low if high > low else 1.0}
    raise UsageError(f"model '{feature.model}': unknown scale method '{method}'")


def _scale(feature: _Feature, work: Frame, fitted: Fitted) -> Any:
    return (feature.numeric(work) - fitted["center"]) / fitted["scale"]


def _tokens(expr: str) -> list[tuple[str, Any]]:
    """DuckDB's tokens of an expression: (text, token type)."""
    starts = duckdb.tokenize(expr)
    ends = [start for start, _ in starts[1:]] + [len(expr)]
    return [
        (expr[start:end].strip(), kind) for (start, kind), end in zip(starts, ends, strict=True)
    ]


def expr_references(expr: str, columns: Sequence[str]) -> list[str]:
    """The columns an SQL expression reads (DuckDB identifiers are case-insensitive)."""
    by_lower = {str(c).lower(): str(c) for c in columns}
    found: list[str] = []
    for text, kind in _tokens(expr):
        name = by_lower.get(text.strip('"').lower())
        if kind == duckdb.token_type.identifier and name is not None and name not in found:
            found.append(name)
    return found


_LOCAL = threading.local()


def _expression_connection() -> duckdb.DuckDBPyConnection:
    """One locked-down connection per thread, reused: opening one costs ~20 ms, which is most
    of the time of a one-row prediction. Expressions can change nothing in it (a single
    expression, no statements, configuration locked), so reuse is safe."""
    con = getattr(_LOCAL, "connection", None)
    if con is None:
        con = _LOCAL.connection = isolated_connection({})
    return con


def row_values(expr: str, frame: Frame) -> Any:
    """The expression's value on each row of `frame`, on the frame's index. ValueError with
    the reason when it is not a row-wise expression or DuckDB cannot compute it."""
    # the spec checks refused such text already; a plan from elsewhere gets no pass
    problem = expression_problem(expr)
    if problem is not None:
        raise ValueError(problem)
    con = _expression_connection()
    con.register(TABLE, frame)
    try:
        result = con.sql(wrap(expr)).df()["value"]
    except duckdb.Error as exc:
        raise ValueError(f"expression failed: {exc}") from None
    finally:
        con.unregister(TABLE)
    if len(result) != len(frame):
        raise ValueError(f"expression gave {len(result)} values for {len(frame)} rows")
    return result.set_axis(frame.index)


def _expr(feature: _Feature, work: Frame, fitted: Fitted) -> Any:
    try:
        return row_values(str(feature.arg("expr")), work)
    except ValueError as exc:
        raise feature.fail(str(exc)) from None


def _custom(feature: _Feature, work: Frame, fitted: Fitted) -> Any:
    target = str(feature.arg("function"))
    function = load_function(target, f"model '{feature.model}': feature '{feature.name}'")
    try:
        result = function(work.copy())
    except Exception as exc:  # user code: any failure is the feature's failure
        raise feature.fail(f"'{target}' raised {type(exc).__name__}: {exc}") from exc
    if isinstance(result, pd.DataFrame):
        if result.shape[1] != 1:
            raise feature.fail(f"'{target}' returned {result.shape[1]} columns, expected one")
        result = result.iloc[:, 0]
    values = np.asarray(result) if not isinstance(result, pd.Series) else result.to_numpy()
    if values.ndim != 1 or len(values) != len(work):
        raise feature.fail(f"'{target}' returned {values.shape} values for {len(work)} rows")
    return pd.Series(values, index=work.index)


@dataclass(frozen=True)
class _Op:
    fit: Callable[[_Feature, Frame], Fitted]
    apply: Callable[[_Feature, Frame, Fitted], Any]


# How each operation runs, keyed by its plan name; what it reads is declared in
# mlcompile.featureops (a test checks that both list the same operations).
OPS: dict[str, _Op] = {
    "passthrough": _Op(_no_fit, _passthrough),
    "expr": _Op(_no_fit, _expr),
    "log": _Op(_no_fit, _log),
    "date_part": _Op(_no_fit, _date_part),
    "bucket": _Op(_fit_bucket, _bucket),
    "impute": _Op(_fit_impute, _impute),
    "encode": _Op(_fit_encode, _encode),
    "scale": _Op(_fit_scale, _scale),
    "custom": _Op(_no_fit, _custom),
}


# ---- fit and apply ---------------------------------------------------------------------


def _features(specs: Sequence[Mapping[str, Any]], model: str) -> list[_Feature]:
    features = [_Feature(spec, model) for spec in specs]
    for feature in features:
        if feature.op not in OPS:
            hint = did_you_mean(feature.op, OPS)
            raise UsageError(
                f"model '{model}': feature '{feature.name}' has unknown op '{feature.op}'"
                + (f" ({hint})" if hint else "")
            )
    return features


def _store(work: Frame, feature: _Feature, output: Any) -> list[str]:
    """Put a feature's output into the working frame; returns the columns it occupies."""
    if isinstance(output, pd.DataFrame):
        for name in output.columns:
            work[name] = output[name]
        columns = [str(c) for c in output.columns]
    else:
        work[feature.name] = output
        columns = [feature.name]
    # checked here, before a later feature fits or applies a scale to an infinity
    refuse_infinities(work, columns, f"model '{feature.model}': feature '{feature.name}'")
    return columns


def _reads(feature: _Feature, columns: Sequence[str]) -> list[str]:
    reads = PLAN_OPS[feature.op].reads
    if reads is Reads.EXPR:
        return expr_references(str(feature.arg("expr")), columns)
    if reads is Reads.COLUMN:
        return [str(feature.arg("column"))]
    return []


def fit_features(train_df: pd.DataFrame, params: Mapping[str, Any]) -> dict[str, Any]:
    """The fitted feature state, learned from `train_df` (the training rows) only."""
    model = str(params.get("model"))
    target = params.get("target")
    features = _features(params.get("features") or [], model)
    if target is not None and target not in train_df.columns:
        raise StepError(f"model '{model}': target column '{target}' is not in the training rows")
    work = train_df.copy()
    raw = set(map(str, train_df.columns))
    produced: dict[str, list[str]] = {}
    signature: dict[str, str] = {}
    fitted_specs = []
    for feature in features:
        for column in _reads(feature, list(work.columns)):
            if column in raw and column not in produced and column not in signature:
                refuse_infinities(train_df, [column], f"model '{model}': input column")
                signature[column] = str(train_df[column].dtype)
        op = OPS[feature.op]
        fitted = json_safe(op.fit(feature, work))
        produced[feature.name] = _store(work, feature, op.apply(feature, work, fitted))
        fitted_specs.append({**feature.spec, "fitted": fitted})
    inputs = list(params.get("model_inputs") or [f.name for f in features])
    unknown = [name for name in inputs if name not in produced]
    if unknown:
        raise UsageError(f"model '{model}': model inputs {unknown} are not features")
    output_columns = [column for name in inputs for column in produced[name]]
    _check_model_inputs(work, output_columns, model)
    return {
        "model": model,
        "task": params.get("task"),
        "target": target,
        "carry": list(params.get("carry") or []),
        "features": fitted_specs,
        "model_inputs": inputs,
        "output_columns": output_columns,
        "categorical": {
            c: json_safe(work[c].cat.categories.tolist())
            for c in output_columns
            if isinstance(work[c].dtype, pd.CategoricalDtype)
        },
        "input_signature": signature,
    }


def _check_model_inputs(work: Frame, columns: Sequence[str], model: str) -> None:
    for column in columns:
        dtype = work[column].dtype
        if not (pd.api.types.is_numeric_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype)):
            raise StepError(
                f"model '{model}': model input '{column}' is {dtype}; LightGBM needs numbers "
                "or categories (add an 'encode' feature)"
            )


def _conform(frame: Frame, state: Mapping[str, Any]) -> Frame:
    """Categorical model inputs get exactly the training categories, whatever the rows hold."""
    for column, categories in state["categorical"].items():
        frame[column] = _as_category(frame[column], categories)
    return frame


def feature_frame(df: pd.DataFrame, state: Mapping[str, Any]) -> pd.DataFrame:
    """The raw columns plus every feature computed from them, before model inputs are
    chosen: monitoring measures an encoded feature on the values it encodes."""
    model = str(state.get("model"))
    missing = [c for c in state["input_signature"] if c not in df.columns]
    if missing:
        raise StepError(f"model '{model}': the data lacks input columns {missing}")
    refuse_infinities(df, state["input_signature"], f"model '{model}': input column")
    work = df.copy()
    for spec in state["features"]:
        feature = _Feature(spec, model)
        _store(work, feature, OPS[feature.op].apply(feature, work, spec["fitted"]))
    return work


def apply_features(df: pd.DataFrame, state: Mapping[str, Any]) -> pd.DataFrame:
    """Model input columns computed from raw rows and the fitted state, plus the target and
    carry columns when `df` has them (a carry column never shadows a model input)."""
    work = feature_frame(df, state)
    outputs = list(state["output_columns"])
    out = _conform(work[outputs].copy(), state)
    for column in dict.fromkeys([state.get("target"), *state.get("carry", [])]):
        if column in df.columns and column not in outputs:
            out[column] = df[column]
    return out.reset_index(drop=True)


def model_frame(df: pd.DataFrame, state: Mapping[str, Any]) -> pd.DataFrame:
    """The model input columns of already-transformed rows (a Parquet round trip may have
    dropped unused categories), named as LightGBM sees them."""
    missing = [c for c in state["output_columns"] if c not in df.columns]
    if missing:
        raise StepError(f"model '{state.get('model')}': transformed rows lack columns {missing}")
    frame = _conform(df[list(state["output_columns"])].copy(), state)
    frame.columns = lightgbm_names(frame.columns)
    return frame


def refuse_infinities(frame: pd.DataFrame, columns: Iterable[Any], what: str) -> None:
    """A data failure naming each of `columns` that holds inf or -inf, with its row count.

    Like scikit-learn (and unlike LightGBM, which bins an infinity with the largest values
    and so trains or predicts on a number nobody measured), an infinity is refused: it is
    a division by zero or a log of 0 upstream, not a measurement."""
    found = {}
    for name in columns:
        column = frame[name]
        if pd.api.types.is_float_dtype(column.dtype):
            # column by column: a copy of a wide frame would double a large step's memory
            count = int(np.isinf(column.to_numpy(dtype="float64", na_value=np.nan)).sum())
            if count:
                found[str(name)] = count
    if found:
        shown = ", ".join(f"'{c}' in {n} of {len(frame)} rows" for c, n in found.items())
        raise DataValidationError(
            f"{what} holds inf or -inf: {shown}; fix what makes them (a division by zero, "
            "a log of 0, the source), or replace them (CASE WHEN isinf(x) THEN NULL ...)"
        )
