"""The options and arguments several commands share, declared once."""

from __future__ import annotations

import os
from functools import wraps
from pathlib import Path
from typing import Any

import click

from mlcompile import paths
from mlcompile.cli.output import FORMATS, F


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


def runner_options(func: F) -> F:
    """What every command that runs pipelines takes: the spec and its overrides, the backend,
    the build folder, parallel steps, quiet, and the operator's grants."""
    for option in reversed(
        [
            spec_argument,
            overrides_argument,
            click.option("--backend", "-b", default="local", show_default=True),
            click.option(
                "--out", "-o", type=click.Path(path_type=Path, file_okay=False), default=None
            ),
            click.option(
                "--jobs", "-j", type=int, default=0, help="Parallel steps (default: CPU cores)."
            ),
            click.option("--quiet", "-q", is_flag=True, help="No progress output."),
            trust_options,
        ]
    ):
        func = option(func)
    return func


runs_dir_option = click.option(
    "--runs-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help=f"Run records folder (default: backends.local.runs of ./mlcompile.yaml, else {paths.RUNS}).",
)

registry_option = click.option(
    "--registry",
    type=click.Path(path_type=Path, file_okay=False),
    default=lambda: Path(os.environ.get("MLCOMPILE_REGISTRY", paths.REGISTRY)),
    help=f"Registry folder (default {paths.REGISTRY}, or $MLCOMPILE_REGISTRY).",
)

text_or_json = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
