"""Sources: files exist and have a known format, SQL reads other sources, no cycles."""

from __future__ import annotations

import re
from pathlib import Path

from mlcompile import codes
from mlcompile.errors import did_you_mean
from mlcompile.spec.checks.context import Context, identifiers
from mlcompile.spec.checks.schemas import schema_columns
from mlcompile.spec.yaml_loader import KeyPath


def check(ctx: Context) -> None:
    spec = ctx.spec
    for name, source in spec.sources.items():
        at: KeyPath = ("sources", name)
        if source.path is not None:
            ctx.file_exists(source.path, (*at, "path"))
            if source.format is None and Path(source.path).suffix.lower() not in (
                ".csv",
                ".parquet",
                ".pq",
            ):
                ctx.error(
                    codes.INVALID_VALUE,
                    f"cannot tell the format of '{source.path}' from its name",
                    (*at, "path"),
                    "add 'format: csv' or 'format: parquet'",
                )
            ctx.out.source_inputs[name] = []
        else:
            assert source.sql is not None
            if source.inputs is not None:
                for index, other in enumerate(source.inputs):
                    ctx.ref(other, spec.sources, "source", (*at, "inputs", index))
                ctx.out.source_inputs[name] = [i for i in source.inputs if i in spec.sources]
            else:
                mentioned = dict.fromkeys(i for i in identifiers(source.sql) if i in spec.sources)
                mentioned.pop(name, None)
                ctx.out.source_inputs[name] = list(mentioned)
                left_out = ctx.broken.get("sources", set())
                if not mentioned and not left_out & set(identifiers(source.sql)):
                    _reads_no_source(ctx, name, source.sql)
        ctx.out.source_columns[name] = None
        if source.schema_ is not None and ctx.ref(
            source.schema_, spec.schemas, "schema", (*at, "schema")
        ):
            ctx.out.source_columns[name] = schema_columns(ctx, source.schema_)
    ctx.cycles(ctx.out.source_inputs, "sources", "source")


def _reads_no_source(ctx: Context, name: str, sql: str) -> None:
    """A SQL that names no source: most often a misspelt one (`FROM raws`), reported at
    the misspelt name with the source it is closest to."""
    others = [other for other in ctx.spec.sources if other != name]
    words = identifiers(sql)
    tables = [words[i + 1] for i, w in enumerate(words[:-1]) if w.upper() in ("FROM", "JOIN")]
    for word in [*tables, *words]:
        hint = did_you_mean(word, others)
        found = re.search(rf"(?<![\w\"]){re.escape(word)}(?![\w\"])", sql)
        if hint and found:
            ctx.error(
                codes.UNKNOWN_NAME,
                f"the SQL of source '{name}' reads no other source: '{word}' is not one",
                ("sources", name, "sql"),
                hint,
                inside=(sql, found.start()),
            )
            return
    ctx.error(
        codes.UNKNOWN_NAME,
        f"the SQL of source '{name}' reads no other source",
        ("sources", name, "sql"),
        "name other sources as tables, or list them under 'inputs'",
    )
