"""Which project a command works on, found the way git finds its repository.

Commands that read a project's records (registry, lineage, runs, report, serve, monitor)
work from any folder inside the project: the nearest folder, from the current one up, that
holds a `.mlcompile` folder or a spec file. `--project DIR` names it instead. Outside any
project they stop with exit 2 and say how to point at one, rather than report an empty
registry of a folder that was never a project.
"""

from __future__ import annotations

from pathlib import Path

import click

from mlcompile.errors import UsageError

STATE_DIR = ".mlcompile"
SPEC_FILES = ("mlcompile.yaml", "mlcompile.yml")

project_option = click.option(
    "--project",
    "project",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The project folder (default: the nearest folder, from here up, holding .mlcompile "
    "or mlcompile.yaml).",
)


def is_project(folder: Path) -> bool:
    return (folder / STATE_DIR).is_dir() or any((folder / f).is_file() for f in SPEC_FILES)


def find_project(start: Path) -> Path | None:
    start = start.resolve()
    return next((folder for folder in (start, *start.parents) if is_project(folder)), None)


def project_root(given: Path | None) -> Path:
    """The project a command works on: `given` (checked), else the one around the cwd."""
    if given is not None:
        if not is_project(given):
            raise UsageError(
                f"{given} is not an mlcompile project: it holds neither {STATE_DIR}/ nor "
                f"{SPEC_FILES[0]}"
            )
        return given.resolve()
    found = find_project(Path.cwd())
    if found is None:
        raise UsageError(
            f"not inside an mlcompile project: no {STATE_DIR}/ folder or {SPEC_FILES[0]} here "
            "or in any folder above; run this from inside a project, or pass --project DIR"
        )
    return found


def project_folder(
    given: Path | None, project: Path | None, relative: str
) -> tuple[Path, Path | None]:
    """A records folder a command reads: as given (an explicit --runs-dir or --registry works
    anywhere), else `relative` in the project. Also the project, when there is one."""
    if given is not None:
        return given, project.resolve() if project is not None else find_project(given)
    root = project_root(project)
    return root / relative, root
