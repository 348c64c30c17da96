"""The params of each step kind, as the plan builder writes them and the runtime reads them.

TypedDicts, so plan.json keeps its bytes (a node's params stay a plain mapping) while mypy
checks the keys on both sides. `outside_project` is set on the kinds that have path params
(StepDef.paths) when the operator allowed paths outside the project.
"""

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

from mlcompile.plan.kinds import StepKind


class IngestParams(TypedDict):
    source: str
    format: str  # csv, parquet or sql
    path: NotRequired[str]
    sql: NotRequired[str]
    tables: NotRequired[list[str]]
    csv: NotRequired[dict[str, Any]]  # CSV read options (csvformat), when the spec sets any
    outside_project: NotRequired[bool]


class ValidateParams(TypedDict):
    source: str
    schema: dict[str, Any]
    on_invalid: str


class SplitParams(TypedDict):
    model: str
    method: str
    test_size: float
    column: str | None
    seed: int
    target: str
    sample_rows: int | None


class FeaturesParams(TypedDict):
    model: str
    task: str
    target: str
    features: list[dict[str, Any]]
    model_inputs: list[str]
    carry: list[str]


class TrainParams(TypedDict):
    model: str
    task: str
    target: str
    num_class: int | None
    params: dict[str, Any]
    num_boost_round: int
    early_stopping_rounds: int | None
    validation_size: float | None
    seed: int
    # binary models whose spec sets one: a number, or a rule chosen on validation
    threshold: NotRequired[float | dict[str, Any]]
    positive_class: NotRequired[str | int | bool]  # binary models whose spec names one
    serving: NotRequired[dict[str, Any]]  # the model's `serving` spec, kept in its bundle


class TuneParams(TrainParams):
    """A train step's params (every trial trains as the train step does), and the search's."""

    metric: str
    greater_is_better: bool
    space: dict[str, dict[str, Any]]
    trials: int
    timeout_s: float | None
    tune_seed: int
    sampler: str
    pruning: bool
    storage: NotRequired[str]  # the study's SQLite file, relative to the project
    outside_project: NotRequired[bool]


class EvaluateParams(TypedDict):
    model: str
    task: str
    target: str
    metrics: list[str]
    slices: list[str]
    min_slice_rows: int
    custom_metrics: NotRequired[list[dict[str, Any]]]
    bootstrap: NotRequired[dict[str, Any]]


class GateParams(TypedDict):
    gate: str
    model: str
    registry: str
    registered_name: str
    compare_alias: str
    checks: list[dict[str, Any]]
    outside_project: NotRequired[bool]


class RegisterParams(TypedDict):
    deployment: str
    model: str
    registry: str
    registered_name: str
    alias: str | None
    outside_project: NotRequired[bool]


class ScoreParams(TypedDict):
    deployment: str
    model: str
    output: str
    format: str
    id_columns: list[str]
    outside_project: NotRequired[bool]


class KServeParams(TypedDict):
    deployment: str
    model: str
    registered_name: str
    namespace: str
    storage_uri: str | None
    output: str
    resources: dict[str, Any]
    outside_project: NotRequired[bool]
    canary_traffic_percent: NotRequired[int]


class MonitorParams(TypedDict):
    monitor: str
    model: str
    task: str
    target: str
    features: list[str]
    metrics: list[str]
    custom_metrics: NotRequired[list[dict[str, Any]]]
    slices: list[str]
    min_slice_rows: int
    registry: str
    registered_name: str
    alias: str
    reference: str
    current: dict[str, Any]
    labels: dict[str, Any] | None
    checks: list[dict[str, Any]]
    bins: int
    min_rows: int
    retrain_on: list[str]
    report: str
    challenger: NotRequired[str]
    outside_project: NotRequired[bool]


# Each kind's params class; tests check it names every key the builder writes.
PARAMS: Mapping[StepKind, type] = {
    StepKind.INGEST: IngestParams,
    StepKind.VALIDATE: ValidateParams,
    StepKind.SPLIT: SplitParams,
    StepKind.FEATURES: FeaturesParams,
    StepKind.TUNE: TuneParams,
    StepKind.TRAIN: TrainParams,
    StepKind.EVALUATE: EvaluateParams,
    StepKind.GATE: GateParams,
    StepKind.REGISTER: RegisterParams,
    StepKind.SCORE: ScoreParams,
    StepKind.KSERVE: KServeParams,
    StepKind.MONITOR: MonitorParams,
}
