"""The catalogue of diagnostic codes: every code mlcompile reports, declared here once.

A code is `<prefix><three digits>`; the prefix says who reports it: `E` (errors) and `W`
(warnings) belong to mlcompile itself, and each plugin has its own letter (K for the
Kubeflow Pipelines backend, Z for ZenML). A plugin declares its codes in a `Catalogue` of
its own and registers it under the `mlcompile.diagnostics` entry point group, so that
docs/diagnostics.md and SARIF output know them (docs/diagnostics.md says how).

Source code reports a code through its constant (`codes.UNKNOWN_NAME`), never a literal:
a test finds any quoted code outside a catalogue.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from mlcompile.errors import Code, Severity

_SHAPE = re.compile(r"[A-Z][0-9]{3}")
# Prefixes taken by mlcompile; a plugin's catalogue may not use them.
CORE_PREFIXES = ("E", "W")


@dataclass
class Catalogue:
    """The codes of one reporter: mlcompile itself or one plugin."""

    owner: str
    prefixes: tuple[str, ...]
    title: str = ""

    def __post_init__(self) -> None:
        self._codes: dict[str, Code] = {}

    def code(
        self, code: str, name: str, doc: str, example: str, severity: Severity | None = None
    ) -> Code:
        """Declare a code. Its default severity follows its prefix when `W`; say it
        otherwise (a plugin's warnings)."""
        if not _SHAPE.fullmatch(code) or code[0] not in self.prefixes:
            raise ValueError(f"{self.owner}: '{code}' is not a code with prefix {self.prefixes}")
        if code in self._codes:
            raise ValueError(f"{self.owner}: '{code}' is declared twice")
        chosen = severity or (Severity.WARNING if code[0] == "W" else Severity.ERROR)
        declared = Code(code, name=name, severity=chosen, doc=doc, example=example)
        self._codes[code] = declared
        return declared

    def __iter__(self) -> Iterator[Code]:
        return iter(sorted(self._codes.values()))

    def __getitem__(self, code: str) -> Code:
        return self._codes[code]

    def __contains__(self, code: object) -> bool:
        return code in self._codes


CORE = Catalogue("mlcompile", CORE_PREFIXES, "mlcompile")
_c = CORE.code

# ---- E1xx: reading YAML -------------------------------------------------------------------
FILE_UNREADABLE = _c(
    "E100",
    "file-unreadable",
    "A spec or config file cannot be read, or is not UTF-8.",
    "mlcompile validate missing.yaml",
)
YAML_SYNTAX = _c(
    "E101",
    "yaml-syntax",
    "The file is not valid YAML (or holds control characters).",
    "models: {flights: [",
)
DUPLICATE_KEY = _c(
    "E102",
    "duplicate-key",
    "A mapping names the same key twice; YAML would keep one.",
    "name: a\nname: b",
)
NOT_PLAIN_DATA = _c(
    "E103",
    "not-a-mapping",
    "The document, a key or a merge is not the plain data a spec holds.",
    "- just\n- a list",
)
UNSAFE_TAG = _c(
    "E104",
    "yaml-tag",
    "A YAML tag other than the plain ones: specs hold data, never objects.",
    "name: !!python/object:os.system ls",
)
TOO_LARGE = _c(
    "E105",
    "too-large",
    "Anchors and aliases expand the document past the depth or size limit.",
    "a: &a [*a, *a]",
)
INTEGER_RANGE = _c(
    "E106",
    "integer-range",
    "An integer does not fit in 64 bits.",
    "seed: 99999999999999999999",
)

# ---- E2xx: the shape of the spec ------------------------------------------------------------
UNKNOWN_KEY = _c(
    "E201",
    "unknown-key",
    "A key the spec's section does not have (or the reserved 'hydra').",
    "models: {m: {taget: arr_delay}}",
)
MISSING_KEY = _c(
    "E202",
    "missing-key",
    "A required key is missing.",
    "models: {m: {data: flights}}   # no target",
)
INVALID_VALUE = _c(
    "E203",
    "invalid-value",
    "A value has the wrong type, is out of range or has no meaning here.",
    "split: {test_size: 1.5}",
)
UNREADABLE_CHECK = _c(
    "E204",
    "unreadable-check",
    "A gate or monitor check written as text cannot be read.",
    "checks: ['roc_auc => 0.7']",
)

# ---- E3xx: references between sections --------------------------------------------------------
UNKNOWN_NAME = _c(
    "E301",
    "unknown-name",
    "A name (source, schema, feature, model, column) is not defined.",
    "models: {m: {data: flight}}   # the source is 'flights'",
)
CYCLE = _c(
    "E302",
    "cycle",
    "Sources or features depend on themselves through others.",
    "features: {a: {expr: b + 1}, b: {expr: a + 1}}",
)
UNKNOWN_METRIC = _c(
    "E303",
    "unknown-metric",
    "A metric or slice the model does not produce.",
    "gates: {g: {model: m, checks: ['rmse <= 3']}}   # m is binary",
)
NO_SUCH_FILE = _c(
    "E305",
    "no-such-file",
    "A file the spec names does not exist.",
    "sources: {raw: {path: data/fligths.csv}}",
)
PATH_OUTSIDE_PROJECT = _c(
    "E306",
    "path-outside-project",
    "A path leaves the project folder (or is the folder itself).",
    "sources: {raw: {path: ../../etc/passwd}}",
)
NOT_A_SCHEMA = _c(
    "E307",
    "not-a-schema",
    "A schema file is not a pandera YAML schema with 'columns'.",
    "schemas: {s: {file: notes.yaml}}",
)
UNTRUSTED_MODULE = _c(
    "E308",
    "untrusted-module",
    "A custom function's module is not the project's nor allowed.",
    "features: {f: {custom: 'os:system'}}",
)
TARGET_IS_FEATURE = _c(
    "E309",
    "target-is-feature",
    "A model's target is also one of its features.",
    "models: {m: {target: arr_delay, features: [arr_delay]}}",
)
NOT_A_ROW_EXPRESSION = _c(
    "E310",
    "not-a-row-expression",
    "An expression is not one value computed from its row.",
    "features: {f: {expr: 'avg(dep_delay) OVER ()'}}",
)
SQL_ERROR = _c(
    "E311",
    "sql-error",
    "DuckDB cannot parse a source's SQL or an expression, or bind it to its inputs' columns.",
    "sources: {late: {sql: 'SELECT * FROM raws'}}   # the source is 'raw'",
)
TYPE_MISMATCH = _c(
    "E312",
    "type-mismatch",
    "A column's type (read from the file or bound by DuckDB) does not fit its use.",
    "features: {f: {scale: carrier}}   # carrier is text",
)
UNKNOWN_LIGHTGBM_PARAM = _c(
    "E314",
    "unknown-lightgbm-param",
    "A model parameter that the installed LightGBM knows by no name or alias.",
    "models: {m: {params: {num_leavs: 15}}}",
)
LIGHTGBM_PARAM_REFUSED = _c(
    "E315",
    "lightgbm-param-refused",
    "A model parameter of the wrong type, or a value the installed LightGBM refuses.",
    "models: {m: {params: {num_leaves: 1}}}",
)
UNRESOLVED_SELECTOR = _c(
    "E316",
    "unresolved-selector",
    "A feature selector (a glob such as 'M*', or all_except) that selects no column, or "
    "whose source's columns are not known before a run.",
    "models: {m: {features: ['X*']}}   # no column starts with X",
)
NOT_A_CONDITION = _c(
    "E317",
    "not-a-condition",
    "A schema's row check (`checks:`) is not a true/false condition: DuckDB binds it, over "
    "the source's columns, to a value of another type.",
    "schemas: {s: {columns: {}, checks: ['casual + registered']}}   # '= bikers' left out",
)
CSV_OPTIONS_MISPLACED = _c(
    "E318",
    "csv-options-misplaced",
    "CSV read options (`csv:`) on a source that is not a CSV file: a Parquet file or a SQL "
    "query, which have their own types.",
    "sources: {raw: {path: data/raw.parquet, csv: {delimiter: ';'}}}",
)
DTYPE_CONFLICT = _c(
    "E319",
    "dtype-conflict",
    "A source's `csv.dtypes` reads a column as one dtype and the source's schema wants "
    "another: every row would fail the schema.",
    "csv: {dtypes: {zip: str}}   # and the schema says zip: {dtype: int}",
)
TUNED_PARAM_FIXED = _c(
    "E320",
    "tuned-param-fixed",
    "A parameter a model's search space searches that its params also fix (by name or "
    "alias), or that mlcompile sets itself.",
    "models: {m: {params: {eta: 0.1}, tune: {space: {learning_rate: {float: [0.01, 0.3]}}}}}",
)
BAD_SEARCH_RANGE = _c(
    "E321",
    "bad-search-range",
    "A search range whose low end is not below its high end, or a log range that does not "
    "lie above 0.",
    "tune: {space: {learning_rate: {float: [0, 0.3], log: true}}}",
)
SECRET_IN_SPEC = _c(
    "E313",
    "secret-in-spec",
    "A spec value looks like a credential (an access key, a token, a password in a URL, any "
    "value under a key that names one); credentials come only from the environment.",
    "sources: {raw: {path: 's3://user:hunter2@bucket/raw.csv'}}",
)
UNKNOWN_VERSION = _c(
    "E322",
    "unknown-version",
    "A bracket of a comparison of two versions names neither version the monitor compares: "
    "its `alias` (the watched version) and its `challenger`.",
    "monitoring: {m: {challenger: staging, checks: ['roc_auc[canary] >= roc_auc[production]']}}",
)
MISPLACED_COMPARISON = _c(
    "E323",
    "misplaced-comparison",
    "A comparison of two versions where there are not two to compare: in a gate, in a "
    "monitor without a challenger or whose current window is not the prediction log, on a "
    "drift measure, or with the watched version on the left.",
    "gates: {g: {model: m, checks: ['roc_auc[challenger] >= roc_auc[production]']}}",
)
BUNDLE_FILE_UNREADABLE = _c(
    "E327",
    "bundle-file-unreadable",
    "A project file the steps read (a schema file, a custom module, pyproject.toml) cannot go "
    "into the project bundle: it is not UTF-8 text.",
    "backends: {kfp: {project_bundle: true}}   # with a schema file saved as UTF-16",
)
PROJECT_PATH_IN_BUNDLE = _c(
    "E328",
    "project-path-in-bundle",
    "Steps run from the project bundle, in an empty folder, but a source, a prediction log "
    "or the registry is a path of the project folder, which they would not find.",
    "sources: {raw: {path: data/raw.csv}}   # with backends.kfp.project_bundle: true",
)
BUNDLE_WITHOUT_ROOT = _c(
    "E329",
    "bundle-without-root",
    "A backend's `project_bundle` is on but its `pipeline_root` is not a URI the build can "
    "upload the bundle to and steps can fetch it from (file://, s3://, gs://, az://).",
    "backends: {kfp: {project_bundle: true}}   # no pipeline_root",
)
OUTPUT_LOST_IN_BUNDLE = _c(
    "E330",
    "output-lost-in-bundle",
    "Steps run from the project bundle, in a folder of their own that nobody reads after "
    "them, but a batch deployment or a KServe manifest writes its file into the project.",
    "deployments: {scores: {kind: batch, output: scores.parquet}}   # with project_bundle",
)

# ---- E4xx: composition and overrides -----------------------------------------------------------
COMPOSE_FAILED = _c(
    "E400",
    "compose-failed",
    "Hydra cannot compose the spec.",
    "defaults: [model: lgbm, model: lgbm]",
)
BAD_OVERRIDE = _c(
    "E401",
    "bad-override",
    "A command-line override cannot be parsed or applied.",
    "mlcompile validate spec.yaml models.m.seed=abc",
)
UNKNOWN_CONFIG = _c(
    "E402",
    "unknown-config",
    "A defaults entry or override names no config of its group.",
    "defaults: [{model: lgbm_larg}]",
)
BAD_INTERPOLATION = _c(
    "E403",
    "bad-interpolation",
    "An interpolation `${...}` cannot be resolved.",
    "name: ${nowhere.key}",
)
BAD_DEFAULTS = _c(
    "E404",
    "bad-defaults",
    "The 'defaults' list is malformed.",
    "defaults: model",
)
OVERRIDE_UNKNOWN_ENTRY = _c(
    "E405",
    "override-unknown-entry",
    "An override sets a key of a named entry (a model, source, ...) the spec does not have.",
    "mlcompile validate spec.yaml models.delayd.seed=3",
)

# ---- W1xx: warnings ----------------------------------------------------------------------------
UNGATED_DEPLOYMENT = _c(
    "W101",
    "ungated-deployment",
    "A deployment's model has no gate.",
    "deployments: {d: {kind: registry, model: m}}   # no gate on m",
)
DEPRECATED_GRANT = _c(
    "W102",
    "deprecated-grant",
    "A setting that once let a spec grant itself trust; ignored.",
    "settings: {custom_modules: [os]}",
)
UNREGISTERED_BATCH = _c(
    "W103",
    "unregistered-batch",
    "A batch deployment scores with a model no registry deployment registers.",
    "deployments: {score: {kind: batch, model: m, source: s, output: out.parquet}}",
)
IGNORED_LIGHTGBM_PARAM = _c(
    "W104",
    "ignored-lightgbm-param",
    "A LightGBM parameter mlcompile sets itself (seed, deterministic, threads); the spec's "
    "value is ignored.",
    "models: {m: {params: {seed: 3}}}   # use models.m.seed",
)
PROFILE_OVERRIDDEN = _c(
    "W201",
    "profile-overridden",
    "A profile sets a key that the spec itself sets, and the spec's value wins.",
    "defaults: [{profile: prod}, _self_]   # listed before _self_",
)
del _c


def catalogues() -> list[Catalogue]:
    """mlcompile's catalogue and every installed plugin's, checked against each other."""
    from importlib.metadata import entry_points

    found = [CORE]
    for entry in sorted(entry_points(group="mlcompile.diagnostics"), key=lambda e: e.name):
        catalogue = entry.load()
        if not isinstance(catalogue, Catalogue):
            raise TypeError(f"entry point {entry.name!r} is not a mlcompile.codes.Catalogue")
        taken = {p: c.owner for c in found for p in c.prefixes}
        clash = [p for p in catalogue.prefixes if p in taken]
        if clash:
            raise ValueError(
                f"{catalogue.owner}: prefix {clash[0]!r} is taken by {taken[clash[0]]}"
            )
        found.append(catalogue)
    return found
