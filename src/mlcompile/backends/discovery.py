"""Find backends by entry point, loading only the one asked for."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from mlcompile.backends.base import ENTRY_POINT_GROUP, Backend
from mlcompile.errors import BackendError, UsageError, did_you_mean


def available_backends() -> dict[str, EntryPoint]:
    """Installed backends by name, without importing any of them."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def get_backend(name: str) -> Backend:
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
