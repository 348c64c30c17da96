"""Every column a model's features, split, target and batch scoring read is checked
against the typed source, with the type each operation takes and gives.

Features are typed in the order the runtime computes them, over a working row that starts
as the source's columns: an operation's input must exist and be of a kind it takes, its
output gets the kind it gives, and an `expr` is bound by DuckDB against that row.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mlcompile import codes
from mlcompile.errors import did_you_mean
from mlcompile.expressions import TABLE, expr_offset, wrap
from mlcompile.featureops import OPS, Kind, Reads
from mlcompile.spec.checks.context import Context, identifiers
from mlcompile.spec.checks.tables import is_number
from mlcompile.spec.models import BatchDeployment, Model
from mlcompile.spec.tables import Column, TableType, sql_type
from mlcompile.spec.yaml_loader import KeyPath

_UNKNOWN: Column = (None, Kind.UNKNOWN)
_FITS = {
    Kind.NUMERIC: {Kind.NUMERIC, Kind.BOOLEAN},
    Kind.TEMPORAL: {Kind.TEMPORAL},
}
_SQL_OF = {Kind.NUMERIC: "DOUBLE", Kind.CATEGORY: "VARCHAR"}


def check(ctx: Context) -> None:
    scoring: dict[str, list[tuple[str, BatchDeployment]]] = {}
    for deployment_name, deployment in ctx.spec.deployments.items():
        if isinstance(deployment, BatchDeployment):
            scoring.setdefault(deployment.model, []).append((deployment_name, deployment))
    for name, model in ctx.spec.models.items():
        table = ctx.tables.get(model.data)
        if table is None:
            continue
        raw_read = _type_features(ctx, model.data, table, model.feature_names)
        at: KeyPath = ("models", name)
        target = table.get(model.target)
        if model.task == "regression" and target is not None and target[1] is Kind.STRING:
            ctx.error(
                codes.TYPE_MISMATCH,
                f"a regression needs a numeric target; '{model.target}' holds text",
                (*at, "target"),
                "use task: binary or multiclass, or a numeric column",
            )
        if model.task == "binary" and target is not None:
            _binary_target(ctx, name, model, target[1])
        split = model.split
        column = table.get(split.column) if split.column else None
        if split.method == "time" and column is not None and column[1] is Kind.STRING:
            ctx.error(
                codes.TYPE_MISMATCH,
                f"a time split needs times or numbers; '{split.column}' holds text that is "
                "not ISO 8601",
                (*at, "split", "column"),
                "split on a date/time or numeric column, or parse it in the source's SQL",
            )
        for deployment_name, deployment in scoring.get(name, []):
            _scoring_source(ctx, deployment_name, deployment, raw_read)


def _binary_target(ctx: Context, name: str, model: Model, kind: Kind) -> None:
    """A text target needs its positive class named; a named one has the target's type."""
    at: KeyPath = ("models", name)
    positive = model.positive_class
    if positive is None:
        if kind is Kind.STRING:
            ctx.error(
                codes.TYPE_MISMATCH,
                f"a binary model on the text target '{model.target}' must be told which of "
                "its values is the positive class",
                (*at, "target"),
                f"add positive_class to model '{name}', e.g. positive_class: \"Yes\"",
            )
        return
    if kind in (Kind.NUMERIC, Kind.BOOLEAN) and isinstance(positive, str):
        ctx.error(
            codes.TYPE_MISMATCH,
            f"positive_class '{positive}' is text, but the target '{model.target}' holds "
            f"{'numbers' if kind is Kind.NUMERIC else 'true/false'}",
            (*at, "positive_class"),
            f"write it without quotes: {positive.strip()}"
            if kind is Kind.NUMERIC and is_number(positive)
            else "name a value the target holds, or leave positive_class out for a 0/1 target",
        )


def _needed(ctx: Context, wanted: list[str]) -> Iterator[str]:
    """The features and raw columns `wanted` computes from, dependencies first."""
    seen: set[str] = set()

    def visit(name: str) -> Iterator[str]:
        if name in seen:
            return
        seen.add(name)
        for dep in ctx.out.feature_inputs.get(name, []):
            yield from visit(dep)
        yield name

    for name in wanted:
        yield from visit(name)


def _type_features(
    ctx: Context,
    source: str,
    table: TableType,
    wanted: list[str],
) -> dict[str, str]:
    """Type the features over the source's row; returns the raw columns read, each with
    the feature that reads it."""
    row = dict(table)
    raw_read: dict[str, str] = {}
    computed: set[str] = set()  # features computed so far: a name here is no longer raw

    for name in _needed(ctx, wanted):
        definition = ctx.spec.features.get(name)
        if definition is None:
            if name in table:
                raw_read.setdefault(name, name)
            continue  # an unknown raw column is reported with the model's features
        op = OPS[definition.op]
        params = definition.params()
        path: KeyPath = ("features", name, definition.op)
        if op.reads is Reads.COLUMN:
            column = str(params["column"])
            where = (
                path if isinstance(getattr(definition, definition.op), str) else (*path, "column")
            )
            if column not in row:
                ctx.error(
                    codes.UNKNOWN_NAME,
                    f"unknown column '{column}': not a column of source '{source}', nor a feature",
                    where,
                    did_you_mean(column, row),
                    once=True,
                )
                row[name] = _UNKNOWN
                computed.add(name)
                continue
            if column not in computed:
                raw_read.setdefault(column, name)
            kind, needs = row[column][1], op.takes(params)
            if kind is not Kind.UNKNOWN and needs in _FITS and kind not in _FITS[needs]:
                ctx.error(
                    codes.TYPE_MISMATCH,
                    f"'{definition.op}' needs a {needs.value} column; '{column}' of source "
                    f"'{source}' is {kind.value} ({row[column][0]})",
                    where,
                    "encode text first, or use an operation that takes it",
                    once=True,
                )
            gives = op.gives(params)
            row[name] = row[column] if gives is Kind.ANY else (_SQL_OF.get(gives), gives)
        elif op.reads is Reads.EXPR:
            expr = str(params["expr"])
            for column in identifiers(expr):
                if column in table and column not in computed:
                    raw_read.setdefault(column, name)
            row[name] = bind_expr(ctx, expr, row, path)
        else:
            row[name] = _UNKNOWN
        computed.add(name)
    return raw_read


def bind_expr(ctx: Context, expr: str, row: TableType, path: KeyPath) -> Column:
    """The expression's type over `row`, bound by DuckDB; a binding error is reported at
    `path`, inside the expression where DuckDB says."""
    bound = sql_type(ctx.root, wrap(expr), {TABLE: row})
    if bound.table is not None:
        return next(iter(bound.table.values()), _UNKNOWN)
    message = (bound.problem or "").splitlines()[0]
    missing = _referenced_column(message)
    typed = all(kind is not Kind.UNKNOWN for _, kind in row.values())
    if bound.kind == "Binder" and (missing is not None or typed):
        ctx.error(
            codes.SQL_ERROR,
            f"the expression does not bind: {message}",
            path,
            did_you_mean(missing, row) if missing else None,
            (expr, expr_offset(expr, bound.position)),
            once=True,
        )
    return _UNKNOWN


def _referenced_column(message: str) -> str | None:
    found = re.search(r'Referenced column "([^"]+)" not found', message)
    return found[1] if found else None


def _scoring_source(
    ctx: Context, name: str, deployment: BatchDeployment, raw_read: dict[str, str]
) -> None:
    table = ctx.tables.get(deployment.source)
    if table is None:
        return
    at: KeyPath = ("deployments", name)
    for column, feature in raw_read.items():
        if column not in table:
            by = f"feature '{feature}'" if feature != column else "as a feature"
            ctx.error(
                codes.UNKNOWN_NAME,
                f"source '{deployment.source}' lacks column '{column}', which model "
                f"'{deployment.model}' reads ({by})",
                (*at, "source"),
                did_you_mean(column, table),
            )
    for index, column in enumerate(deployment.id_columns):
        if column not in table:
            ctx.error(
                codes.UNKNOWN_NAME,
                f"unknown id column '{column}': not a column of source '{deployment.source}'",
                (*at, "id_columns", index),
                did_you_mean(column, table),
            )
