"""Data rules: a source's CSV read options and its schema's rules on the whole table are
checked against the source's table type, as a feature's columns are.

A `unique` combination names columns of the source; a row check (`checks:`) is one
row-wise expression that DuckDB binds, over the source's columns, to a true/false value;
`csv:` applies to CSV files, and its `dtypes` name the file's columns without
contradicting the schema. What only the data can tell (the row count, repeated
combinations, rows failing a check) is checked by the run's validate step.
"""

from __future__ import annotations

from pathlib import Path

from mlcompile import codes
from mlcompile.errors import did_you_mean
from mlcompile.featureops import Kind
from mlcompile.spec.checks.columns import bind_expr
from mlcompile.spec.checks.context import Context
from mlcompile.spec.checks.features import expression
from mlcompile.spec.models import Schema, Source
from mlcompile.spec.tables import FILE_FORMATS, TableType
from mlcompile.spec.yaml_loader import KeyPath

# (read as, schema's dtype) pairs the schema's tolerant dtype check lets pass
# (runtime/validate.py): whole numbers are floats, text is categories
_PASSES = {("int", "float"), ("str", "category")}


def check(ctx: Context) -> None:
    # every row check is one row-wise expression, whether a source uses its schema or not
    accepted = {
        (schema_name, i)
        for schema_name, schema in ctx.spec.schemas.items()
        for i, condition in enumerate(schema.checks or [])
        if expression(ctx, condition, ("schemas", schema_name, "checks", i))
    }
    for name, source in ctx.spec.sources.items():
        table = ctx.tables.get(name)
        schema = ctx.spec.schemas.get(source.schema_) if source.schema_ else None
        if source.csv is not None:
            _read_options(ctx, name, source, table, schema)
        if schema is not None:
            assert source.schema_ is not None
            _table_rules(name, source.schema_, schema, table, accepted, ctx)


def _read_options(
    ctx: Context, name: str, source: Source, table: TableType | None, schema: Schema | None
) -> None:
    assert source.csv is not None
    at: KeyPath = ("sources", name, "csv")
    fmt = source.format or (
        FILE_FORMATS.get(Path(source.path).suffix.lower()) if source.path else None
    )
    if fmt != "csv":
        what = "a SQL query" if source.sql is not None else f"a {fmt or 'non-CSV'} file"
        ctx.error(
            codes.CSV_OPTIONS_MISPLACED,
            f"source '{name}' is {what}: CSV read options do not apply to it",
            at,
            "remove 'csv:', or cast columns in a SQL source over it",
        )
        return
    rules = schema.columns if schema is not None and schema.columns is not None else {}
    for column, dtype in (source.csv.dtypes or {}).items():
        where: KeyPath = (*at, "dtypes", column)
        if table is not None and column not in table:
            ctx.error(
                codes.UNKNOWN_NAME,
                f"unknown column '{column}': not a column of source '{name}'",
                where,
                did_you_mean(column, table),
            )
        wanted = rules[column].dtype if column in rules else None
        fits = wanted is None or wanted == dtype or (dtype, wanted) in _PASSES
        if not fits and not (schema and schema.coerce):
            ctx.error(
                codes.DTYPE_CONFLICT,
                f"source '{name}' reads '{column}' as {dtype}, but its schema "
                f"'{source.schema_}' wants {wanted}",
                where,
                f"read it as {wanted}, or change the schema's dtype",
            )


def _table_rules(
    name: str,
    schema_name: str,
    schema: Schema,
    table: TableType | None,
    accepted: set[tuple[str, int]],
    ctx: Context,
) -> None:
    """The schema's unique combinations and row checks, against source `name`'s columns."""
    if table is None:
        return  # only a run can tell
    at: KeyPath = ("schemas", schema_name)
    for i, combination in enumerate(schema.unique or []):
        for j, column in enumerate(combination):
            if column not in table:
                ctx.error(
                    codes.UNKNOWN_NAME,
                    f"unknown column '{column}' in a unique combination: not a column of "
                    f"source '{name}'",
                    (*at, "unique", i, j),
                    did_you_mean(column, table)
                    or f"the source's columns: {', '.join(list(table)[:10])}",
                    None,
                    once=True,
                )
    for i, condition in enumerate(schema.checks or []):
        path: KeyPath = (*at, "checks", i)
        if (schema_name, i) not in accepted:
            continue
        sql, kind = bind_expr(ctx, condition, table, path)
        if kind not in (Kind.BOOLEAN, Kind.UNKNOWN):
            ctx.error(
                codes.NOT_A_CONDITION,
                f"the row check is not a condition: over source '{name}' it gives "
                f"{sql or kind.value}, not true/false",
                path,
                "compare it with something, e.g. 'casual + registered = bikers'",
                None,
                once=True,
            )
