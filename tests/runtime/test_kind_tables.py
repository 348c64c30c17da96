"""The runtime's tables are keyed by the plan's enums and cover every member."""

from __future__ import annotations

from mlcompile.plan import STEP_DEFS, Effect, OutsideState, StepKind
from mlcompile.runtime.executor import _EFFECT_IN_PLACE, _OUTSIDE_STATE
from mlcompile.runtime.steps import STEPS


def test_every_kind_has_its_step_function() -> None:
    assert set(STEPS) == set(StepKind) == set(STEP_DEFS)


def test_every_outside_state_and_effect_has_its_check() -> None:
    assert set(_OUTSIDE_STATE) == set(OutsideState)
    assert set(_EFFECT_IN_PLACE) == set(Effect)
    # no member is declared and never used
    assert {d.outside for d in STEP_DEFS.values()} == set(OutsideState)
    assert {d.effect for d in STEP_DEFS.values()} == set(Effect)
