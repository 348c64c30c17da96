"""A tuned model on ZenML's local orchestrator: the search is a step of its own, and the
model registered is the one the local backend registers, chosen by the same trials."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.backends.zenml.conftest import make_project, small_spec
from tests.backends.zenml.test_run import run_zenml, statuses

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("zenml")]
CLI = str(Path(sys.executable).with_name("mlcompile"))


def tuned_spec() -> dict[str, Any]:
    spec = small_spec(hostile=False)
    model = spec["models"]["delayed"]  # type: ignore[index]
    model["params"] = {"min_data_in_leaf": 20}
    model["early_stopping"] = {"rounds": 5, "validation_size": 0.2}
    model["tune"] = {
        "metric": "roc_auc",
        "trials": 3,
        "space": {
            "num_leaves": {"int": [4, 31]},
            "learning_rate": {"float": [0.05, 0.3], "log": True},
        },
    }
    return spec


def registered(root: Path) -> dict[str, Any]:
    [folder] = (root / ".mlcompile" / "registry").glob("*/versions/1")
    entry: dict[str, Any] = json.loads((folder / "registration.json").read_text())
    return entry


def test_zenml_tunes_as_the_local_backend_does(tmp_path: Path) -> None:
    on_zenml = run_zenml(make_project(tmp_path / "zenml", tuned_spec()))
    assert on_zenml.result.status == "succeeded", on_zenml.result.error
    assert statuses(on_zenml)["tune:delayed"] == "ran"
    local = make_project(tmp_path / "local", tuned_spec())
    done = subprocess.run(
        [CLI, "run", str(local), "--jobs", "1", "--quiet"],
        cwd=local.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    zenml_entry, local_entry = registered(on_zenml.project), registered(local.parent)
    assert zenml_entry["tuning"]["trials"] == 3
    assert zenml_entry["tuning"] == local_entry["tuning"]
    assert zenml_entry["model_sha256"] == local_entry["model_sha256"]
