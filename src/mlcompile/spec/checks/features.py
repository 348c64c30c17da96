"""Features: custom modules are trusted, expressions are one value per row, no cycles."""

from __future__ import annotations

from mlcompile import codes, expressions
from mlcompile.featureops import OPS, Reads
from mlcompile.spec.checks.context import Context, identifiers
from mlcompile.spec.models import Feature
from mlcompile.spec.yaml_loader import KeyPath
from mlcompile.trust import module_source


def check(ctx: Context) -> None:
    for name, feature in ctx.spec.features.items():
        inputs = feature_inputs(feature)
        ctx.out.feature_inputs[name] = [i for i in inputs if i in ctx.spec.features and i != name]
        if feature.custom is not None:
            source = module_source(feature.custom.split(":", 1)[0], ctx.root)
            if source.refusal is not None:
                ctx.error(
                    codes.UNTRUSTED_MODULE,
                    source.refusal,
                    ("features", name, "custom"),
                    source.hint,
                )
        if feature.expr is not None:
            expression(ctx, feature.expr, ("features", name, "expr"))
    ctx.cycles(ctx.out.feature_inputs, "features", "feature")


def expression(ctx: Context, expr: str, path: KeyPath) -> bool:
    """Whether `expr` is one value computed from its row; reported at `path` when not."""
    if expressions.accepted_before(ctx.root, expr):
        return True
    problem = expressions.expression_problem(expr)
    if problem is None:
        expressions.remember(ctx.root, expr)
        return True
    ctx.error(
        codes.NOT_A_ROW_EXPRESSION,
        f"the expression is not one value computed from its row: {problem}",
        path,
        "write one SQL expression over the row's columns, e.g. 'sched_dep_time // 100'; "
        "use a source's SQL for joins and aggregates",
        (expr, expressions.problem_offset(expr)),
    )
    return False


def feature_inputs(feature: Feature) -> list[str]:
    """The names a feature reads: columns, or features defined before it."""
    reads = OPS[feature.op].reads
    if reads is Reads.EXPR:
        return identifiers(str(feature.expr))
    if reads is Reads.COLUMN:
        return [str(feature.params()["column"])]
    return []
