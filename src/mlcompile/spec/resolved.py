"""What resolution learns about a spec, which the planner builds on.

Kept apart from the checks (and from pydantic) so that reading a plan's inputs costs no
validation machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlcompile.spec.models import Spec


@dataclass(frozen=True)
class GateCheck:
    """A gate check in one normal form, whichever way it was written.

    A comparison of two versions (`rmse[challenger] <= rmse[production] - 0.5`) has
    `versions` (the left bracket's alias, the right one's) and no slice; its `value` is the
    margin added to the right side's metric (-0.5 here, 0 when none is written)."""

    metric: str
    op: str | None
    value: float | None
    max_drop: float | None
    slice: str | None
    text: str
    versions: tuple[str, str] | None = None


@dataclass
class Resolved:
    spec: Spec
    project_root: Path
    source_inputs: dict[str, list[str]] = field(default_factory=dict)
    source_columns: dict[str, list[str] | None] = field(default_factory=dict)
    feature_inputs: dict[str, list[str]] = field(default_factory=dict)
    gate_checks: dict[str, list[GateCheck]] = field(default_factory=dict)
    monitor_checks: dict[str, list[GateCheck]] = field(default_factory=dict)
    # some path leaves the project, which the operator allowed
    paths_outside_project: bool = False
    # models whose features had selectors, now replaced by the names they select in `spec`
    selected: set[str] = field(default_factory=set)
