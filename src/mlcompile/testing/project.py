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


def conformance_spec(
    backend_settings: dict[str, Any] | None = None,
    *,
    gate: str = "roc_auc >= 0.8",
    names: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The spec as data. `names` renames sections' entries (for hostile-name tests)."""
    n = {"source": "cancer", "model": "benign", "gate": "quality", "feature": "radius_log"}
    n.update(names or {})
    registered = {"kind": "registry", "model": n["model"], "alias": "production"}
    return {
        "name": "conformance",
        "description": n.get("description", "Backend conformance project"),
        "sources": {
            "raw": {"path": "data/cancer.csv", "schema": "raw"},
            n["source"]: {
                "sql": "SELECT *, CASE WHEN mean_radius > 14 THEN 'large' ELSE 'small' END "
                "AS size_class FROM raw",
            },
        },
        "schemas": {
            "raw": {
                "columns": {
                    "mean_radius": {"dtype": "float", "gt": 0},
                    "mean_texture": {"dtype": "float", "gt": 0},
                    "benign": {"dtype": "int", "isin": [0, 1]},
                }
            }
        },
        "features": {
            n["feature"]: {"log": "mean_radius"},
            "texture": {"impute": {"column": "mean_texture", "strategy": "median"}},
            "smooth_x1000": {"expr": "mean_smoothness * 1000"},
        },
        "models": {
            n["model"]: {
                "task": "binary",
                "data": n["source"],
                "target": "benign",
                "features": [
                    n["feature"],
                    "texture",
                    "smooth_x1000",
                    "worst_area",
                    "worst_concavity",
                ],
                "split": {"method": "stratified", "test_size": 0.3, "seed": 7},
                "params": {"num_leaves": 7, "learning_rate": 0.1, "min_data_in_leaf": 10},
                "num_boost_round": 40,
                "early_stopping": {"rounds": 10, "validation_size": 0.15},
                "slices": ["size_class"],
                "min_slice_rows": 20,
            }
        },
        "gates": {n["gate"]: {"model": n["model"], "checks": [gate]}},
        "deployments": {
            "registry": registered,
            "scores": {
                "kind": "batch",
                "model": n["model"],
                "source": n["source"],
                "output": "outputs/scores.parquet",
            },
            n.get("deployment", "serving"): {
                "kind": "kserve",
                "model": n["model"],
                "storage_uri": "s3://models/conformance",
            },
        },
        "monitoring": {
            # the current window is the training data itself: nothing drifts, nothing retrains
            n.get("monitor", "drift"): {
                "model": n["model"],
                "current": {"source": n["source"]},
                "checks": ["psi <= 0.25", "psi[prediction] <= 0.25"],
                "min_rows": 50,
                "retrain": {"when": ["drift"]},
            }
        },
        "backends": backend_settings or {},
    }


def make_project(folder: Path, spec: dict[str, Any]) -> Path:
    """Write the data and the spec (as JSON, which is YAML) into `folder`; return the spec path."""
    _write_data(folder / "data")
    path = folder / "mlcompile.yaml"
    path.write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def hostile_names(marker: Path) -> dict[str, str]:
    """Entry names (and a description) that try to run `touch <marker>`."""
    texts = {key: value.format(marker=marker) for key, value in HOSTILE.items()}
    return {
        "source": texts["quote"],
        "model": texts["single"],
        "gate": texts["jinja"],
        "feature": texts["shell"],
        "description": texts["newline"],
        "deployment": texts["traversal"],
        "monitor": texts["jinja"],
    }
