"""The options and arguments several commands share, declared once."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from mlcompile import paths
from mlcompile.cli.output import FORMATS, F
from mlcompile.uris import is_uri


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


def folder_option(*decls: str, help: str) -> Callable[[F], F]:
    """An optional folder path (None when not given)."""
    return click.option(
        *decls, type=click.Path(path_type=Path, file_okay=False), default=None, help=help
    )


def file_option(*decls: str, help: str) -> Callable[[F], F]:
    """An optional file path (None when not given)."""
    return click.option(
        *decls, type=click.Path(path_type=Path, dir_okay=False), default=None, help=help
    )


runs_dir_option = folder_option(
    "--runs-dir",
    help=f"Run records folder (default: backends.local.runs of the project's spec, else "
    f"{paths.RUNS}).",
)

registry_option = click.option(
    "--registry",
    # a folder, or an object store's URI (s3://bucket/prefix), which stays text
    type=str,
    default=lambda: os.environ.get("MLCOMPILE_REGISTRY") or None,
    help="Registry folder or s3://bucket/prefix (default: $MLCOMPILE_REGISTRY, else the "
    "project spec's settings.registry, else .mlcompile/registry).",
)

# the folder options a project supplies when they are not given (cli/project.py)
_FOLDERS = ("runs_dir", "registry")


def _location(value: str | Path) -> str | Path:
    """A folder option's value: a URI as written, else a path."""
    return value if isinstance(value, str) and is_uri(value) else Path(value)


def in_project(func: F) -> F:
    """Adds --project: the command's --runs-dir and --registry, when not given, are the
    project's, found from the current folder up like git's (`cli/project.py`); a command
    with a `project` parameter gets the project's folder too (None outside one, when every
    folder it reads was given)."""
    from mlcompile.cli.project import find_project, project_folders, project_option, project_root

    wants_project = "project" in inspect.signature(func).parameters

    @wraps(func)
    def wrapper(*args: Any, project: Path | None, **kwargs: Any) -> Any:
        given = {n: _location(kwargs[n]) for n in _FOLDERS if kwargs.get(n) is not None}
        kwargs.update(given)
        root = project_root(project) if project is not None else None
        if root is None:
            # a folder given explicitly belongs to the project around it, if any
            folders = (v for v in given.values() if isinstance(v, Path))
            root = next(filter(None, map(find_project, folders)), None)
        missing = [n for n in _FOLDERS if n in kwargs and n not in given]
        if root is None and (missing or (wants_project and not given)):
            root = project_root(None)
        if missing:
            assert root is not None
            kwargs.update({n: f for n, f in project_folders(root).items() if n in missing})
        if wants_project:
            kwargs["project"] = root
        return func(*args, **kwargs)

    return project_option(wrapper)  # type: ignore[return-value]


text_or_json = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
