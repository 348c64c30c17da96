"""infer-schema: a starting schema for a source, from its data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlcompile.cli.compiling import compile_with_texts
from mlcompile.cli.output import Output, handles_errors
from mlcompile.cli.params import file_option, overrides_argument, spec_argument, trust_options
from mlcompile.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

    from mlcompile.plan import Plan


@click.command("infer-schema")
@spec_argument
@click.argument("source")
@overrides_argument
@file_option("--out", "-o", help="Write the schema to this file instead of printing it.")
@click.option(
    "--pandera",
    is_flag=True,
    help="A pandera YAML schema (for a schema's `file:`) instead of the spec's own form.",
)
@trust_options
@handles_errors
def infer_schema(
    spec: Path,
    source: str,
    overrides: tuple[str, ...],
    out: Path | None,
    pandera: bool,
    output: Output,
) -> None:
    """Print a starting schema for SOURCE: its columns' dtypes, which have missing values,
    the range of numeric ones and the values of text columns with few of them.

    SOURCE is a source of the spec (a SQL source runs over its inputs) or a CSV or Parquet
    file. The whole table is read. Review the result: it describes this data, not the
    rules the data must follow.
    """
    import yaml

    from mlcompile.runtime.infer import infer_columns, pandera_yaml

    compiled = compile_with_texts(spec, overrides, output)
    plans = [compiled.plan, *([compiled.monitor_plan] if compiled.monitor_plan else [])]
    name, frame, where = _table(plans, compiled.project_root, source)
    if pandera:
        text = pandera_yaml(frame, name)
    else:
        schema = {"schemas": {name: {"columns": infer_columns(frame)}}}
        body = yaml.safe_dump(
            schema, sort_keys=False, default_flow_style=None, width=100, allow_unicode=True
        )
        text = (
            f"# a starting schema, inferred from {len(frame)} rows of {where}:\n"
            f"# review it before relying on it; a source uses it with 'schema: {name}'\n{body}"
        )
    if out is None:
        click.echo(text, nl=False)
        return
    from mlcompile.backends.emit import write_text_atomic

    write_text_atomic(out, text)
    click.echo(f"wrote {out} ({len(frame.columns)} columns of {where})", err=True)


def _table(plans: list[Plan], root: Path, source: str) -> tuple[str, pd.DataFrame, str]:
    """The source's name, rows, and what they were read from (a source only monitors
    read is in the monitoring job's plan)."""
    from mlcompile.plan import StepKind
    from mlcompile.runtime.ingest import load_file

    ingests = {
        str(n.params["source"]): n.params
        for plan in plans
        for n in plan.nodes
        if n.kind is StepKind.INGEST
    }
    if source in ingests:
        params = ingests[source]
        where = f"source '{source}'" if params["format"] == "sql" else str(params["path"])
        return source, _read(ingests, source, root), where
    path = Path(source)
    if path.suffix.lower() in (".csv", ".parquet", ".pq") and path.is_file():
        fmt = "csv" if path.suffix.lower() == ".csv" else "parquet"
        return path.stem, load_file(path, fmt, path.stem), str(path)
    hint = did_you_mean(source, ingests)
    raise UsageError(
        f"'{source}' is neither a source of the spec nor a CSV or Parquet file"
        + (f" ({hint})" if hint else "")
    )


def _read(ingests: dict[str, Any], name: str, root: Path) -> pd.DataFrame:
    """The rows of a source, as its ingest step reads them; a SQL source over its inputs."""
    from mlcompile.runtime.artifacts import resolve_project_path
    from mlcompile.runtime.ingest import load_file, load_uri, run_sql
    from mlcompile.uris import is_uri

    params = ingests[name]
    if params["format"] == "sql":
        tables = {table: _read(ingests, table, root) for table in params.get("tables") or []}
        return run_sql(str(params["sql"]), tables, name)
    if is_uri(str(params["path"])):
        return load_uri(str(params["path"]), str(params["format"]), name, params.get("csv"))[0]
    # the operator's grant still decides whether a path may leave the project
    path = resolve_project_path(root, str(params["path"]), f"source '{name}'", outside_allowed=True)
    return load_file(path, str(params["format"]), name, params.get("csv"))
