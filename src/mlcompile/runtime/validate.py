"""Data validation with pandera: column rules from the spec, or a pandera YAML schema file.

Validation is lazy (every failure is collected) and produces a report aggregated per
(column, check). Dtypes are checked tolerantly, because the same logical column arrives with
different physical dtypes depending on the reader and on missing values:

- `int`: any integer dtype (numpy or nullable `Int64`), or a float column whose values are
  all whole numbers (an integer column with nulls read from CSV or Parquet is float64);
- `float`: any integer or float dtype; `bool`: `bool` or nullable `boolean`;
- `str`: pandas' string dtype, or object values that are all `str`;
- `datetime`: any datetime64 dtype, any unit, with or without time zone;
- `category`: a categorical column, or string values (categories are strings once read).

With `coerce`, columns are converted first (`int` to nullable `Int64`, `float` to float64,
`str` to the string dtype, `bool` to nullable `boolean`, `datetime` with `pd.to_datetime`,
`category` to categorical); values that cannot convert become missing and are reported
under the check `coerce(<dtype>)`.

Rules on the whole table (`min_rows`, `unique` combinations of columns, and `checks`, SQL
conditions every row satisfies) are pandera checks on the DataFrame, for an inline schema
and a pandera YAML file alike; each is reported once, for the table, with the failing rows'
values of the columns it reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pandera.pandas as pa
from pandera.errors import SchemaDefinitionError, SchemaErrors
from yaml import YAMLError

from mlcompile.csvformat import DTYPES
from mlcompile.errors import DataValidationError, StepError, UsageError

from .artifacts import json_safe, json_scalar, resolve_project_path
from .features import expr_references, row_values

MAX_EXAMPLES = 5

Series = Any  # pandas ships no type information; named for the reader
BoolSeries = Any


def _is_string_dtype(dtype: Any) -> bool:
    # pandas counts object columns as "string" whatever they hold; those are checked per value.
    return bool(pd.api.types.is_string_dtype(dtype)) and not pd.api.types.is_object_dtype(dtype)


_TYPES = pd.api.types
# Whether a column's dtype alone makes every value acceptable.
_ACCEPTED_DTYPE: dict[str, Callable[[Any], bool]] = {
    "int": _TYPES.is_integer_dtype,
    "float": lambda d: _TYPES.is_numeric_dtype(d) and not _TYPES.is_bool_dtype(d),
    "bool": _TYPES.is_bool_dtype,
    "datetime": _TYPES.is_datetime64_any_dtype,
    "str": _is_string_dtype,
    "category": lambda d: isinstance(d, pd.CategoricalDtype) or _is_string_dtype(d),
}


def _dtype_ok(dtype: str) -> Callable[[Series], BoolSeries]:
    """A vectorized check: which (non-null) values are acceptable for `dtype`."""

    def check(series: Series) -> BoolSeries:
        if _ACCEPTED_DTYPE[dtype](series.dtype):
            return pd.Series(True, index=series.index)
        if dtype == "int" and _TYPES.is_float_dtype(series.dtype):
            return np.floor(series) == series
        if dtype in ("str", "category") and _TYPES.is_object_dtype(series.dtype):
            return series.map(lambda v: isinstance(v, str)).astype(bool)
        return pd.Series(False, index=series.index)

    return check


def _coerce(series: Series, dtype: str) -> Series:
    if dtype == "int":
        numbers = pd.to_numeric(series, errors="coerce")
        return numbers.where(np.floor(numbers) == numbers).astype("Int64")
    if dtype == "float":
        return pd.to_numeric(series, errors="coerce").astype("float64")
    if dtype == "str":
        return series.astype("str")
    if dtype == "bool":
        if pd.api.types.is_bool_dtype(series.dtype):
            return series.astype("boolean")
        words = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
        return series.map(lambda v: words.get(str(v).strip().lower())).astype("boolean")
    if dtype == "datetime":
        return pd.to_datetime(series, errors="coerce")
    return series.astype("category")


def _arg(rule: Mapping[str, Any], key: str, column: str) -> Any:
    if key not in rule:
        raise UsageError(f"column '{column}': check '{rule.get('check')}' needs '{key}'")
    return rule[key]


def _label(kind: str, *args: Any) -> str:
    return f"{kind}({', '.join(repr(a) for a in args)})"


def _regex_check(column: str, pattern: str) -> pa.Check:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"column '{column}': invalid regex {pattern!r}: {exc}") from None
    return pa.Check(
        lambda s: s.astype(str).str.fullmatch(compiled).astype(bool),
        error=_label("regex", pattern),
    )


def _range_check(column: str, rule: Mapping[str, Any]) -> pa.Check:
    low, high = rule.get("min"), rule.get("max")
    if low is None and high is None:
        raise UsageError(f"column '{column}': check 'in_range' needs 'min' or 'max'")

    def inside(s: Series) -> BoolSeries:
        ok = pd.Series(True, index=s.index)
        if low is not None:
            ok &= s >= low
        if high is not None:
            ok &= s <= high
        return ok

    return pa.Check(inside, error=_label("in_range", low, high))


def _check(column: str, rule: Mapping[str, Any]) -> pa.Check:
    kind = rule.get("check")
    if kind in ("ge", "le", "gt", "lt"):
        value = _arg(rule, "value", column)
        compare: pa.Check = getattr(pa.Check, kind)(value, error=_label(kind, value))
        return compare
    if kind in ("isin", "notin"):
        values = list(_arg(rule, "values", column))
        membership: pa.Check = getattr(pa.Check, kind)(values, error=_label(kind, values))
        return membership
    if kind == "regex":
        return _regex_check(column, _arg(rule, "pattern", column))
    if kind == "in_range":
        return _range_check(column, rule)
    if kind == "str_length":
        low, high = rule.get("min"), rule.get("max")
        return pa.Check.str_length(low, high, error=_label("str_length", low, high))
    known = "ge, le, gt, lt, isin, notin, regex, in_range, str_length"
    raise UsageError(f"column '{column}': unknown check '{kind}' (known: {known})")


def _column(name: str, rules: Mapping[str, Any]) -> pa.Column:
    checks = [_check(name, rule) for rule in rules.get("checks") or []]
    dtype = rules.get("dtype")
    if dtype is not None:
        if dtype not in DTYPES:
            raise UsageError(f"column '{name}': unknown dtype '{dtype}' (known: {DTYPES})")
        checks.insert(0, pa.Check(_dtype_ok(dtype), error=f"dtype({dtype})"))
    return pa.Column(
        None,
        checks,
        nullable=bool(rules.get("nullable", False)),
        unique=bool(rules.get("unique", False)),
        required=bool(rules.get("required", True)),
        name=name,
    )


def _table_rules(schema: Mapping[str, Any]) -> list[tuple[str, pa.Check, list[str] | str]]:
    """The schema's rules on the whole table, in the order the spec writes them: each
    one's label, its pandera check, and the columns it reads (or the condition that says)."""
    rules: list[tuple[str, Callable[[pd.DataFrame], Any], list[str] | str]] = []
    if schema.get("min_rows") is not None:
        least = int(schema["min_rows"])
        rules.append((f"min_rows({least})", lambda df: len(df) >= least, []))
    for combination in schema.get("unique") or []:
        columns = [str(c) for c in combination]
        rules.append((f"unique({', '.join(columns)})", _unique(columns), columns))
    for expr in schema.get("checks") or []:
        rules.append((f"check({expr})", _condition(str(expr)), str(expr)))
    return [(label, pa.Check(holds, error=label), reads) for label, holds, reads in rules]


def _unique(columns: list[str]) -> Callable[[pd.DataFrame], Any]:
    def holds(df: pd.DataFrame) -> Any:
        if not set(columns) <= set(df.columns):
            return True  # the missing column is the failure (`required`), not the rows
        return ~df.duplicated(subset=columns, keep=False)

    return holds


def _condition(expr: str) -> Callable[[pd.DataFrame], BoolSeries]:
    def holds(df: pd.DataFrame) -> BoolSeries:
        values = row_values(expr, df)
        if not (_TYPES.is_bool_dtype(values.dtype) or values.map(_is_truth).all()):
            raise ValueError(f"the condition gives {values.dtype} values, not true/false")
        # as in a SQL CHECK constraint, a row where the condition is NULL passes
        return values.map(lambda v: v is not False and v is not np.False_).astype(bool)

    return holds


def _is_truth(value: Any) -> bool:
    return isinstance(value, bool | np.bool_) or bool(pd.isna(value))


def load_schema(schema: Mapping[str, Any], project_root: Path | None = None) -> pa.DataFrameSchema:
    """The pandera schema for the spec's `schema` params (column rules or a YAML file),
    with the spec's rules on the whole table."""
    if schema.get("file") is not None:
        name = schema.get("name")
        path = resolve_project_path(project_root or Path.cwd(), schema["file"], "schema file")
        if not path.is_file():
            raise StepError(f"schema '{name}': file not found: {path}")
        try:
            loaded = pa.DataFrameSchema.from_yaml(path.read_text(encoding="utf-8"))
        # pandera reports a malformed schema with whatever its parser tripped on.
        except (YAMLError, SchemaDefinitionError, AttributeError, KeyError, TypeError) as exc:
            raise StepError(f"schema '{name}': invalid pandera YAML {path}: {exc}") from None
        # a fresh object of ours: its checks are extended in place
        loaded.checks = [*loaded.checks, *(check for _, check, _ in _table_rules(schema))]
        return loaded
    columns = schema.get("columns") or {}
    return pa.DataFrameSchema(
        {name: _column(name, rules) for name, rules in columns.items()},
        checks=[check for _, check, _ in _table_rules(schema)],
        strict=bool(schema.get("strict", False)),
        name=schema.get("name"),
    )


def _coerce_columns(
    df: pd.DataFrame, columns: Mapping[str, Mapping[str, Any]]
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    out = df.copy()
    failures = []
    for name, rules in columns.items():
        dtype = rules.get("dtype")
        if dtype is None or name not in out.columns:
            continue
        before = out[name]
        after = _coerce(before, dtype)
        lost = before.notna() & after.isna()
        if lost.any():
            failures.append(_failure(name, f"coerce({dtype})", int(lost.sum()), before[lost]))
        out[name] = after
    return out, failures


def _failure(column: str | None, check: str, rows: int, values: Any) -> dict[str, Any]:
    distinct = pd.unique(pd.Series(values, dtype=object))[:MAX_EXAMPLES]
    examples = [json_scalar(v) for v in distinct]
    return {"column": column, "check": check, "failing_rows": rows, "examples": examples}


def _failures(
    cases: pd.DataFrame, df: pd.DataFrame, table: Mapping[str, list[str]]
) -> list[dict[str, Any]]:
    """pandera's failure cases, one entry per (column, check); one per rule on the whole
    table (`table`: their labels and the columns their examples show)."""
    out, rows = [], len(df)
    # A missing or unexpected column is a schema-level case whose "failure case" is its name.
    schema_level = {"column_in_dataframe": "required", "column_in_schema": "strict"}
    renamed = {"field_uniqueness": "unique"}
    for check, group in cases.groupby("check", sort=True, dropna=False):
        if check in schema_level:
            for column in group["failure_case"]:
                out.append(_failure(str(column), schema_level[check], rows, []))
            continue
        if str(check) in table:
            out.append(_table_failure(str(check), group, df, table[str(check)]))
            continue
        for column, part in group.groupby("column", sort=True, dropna=False):
            indices = part["index"].dropna()
            failing = indices.nunique() if len(indices) else len(part)
            name = None if pd.isna(column) else str(column)
            label = renamed.get(str(check), str(check))
            out.append(_failure(name, label, int(failing), part["failure_case"]))
    return out


def _table_failure(
    label: str, group: pd.DataFrame, df: pd.DataFrame, shown: list[str]
) -> dict[str, Any]:
    """A failed rule on the whole table: the rows that fail it, each example the values of
    the columns it reads; a rule failing as a whole (min_rows, or a condition DuckDB could
    not compute) fails every row, its example why."""
    indices = pd.unique(group["index"].dropna())
    if not len(indices):
        why = group["failure_case"].tolist()[:1]
        examples = [str(v) if isinstance(v, Exception) else json_scalar(v) for v in why]
        if label.startswith("min_rows("):
            examples = [f"{len(df)} rows"]
        return {"column": None, "check": label, "failing_rows": len(df), "examples": examples}
    rows = df.loc[indices, [c for c in shown if c in df.columns]].drop_duplicates()
    examples = [
        {c: json_scalar(v) for c, v in row.items()} for _, row in rows[:MAX_EXAMPLES].iterrows()
    ]
    return {"column": None, "check": label, "failing_rows": len(indices), "examples": examples}


def validate_frame(
    df: pd.DataFrame,
    schema_params: Mapping[str, Any],
    source: str,
    on_invalid: str,
    project_root: Path | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The (coerced) rows and the validation report. Never raises for invalid data: the
    caller writes the report first, then calls `raise_if_invalid`."""
    if on_invalid not in ("fail", "warn"):
        raise UsageError(f"source '{source}': on_invalid must be 'fail' or 'warn'")
    schema = load_schema(schema_params, project_root)
    failures: list[dict[str, Any]] = []
    if schema_params.get("coerce") and schema_params.get("file") is None:
        df, failures = _coerce_columns(df, schema_params.get("columns") or {})
    table = {
        label: reads if isinstance(reads, list) else expr_references(reads, list(df.columns))
        for label, _, reads in _table_rules(schema_params)
    }
    combined = {str(c) for columns in schema_params.get("unique") or [] for c in columns}
    for column in sorted(combined - set(df.columns)):
        failures.append(_failure(column, "required", len(df), []))
    try:
        df = schema.validate(df, lazy=True)
    except SchemaErrors as exc:
        failures += _failures(exc.failure_cases, df, table)
    failures.sort(key=lambda f: (f["column"] or "", f["check"]))
    report = {
        "source": source,
        "schema": schema_params.get("name"),
        "passed": not failures,
        "on_invalid": on_invalid,
        "rows": len(df),
        "failures": failures,
    }
    return df, json_safe(report)


def raise_if_invalid(report: Mapping[str, Any]) -> None:
    """`DataValidationError` when the data failed a schema whose policy is "fail"."""
    if report["passed"] or report["on_invalid"] != "fail":
        return
    listed = "; ".join(
        f"{f['column'] or '<table>'}: {f['check']} ({f['failing_rows']} rows)"
        for f in report["failures"]
    )
    raise DataValidationError(
        f"source '{report['source']}' failed schema '{report['schema']}': {listed}"
    )
