"""Small real projects for backend conformance tests: sklearn's breast cancer data set.

The data ships inside scikit-learn (no download). One SQL source, a schema, fitted and
stateless features, a binary model with a slice, a gate and every deployment kind: enough
to exercise a backend end to end in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Names and strings an attacker would try; a backend must carry them as data, never as code.
HOSTILE = {
    "quote": 'q"; __import__("os").system("touch {marker}") #',
    "single": "s'); import os; os.system('touch {marker}'); ('",
    "jinja": "{{{{ cycler.__init__.__globals__.os.system('touch {marker}') }}}}{{% raw %}}",
    "shell": "$(touch {marker}) `touch {marker}`; touch {marker} && echo",
    "newline": "line\nimport os; os.system('touch {marker}')\n#",
    "traversal": "../../../../tmp/{marker}",
}
# Characters at which `str.splitlines` ends a line and the Python compiler does not (or both
# do: \r), so that a tool reading generated source by lines sees other lines than the
# compiler ran; then the bidi controls and zero-width characters that make code read
# differently from what runs. Every hostile name and string carries all of them, followed by
# a definition that would create the marker when executed.
LINE_SEPARATORS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
FORMAT_CHARACTERS = (
    "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200c\u200d\ufeff"
)
INVISIBLE = LINE_SEPARATORS + FORMAT_CHARACTERS
SEPARATED = INVISIBLE + "def f(x=open({marker!r}, 'w')): pass"
# SQL comments end at \r or \n: a hostile comment keeps the rest.
_IN_A_LINE = INVISIBLE.replace("\r", "")
MAX_NAME = 200


def _write_data(folder: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
    # sklearn's target is 0 = malignant; name the column for what it means
    frame = frame.rename(columns={"target": "benign"})
    keep = [
        "mean_radius",
        "mean_texture",
        "mean_smoothness",
        "worst_area",
        "worst_concavity",
        "benign",
    ]
    folder.mkdir(parents=True, exist_ok=True)
    frame[keep].to_csv(folder / "cancer.csv", index=False, float_format="%.6g", lineterminator="\n")


def _sql_name(name: str) -> str:
    return name if name.isidentifier() and name.isascii() else '"' + name.replace('"', '""') + '"'


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def conformance_spec(
    backend_settings: dict[str, Any] | None = None,
    *,
    gate: str = "roc_auc >= 0.8",
    names: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The spec as data. `names` replaces its names and strings (for hostile-name tests):
    the keys of `hostile_names`."""
    n = {
        "spec": "conformance",
        "raw": "raw",
        "source": "cancer",
        "schema": "raw",
        "slice": "size_class",
        "model": "benign",
        "gate": "quality",
        "feature": "radius_log",
        "impute_feature": "texture",
        "expr_feature": "smooth_x1000",
        "registry": "registry",
        "alias": "production",
        "batch": "scores",
        "output": "outputs/scores.parquet",
        "deployment": "serving",
        "storage_uri": "s3://models/conformance",
        "namespace": "default",
        "monitor": "drift",
    }
    n.update(names or {})
    # Optional strings: in the spec only when given (the plain project has none of them).
    extra = {key: n[key] for key in ("sql_comment", "sql_string") if key in n}
    sql = (f"-- {extra['sql_comment']}\n" if "sql_comment" in extra else "") + (
        f"SELECT *, CASE WHEN mean_radius > 14 THEN 'large' ELSE 'small' END "
        f"AS {_sql_name(n['slice'])} FROM {_sql_name(n['raw'])}"
    )
    expr = "mean_smoothness * 1000"
    if "sql_string" in extra:
        expr += f" + 0 * length({_sql_text(extra['sql_string'])})"
    model: dict[str, Any] = {
        "task": "binary",
        "data": n["source"],
        "target": "benign",
        "features": [
            n["feature"],
            n["impute_feature"],
            n["expr_feature"],
            "worst_area",
            "worst_concavity",
        ],
        "split": {"method": "stratified", "test_size": 0.3, "seed": 7},
        "params": {"num_leaves": 7, "learning_rate": 0.1, "min_data_in_leaf": 10},
        "num_boost_round": 40,
        "early_stopping": {"rounds": 10, "validation_size": 0.15},
        "slices": [n["slice"]],
        "min_slice_rows": 20,
        # a custom metric from the project's own module (METRICS_MODULE), gated like a
        # built-in one: every backend must import it from the project folder
        "metrics": [
            "roc_auc",
            "pr_auc",
            "logloss",
            "accuracy",
            "f1",
            {"name": "cost", "function": "conformance_metrics:cost", "greater_is_better": False},
        ],
    }
    monitor: dict[str, Any] = {
        "model": n["model"],
        "alias": n["alias"],
        "current": {"source": n["source"]},
        "checks": ["psi <= 0.25", "psi[prediction] <= 0.25"],
        "min_rows": 50,
        "retrain": {"when": ["drift"]},
    }
    described = "descriptions" in n
    named_raw = {} if _sql_name(n["raw"]) == n["raw"] else {"inputs": [n["raw"]]}
    if "registered_name" in n:
        model["registered_name"] = n["registered_name"]
    if "report" in n:
        monitor["report"] = n["report"]
    spec: dict[str, Any] = {
        "name": n["spec"],
        "description": n.get("description", "Backend conformance project"),
        "sources": {
            n["raw"]: {"path": "data/cancer.csv", "schema": n["schema"]},
            n["source"]: {"sql": sql, **named_raw},
        },
        "schemas": {
            n["schema"]: {
                "columns": {
                    "mean_radius": {"dtype": "float", "gt": 0},
                    "mean_texture": {"dtype": "float", "gt": 0},
                    "benign": {"dtype": "int", "isin": [0, 1]},
                }
            }
        },
        "features": {
            n["feature"]: {"log": "mean_radius"},
            n["impute_feature"]: {"impute": {"column": "mean_texture", "strategy": "median"}},
            n["expr_feature"]: {"expr": expr},
        },
        "models": {n["model"]: model},
        "gates": {
            n["gate"]: {
                "model": n["model"],
                "checks": [gate, "cost <= 0.5", "cost <= production + 0.05"],
                "compare_to": n["alias"],
            }
        },
        "deployments": {
            n["registry"]: {"kind": "registry", "model": n["model"], "alias": n["alias"]},
            n["batch"]: {
                "kind": "batch",
                "model": n["model"],
                "source": n["source"],
                "output": n["output"],
            },
            n["deployment"]: {
                "kind": "kserve",
                "model": n["model"],
                "storage_uri": n["storage_uri"],
                "namespace": n["namespace"],
            },
        },
        "monitoring": {
            # the current window is the training data itself: nothing drifts, nothing retrains
            n["monitor"]: monitor,
        },
        "backends": backend_settings or {},
    }
    if described:
        text = n["descriptions"]
        spec["version"] = text
        spec["sources"][n["source"]]["description"] = text
        spec["schemas"][n["schema"]]["columns"]["mean_radius"]["description"] = text
        for feature in spec["features"].values():
            feature["description"] = text
    return spec


# The conformance project's custom metric: a missed malignant tumour (benign predicted
# where it is not) costs five times a false alarm.
METRICS_MODULE = """\
import numpy as np


def cost(y_true, y_score):
    predicted = np.asarray(y_score) >= 0.5
    actual = np.asarray(y_true) == 1
    return float((5 * (predicted & ~actual) + (~predicted & actual)).mean())
"""


def make_project(folder: Path, spec: dict[str, Any]) -> Path:
    """Write the data, the custom metric's module and the spec (as JSON, which is YAML)
    into `folder`; return the spec path.

    Every character outside ASCII is written as an escape: YAML reads a raw U+0085 or U+2028
    in a quoted string as a line break and folds it away, and the names must arrive intact.
    """
    _write_data(folder / "data")
    (folder / "conformance_metrics.py").write_text(METRICS_MODULE, encoding="utf-8")
    path = folder / "mlcompile.yaml"
    path.write_text(json.dumps(spec, indent=2, ensure_ascii=True) + "\n", encoding="utf-8")
    return path


def hostile_names(marker: Path) -> dict[str, str]:
    """A name or string for every key `conformance_spec` takes, each trying to run
    `touch <marker>`: one of the `HOSTILE` texts, then every character of `INVISIBLE` and
    a definition that would create the marker. Paths, the registered name (a folder name)
    and SQL comments keep what they may legally hold."""
    texts = {key: value.format(marker=marker) for key, value in HOSTILE.items()}
    tail = SEPARATED.format(marker=str(marker))
    families = {
        "spec": "conformance",
        "raw": texts["quote"],
        "source": texts["single"],
        "schema": texts["jinja"],
        "slice": texts["shell"],
        "model": texts["single"],
        "gate": texts["jinja"],
        "feature": texts["shell"],
        "impute_feature": texts["quote"],
        "expr_feature": texts["newline"],
        "registry": texts["quote"],
        "batch": texts["newline"],
        "deployment": texts["traversal"],
        "namespace": "ns",
        "monitor": texts["jinja"],
        "description": texts["newline"],
        "descriptions": texts["single"],
        "sql_string": texts["single"],
    }
    names = {key: text + tail for key, text in families.items()}
    names.update(
        {
            # an alias is a short ASCII word (mlcompile.names): nothing hostile fits in one
            "alias": "production",
            "registered_name": f"conformance{INVISIBLE}.benign",
            "output": f"outputs/scores{INVISIBLE}.parquet",
            "report": f"reports/drift{INVISIBLE}.json",
            "storage_uri": f"s3://models/conformance{INVISIBLE}",
            "sql_comment": f"{_IN_A_LINE}{texts['newline'].replace(chr(10), ' ')}",
        }
    )
    too_long = sorted(key for key, text in names.items() if len(text) > MAX_NAME)
    assert not too_long, f"hostile names over {MAX_NAME} characters: {too_long}"
    return names
