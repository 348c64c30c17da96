"""The Plan layer: DAG building, checks and fingerprints. Knows nothing of backends."""

from mlcompile.plan.kinds import (
    DECISION_KINDS,
    PATH_KINDS,
    STEP_DEFS,
    STEP_KINDS,
    Effect,
    OutsideState,
    StepDef,
    StepKind,
    make_node_id,
    parse_node_id,
)
from mlcompile.plan.model import (
    PLAN_FORMAT,
    InputRef,
    Node,
    Plan,
    canonical_json,
    sha256_text,
)

__all__ = [
    "DECISION_KINDS",
    "PATH_KINDS",
    "PLAN_FORMAT",
    "STEP_DEFS",
    "STEP_KINDS",
    "Effect",
    "InputRef",
    "Node",
    "OutsideState",
    "Plan",
    "StepDef",
    "StepKind",
    "canonical_json",
    "make_node_id",
    "parse_node_id",
    "sha256_text",
]
