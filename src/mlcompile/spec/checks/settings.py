"""The settings section: keys that once let a spec grant itself trust."""

from __future__ import annotations

from mlcompile.spec.checks.context import Context


def check(ctx: Context) -> None:
    """Settings that once let a spec grant itself trust: still read, never obeyed."""
    settings = ctx.spec.settings
    written = settings.model_fields_set
    if "custom_modules" in written and settings.custom_modules:
        ctx.error(
            "W102",
            "settings.custom_modules is deprecated and allows nothing: trust never comes "
            "from the spec",
            ("settings", "custom_modules"),
            "remove it; project modules need no grant, and whoever runs mlcompile allows "
            "others with --allow-module NAME (see docs/trust-model.md)",
            severity="warning",
        )
    if "allow_paths_outside_project" in written and settings.allow_paths_outside_project:
        ctx.error(
            "W102",
            "settings.allow_paths_outside_project is deprecated and allows nothing: trust "
            "never comes from the spec",
            ("settings", "allow_paths_outside_project"),
            "remove it; whoever runs mlcompile allows paths outside the project with "
            "--allow-paths-outside-project (see docs/trust-model.md)",
            severity="warning",
        )
