"""validate, build, graph, schema and backends: the compiler's commands."""

from __future__ import annotations

from pathlib import Path

import click

from mlcompile.cli.compiling import compile_and_render, compile_with_texts
from mlcompile.cli.output import Output, handles_errors
from mlcompile.cli.params import (
    folder_option,
    format_option,
    overrides_argument,
    spec_argument,
    trust_options,
)
from mlcompile.compiler import emitted_files, publish_bundle, stale, write
from mlcompile.errors import ExitCode


@click.command()
@spec_argument
@overrides_argument
@format_option
@trust_options
@handles_errors
def validate(spec: Path, overrides: tuple[str, ...], fmt: str, output: Output) -> None:
    """Check a spec: composition, types, references, paths. Reports every error at once."""
    # the backends' own settings models check their sections (loaded only for such sections)
    compiled = compile_with_texts(spec, overrides, output, check_backends=True)
    output.diagnostics(compiled.warnings)
    if fmt != "human":
        return
    counts = compiled.counts
    click.echo(
        f"{spec}: ok ({counts['sources']} sources, {counts['features']} features, "
        f"{counts['models']} models, {counts['gates']} gates, "
        f"{counts['deployments']} deployments, {counts['monitoring']} monitors)"
    )


@click.command()
@spec_argument
@overrides_argument
@click.option("--backend", "-b", default="local", show_default=True, help="Backend to emit for.")
@folder_option("--out", "-o", help="Output folder (default: build/ next to the spec).")
@click.option("--check", is_flag=True, help="Write nothing; exit 6 if the output on disk is stale.")
@format_option
@trust_options
@handles_errors
def build(
    spec: Path,
    overrides: tuple[str, ...],
    backend: str,
    out: Path | None,
    check: bool,
    fmt: str,
    output: Output,
) -> None:
    """Compile a spec and emit plan.json and the backend's artifacts."""
    compiled, rendered, out_dir = compile_and_render(spec, overrides, backend, out, output)
    trees = emitted_files(compiled, rendered)
    if check:
        changed = stale(out_dir, trees)
        output.result(
            {"status": "stale" if changed else "fresh", "stale": changed, "out": str(out_dir)},
            "\n".join(f"stale: {out_dir / f}" for f in changed)
            or f"{out_dir}: up to date ({backend})",
        )
        if changed:
            raise SystemExit(int(ExitCode.STALE))
        return
    files = write(out_dir, trees)
    publish_bundle(rendered)
    output.result(
        {
            "status": "ok",
            "backend": backend,
            "out": str(out_dir),
            "files": files,
            "plan": {"nodes": len(compiled.plan.nodes), "spec_sha256": compiled.plan.spec_sha256},
        },
        f"built {compiled.plan.name} for {backend}: {len(compiled.plan.nodes)} steps, "
        f"{len(files)} files in {out_dir}",
    )


@click.command()
@spec_argument
@overrides_argument
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "mermaid", "json"]),
    default="text",
    show_default=True,
)
@click.option("--monitoring", is_flag=True, help="The monitoring job's DAG instead.")
@trust_options
@handles_errors
def graph(
    spec: Path, overrides: tuple[str, ...], fmt: str, monitoring: bool, output: Output
) -> None:
    """Print the pipeline's DAG as text, Mermaid, or the plan as JSON."""
    from mlcompile.plan.render import to_mermaid, to_text

    output.fmt = "human"
    compiled = compile_with_texts(spec, overrides, output)
    plan = compiled.monitoring() if monitoring else compiled.plan
    text = {"text": to_text, "mermaid": to_mermaid}.get(fmt, lambda p: p.to_json())(plan)
    click.echo(text, nl=False)


@click.command()
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write to a file.")
@click.option("--markdown", is_flag=True, help="The spec reference as Markdown instead.")
def schema(out: Path | None, markdown: bool) -> None:
    """Print the spec's JSON Schema (for editor completion), or its Markdown reference."""
    from mlcompile.spec.schema import spec_json_schema_text, spec_reference_markdown

    text = spec_reference_markdown() if markdown else spec_json_schema_text()
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


@click.command("backends")
def list_backends() -> None:
    """List installed backends."""
    from mlcompile.backends import available_backends

    for name, entry in sorted(available_backends().items()):
        click.echo(f"{name}\t{entry.value}")
