"""Step kinds, each declared once: what it does, what its cache key covers beyond the plan,
what it leaves outside the store, whether it decides, which params are project paths; and
the node id every step has, made and read here only.

The runtime keys its own tables (the step functions, how to hash each kind of outside
state, how to check each kind of effect) by the same enums, and tests check that they
cover every member. docs/internals/step-kinds.md says how to add a kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class StepKind(StrEnum):
    """Every kind of step a plan holds; backends key per-step settings by these."""

    INGEST = "ingest"
    VALIDATE = "validate"
    SPLIT = "split"
    FEATURES = "features"
    TUNE = "tune"
    TRAIN = "train"
    EVALUATE = "evaluate"
    GATE = "gate"
    REGISTER = "register"
    SCORE = "score"
    KSERVE = "kserve"
    MONITOR = "monitor"


class OutsideState(StrEnum):
    """What a step reads that the plan cannot know, so its cache key must hash it."""

    NONE = "none"
    DATA_FILE = "data_file"  # the content of the source's file (not of a SQL query's inputs)
    SCHEMA_FILE = "schema_file"  # the content of a schema file, when the schema is one
    BASELINE = "baseline"  # the registry version a gate compares with
    CUSTOM_CODE = "custom_code"  # the source of the project's custom feature modules
    WATCHED_MODEL = "watched_model"  # the version at a monitor's alias, its prediction log


class Effect(StrEnum):
    """What a step leaves outside the artifact store; a cached step whose effect is gone
    runs again."""

    NONE = "none"
    FILE = "file"  # the file its `file` output records (path and sha256)
    REPORT = "report"  # the report its summary records
    REGISTRATION = "registration"  # the registry version it registered


@dataclass(frozen=True)
class StepDef:
    kind: StepKind
    does: str  # one line, for docs and `--help`-like listings
    outside: OutsideState = OutsideState.NONE
    effect: Effect = Effect.NONE
    # a decision output the run reports (gate and monitor verdicts)
    decides: bool = False
    # params that hold project-relative paths; a kind with any gets `outside_project` when
    # the operator allowed paths outside the project
    paths: tuple[str, ...] = ()


_DEFS = (
    StepDef(
        StepKind.INGEST,
        "read a source: a CSV or Parquet file, or a SQL query over other sources",
        outside=OutsideState.DATA_FILE,
        paths=("path",),
    ),
    StepDef(
        StepKind.VALIDATE,
        "check a dataset against its schema",
        outside=OutsideState.SCHEMA_FILE,
    ),
    StepDef(StepKind.SPLIT, "split a model's data into train and test"),
    StepDef(
        StepKind.FEATURES,
        "fit the feature transformer on the training rows",
        outside=OutsideState.CUSTOM_CODE,
    ),
    StepDef(
        StepKind.TUNE,
        "search a model's LightGBM parameters on the validation split (Optuna)",
        paths=("storage",),
    ),
    StepDef(StepKind.TRAIN, "train a LightGBM model"),
    StepDef(StepKind.EVALUATE, "compute a model's metrics on the test rows, overall and per slice"),
    StepDef(
        StepKind.GATE,
        "decide whether a model's metrics pass its checks",
        outside=OutsideState.BASELINE,
        decides=True,
        paths=("registry",),
    ),
    StepDef(
        StepKind.REGISTER,
        "register the model in the registry and move its alias",
        effect=Effect.REGISTRATION,
        paths=("registry",),
    ),
    StepDef(
        StepKind.SCORE,
        "score a dataset with the model and write the predictions",
        effect=Effect.FILE,
        paths=("output",),
    ),
    StepDef(
        StepKind.KSERVE,
        "write a KServe InferenceService manifest",
        effect=Effect.FILE,
        paths=("output",),
    ),
    StepDef(
        StepKind.MONITOR,
        "check drift and late-label performance of a registered model",
        outside=OutsideState.WATCHED_MODEL,
        effect=Effect.REPORT,
        decides=True,
        paths=("registry", "report", "current.prediction_log.path"),
    ),
)
STEP_DEFS: Mapping[StepKind, StepDef] = {d.kind: d for d in _DEFS}

STEP_KINDS: tuple[str, ...] = tuple(StepKind)
# Steps whose `decision` output a run reports: gate verdicts and monitor verdicts.
DECISION_KINDS = frozenset(k for k, d in STEP_DEFS.items() if d.decides)
# Steps whose params hold project-relative paths.
PATH_KINDS = frozenset(k for k, d in STEP_DEFS.items() if d.paths)

# ---- node ids ---------------------------------------------------------------------------

_SEPARATOR = ":"


def make_node_id(kind: StepKind, name: str) -> str:
    """The id of the `kind` step for `name` (a source, model, gate, deployment or monitor)."""
    return f"{kind}{_SEPARATOR}{name}"


def parse_node_id(text: str) -> tuple[StepKind, str] | None:
    """The kind and name of a node id; None for text that is not one (an input's own name)."""
    kind, separator, name = text.partition(_SEPARATOR)
    if not separator or kind not in STEP_KINDS:
        return None
    return StepKind(kind), name
