"""Checks that need the whole spec, and the resolved facts the planner builds on.

References between sections are by name and every one is checked (with "did you mean");
SQL and feature dependencies are inferred and checked for cycles; gate checks written as
text are parsed; paths must exist and stay inside the project. The checks themselves live
in `spec/checks/`, one module per section.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlcompile.errors import Diagnostic
from mlcompile.spec import checks
from mlcompile.spec.compose import Composed
from mlcompile.spec.models import Spec
from mlcompile.spec.resolved import Resolved


def resolve(
    spec: Spec, composed: Composed, broken: Mapping[str, set[str]] | None = None
) -> tuple[Resolved, list[Diagnostic]]:
    """Check what needs the whole spec. `broken` names the entries, by section, left out of
    `spec` for their shape errors (their names count as defined)."""
    ctx = checks.Context(spec, composed, broken)
    checks.run(ctx)
    ctx.out.paths_outside_project = ctx.paths.used_outside
    return ctx.out, ctx.diagnostics
