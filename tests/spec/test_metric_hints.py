"""Hints for metric names: only valid names are suggested, scikit-learn's and MLflow's names
map to ours, and an invalid `metrics:` entry does not hide a gate's error on the same name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlcompile.errors import SpecError
from mlcompile.spec import load_spec
from mlcompile.spec.metric_names import metric_hint
from mlcompile.tasks import TASK_METRICS

BASE = Path(__file__).parent / "broken" / "base.yaml"


@pytest.mark.parametrize(
    ("name", "task", "ours"),
    [
        ("auc", "binary", "roc_auc"),
        ("f1_score", "binary", "f1"),
        ("f1_score", "multiclass", "macro_f1"),
        ("root_mean_squared_error", "regression", "rmse"),
        ("mean_absolute_error", "regression", "mae"),
        ("log_loss", "binary", "logloss"),
        ("roc_auc_scor", "binary", "roc_auc"),  # a plain typo: the closest valid name
    ],
)
def test_hints_name_our_metric(name: str, task: str, ours: str) -> None:
    hint = metric_hint(name, TASK_METRICS[task])
    assert hint is not None and hint.startswith(f"did you mean '{ours}'?")


def _errors(tmp_path: Path, text: str) -> list:
    shutil.copytree(BASE.parent / "data", tmp_path / "data")
    spec = tmp_path / "mlcompile.yaml"
    spec.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    return [d for d in caught.value.diagnostics if d.severity == "error"]


def test_an_invalid_metric_and_the_gate_on_it_are_both_reported(tmp_path: Path) -> None:
    text = BASE.read_text().replace(
        "    slices: [origin]\n", "    slices: [origin]\n    metrics: [rmse, foo]\n"
    )
    text = text.replace(
        'checks: ["rmse <= 30", "rmse[origin] <= 40"]',
        'checks: ["foo <= 30", "root_mean_squared_error <= 40"]',
    )
    errors = _errors(tmp_path, text)
    by_line = sorted((d.span.line, d.message, d.hint) for d in errors if d.span)
    messages = [m for _, m, _ in by_line]
    assert messages == [
        "a regression model does not produce 'foo'",
        "model 'delayed' (regression) does not produce 'foo'",
        "model 'delayed' (regression) does not produce 'root_mean_squared_error'",
    ]
    hints = [h or "" for _, _, h in by_line]
    assert all("'foo'" not in h for h in hints)  # never offered as a known name
    assert hints[2].startswith("did you mean 'rmse'?")
