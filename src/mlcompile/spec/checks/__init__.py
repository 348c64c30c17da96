"""The checks that need the whole spec, one module per section of it.

Each module's `check(ctx)` reads the spec, records what it learns on `ctx.out` (the facts
the planner builds on) and reports through `ctx.error`. They run in `SECTIONS` order:
later sections rely on what earlier ones learned (models on the columns of sources, for
instance). A new check goes into its section's module, or into a new module listed here.
"""

from __future__ import annotations

from collections.abc import Callable

from mlcompile.spec.checks import (
    columns,
    credentials,
    deployments,
    features,
    gates,
    models,
    monitoring,
    paths,
    rules,
    selectors,
    settings,
    sources,
    tables,
)
from mlcompile.spec.checks.context import Context

SECTIONS: tuple[Callable[[Context], None], ...] = (
    credentials.check,
    settings.check,
    paths.check,
    sources.check,
    tables.check,
    rules.check,
    selectors.check,
    features.check,
    models.check,
    columns.check,
    gates.check,
    deployments.check,
    monitoring.check,
)


def run(ctx: Context) -> None:
    for check in SECTIONS:
        check(ctx)


__all__ = ["SECTIONS", "Context", "run"]
