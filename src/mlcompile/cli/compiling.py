"""Compiling a spec for a command while keeping its source texts, so that diagnostics can
quote the offending line."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from mlcompile.cli.output import Output
from mlcompile.compiler import Compiled, Rendered, compile_spec, render
from mlcompile.errors import SpecError

T = TypeVar("T")


def with_texts(spec: Path, overrides: tuple[str, ...], output: Output, work: Callable[[], T]) -> T:
    """Run `work`, keeping the source texts so diagnostics can quote the offending line."""
    from mlcompile.spec.compose import COMMAND_LINE

    output.texts[COMMAND_LINE] = " ".join(overrides)
    try:
        return work()
    except SpecError:
        _remember_sources(spec, output)
        raise


def compile_with_texts(spec: Path, overrides: tuple[str, ...], output: Output) -> Compiled:
    compiled = with_texts(spec, overrides, output, lambda: compile_spec(spec, list(overrides)))
    output.texts.update(compiled.loaded.composed.texts())
    return compiled


def compile_and_render(
    spec: Path, overrides: tuple[str, ...], backend: str, out: Path | None, output: Output
) -> tuple[Compiled, Rendered, Path]:
    """What `build` and `run` share: the plan, the backend's files, and where they go."""
    compiled = compile_with_texts(spec, overrides, output)
    rendered = render(compiled, backend)
    if output.fmt == "human":
        output.diagnostics([*compiled.loaded.warnings, *rendered.warnings])
    return compiled, rendered, out if out is not None else spec.parent / "build"


def _remember_sources(spec: Path, output: Output) -> None:
    from mlcompile.spec.compose import display_path

    with contextlib.suppress(OSError, UnicodeDecodeError):
        output.texts[display_path(spec)] = spec.read_text(encoding="utf-8")
