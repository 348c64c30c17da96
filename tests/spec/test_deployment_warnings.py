"""A batch deployment with no registration of its model in front of it warns at validate."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlcompile.spec import load_spec

BASE = Path(__file__).parent / "broken" / "base.yaml"
BATCH = "  scores: {kind: batch, model: delayed, source: flights, output: outputs/scores.parquet}\n"


def _warnings(tmp_path: Path, deployments: str) -> list:
    shutil.copytree(BASE.parent / "data", tmp_path / "data")
    text = BASE.read_text().split("deployments:\n")[0] + "deployments:\n" + deployments
    (tmp_path / "mlcompile.yaml").write_text(text)
    return load_spec(tmp_path / "mlcompile.yaml").warnings


def test_batch_scores_without_a_registry_deployment_warn_at_the_model(tmp_path: Path) -> None:
    [warning] = [w for w in _warnings(tmp_path, BATCH) if w.code == "W103"]
    assert warning.severity == "warning"
    assert "'scores'" in warning.message and "'delayed'" in warning.message
    assert warning.span is not None and warning.span.line == BASE.read_text().count("\n")
    assert "kind: registry" in (warning.hint or "")


def test_batch_scores_behind_a_registration_do_not_warn(tmp_path: Path) -> None:
    registered = "  registry: {kind: registry, model: delayed}\n" + BATCH
    assert not [w for w in _warnings(tmp_path, registered) if w.code == "W103"]
