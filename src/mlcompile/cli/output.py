"""Where results and diagnostics go, and how errors become one located message and an exit
code instead of a traceback."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click

from mlcompile import __version__
from mlcompile.errors import (
    WRITE_ERRNOS,
    Diagnostic,
    ExitCode,
    MlcompileError,
    WriteError,
    render_github,
    render_human,
    render_json,
    render_sarif,
)

FORMATS = ("human", "json", "github", "sarif")
F = TypeVar("F", bound=Callable[..., Any])


class Output:
    """Where results and diagnostics go, in the format the user chose."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.texts: dict[str, str] = {}

    def diagnostics(self, diagnostics: list[Diagnostic], summary: str | None = None) -> None:
        if self.fmt == "json":
            click.echo(render_json(diagnostics))
        elif self.fmt == "github":
            if diagnostics:
                click.echo(render_github(diagnostics))
            if summary:
                click.echo(summary, err=True)
        elif self.fmt == "sarif":
            click.echo(render_sarif(diagnostics, __version__))
        else:
            if diagnostics:
                click.echo(render_human(diagnostics, self.texts), err=True)
            if summary:
                click.echo(summary, err=True)

    def result(self, payload: dict[str, Any], human: str) -> None:
        if self.fmt == "json":
            click.echo(json.dumps(payload, indent=2, sort_keys=True))
        elif human:
            click.echo(human)


def _fail(output: Output, exc: MlcompileError) -> None:
    if exc.diagnostics:
        output.diagnostics(exc.diagnostics, f"mlcompile: {exc.message}")
    elif output.fmt == "json":
        click.echo(json.dumps({"error": exc.message, "exit_code": int(exc.exit_code)}, indent=2))
    else:
        click.echo(f"mlcompile: error: {exc.message}", err=True)
    sys.exit(int(exc.exit_code))


def handles_errors(func: F) -> F:
    """Map our errors to exit codes; anything else is a bug, reported briefly."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        output = Output(kwargs.get("fmt", "human"))
        kwargs["output"] = output
        try:
            return func(*args, **kwargs)
        except MlcompileError as exc:
            _fail(output, exc)
        except KeyboardInterrupt:
            click.echo("mlcompile: interrupted", err=True)
            sys.exit(130)
        except OSError as exc:
            # a folder that refuses a write is the environment, not a bug
            if exc.errno not in WRITE_ERRNOS or exc.filename is None:
                _internal(exc)
            _fail(output, WriteError(exc.filename, exc))
        except Exception as exc:
            _internal(exc)

    return wrapper  # type: ignore[return-value]


def _internal(exc: Exception) -> NoReturn:
    if os.environ.get("MLCOMPILE_FULL_ERROR") == "1":
        traceback.print_exception(exc)
    else:
        click.echo(
            f"mlcompile: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in mlcompile. Re-run with MLCOMPILE_FULL_ERROR=1 for the "
            "traceback and include it in a bug report.",
            err=True,
        )
    sys.exit(int(ExitCode.INTERNAL))
