"""Feature operations: what each one reads, takes and gives, declared once.

The spec, its checks, the plan builder and the typed pass read this table; the runtime's
fit/apply functions are keyed by the same `plan_op` names (runtime/features.py), and a test
holds the two together. The options and defaults of an operation live on its spec model
(`spec/models.py`); nothing else restates them. See docs/internals/feature-ops.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Reads(StrEnum):
    """Where an operation finds its input."""

    COLUMN = "column"  # one column (or earlier feature), named by the value or its `column`
    EXPR = "expr"  # the columns a SQL expression names
    NOTHING = "nothing"  # unknown to the compiler (a custom function)


class Kind(StrEnum):
    """Logical types the typed pass reasons with."""

    ANY = "any"
    NUMERIC = "numeric"
    TEMPORAL = "temporal"  # a date or time, or text the runtime parses as ISO 8601
    CATEGORY = "category"
    UNKNOWN = "unknown"  # only a run can tell


@dataclass(frozen=True)
class FeatureOp:
    name: str  # the key under `features.<name>` in the spec
    plan_op: str  # the `op` of the feature in the plan, which the runtime dispatches on
    doc: str
    reads: Reads
    # the plan key a bare value goes to, for operations whose value is not an options object
    value_key: str
    fitted: bool = False  # learns a statistic from the training rows
    # option defaults: the spec model's field defaults, and the runtime's for a plan that
    # leaves an option out
    defaults: Mapping[str, Any] = field(default_factory=dict)
    # the input an operation needs and the output it gives, from its plan parameters
    takes: Callable[[Mapping[str, Any]], Kind] = lambda params: Kind.ANY
    gives: Callable[[Mapping[str, Any]], Kind] = lambda params: Kind.NUMERIC


def _impute_takes(params: Mapping[str, Any]) -> Kind:
    return Kind.NUMERIC if params.get("strategy") in ("mean", "median") else Kind.ANY


def _encode_gives(params: Mapping[str, Any]) -> Kind:
    return Kind.CATEGORY if params.get("method") == "category" else Kind.NUMERIC


def _same_as_input(params: Mapping[str, Any]) -> Kind:
    return Kind.ANY


_DECLARED = (
    FeatureOp(
        "column",
        "passthrough",
        "a raw column as it is",
        Reads.COLUMN,
        "column",
        gives=_same_as_input,
    ),
    FeatureOp(
        "expr",
        "expr",
        "a DuckDB SQL expression over the row",
        Reads.EXPR,
        "expr",
        gives=lambda params: Kind.UNKNOWN,
    ),
    FeatureOp(
        "log",
        "log",
        "log(1 + column) of a non-negative number",
        Reads.COLUMN,
        "column",
        takes=lambda params: Kind.NUMERIC,
    ),
    FeatureOp(
        "date_part",
        "date_part",
        "a part of a date or time, as a number",
        Reads.COLUMN,
        "column",
        takes=lambda params: Kind.TEMPORAL,
    ),
    FeatureOp(
        "bucket",
        "bucket",
        "the bucket a number falls in, by edges or fitted quantiles",
        Reads.COLUMN,
        "column",
        fitted=True,
        takes=lambda params: Kind.NUMERIC,
    ),
    FeatureOp(
        "impute",
        "impute",
        "missing values filled from the training rows",
        Reads.COLUMN,
        "column",
        fitted=True,
        defaults={"strategy": "median"},
        takes=_impute_takes,
        gives=_same_as_input,
    ),
    FeatureOp(
        "encode",
        "encode",
        "categories as LightGBM categories, one-hot, ordinal or frequency",
        Reads.COLUMN,
        "column",
        fitted=True,
        defaults={"method": "category"},
        gives=_encode_gives,
    ),
    FeatureOp(
        "scale",
        "scale",
        "a number centred and scaled on the training rows",
        Reads.COLUMN,
        "column",
        fitted=True,
        defaults={"method": "standard"},
        takes=lambda params: Kind.NUMERIC,
    ),
    FeatureOp(
        "custom",
        "custom",
        "a project function of the rows",
        Reads.NOTHING,
        "function",
        gives=lambda params: Kind.UNKNOWN,
    ),
)

# In the spec's order: the order `Feature` declares its keys and error messages list them.
OPS: dict[str, FeatureOp] = {op.name: op for op in _DECLARED}
PLAN_OPS: dict[str, FeatureOp] = {op.plan_op: op for op in _DECLARED}
