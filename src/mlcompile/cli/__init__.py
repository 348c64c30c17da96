"""The command line. Errors become one located message and an exit code, never a traceback.

Exit codes: 0 ok, 1 internal error (a bug), 2 invalid spec or usage, 3 data validation
failed, 4 a metric gate failed, 5 backend or run failure. MLCOMPILE_FULL_ERROR=1 shows the
full traceback of internal errors.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
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


def format_option(func: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="human",
        show_default=True,
        help="Output format for results and diagnostics.",
    )(func)


def _module_names(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    from mlcompile.trust import MODULE_NAME

    for value in values:
        if not MODULE_NAME.fullmatch(value):
            raise click.BadParameter(f"'{value}' is not a Python module name")
    return values


def trust_options(func: F) -> F:
    """The operator's grants, which a spec can never give itself (docs/trust-model.md): for
    this command and every step it runs, in threads or in processes it starts."""

    @wraps(func)
    def wrapper(
        *args: Any, allow_modules: tuple[str, ...], allow_paths_outside_project: bool, **kwargs: Any
    ) -> Any:
        from mlcompile.trust import granted

        with granted(allow_modules, allow_paths_outside_project):
            return func(*args, **kwargs)

    for option in (
        click.option(
            "--allow-paths-outside-project",
            is_flag=True,
            help="Let the spec's data and output paths leave the project folder.",
        ),
        click.option(
            "--allow-module",
            "allow_modules",
            multiple=True,
            metavar="NAME",
            callback=_module_names,
            help="Let custom features import this module (and its submodules), though it "
            "is not a file of the project. Repeatable.",
        ),
    ):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


spec_argument = click.argument("spec", type=click.Path(path_type=Path, dir_okay=False))
overrides_argument = click.argument("overrides", nargs=-1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlcompile")
def cli() -> None:
    """Compile a declarative ML pipeline spec into runnable pipelines.

    OVERRIDES are Hydra overrides: key=value, +key=value, ~key, group=option.
    """


def main() -> None:
    from mlcompile.cli import (  # noqa: F401  (registers the commands)
        commands,
        lineage_commands,
        monitor_commands,
        run_commands,
        serve_commands,
    )

    cli(prog_name="mlcompile")
