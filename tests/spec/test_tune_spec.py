"""`models.<m>.tune`: what validate says about a search's metric, space and shape."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlcompile.errors import Diagnostic, SpecError
from mlcompile.spec import load_spec

BROKEN = Path(__file__).parent / "broken"
MODEL = """\
name: t
sources:
  flights: {path: data/flights.csv}
models:
  m:
    task: binary
    data: flights
    target: dep_delay
    features: [distance]
"""


def _errors(tmp_path: Path, model_keys: str) -> list[Diagnostic]:
    shutil.copytree(BROKEN / "data", tmp_path / "data")
    spec = tmp_path / "mlcompile.yaml"
    spec.write_text(MODEL + model_keys, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    return [d for d in caught.value.diagnostics if d.severity == "error"]


def test_a_typo_in_the_space_suggests_the_lightgbm_name(tmp_path: Path) -> None:
    [error] = _errors(
        tmp_path, "    tune: {metric: roc_auc, space: {num_leavs: {int: [15, 255]}}}\n"
    )
    assert (error.code, error.path) == ("E314", "models.m.tune.space.num_leavs")
    assert error.hint == "did you mean 'num_leaves'?"


def test_a_foreign_metric_name_is_mapped_to_ours(tmp_path: Path) -> None:
    [error] = _errors(tmp_path, "    tune: {metric: auc, space: {num_leaves: {int: [15, 63]}}}\n")
    assert (error.code, error.path) == ("E303", "models.m.tune.metric")
    assert error.hint is not None and "'roc_auc'" in error.hint


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            "    tune: {metric: f1, space: {num_leaves: {int: [15, 63], float: [0.1, 0.2]}}}\n",
            "exactly one of 'int', 'float', 'choice'; found 'int', 'float'",
        ),
        (
            "    tune: {metric: f1, space: {boosting: {choice: [gbdt, dart], log: true}}}\n",
            "'log' applies to an int or float range",
        ),
        (
            "    early_stopping: null\n"
            "    tune: {metric: f1, space: {num_leaves: {int: [15, 63]}}}\n",
            "a tuned model is scored on the validation split: set early_stopping",
        ),
        ("    tune: {metric: f1, space: {}}\n", "at least 1 item"),
    ],
)
def test_shape_errors_are_located(tmp_path: Path, keys: str, message: str) -> None:
    [error] = _errors(tmp_path, keys)
    assert error.code == "E203" and message in error.message, error.message
    assert error.span is not None and error.path.startswith("models.m")
