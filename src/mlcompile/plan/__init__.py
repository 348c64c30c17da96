"""The Plan layer: DAG building, checks and fingerprints. Knows nothing of backends."""

from mlcompile.plan.model import (
    DECISION_KINDS,
    PLAN_FORMAT,
    STEP_KINDS,
    InputRef,
    Node,
    Plan,
    StepKind,
    canonical_json,
    sha256_text,
)

__all__ = [
    "DECISION_KINDS",
    "PLAN_FORMAT",
    "STEP_KINDS",
    "InputRef",
    "Node",
    "Plan",
    "StepKind",
    "canonical_json",
    "sha256_text",
]
