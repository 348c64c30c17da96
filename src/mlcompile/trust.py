"""Trust comes from whoever runs mlcompile, never from the spec it checks.

A spec says what to compute; it cannot widen what mlcompile may touch. There are two
grants, and only the operator gives them:

- Python modules that `custom` features may import. The project's own files (a module
  found by path under the project folder) need no grant; any other module (the standard
  library, site-packages) must be allowed by name.
- Paths outside the project folder, for data and outputs.

The operator grants them with the command line (`--allow-module NAME`,
`--allow-paths-outside-project`, which set the variables below for the command and the
steps it starts), with the environment (`MLCOMPILE_ALLOW_MODULES=a,b`,
`MLCOMPILE_ALLOW_PATHS_OUTSIDE_PROJECT=1`), or in the project's `pyproject.toml`:

    [tool.mlcompile]
    allow_modules = ["company_features"]
    allow_paths_outside_project = true

The spec checks ask this module at validate time and the runtime asks it again before it
imports a module or touches a path, so a plan file cannot carry trust either.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from mlcompile.errors import UsageError

MODULES_ENV = "MLCOMPILE_ALLOW_MODULES"
OUTSIDE_ENV = "MLCOMPILE_ALLOW_PATHS_OUTSIDE_PROJECT"
PYPROJECT = "pyproject.toml"
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})

HOW_TO_ALLOW_MODULE = (
    "to trust '{module}', whoever runs mlcompile passes --allow-module {module}, sets "
    f"{MODULES_ENV}={{module}}, or lists it in [tool.mlcompile] allow_modules in pyproject.toml"
)
HOW_TO_ALLOW_PATHS = (
    "use a path inside the spec's folder; to trust paths outside it, whoever runs mlcompile "
    f"passes --allow-paths-outside-project, sets {OUTSIDE_ENV}=1, or sets "
    "allow_paths_outside_project = true under [tool.mlcompile] in pyproject.toml"
)


class _PathMarker:
    def __repr__(self) -> str:
        return "PROJECT_PATH"


PROJECT_PATH = _PathMarker()
# A settings field holding a path relative to the project. Validation checks every field
# so typed, in the spec and in backends' settings, by one rule: it stays inside the project
# unless the operator allows otherwise.
ProjectPath = Annotated[str, PROJECT_PATH]


@dataclass(frozen=True)
class Grants:
    """What the operator allows for one project."""

    modules: tuple[str, ...] = ()
    paths_outside_project: bool = False

    def allows_module(self, module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in self.modules)


def grants(project_root: Path) -> Grants:
    """The operator's grants for the project at `project_root`: the environment (which the
    command-line flags set) and the project's pyproject.toml."""
    env_modules = _split_modules(os.environ.get(MODULES_ENV, ""), MODULES_ENV)
    env_outside = _flag(os.environ.get(OUTSIDE_ENV, ""), OUTSIDE_ENV)
    file_modules, file_outside = _pyproject(project_root / PYPROJECT)
    return Grants(
        modules=tuple(dict.fromkeys([*env_modules, *file_modules])),
        paths_outside_project=env_outside or file_outside,
    )


def _split_modules(text: str, where: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        if not MODULE_NAME.fullmatch(name):
            raise UsageError(f"{where}: '{name}' is not a Python module name")
    return names


def _flag(text: str, where: str) -> bool:
    value = text.strip().lower()
    if value not in _TRUE | _FALSE:
        raise UsageError(f"{where} must be 1 or 0 (true or false), not '{text}'")
    return value in _TRUE


def _pyproject(path: Path) -> tuple[list[str], bool]:
    if not path.is_file():
        return [], False
    import tomllib

    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("mlcompile")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if table is None:
        return [], False
    where = f"{path} [tool.mlcompile]"
    if not isinstance(table, dict):
        raise UsageError(f"{where} must be a table")
    unknown = sorted(set(table) - {"allow_modules", "allow_paths_outside_project"})
    if unknown:
        raise UsageError(
            f"{where}: unknown key '{unknown[0]}' (known: allow_modules, "
            "allow_paths_outside_project)"
        )
    modules = table.get("allow_modules", [])
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise UsageError(f"{where}: allow_modules must be a list of module names")
    outside = table.get("allow_paths_outside_project", False)
    if not isinstance(outside, bool):
        raise UsageError(f"{where}: allow_paths_outside_project must be true or false")
    return _split_modules(",".join(modules), f"{where} allow_modules"), outside


@contextlib.contextmanager
def granted(modules: Sequence[str], paths_outside_project: bool) -> Iterator[None]:
    """The command line's grants, for one command: they join the environment's, so the
    steps the command runs (in threads, or in processes it starts) see them, and they are
    gone when the command returns."""
    saved = {name: os.environ.get(name) for name in (MODULES_ENV, OUTSIDE_ENV)}
    try:
        if modules:
            current = os.environ.get(MODULES_ENV, "")
            os.environ[MODULES_ENV] = ",".join(p for p in (current, *modules) if p)
        if paths_outside_project:
            os.environ[OUTSIDE_ENV] = "1"
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ---- custom modules --------------------------------------------------------------------


@dataclass(frozen=True)
class ModuleSource:
    """Where a custom transform's module comes from, and whether it may be imported."""

    module: str
    file: Path | None = None  # the module's file in the project, found by path
    refusal: str | None = None  # why it may not be imported; None when it may
    hint: str | None = None  # how to make it importable, when it may not


def project_module_file(module: str, project_root: Path) -> Path | None:
    """The file of `module` under the project folder (`a/b.py` or `a/b/__init__.py` for
    `a.b`), resolved, when there is one and it does not lead out of the folder."""
    if not MODULE_NAME.fullmatch(module):
        return None
    root = project_root.resolve()
    *packages, leaf = module.split(".")
    folder = root.joinpath(*packages)
    for candidate in (folder / f"{leaf}.py", folder / leaf / "__init__.py"):
        if candidate.is_file():
            resolved = candidate.resolve()
            return resolved if resolved.is_relative_to(root) else None
    return None


def module_source(module: str, project_root: Path) -> ModuleSource:
    """May a custom transform import `module`? Yes when it is a file of the project or the
    operator allows it; the refusal says what the module is otherwise."""
    found = project_module_file(module, project_root)
    if found is not None:
        return ModuleSource(module, file=found)
    if grants(project_root).allows_module(module):
        return ModuleSource(module)
    allow = HOW_TO_ALLOW_MODULE.format(module=module)
    top = module.split(".", 1)[0]
    if top in sys.stdlib_module_names:
        what = "is a standard-library module"
    elif _installed(top):
        what = "is an installed module, not a file of the project"
    else:
        relative = "/".join(module.split("."))
        return ModuleSource(
            module,
            refusal=f"custom transform module '{module}' is not a file of the project",
            hint=f"put it in the spec's folder as {relative}.py; or, {allow}",
        )
    refusal = f"custom transform module '{module}' {what}, and nobody running mlcompile allowed it"
    return ModuleSource(module, refusal=refusal, hint=allow)


def _installed(top: str) -> bool:
    if top in sys.modules:
        return True
    import importlib.util

    # only the top-level name: finding a submodule would import (run) its package
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False
