"""Schemas: the columns a schema names, written inline or in a pandera YAML file."""

from __future__ import annotations

from mlcompile.spec.checks.context import Context
from mlcompile.spec.yaml_loader import load_yaml_file


def schema_columns(ctx: Context, schema_name: str) -> list[str] | None:
    schema = ctx.spec.schemas[schema_name]
    if schema.columns is not None:
        return list(schema.columns)
    assert schema.file is not None
    if ctx.paths.problem(schema.file) is not None:
        return None  # reported with every other path; never read
    target = ctx.root / schema.file
    if not target.is_file():
        ctx.error(
            "E305",
            f"no such file: '{schema.file}'",
            ("schemas", schema_name, "file"),
            "paths are relative to the spec's folder",
        )
        return None
    located = load_yaml_file(target, schema.file)
    columns = located.data.get("columns") if isinstance(located.data, dict) else None
    if located.diagnostics or not isinstance(columns, dict):
        ctx.error(
            "E307",
            f"'{schema.file}' is not a pandera YAML schema with 'columns'",
            ("schemas", schema_name, "file"),
        )
        return None
    return [str(c) for c in columns]
