"""Folders mlcompile must write to but cannot: a clear exit 5 naming the folder, never an
internal error. The folders are really read-only for the process (see run_read_only)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.registry import Registry
from tests.conftest import run_read_only

METRICS = {"task": "binary", "rows": 10, "overall": {"roc_auc": 0.8}, "slices": {}}


def assert_clear_write_error(done: subprocess.CompletedProcess[str], folder: Path) -> None:
    assert done.returncode == 5, done.stderr
    assert "mlcompile: error: cannot write" in done.stderr
    assert str(folder) in done.stderr, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr


def test_build_into_a_read_only_folder(flights_project: Path) -> None:
    out = flights_project / "build"
    done = run_read_only(out, ["build", "mlcompile.yaml", "--out", "build"], flights_project)
    assert_clear_write_error(done, Path("build"))
    assert list(out.iterdir()) == []


def test_run_with_a_read_only_mlcompile_folder(flights_project: Path) -> None:
    state = flights_project / ".mlcompile"
    done = run_read_only(state, ["run", "mlcompile.yaml"], flights_project)
    assert_clear_write_error(done, state)
    assert list(state.iterdir()) == []


def test_promote_on_a_read_only_registry(flights_project: Path) -> None:
    root = flights_project / "registry"
    registry = Registry(root)
    for text in ("model v1", "model v2"):
        registry.register("m", ModelBundle(text, {"training_data": {}}), METRICS, alias="live")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    for args in (["promote", "m@1", "--alias", "staging"], ["rollback", "m", "--alias", "live"]):
        done = run_read_only(root, ["registry", *args, "--registry", "registry"], flights_project)
        assert_clear_write_error(done, Path("registry") / "m")
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    # reading needs no write
    shown = run_read_only(root, ["registry", "list", "--registry", "registry"], flights_project)
    assert shown.returncode == 0 and "m: 2 versions (live->v2)" in shown.stdout, shown.stderr
    listed = run_read_only(
        root,
        ["registry", "show", "m@live", "--registry", "registry", "--format", "json"],
        flights_project,
    )
    assert json.loads(listed.stdout)["version"] == 2
