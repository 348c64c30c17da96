"""Which project a command works on, found the way git finds its repository, and where that
project keeps its records.

Commands that read a project's records (registry, lineage, runs, report, serve) work from
any folder inside the project: the nearest folder, from the current one up, that holds a
`.mlcompile` folder or a spec file. `--project DIR` names it instead. Outside any project
they stop with exit 2 and say how to point at one, rather than report an empty registry of
a folder that was never a project. An option naming a folder (`--runs-dir`, `--registry`)
wins over the project's; the project's run records are where its spec keeps them
(backends.local.runs) and its registry where its settings.registry says, else in
mlcompile.paths' defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlcompile import paths
from mlcompile.errors import UsageError

if TYPE_CHECKING:
    from mlcompile.plan import Plan
    from mlcompile.runtime.registry import ModelRegistry

SPEC_FILE = "mlcompile.yaml"
SPEC_FILES = (SPEC_FILE, "mlcompile.yml")

project_option = click.option(
    "--project",
    "project",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help=f"The project folder (default: the nearest folder, from here up, holding "
    f"{paths.PROJECT_DIR}/ or {SPEC_FILE}).",
)


def is_project(folder: Path) -> bool:
    return (folder / paths.PROJECT_DIR).is_dir() or any((folder / f).is_file() for f in SPEC_FILES)


def find_project(start: Path) -> Path | None:
    start = start.resolve()
    return next((folder for folder in (start, *start.parents) if is_project(folder)), None)


def project_root(given: Path | None) -> Path:
    """The project a command works on: `given` (checked), else the one around the cwd."""
    if given is not None:
        if not is_project(given):
            raise UsageError(
                f"{given} is not an mlcompile project: it holds neither {paths.PROJECT_DIR}/ "
                f"nor {SPEC_FILE}"
            )
        return given.resolve()
    found = find_project(Path.cwd())
    if found is None:
        raise UsageError(
            f"not inside an mlcompile project: no {paths.PROJECT_DIR}/ folder or {SPEC_FILE} "
            "here or in any folder above; run this from inside a project, or pass --project DIR"
        )
    return found


def project_folders(root: Path) -> dict[str, Path | str]:
    """Where the project keeps its run records (backends.local.runs of its spec) and its
    model registry (settings.registry: a folder of the project or an object store's URI),
    else mlcompile.paths' defaults. A spec that does not compile is an error here, as it
    would be for `run`: a wrong folder would list someone else's runs or models without a
    word. The plan cache answers for a spec that did not change since it last compiled."""
    spec = root / SPEC_FILE
    if not spec.is_file():
        return {"runs_dir": root / paths.RUNS, "registry": root / paths.REGISTRY}
    from mlcompile.backends import get_backend
    from mlcompile.backends.local import local_folders
    from mlcompile.compiler import backend_settings, compile_cached
    from mlcompile.uris import is_uri

    compiled = compile_cached(spec, [])
    settings = backend_settings(compiled, get_backend("local"))
    _, runs_dir = local_folders(settings, compiled.plan, root)
    registry = registry_location(compiled.plan)
    return {
        "runs_dir": runs_dir,
        "registry": registry if is_uri(registry) else root / registry,
    }


def registry_location(plan: Plan) -> str:
    """The registry a plan's settings name: a folder relative to the project, or a URI."""
    return str(plan.settings.get("registry", paths.REGISTRY))


def plan_registry(plan: Plan, root: Path) -> ModelRegistry:
    """The registry a compiled plan's runs registered into: its settings.registry, a folder
    of the project at `root` or an object store's prefix. The plan was validated when it was
    built, so a folder it names outside the project was the operator's choice then."""
    from mlcompile.runtime.registry import open_registry

    return open_registry(registry_location(plan), root, outside_allowed=True)
