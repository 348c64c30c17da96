"""diff: what changed between two specs, or a spec and its git history."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click

from mlcompile.cli.output import Output, handles_errors
from mlcompile.cli.params import text_or_json, trust_options
from mlcompile.errors import UsageError


@click.command("diff")
@click.argument("old", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.argument("new", type=click.Path(path_type=Path, dir_okay=False, exists=True), required=False)
@click.option("--rev", default=None, help="Compare OLD with its own version at this git revision.")
@text_or_json
@trust_options
@handles_errors
def diff(old: Path, new: Path | None, rev: str | None, fmt: str, output: Output) -> None:
    """Compare two specs: steps added, removed and changed, and why.

    Give OLD and NEW, or one spec and --rev to compare it with its version at a git
    revision.
    """
    from mlcompile.cli.compiling import compile_with_texts
    from mlcompile.lineage.diff import diff_plans, diff_text

    if new is not None and rev is None:
        before = compile_with_texts(old, (), output).plan
        after = compile_with_texts(new, (), output).plan
    elif new is None and rev is not None:
        with _at_revision(old, rev) as earlier:
            before = compile_with_texts(earlier, (), output).plan
        after = compile_with_texts(old, (), output).plan
    else:
        raise UsageError("give NEW_SPEC, or --rev GITREV to compare OLD with its git history")
    result = diff_plans(before, after)
    output.result(result, diff_text(result))


@contextlib.contextmanager
def _at_revision(spec: Path, rev: str) -> Iterator[Path]:
    """The spec as it was at `rev`, in a temporary file next to it (so its relative paths and
    its conf/ folder resolve as they do for the spec itself); removed afterwards."""
    try:
        shown = subprocess.run(
            ["git", "show", f"{rev}:./{spec.name}"],
            cwd=spec.parent.resolve(),
            capture_output=True,
            check=False,
        )
    except OSError as exc:
        raise UsageError(f"cannot run git: {exc}") from None
    if shown.returncode != 0:
        message = shown.stderr.decode("utf-8", "replace").strip()
        raise UsageError(f"git show {rev}:{spec.name} failed: {message}")
    with tempfile.NamedTemporaryFile(
        dir=spec.parent, prefix=f".{spec.stem}.", suffix=spec.suffix, delete=False
    ) as handle:
        handle.write(shown.stdout)
    earlier = Path(handle.name)
    try:
        yield earlier
    finally:
        earlier.unlink(missing_ok=True)
