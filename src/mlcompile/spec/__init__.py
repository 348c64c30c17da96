"""Load, compose and validate a spec. Nothing here knows about graphs or backends."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlcompile.errors import Diagnostic, SpecError
from mlcompile.spec.compose import Composed, compose
from mlcompile.spec.resolved import GateCheck, Resolved

if TYPE_CHECKING:
    from pydantic import ValidationError


@dataclass
class LoadedSpec:
    resolved: Resolved
    composed: Composed
    warnings: list[Diagnostic]


def load_spec(path: Path, overrides: list[str] | tuple[str, ...] = ()) -> LoadedSpec:
    """Compose and validate; raise SpecError listing every error found."""
    from mlcompile.spec.tables import type_ahead

    composed = compose(path, list(overrides))
    # DuckDB types the files while pydantic is imported and validates (its part of a cold
    # `validate` is as long as pydantic's)
    type_ahead(composed.project_root, composed.data)

    from pydantic import ValidationError

    from mlcompile.spec.compose_checks import overridden_profiles, unknown_entries
    from mlcompile.spec.diagnose import diagnostics_from_validation
    from mlcompile.spec.models import Spec
    from mlcompile.spec.resolve import resolve

    unknown = unknown_entries(composed)
    if unknown:
        raise SpecError(unknown)
    composing = overridden_profiles(composed)
    try:
        spec = Spec.model_validate(composed.data)
    except ValidationError as exc:
        shapes = diagnostics_from_validation(exc, composed, Spec)
        raise SpecError(_in_file_order([*shapes, *_references_despite(exc, composed)])) from None
    resolved, diagnostics = resolve(spec, composed)
    diagnostics = [*composing, *diagnostics]
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise SpecError(diagnostics)
    return LoadedSpec(resolved, composed, [d for d in diagnostics if d.severity != "error"])


def _references_despite(exc: ValidationError, composed: Composed) -> list[Diagnostic]:
    """The reference errors of the entries that have the right shape, so that one run
    reports both kinds. Entries with shape errors are left out, and names of theirs are
    taken as defined; when the spec's frame itself is wrong there is nothing to check."""
    from pydantic import ValidationError

    from mlcompile.spec.models import Spec
    from mlcompile.spec.resolve import resolve

    data = dict(composed.data) if isinstance(composed.data, dict) else None
    broken: dict[str, set[str]] = {}
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        if data is None or len(loc) < 2 or not isinstance(data.get(loc[0]), dict):
            return []  # a top-level key (name, settings, a section itself) is wrong
        broken.setdefault(loc[0], set()).add(loc[1])
    assert data is not None
    for section, names in broken.items():
        data[section] = {k: v for k, v in data[section].items() if k not in names}
    try:
        spec = Spec.model_validate(data)
    except ValidationError:
        return []
    _, diagnostics = resolve(spec, composed, broken)
    return [d for d in diagnostics if d.severity == "error"]


def _in_file_order(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    def where(d: Diagnostic) -> tuple[str, int, int]:
        span = d.span
        return (span.file, span.line, span.column) if span is not None else ("", 0, 0)

    return sorted(diagnostics, key=where)


__all__ = ["GateCheck", "LoadedSpec", "Resolved", "load_spec"]
