"""Find backends by entry point, loading only the one asked for.

The built-in backend is known without scanning the installed distributions' entry points
(a scan costs a no-op run a sixth of its time); it keeps its entry point, so listings show
it like any plugin, and no plugin can take its name.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mlcompile.backends.base import ENTRY_POINT_GROUP, Backend
from mlcompile.errors import BackendError, UsageError, did_you_mean

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

# name -> "module:attribute", as mlcompile's own pyproject.toml registers it
BUILT_IN = {"local": "mlcompile.backends.local:LocalBackend"}


def available_backends() -> dict[str, EntryPoint]:
    """Installed backends by name, without importing any of them."""
    from importlib.metadata import EntryPoint, entry_points

    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return found | {
        name: EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in BUILT_IN.items()
    }


def get_backend(name: str) -> Backend:
    if name in BUILT_IN:
        # it meets the contract by its tests; an isinstance check would load its settings model
        built_in: Backend = _load(BUILT_IN[name])()
        return built_in
    found = available_backends()
    if name not in found:
        hint = did_you_mean(name, found) or "no backends are installed"
        raise UsageError(
            f"unknown backend '{name}' ({hint}); installed: {', '.join(sorted(found))}"
        )
    try:
        backend_class = found[name].load()
        backend = backend_class()
    except Exception as exc:  # a broken plugin must not look like a bug in mlcompile
        raise BackendError(f"backend '{name}' failed to load: {type(exc).__name__}: {exc}") from exc
    if not isinstance(backend, Backend):
        raise BackendError(f"backend '{name}' does not implement the Backend contract")
    return backend


def _load(value: str) -> Any:
    """What an entry point's value names, without importlib.metadata."""
    module, _, attribute = value.partition(":")
    return getattr(importlib.import_module(module), attribute)
