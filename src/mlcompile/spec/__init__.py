"""Load, compose and validate a spec. Nothing here knows about graphs or backends."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlcompile.errors import Diagnostic, SpecError
from mlcompile.spec.compose import Composed, compose
from mlcompile.spec.resolve import GateCheck, Resolved


@dataclass
class LoadedSpec:
    resolved: Resolved
    composed: Composed
    warnings: list[Diagnostic]


def load_spec(path: Path, overrides: list[str] | tuple[str, ...] = ()) -> LoadedSpec:
    """Compose and validate; raise SpecError listing every error found."""
    from pydantic import ValidationError

    from mlcompile.spec.diagnose import diagnostics_from_validation
    from mlcompile.spec.models import Spec
    from mlcompile.spec.resolve import resolve

    composed = compose(path, list(overrides))
    try:
        spec = Spec.model_validate(composed.data)
    except ValidationError as exc:
        raise SpecError(diagnostics_from_validation(exc, composed, Spec)) from None
    resolved, diagnostics = resolve(spec, composed)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise SpecError(diagnostics)
    return LoadedSpec(resolved, composed, [d for d in diagnostics if d.severity != "error"])


__all__ = ["GateCheck", "LoadedSpec", "Resolved", "load_spec"]
