"""The example third-party backend (examples/plugin-backend) passes the conformance kit."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcompile.testing import BackendConformance, conformance_spec, make_project
from mlcompile.testing import run_backend as run_on


@pytest.mark.slow
class TestMakeBackend(BackendConformance):
    backend = "make"


def test_makefile_carries_no_spec_text(tmp_path: Path) -> None:
    from mlcompile.compiler import compile_spec, render

    spec = make_project(tmp_path, conformance_spec(names={"model": "m$(whoami)", "gate": "g`id`"}))
    makefile = render(compile_spec(spec, []), "make").files["Makefile"]
    assert "whoami" not in makefile and "`id`" not in makefile
    assert "--index 0 --artifacts artifacts" in makefile


@pytest.mark.slow
def test_failed_step_reports_its_exit_code(tmp_path: Path) -> None:
    spec = make_project(tmp_path, conformance_spec())
    (tmp_path / "data" / "cancer.csv").write_text("mean_radius,benign\n-1,3\n")
    result = run_on(spec, "make", tmp_path / "build")
    assert result.exit_code == 3
    assert result.steps["validate:raw"]["status"] == "failed"
    assert result.steps["train:benign"]["status"] == "not run"
