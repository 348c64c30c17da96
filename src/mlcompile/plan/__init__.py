"""The Plan layer: DAG building, checks and fingerprints. Knows nothing of backends."""

from mlcompile.plan.model import (
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
    "PLAN_FORMAT",
    "STEP_KINDS",
    "InputRef",
    "Node",
    "Plan",
    "StepKind",
    "canonical_json",
    "sha256_text",
]
