"""Every source gets a static table type: file headers and footers, SQL bound by DuckDB.

A strict schema is authoritative about which columns there are; a non-strict one only adds
to what the file shows, and when the file cannot be read it tells nothing (a partial list
of columns must not make the others unknown). Column checks elsewhere use `ctx.tables`.
"""

from __future__ import annotations

import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from mlcompile import codes
from mlcompile.errors import did_you_mean
from mlcompile.featureops import Kind
from mlcompile.spec.checks.context import Context
from mlcompile.spec.tables import FILE_FORMATS, Bound, TableType, file_type, sql_type

_UNKNOWN = (None, Kind.UNKNOWN)
# Words DuckDB's parser refuses as bare column names that turn up as column names in data.
_RESERVED = frozenset(
    [
        "all",
        "and",
        "any",
        "as",
        "asc",
        "case",
        "cast",
        "check",
        "column",
        "default",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "for",
        "from",
        "group",
        "having",
        "in",
        "intersect",
        "into",
        "limit",
        "not",
        "null",
        "offset",
        "on",
        "or",
        "order",
        "primary",
        "references",
        "select",
        "table",
        "then",
        "to",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "when",
        "where",
        "window",
        "with",
    ]
)


def check(ctx: Context) -> None:
    graph = {name: set(inputs) for name, inputs in ctx.out.source_inputs.items()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError:
        return  # reported as E302; nothing can be typed through a cycle
    for name in order:
        if name in ctx.spec.sources:
            ctx.tables[name] = _with_schema(ctx, name, _inferred(ctx, name))
            table = ctx.tables[name]
            ctx.out.source_columns[name] = list(table) if table is not None else None
    _schema_values(ctx)


def _inferred(ctx: Context, name: str) -> TableType | None:
    source = ctx.spec.sources[name]
    if source.path is not None:
        fmt = source.format or FILE_FORMATS.get(Path(source.path).suffix.lower())
        target = ctx.root / source.path
        if fmt is None or ctx.paths.problem(source.path) is not None or not target.is_file():
            return None
        options = source.csv.model_dump(exclude_none=True) if source.csv else None
        return file_type(ctx.root, target, fmt, options)
    assert source.sql is not None
    inputs = {i: ctx.tables.get(i) for i in ctx.out.source_inputs.get(name, [])}
    known = {i: t for i, t in inputs.items() if t is not None}
    if not inputs or len(known) != len(inputs):
        return None
    bound = sql_type(ctx.root, source.sql, known)
    if bound.problem is not None:
        _sql_problem(ctx, name, bound, known)
    return bound.table


def _sql_problem(ctx: Context, name: str, bound: Bound, inputs: dict[str, TableType]) -> None:
    assert bound.problem is not None
    message = bound.problem.splitlines()[0]
    all_typed = all(kind is not Kind.UNKNOWN for t in inputs.values() for _, kind in t.values())
    hint = None
    word = re.search(r'syntax error at or near "([^"]+)"|cannot contain (\w+)', message)
    reserved = next((w for w in (word.groups() if word else ()) if w), "")
    if reserved.lower() in _RESERVED:
        hint = f"'{reserved.lower()}' is a reserved word in SQL: quote the column as \"{reserved.lower()}\""
    elif bound.kind == "Catalog":
        table = re.search(r"Table with name (\S+) does not exist", message)
        if table:
            hint = did_you_mean(table[1], ctx.spec.sources)
    elif bound.kind == "Binder":
        column = re.search(r'Referenced column "([^"]+)" not found', message)
        if column is None and not all_typed:
            return  # a column of unknown type may be what does not bind: only a run can tell
        columns = [c for t in inputs.values() for c in t]
        hint = did_you_mean(column[1], columns) if column else None
    elif bound.kind != "Parser":
        return  # conversions and the like depend on values, which a run sees
    ctx.error(
        codes.SQL_ERROR,
        f"the SQL of source '{name}' does not bind: {message}",
        ("sources", name, "sql"),
        hint,
        inside=(ctx.spec.sources[name].sql or "", bound.position),
    )


def _with_schema(ctx: Context, name: str, found: TableType | None) -> TableType | None:
    source = ctx.spec.sources[name]
    listed = ctx.out.source_columns.get(name)
    schema = ctx.spec.schemas.get(source.schema_) if source.schema_ else None
    if schema is None or listed is None:
        return found
    if schema.strict:
        return {c: (found or {}).get(c, _UNKNOWN) for c in listed}
    if found is None:
        return None
    return {**found, **{c: _UNKNOWN for c in listed if c not in found}}


def _schema_values(ctx: Context) -> None:
    """`isin`/`notin` values of text on a numeric column fail every row at run time."""
    for name, source in ctx.spec.sources.items():
        schema = ctx.spec.schemas.get(source.schema_) if source.schema_ else None
        table = ctx.tables.get(name)
        if schema is None or schema.columns is None or table is None or schema.coerce:
            continue
        for column, rules in schema.columns.items():
            kind = table.get(column, _UNKNOWN)[1]
            if kind is not Kind.NUMERIC or rules.dtype == "str":
                continue
            for key in ("isin", "notin"):
                for index, value in enumerate(getattr(rules, key) or []):
                    if isinstance(value, str):
                        ctx.error(
                            codes.TYPE_MISMATCH,
                            f"'{value}' is text, but column '{column}' of source '{name}' "
                            "holds numbers",
                            ("schemas", source.schema_ or "", "columns", column, key, index),
                            f"write the number without quotes: {value.strip()}"
                            if is_number(value)
                            else "compare numbers with numbers",
                        )


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
