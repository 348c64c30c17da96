"""Every path in the spec stays inside the project (unless the operator allowed more)."""

from __future__ import annotations

from mlcompile.spec.checks.context import Context


def check(ctx: Context) -> None:
    ctx.paths.check(ctx.spec, (), ctx.error)
