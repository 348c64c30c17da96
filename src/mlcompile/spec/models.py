"""The spec as written: frozen pydantic models, one per section.

These models check shapes and types. Checks that need the whole spec (references between
sections, cycles, metrics a task produces, paths) live in `spec.checks`.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from mlcompile import paths
from mlcompile.csvformat import DTYPES, ENCODINGS
from mlcompile.expressions import MAX_LENGTH as MAX_EXPR_LENGTH
from mlcompile.featureops import OPS
from mlcompile.names import ALIAS_MAX_LENGTH, ALIAS_PATTERN
from mlcompile.tasks import LOWER_IS_BETTER, TASK_METRICS
from mlcompile.trust import ProjectPath

__all__ = ["LOWER_IS_BETTER", "TASK_METRICS"]

Name = Annotated[str, Field(min_length=1, max_length=200)]
Task = Literal["binary", "multiclass", "regression"]
Alias = Annotated[str, Field(pattern=ALIAS_PATTERN, max_length=ALIAS_MAX_LENGTH)]
# A bound or a value that NaN or infinity would make meaningless (every comparison false).
Finite = Annotated[float, Field(allow_inf_nan=False)]


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("NaN and infinity never equal a value: write a finite number")
    return value


# A value to compare data with: text, a whole number, a finite number or true/false.
Scalar = Annotated[str | int | float | bool, AfterValidator(_finite)]
# A value to fill gaps with.
Fill = Annotated[str | int | float, AfterValidator(_finite)]
# LightGBM and numpy take seeds as 32-bit C integers.
Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]
MAX_CHECK_LENGTH = 500
CUSTOM_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"


class Frozen(BaseModel):
    # defer_build: validators are built on first use, not at import, so a command that
    # imports these models without validating a spec does not pay for thirty validators
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, defer_build=True)


def _exactly_one(model: BaseModel, fields: tuple[str, ...], what: str) -> None:
    given = [f for f in fields if getattr(model, f) is not None]
    if len(given) != 1:
        listed = ", ".join(f"'{f}'" for f in fields)
        found = f"found {', '.join(repr(g) for g in given)}" if given else "found none"
        raise ValueError(f"{what} needs exactly one of {listed}; {found}")


# ---- settings ---------------------------------------------------------------------------


# An environment variable's name, as POSIX shells accept it: never a secret's value.
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"


class HttpTransport(Frozen):
    """POST each event to an OpenLineage backend (Marquez, for one) over HTTP."""

    type: Literal["http"] = Field(description="`http`: the OpenLineage client's HTTP transport.")
    url: str = Field(
        min_length=1,
        max_length=2000,
        description="The backend's base URL, http:// or https://, without credentials.",
    )
    endpoint: str = Field(
        "api/v1/lineage",
        min_length=1,
        max_length=500,
        description="The path events are posted to, relative to `url`.",
    )
    timeout_s: float = Field(
        5.0, gt=0, le=600, description="Seconds to wait for the backend before giving up."
    )
    api_key_env: str | None = Field(
        None,
        json_schema_extra={"pattern": ENV_NAME_PATTERN},
        description="The NAME of the environment variable holding the backend's API key, "
        "sent as a bearer token and read by each step when it sends. Never the key itself.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"'{url}' is not an http:// or https:// URL with a host")
        if parts.username or parts.password:
            # its own error type: the message must not repeat the secret
            raise PydanticCustomError(
                "credential_ref", "a URL must not hold credentials: name them with api_key_env"
            )
        return url

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, name: str | None) -> str | None:
        if name is not None and not re.fullmatch(ENV_NAME_PATTERN, name):
            # what was written here may be the key itself: the message does not repeat it
            raise PydanticCustomError(
                "credential_ref",
                "must be the NAME of an environment variable (like MARQUEZ_API_KEY) that holds "
                "the key, never the key itself",
            )
        return name


class ConsoleTransport(Frozen):
    """Print each event to the step's log, through the client's console transport."""

    type: Literal["console"] = Field(description="`console`: the client's console transport.")


Transport = Annotated[HttpTransport | ConsoleTransport, Field(discriminator="type")]


class Lineage(Frozen):
    """Where events go besides the project's event log, which is always written. Kafka and
    the client's other transports are configured the client's own way (openlineage.yml or
    OPENLINEAGE__TRANSPORT__*): its Kafka transport needs confluent-kafka, not installed."""

    transport: Transport = Field(description="The OpenLineage transport every step sends to.")


class Settings(Frozen):
    """Project-wide knobs. Paths are relative to the spec's folder."""

    seed: Seed = Field(42, description="Seed for splits and training unless a model sets its own.")
    registry: ProjectPath = Field(
        paths.REGISTRY,
        description="Where the model registry lives: a folder of the project, or an object "
        "store's prefix (s3://bucket/prefix; gs://, az:// untested) that concurrent pipelines "
        "may change safely.",
    )
    store: ProjectPath = Field(paths.STORE, description="Folder of the local artifact cache.")
    custom_modules: list[str] = Field(
        default_factory=list,
        description="Deprecated, and grants nothing: trust never comes from the spec. Custom "
        "transforms may use the project's own modules; others need the operator's "
        "--allow-module, MLCOMPILE_ALLOW_MODULES or pyproject.toml (docs/trust-model.md).",
        json_schema_extra={"deprecated": True},
    )
    sample_rows: int | None = Field(
        None,
        ge=1,
        description="Train and evaluate each model on a seeded sample of at most this many rows "
        "of its data (sources are still read and checked in full).",
    )
    allow_paths_outside_project: bool = Field(
        False,
        description="Deprecated, and grants nothing: trust never comes from the spec. Paths "
        "outside the project need the operator's --allow-paths-outside-project, "
        "MLCOMPILE_ALLOW_PATHS_OUTSIDE_PROJECT=1 or pyproject.toml (docs/trust-model.md).",
        json_schema_extra={"deprecated": True},
    )
    deploy: bool = Field(
        True,
        description="false: an experiment. Models are trained, evaluated and gated and the run "
        "is recorded, but no deployment runs (nothing registered, scored or written for "
        "KServe). `mlcompile run --no-deploy` sets it.",
    )
    lineage: Lineage | None = Field(
        None,
        description="Where every step also sends its OpenLineage events (an HTTP backend, the "
        "console); unset: the client's own configuration, if any (docs/auditor-guide.md).",
    )


# ---- sources and schemas ----------------------------------------------------------------


Dtype = Literal["int", "float", "str", "bool", "datetime", "category"]
Encoding = Literal["utf-8", "utf-16", "latin-1", "cp1252"]
# the readers' own lists (csvformat), spelt out here for the schema and mypy
assert get_args(Dtype) == DTYPES and get_args(Encoding) == tuple(ENCODINGS)


class CsvOptions(Frozen):
    """How a CSV file is read; `validate` types its first rows with the same options."""

    delimiter: str | None = Field(
        None,
        min_length=1,
        max_length=1,
        description="The one character between fields (default ','), e.g. ';' or '\\t'.",
    )
    na_values: list[Annotated[str, Field(max_length=200)]] | None = Field(
        None,
        min_length=1,
        description="Text that also means a missing value, besides pandas' own markers "
        "('', 'NA', 'NULL', 'NaN', ...), e.g. ['?', '-'].",
    )
    encoding: Encoding | None = Field(
        None, description="The file's text encoding: utf-8 (default), utf-16, latin-1 or cp1252."
    )
    dtypes: dict[Name, Dtype] | None = Field(
        None,
        min_length=1,
        description="Columns read as this dtype rather than guessed (int, float, str, bool, "
        "datetime, category): keep zip codes as str, for instance. A value that does not "
        "convert fails the run (exit 3).",
    )

    @field_validator("delimiter")
    @classmethod
    def _one_field_separator(cls, value: str | None) -> str | None:
        if value is not None and value in ('"', "\n", "\r"):
            raise ValueError("a delimiter cannot be a quote or a line break")
        return value


class Source(Frozen):
    """A table: a CSV or Parquet file, or a DuckDB SQL query over other sources."""

    path: ProjectPath | None = Field(
        None,
        description=(
            "CSV or Parquet file, relative to the spec, or a URI: s3://, gs://, az://, file://, "
            "https:// (read through fsspec; credentials from the environment, never the spec)."
        ),
    )
    format: Literal["csv", "parquet"] | None = Field(
        None, description="File format; inferred from the file name when omitted."
    )
    csv: CsvOptions | None = Field(
        None,
        description="CSV files: how the file is read (delimiter, na_values, encoding, dtypes).",
    )
    sql: str | None = Field(None, description="DuckDB SQL; other sources are tables by name.")
    inputs: list[Name] | None = Field(
        None, description="Sources the SQL reads; inferred from the SQL text when omitted."
    )
    schema_: Name | None = Field(None, alias="schema", description="Schema checked on this data.")
    on_invalid: Literal["fail", "warn"] = Field(
        "fail", description="'fail' stops the run (exit 3); 'warn' records the report and goes on."
    )
    description: str | None = Field(None, description="What the table holds, in words.")

    @model_validator(mode="after")
    def _one_kind(self) -> Source:
        _exactly_one(self, ("path", "sql"), "a source")
        if self.sql is None and self.inputs is not None:
            raise ValueError("'inputs' applies only to SQL sources")
        return self


class Range(Frozen):
    min: Finite | None = Field(
        None, description="The lowest value allowed (inclusive); absent: no lower bound."
    )
    max: Finite | None = Field(
        None, description="The highest value allowed (inclusive); absent: no upper bound."
    )


class Column(Frozen):
    """Rules for one column, checked with pandera."""

    dtype: Dtype | None = Field(
        None,
        description="int, float, str, bool, datetime or category, checked tolerantly (an int column with nulls read as float passes int); with the schema's coerce, converted first.",
    )
    nullable: bool = Field(False, description="Missing values are allowed.")
    unique: bool = Field(False, description="No value appears twice.")
    required: bool = Field(True, description="The column must be present.")
    ge: Finite | None = Field(None, description="Every value >= this.")
    le: Finite | None = Field(None, description="Every value <= this.")
    gt: Finite | None = Field(None, description="Every value > this.")
    lt: Finite | None = Field(None, description="Every value < this.")
    isin: list[Scalar] | None = Field(None, description="Every value is one of these.")
    notin: list[Scalar] | None = Field(None, description="No value is one of these.")
    regex: str | None = Field(
        None, description="Every value, as text, matches this regular expression in full."
    )
    in_range: Range | None = Field(None, description="Every value between min and max (inclusive).")
    str_length: Range | None = Field(
        None, description="Every text value's length between min and max."
    )
    description: str | None = Field(None, description="What the column holds, in words.")


class Schema(Frozen):
    """Column rules written here, or a pandera YAML schema file."""

    columns: dict[Name, Column] | None = Field(
        None, description="Rules per column name, checked with pandera."
    )
    file: ProjectPath | None = Field(
        None, description="A pandera YAML schema, relative to the spec."
    )
    strict: bool = Field(False, description="Columns not listed are errors.")
    coerce: bool = Field(False, description="Convert columns to their dtype before checking.")
    min_rows: int | None = Field(None, ge=1, description="The table has at least this many rows.")
    unique: list[Annotated[list[Name], Field(min_length=1)]] | None = Field(
        None,
        min_length=1,
        description="Combinations of columns no two rows share, e.g. "
        "[[month, day, carrier, flight]] (a one-column combination is a column's unique).",
    )
    checks: list[Annotated[str, Field(min_length=1, max_length=MAX_EXPR_LENGTH)]] | None = Field(
        None,
        min_length=1,
        description="Conditions every row must satisfy, each a DuckDB SQL expression over "
        "the row's columns, e.g. 'casual + registered = bikers'. As in a SQL CHECK "
        "constraint, a row where the condition is NULL (a missing value) passes.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Schema:
        _exactly_one(self, ("columns", "file"), "a schema")
        for combination in self.unique or []:
            if len(set(combination)) != len(combination):
                raise ValueError(f"the unique combination {combination} names a column twice")
        return self


# ---- features ---------------------------------------------------------------------------

DatePartName = Literal["year", "month", "day", "hour", "minute", "dayofweek", "dayofyear", "week"]


class DatePart(Frozen):
    column: Name = Field(description="The date/time column.")
    part: DatePartName = Field(
        description="The part taken: year, month, day, hour, minute, dayofweek, dayofyear or week."
    )


class Bucket(Frozen):
    column: Name = Field(description="The numeric column cut into bins.")
    bins: list[Finite] | None = Field(None, description="Bin edges.")
    quantiles: int | None = Field(None, ge=2, le=100, description="Equal-frequency bins, fitted.")

    @model_validator(mode="after")
    def _one_kind(self) -> Bucket:
        _exactly_one(self, ("bins", "quantiles"), "a bucket")
        return self


class Impute(Frozen):
    column: Name = Field(description="The column whose missing values are filled.")
    strategy: Literal["mean", "median", "most_frequent", "constant"] = Field(
        OPS["impute"].defaults["strategy"],
        description="mean, median or most_frequent of the training split, or constant ('value').",
    )
    value: Fill | None = Field(None, description="The fill value of the constant strategy.")


class Encode(Frozen):
    column: Name = Field(description="The categorical column encoded.")
    method: Literal["category", "onehot", "ordinal", "frequency"] = Field(
        OPS["encode"].defaults["method"],
        description="category (LightGBM's own categorical splits), onehot, ordinal, or frequency (the share of training rows with that value); fitted on the training split.",
    )
    max_categories: int | None = Field(
        None,
        ge=1,
        description="Keep the most frequent training categories, at most this many; the rest, and unseen values, become '__other__'.",
    )


class Scale(Frozen):
    column: Name = Field(description="The numeric column scaled.")
    method: Literal["standard", "minmax"] = Field(
        OPS["scale"].defaults["method"],
        description="standard (mean 0, standard deviation 1) or minmax (0 to 1), fitted on the training split.",
    )


FEATURE_OPS = tuple(OPS)


class Feature(Frozen):
    """One model input. Exactly one operation; fitted ones learn from the training split only."""

    column: Name | None = Field(None, description="Use a raw column as it is.")
    expr: str | None = Field(
        None,
        max_length=MAX_EXPR_LENGTH,
        description="A DuckDB SQL expression over the row: one value, computed from that row "
        "alone (no subqueries, windows or aggregates).",
    )
    log: Name | None = Field(None, description="log(1 + column).")
    date_part: DatePart | None = Field(
        None,
        description="A part of a date/time column: year, month, day, hour, minute, dayofweek, dayofyear or week.",
    )
    bucket: Bucket | None = Field(
        None,
        description="A numeric column cut into bins: fixed edges, or quantiles fitted on the training split.",
    )
    impute: Name | Impute | None = Field(None, description="A column, or column and strategy.")
    encode: Name | Encode | None = Field(None, description="A column, or column and method.")
    scale: Name | Scale | None = Field(
        None,
        description="A numeric column standardised or min-max scaled, fitted on the training split; a column name, or column and method.",
    )
    custom: str | None = Field(
        None,
        pattern=CUSTOM_PATTERN,
        description="'module:function' taking the DataFrame and returning a column. The module "
        "is a file of the project, or one the operator allows (docs/trust-model.md).",
    )
    description: str | None = Field(None, description="What the feature means, in words.")

    @model_validator(mode="after")
    def _one_kind(self) -> Feature:
        _exactly_one(self, FEATURE_OPS, "a feature")
        return self

    @property
    def op(self) -> str:
        return next(op for op in FEATURE_OPS if getattr(self, op) is not None)

    def params(self) -> dict[str, Any]:
        """The operation's parameters with every default filled in: a bare column name
        written for an operation with options means that options object on the column."""
        value = getattr(self, self.op)
        if isinstance(value, str):
            options = _options_model(type(self).model_fields[self.op].annotation)
            if options is None:
                return {OPS[self.op].value_key: value}
            value = options(column=value)
        return dict(value.model_dump())


def _options_model(annotation: Any) -> type[BaseModel] | None:
    """The options model among the types a feature key accepts, if it has one."""
    from typing import get_args

    return next(
        (t for t in get_args(annotation) if isinstance(t, type) and issubclass(t, BaseModel)),
        None,
    )


# ---- models -----------------------------------------------------------------------------


class Split(Frozen):
    method: Literal["random", "stratified", "time", "group"] = Field(
        "random",
        description="random; stratified (both sides keep the target's class balance); time (the latest test_size share of rows by 'column', a date/time or numeric column, is the test set); group (all rows of a value of 'column' go to one side).",
    )
    test_size: float = Field(
        0.2, gt=0, lt=1, description="Share of the rows in the test set (between 0 and 1)."
    )
    column: Name | None = Field(None, description="Time column ('time') or group column ('group').")
    seed: Seed | None = Field(
        None, description="Seed for random, stratified and group splits; default the model's seed."
    )

    @model_validator(mode="after")
    def _column_when_needed(self) -> Split:
        if self.method in ("time", "group") and self.column is None:
            raise ValueError(f"a '{self.method}' split needs 'column'")
        return self


class EarlyStopping(Frozen):
    rounds: int = Field(50, ge=1, description="Rounds without improvement before training stops.")
    validation_size: float = Field(
        0.1, gt=0, lt=1, description="Share of the training rows held out to decide when to stop."
    )


class ThresholdRule(Frozen):
    """A binary model's threshold chosen on the validation split (ties: the highest)."""

    maximize: Literal["f1", "balanced_accuracy", "accuracy"] | None = Field(
        None, description="The metric the threshold maximizes on the validation rows."
    )
    min_precision: float | None = Field(None, gt=0, le=1, description="The most recall it allows.")
    min_recall: float | None = Field(None, gt=0, le=1, description="The most precision it allows.")

    @model_validator(mode="after")
    def _one_rule(self) -> ThresholdRule:
        _exactly_one(self, ("maximize", "min_precision", "min_recall"), "a threshold rule")
        return self


class CustomMetric(Frozen):
    """A metric of the project's own: `function(y_true, y_score) -> float`, where y_score is
    P(1) (binary), the class probabilities (multiclass) or the predictions (regression)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=100)] = Field(
        description="The metric's name in metrics.json, gates and monitors."
    )
    function: str = Field(
        pattern=CUSTOM_PATTERN,
        description="'module:function'; the module is a file of the project, or one the "
        "operator allows (docs/trust-model.md). Its source is hashed into the plan.",
    )
    greater_is_better: bool = Field(
        True, description="false: lower is better (relative checks then bound a rise)."
    )


class Bootstrap(Frozen):
    """Intervals for every test metric from seeded resamples of the test split; checks may
    then bound `<metric>.lower` or `<metric>.upper`."""

    resamples: int = Field(200, ge=20, le=10000, description="Resamples of the test rows.")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Share the interval covers.")


class SearchRange(Frozen):
    """A numeric range a parameter is searched in: `{int: [15, 255], log: true}` or
    `{float: [0.01, 0.3]}`; a list of values is `{choice: [...]}`."""

    int_: Annotated[list[int], Field(min_length=2, max_length=2)] | None = Field(
        None, alias="int", description="[low, high]: whole numbers, both ends included."
    )
    float_: Annotated[list[Finite], Field(min_length=2, max_length=2)] | None = Field(
        None, alias="float", description="[low, high]: numbers, both ends included."
    )
    choice: Annotated[list[Scalar], Field(min_length=1, max_length=100)] | None = Field(
        None, description="The values tried: text, numbers or true/false."
    )
    log: bool = Field(False, description="Sample on a log scale (a range above 0 only).")

    @model_validator(mode="after")
    def _one_kind(self) -> SearchRange:
        given = [k for k, v in (("int", self.int_), ("float", self.float_), ("choice", self.choice))
                 if v is not None]  # fmt: skip
        if len(given) != 1:
            found = ", ".join(f"'{g}'" for g in given) or "none"
            raise ValueError(
                f"a search range needs exactly one of 'int', 'float', 'choice'; found {found}"
            )
        if self.log and self.choice is not None:
            raise ValueError("'log' applies to an int or float range, not to a choice")
        return self

    @property
    def bounds(self) -> tuple[float, float] | None:
        """(low, high) of a numeric range; None for a choice."""
        pair = self.int_ if self.int_ is not None else self.float_
        return None if pair is None else (pair[0], pair[1])


class Tune(Frozen):
    """A hyperparameter search with Optuna: each trial trains the model with parameters
    drawn from `space` over the fixed `params`, and is scored on the validation split
    (never the test split); the best trial's parameters train the model."""

    metric: Name = Field(
        description="The built-in metric the search optimizes on the validation split; its "
        "direction (higher or lower is better) comes from the metric."
    )
    space: dict[Name, SearchRange] = Field(
        min_length=1,
        description="LightGBM parameter -> where it is searched; a parameter in `space` "
        "may not also be in `params`.",
    )
    trials: int = Field(50, ge=1, le=10000, description="Finished trials the search runs.")
    timeout_s: Annotated[float, Field(gt=0)] | None = Field(
        None,
        description="Stop starting trials after this many seconds (the result then depends "
        "on the machine's speed).",
    )
    seed: Seed | None = Field(None, description="The sampler's seed; default the model's seed.")
    sampler: Literal["tpe", "random"] = Field(
        "tpe", description="tpe (Optuna's Tree-structured Parzen Estimator) or random."
    )
    pruning: bool = Field(
        True,
        description="Stop a trial early when its validation loss, round by round, is worse "
        "than the median of earlier trials at the same round (Optuna's MedianPruner).",
    )
    storage: ProjectPath | None = Field(
        None,
        description="An SQLite file in the project that keeps the study, so a search killed "
        "midway resumes with its finished trials.",
    )


class Serving(Frozen):
    """How `mlcompile serve` treats a request value outside what the training rows held."""

    on_invalid: Literal["warn", "reject"] = Field(
        "warn",
        description="warn: answer, list the values in the response's 'warnings' and count "
        "them in the prediction log; reject: refuse the request with 422.",
    )


class AllExcept(Frozen):
    """Every column of the model's data source but these and the target, in the source's
    column order."""

    all_except: list[Name] = Field(
        description="Columns of the data source that are not features (ids, leaky columns); "
        "the target is left out without being named."
    )


class Model(Frozen):
    """A LightGBM model trained on one source."""

    task: Task = Field(
        description="binary, multiclass or regression: the LightGBM objective and the metrics computed (docs/data-and-models.md). Usually set by a model_preset."
    )
    data: Name = Field(description="The source the model trains on.")
    target: Name = Field(description="The column of the data source the model predicts.")
    features: list[Name | AllExcept] = Field(
        min_length=1,
        description="The model's inputs: names of features, or raw columns of the data source; "
        "a glob such as 'M*' (every column of the data source whose name matches), or "
        "{all_except: [id, ...]}. Selectors are resolved when the spec is compiled, against "
        "the source's columns: the plan lists every column, as if written out.",
    )
    split: Split = Field(
        default_factory=Split,
        description="How rows are divided into training and test rows; the test rows give the metrics gates check.",
    )
    params: dict[str, Scalar] = Field(default_factory=dict, description="LightGBM parameters.")
    num_boost_round: int = Field(
        500, ge=1, description="Most boosting rounds; early stopping may stop sooner."
    )
    early_stopping: EarlyStopping | None = Field(
        default_factory=EarlyStopping,
        description="Stop when the metric on a share of the training rows held out for it has not improved for 'rounds' rounds; null: train every round.",
    )
    metrics: list[str | CustomMetric] | None = Field(
        None, description="Defaults to every metric of the task; custom ones as mappings."
    )
    slices: list[Name] = Field(default_factory=list, description="Columns to report metrics by.")
    min_slice_rows: int = Field(
        30,
        ge=1,
        description="Slice values with fewer test rows are not judged: metrics.json and slice gates list them as skipped, with their row counts.",
    )
    seed: Seed | None = Field(
        None, description="Seed for this model's split and training; default settings.seed."
    )
    threshold: Annotated[float, Field(ge=0, le=1)] | ThresholdRule | None = Field(
        None,
        description="Binary models: the score from which a row is predicted positive (0.5 when "
        "omitted), or a rule choosing it on the validation split, as in {maximize: f1} or "
        "{min_precision: 0.8}. Stored with the model; evaluate, scoring, serve and monitors "
        "use it.",
    )
    positive_class: str | int | bool | None = Field(
        None,
        description="Binary models on a target that is not 0/1 or true/false (text such as "
        "Yes/No, or two other numbers): the target value that is the positive class; the "
        "target's other value is the negative one.",
    )
    bootstrap: Bootstrap | None = Field(
        None, description="Bootstrap intervals of the test metrics (`roc_auc.lower` in checks)."
    )
    registered_name: Name | None = Field(
        None,
        pattern=r"^[^./\\\x00][^/\\\x00]*$",
        description="Name in the registry (a folder name); default '<spec name>.<model>'.",
    )
    serving: Serving | None = Field(None, description="Settings of `mlcompile serve`.")
    tune: Tune | None = Field(
        None, description="Search LightGBM parameters on the validation split (Optuna)."
    )

    @property
    def builtin_metrics(self) -> list[str]:
        """The task's metrics this model computes (all of them when `metrics` is omitted)."""
        if self.metrics is None:
            return list(TASK_METRICS[self.task])
        return [m for m in self.metrics if isinstance(m, str)]

    @property
    def feature_names(self) -> list[str]:
        """The model's inputs by name. Resolution replaces selectors with the names they
        select (spec/checks/selectors.py) before anything past it reads this."""
        return [f for f in self.features if isinstance(f, str)]

    @property
    def custom_metrics(self) -> list[CustomMetric]:
        return [m for m in self.metrics or [] if isinstance(m, CustomMetric)]

    @property
    def lower_is_better(self) -> frozenset[str]:
        """The custom metrics of this model that are better when lower."""
        return frozenset(m.name for m in self.custom_metrics if not m.greater_is_better)

    @model_validator(mode="after")
    def _threshold_fits(self) -> Model:
        if self.positive_class is not None and self.task != "binary":
            raise ValueError(f"'positive_class' applies to binary models only, not {self.task}")
        if self.threshold is not None and self.task != "binary":
            raise ValueError(f"'threshold' applies to binary models only, not {self.task}")
        if isinstance(self.threshold, ThresholdRule) and self.early_stopping is None:
            raise ValueError(
                "a threshold chosen on the validation split needs one: set early_stopping"
            )
        if self.tune is not None and self.early_stopping is None:
            raise ValueError("a tuned model is scored on the validation split: set early_stopping")
        return self


# ---- gates ------------------------------------------------------------------------------


class Check(Frozen):
    metric: Name = Field(description="The metric (or drift measure) checked.")
    op: Literal[">=", ">", "<=", "<"] | None = Field(
        None, description="How the metric compares with 'value': >=, >, <= or <."
    )
    value: Finite | None = Field(None, description="The bound the metric is compared with.")
    max_drop: Finite | None = Field(None, ge=0, description="Largest loss against production.")
    slice: Name | None = Field(None, description="Check every value of this slice column.")

    @model_validator(mode="after")
    def _absolute_or_relative(self) -> Check:
        if self.max_drop is None and (self.op is None or self.value is None):
            raise ValueError("a check needs 'op' and 'value', or 'max_drop'")
        if self.max_drop is not None and (self.op is not None or self.value is not None):
            raise ValueError("a check has either 'op' and 'value', or 'max_drop', not both")
        return self


Checks = list[Annotated[str, Field(max_length=MAX_CHECK_LENGTH)] | Check]


class Gate(Frozen):
    """Checks a model's metrics must pass before anything deploys it."""

    model: Name = Field(description="The model whose test metrics are checked.")
    checks: Checks = Field(
        min_length=1,
        description="'roc_auc >= 0.8', 'roc_auc[origin] >= 0.7', "
        "'rmse <= production + 0.5', or the mapping form.",
    )
    compare_to: Alias = Field("production", description="Registry alias used by relative checks.")


# ---- deployments ------------------------------------------------------------------------


class RegistryDeployment(Frozen):
    kind: Literal["registry"] = Field(
        description="'registry': register the gated model in the local registry and point the alias at the new version."
    )
    model: Name = Field(description="The model registered.")
    alias: Alias | None = Field("production", description="Alias moved to the new version.")


class BatchDeployment(Frozen):
    kind: Literal["batch"] = Field(
        description="'batch': score a source with the model and write the predictions to a file."
    )
    model: Name = Field(
        description="The model that scores; put a gate and a registry deployment of it in front (validate warns otherwise)."
    )
    source: Name = Field(description="The source whose rows are scored.")
    output: ProjectPath = Field(
        description="Predictions file, relative to the spec (.parquet or .csv)."
    )
    id_columns: list[Name] = Field(
        default_factory=list,
        description="Columns of the source written next to each prediction, to join the scores back.",
    )


class Resources(Frozen):
    cpu: str = Field("1", description="A Kubernetes CPU quantity, e.g. '1' or '500m'.")
    memory: str = Field("2Gi", description="A Kubernetes memory quantity, e.g. '2Gi'.")


class KServeDeployment(Frozen):
    kind: Literal["kserve"] = Field(
        description="'kserve': write a KServe InferenceService manifest for the registered model."
    )
    model: Name = Field(description="The model served; it needs a registry deployment of its own.")
    storage_uri: str = Field(description="Where the registry's models are served from.")
    namespace: Name = Field("default", description="Kubernetes namespace of the InferenceService.")
    output: ProjectPath | None = Field(
        None, description="Manifest path; default deploy/<name>.yaml."
    )
    resources: Resources = Field(
        default_factory=Resources,
        description="CPU and memory of the predictor (written as both requests and limits).",
    )
    canary_traffic_percent: int | None = Field(
        None,
        ge=0,
        le=100,
        description="Roll a new version out as a canary: KServe's canaryTrafficPercent, the "
        "share of traffic the new version takes while the previous one keeps the rest.",
    )


Deployment = Annotated[
    RegistryDeployment | BatchDeployment | KServeDeployment, Field(discriminator="kind")
]


# ---- monitoring -------------------------------------------------------------------------


class PredictionLogWindow(Frozen):
    """Rows `mlcompile serve` logged: Parquet parts in a folder."""

    path: ProjectPath = Field(description="The log folder, relative to the spec.")
    max_rows: int | None = Field(None, ge=1, description="Only the newest rows, by arrival time.")
    all_versions: bool = Field(
        False,
        description="Also rows an earlier model version answered (by default only the watched "
        "version's rows count, so a window starts afresh when a new model is promoted).",
    )


class CurrentWindow(Frozen):
    """The data a monitor compares with the reference: a source, or the prediction log."""

    source: Name | None = Field(None, description="A source of this spec.")
    prediction_log: PredictionLogWindow | None = Field(
        None, description="The prediction log `mlcompile serve` writes (Parquet parts in a folder)."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> CurrentWindow:
        _exactly_one(self, ("source", "prediction_log"), "a current window")
        return self


class Labels(Frozen):
    """Outcomes that arrived after the predictions, joined to the current rows by key."""

    source: Name = Field(description="The source holding the outcomes.")
    key: list[Name] = Field(min_length=1, description="Columns that identify a row in both.")
    target: Name | None = Field(None, description="The outcome column; default the model's target.")


RetrainWhen = Literal["drift", "performance"]


def _both() -> list[RetrainWhen]:
    return ["drift", "performance"]


class Retrain(Frozen):
    """When failing checks start the training pipeline again."""

    when: list[RetrainWhen] = Field(
        default_factory=_both,
        min_length=1,
        description="Which kinds of failing check start a retrain.",
    )


class Monitor(Frozen):
    """Watch a registered model: drift of its inputs and predictions, and its performance on
    labels that arrived later. Checks use the gate language."""

    model: Name = Field(description="A model of this spec; its registered version is watched.")
    alias: Alias = Field("production", description="The registry alias of the watched version.")
    challenger: Alias | None = Field(
        None,
        description="The registry alias of a version on trial beside the watched one (served "
        "with `serve --shadow` or `--canary`; the current window must be the prediction log). "
        "Checks compare the two by alias: 'roc_auc[challenger] >= roc_auc[production]', "
        "'rmse[challenger] <= rmse[production] - 0.5'.",
    )
    reference: Name | None = Field(
        None,
        description="A source to compare with; default the watched version's training rows, "
        "as kept in the registry.",
    )
    current: CurrentWindow = Field(
        description="The rows to judge: a source of this spec, or the prediction log of `mlcompile serve`."
    )
    labels: Labels | None = Field(
        None,
        description="Outcomes that arrived later, joined to the current rows by key, for performance checks; absent: drift checks only.",
    )
    checks: Checks = Field(
        min_length=1,
        description="'psi <= 0.2' (every feature), 'psi[temp] <= 0.3', 'ks <= 0.1', "
        "'unseen <= 0.05', 'psi[prediction] <= 0.1', 'roc_auc >= production - 0.05', "
        "with a challenger 'roc_auc[challenger] >= roc_auc[production]'.",
    )
    bins: int = Field(10, ge=2, le=100, description="Quantile bins of the reference for PSI.")
    min_rows: int = Field(
        100, ge=1, description="Fewer current rows than this: nothing is judged, nothing retrains."
    )
    retrain: Retrain | None = Field(None, description="Absent: report only, never retrain.")
    report: ProjectPath | None = Field(
        None,
        description="Where each run writes the drift report (JSON), relative to the spec; "
        f"default {paths.MONITORING}/<monitor>.json.",
    )


# ---- tracking ---------------------------------------------------------------------------

# Query parameters that carry secrets; a URI with one (or with user:password@) is refused.
_SECRET_WORDS = ("token", "password", "passwd", "secret", "key", "auth", "credential")


class MlflowTracking(Frozen):
    """Log every model's run to an MLflow tracking server. Credentials never go here: MLflow
    reads MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN from
    the environment."""

    tracking_uri: str | None = Field(
        None,
        description="The tracking server, e.g. http://mlflow.internal:5000; default the "
        "MLFLOW_TRACKING_URI environment variable.",
    )
    experiment: Name | None = Field(None, description="MLflow experiment; default the spec's name.")
    registry: bool = Field(
        True,
        description="Mirror each registration and alias move to MLflow's model registry "
        "(same name, same alias).",
    )

    @field_validator("tracking_uri")
    @classmethod
    def _no_credentials(cls, uri: str | None) -> str | None:
        from urllib.parse import parse_qsl, urlsplit

        if uri is None:
            return uri
        parts = urlsplit(uri)
        query = [key.lower() for key, _ in parse_qsl(parts.query)]
        if "@" in parts.netloc or any(w in k for k in query for w in _SECRET_WORDS):
            # its own error type: the message must not repeat the secret
            raise PydanticCustomError(
                "credentials", "the tracking URI holds credentials; a spec never does"
            )
        return uri


class Tracking(Frozen):
    """Experiment trackers that runs are logged to, besides mlcompile's own run records."""

    mlflow: MlflowTracking | None = Field(
        None, description="Log runs, metrics and registrations to an MLflow tracking server."
    )


# ---- the spec ---------------------------------------------------------------------------


class Spec(Frozen):
    """An ML pipeline: data, checks, features, models, gates and deployments."""

    name: Name = Field(
        description="The pipeline's name: it names the plan and its runs, and prefixes registered model names ('<name>.<model>')."
    )
    version: str | int | None = Field(
        None,
        description="A version label for the spec (text or a number), for your own bookkeeping.",
    )
    description: str | None = Field(None, description="What the pipeline is for, in words.")
    settings: Settings = Field(
        default_factory=Settings,
        description="Project-wide settings: seed, registry and store folders, sampling, deploy, lineage transport.",
    )
    sources: dict[Name, Source] = Field(
        min_length=1,
        description="Named tables (at least one): CSV or Parquet files, or DuckDB SQL over other sources.",
    )
    schemas: dict[Name, Schema] = Field(
        default_factory=dict,
        description="Named column rules, or pandera YAML files, that sources are checked against.",
    )
    features: dict[Name, Feature] = Field(
        default_factory=dict,
        description="Named model inputs computed from columns: expressions, logs, date parts, buckets, imputation, encodings, scaling, custom functions.",
    )
    models: dict[Name, Model] = Field(
        default_factory=dict, description="Named LightGBM models, each trained on one source."
    )
    gates: dict[Name, Gate] = Field(
        default_factory=dict,
        description="Named metric gates: checks a model must pass before any deployment of it runs.",
    )
    deployments: dict[Name, Deployment] = Field(
        default_factory=dict,
        description="Named deployments of a model: registry (register it and move an alias), batch (score a source to a file), kserve (write a KServe manifest).",
    )
    monitoring: dict[Name, Monitor] = Field(
        default_factory=dict, description="Drift and performance monitors, with retrain policies."
    )
    tracking: Tracking = Field(
        default_factory=Tracking, description="Experiment trackers runs are logged to."
    )
    backends: dict[Name, dict[str, Any]] = Field(
        default_factory=dict, description="Settings per backend, checked by that backend."
    )
