"""Loading the functions of `custom` features, under the operator's trust.

A module that is a file of the project is loaded from that file, by path: the project
needs no PYTHONPATH, and nothing on the import path can stand in for it. Any other module
is imported only when the operator allows it (`mlcompile.trust`); the plan and the spec
have no say. Project modules are registered under their own names, so they may import
their package's other modules, and re-loaded when their file changes or another project's
file of that name is asked for.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import importlib.util
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from mlcompile.errors import StepError
from mlcompile.trust import module_source

_ROOT: contextvars.ContextVar[Path | None] = contextvars.ContextVar("project_root", default=None)
_LOCK = threading.RLock()
_STAMPS: dict[str, tuple[int, int]] = {}  # module name -> (size, mtime) of the file it ran


@contextlib.contextmanager
def project(root: Path) -> Iterator[None]:
    """Custom modules resolve against `root` while a step runs (each step thread sets its
    own; elsewhere, as in `mlcompile serve`, the working directory is the project)."""
    token = _ROOT.set(root)
    try:
        yield
    finally:
        _ROOT.reset(token)


def project_root() -> Path:
    return _ROOT.get() or Path.cwd()


def load_function(target: str, what: str) -> Callable[..., Any]:
    """The function `module:function` names, if the operator's trust allows its module."""
    module_name, _, function_name = target.partition(":")
    source = module_source(module_name, project_root())
    if source.refusal is not None:
        raise StepError(f"{what}: {source.refusal} ({source.hint})")
    try:
        with _LOCK:
            module = (
                _load_project_module(module_name, source.file, project_root().resolve())
                if source.file is not None
                else importlib.import_module(module_name)
            )
        function = getattr(module, function_name)
    except StepError:
        raise
    except Exception as exc:  # the module's own code failed to import: the feature's failure
        raise StepError(f"{what}: cannot load '{target}': {type(exc).__name__}: {exc}") from None
    if not callable(function):
        raise StepError(f"{what}: '{target}' is not a function")
    return function  # type: ignore[no-any-return]


def _load_project_module(name: str, file: Path, root: Path) -> ModuleType:
    """`a.b.c` from its project file, after the packages `a` and `a.b` it belongs to."""
    parts = name.split(".")
    for depth in range(1, len(parts)):
        folder = root.joinpath(*parts[:depth]).resolve()
        init = folder / "__init__.py"
        _load(".".join(parts[:depth]), init if init.is_file() else None, folder)
    return _load(name, file, file.parent if file.name == "__init__.py" else None)


def _load(name: str, file: Path | None, package_dir: Path | None) -> ModuleType:
    """The module `name` from the project `file` (None: a package folder without
    __init__.py), reusing what is loaded when it came from that same, unchanged file."""
    stamp = _stamp(file) if file is not None else (0, 0)
    loaded = sys.modules.get(name)
    if loaded is not None:
        # another project's file of the same name (a process that runs several projects, as
        # tests and servers do) is replaced; a module imported any other way never is
        if _origin(loaded) != (file or package_dir) and name not in _STAMPS:
            where = _origin(loaded) or "elsewhere"
            raise StepError(
                f"the project module '{name}' has the name of a module already imported from "
                f"{where}; rename the project's file"
            )
        if _origin(loaded) == (file or package_dir) and _STAMPS.get(name) == stamp:
            return loaded
    if file is None:
        spec = importlib.util.spec_from_loader(name, loader=None, is_package=True)
    else:
        locations = [str(package_dir)] if package_dir is not None else None
        spec = importlib.util.spec_from_file_location(
            name, file, submodule_search_locations=locations
        )
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    if file is None:
        module.__path__ = [str(package_dir)]
    sys.modules[name] = module
    try:
        if spec.loader is not None:
            spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        _STAMPS.pop(name, None)
        raise
    _STAMPS[name] = stamp
    return module


def _origin(module: ModuleType) -> Path | None:
    """The file a module ran, or the folder of a package without __init__.py."""
    file = getattr(module, "__file__", None)
    if file:
        return Path(file).resolve()
    paths = list(getattr(module, "__path__", []) or [])
    return Path(paths[0]).resolve() if len(paths) == 1 else None


def _stamp(file: Path) -> tuple[int, int]:
    stat = file.stat()
    return stat.st_size, stat.st_mtime_ns
