"""A starting schema inferred from a table's rows, for `mlcompile infer-schema`.

Per column: its dtype, whether it has missing values, the range of a numeric column and,
for a text column with few distinct values, the values themselves. Everything is a pure
function of the rows, so the same data gives the same schema, byte for byte.
"""

from __future__ import annotations

from typing import Any

import pandas as pd  # type: ignore[import-untyped]

from .artifacts import json_safe
from .features import value_sort_key

# A text column with at most this many distinct values (and fewer than half as many as
# its rows) is a set of categories; more, and it is free text or an identifier.
MAX_CATEGORIES = 20


def infer_columns(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Column rules in the spec's schema form (`schemas.<name>.columns`), in file order."""
    return {str(name): _rules(df[name]) for name in df.columns}


def _rules(column: pd.Series) -> dict[str, Any]:
    values = column.dropna()
    rules: dict[str, Any] = {"dtype": _dtype(column, values)}
    if len(values) < len(column):
        rules["nullable"] = True
    if rules["dtype"] in ("int", "float") and len(values):
        low, high = json_safe(values.min()), json_safe(values.max())
        if low is not None and high is not None:  # json_safe makes infinities None
            if rules["dtype"] == "int":
                low, high = int(low), int(high)
            rules["in_range"] = {"min": low, "max": high}
    elif rules["dtype"] in ("str", "category"):
        distinct = values.unique().tolist()
        if 0 < len(distinct) <= MAX_CATEGORIES and len(distinct) * 2 <= len(values):
            rules["isin"] = sorted((json_safe(v) for v in distinct), key=value_sort_key)
    return rules


def _dtype(column: pd.Series, values: pd.Series) -> str:
    kind = column.dtype
    if pd.api.types.is_bool_dtype(kind):
        return "bool"
    if pd.api.types.is_integer_dtype(kind):
        return "int"
    if pd.api.types.is_float_dtype(kind):
        # pandas reads whole numbers with gaps as floats; the schema's int accepts them
        whole = len(values) > 0 and bool((values == values.round()).all())
        return "int" if whole else "float"
    if pd.api.types.is_datetime64_any_dtype(kind):
        return "datetime"
    if isinstance(kind, pd.CategoricalDtype):
        return "category"
    return "str"


_PANDERA_DTYPES = {"bool": "bool", "float": "float64", "datetime": "datetime64[ns]"}


def pandera_yaml(df: pd.DataFrame, name: str) -> str:
    """The same rules as a pandera YAML schema (pandera's own writer), which a spec's
    `schemas.<name>.file` can name."""
    import pandera.pandas as pa

    columns = {}
    for column, rules in infer_columns(df).items():
        checks = []
        if "in_range" in rules:
            bounds = rules["in_range"]
            checks.append(pa.Check.in_range(bounds["min"], bounds["max"]))
        if "isin" in rules:
            checks.append(pa.Check.isin(rules["isin"]))
        dtype = _PANDERA_DTYPES.get(rules["dtype"])
        if rules["dtype"] == "int":
            # an int column with gaps is read as floats: its exact dtype is what was read
            dtype = str(df[column].dtype)
        columns[column] = pa.Column(
            dtype, checks, nullable=bool(rules.get("nullable", False)), name=column
        )
    text = pa.DataFrameSchema(columns, name=name).to_yaml()
    assert text is not None  # pandera returns the text when given no stream to write to
    return text
