"""The example third-party backend (examples/plugin-backend) passes the conformance kit."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlcompile_make import MakeBackend

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
    # every column is there (validate reads the header), but the values break the schema
    data = tmp_path / "data" / "cancer.csv"
    header, first = data.read_text().splitlines()[:2]
    row = {**dict(zip(header.split(","), first.split(","), strict=True)), "mean_radius": "-1"}
    data.write_text(header + "\n" + ",".join({**row, "benign": "3"}.values()) + "\n")
    result = run_on(spec, "make", tmp_path / "build")
    assert result.exit_code == 3
    assert result.steps["validate:raw"]["status"] == "failed"
    assert result.steps["train:benign"]["status"] == "not run"


def test_executor_check_sees_a_wrong_index_and_a_stray_line(tmp_path: Path) -> None:
    from mlcompile.compiler import compile_spec, render
    from mlcompile.testing import executor_mismatches

    compiled = compile_spec(make_project(tmp_path, conformance_spec()), [])
    rendered = render(compiled, "make")
    backend = rendered.backend
    makefile = rendered.files["Makefile"]
    assert isinstance(backend, MakeBackend)
    assert not executor_mismatches(backend, {"Makefile": makefile}, compiled.plan)
    nodes = [node.id for node in compiled.plan.nodes]
    wrong = makefile.replace("--index 1 ", "--index 2 ")
    assert executor_mismatches(backend, {"Makefile": wrong}, compiled.plan) == [
        f"artifacts/n1/.done (for {nodes[1]!r}) runs [{nodes[2]!r}]"
    ]
    stray = makefile.replace("THREADS ?= 1\n", "THREADS ?= 1\nX := $(shell id)\n")
    problems = executor_mismatches(backend, {"Makefile": stray}, compiled.plan)
    assert len(problems) == len(nodes)
    assert all("the line 'X := $(shell id)'" in problem for problem in problems)


@pytest.mark.slow
def test_make_runs_are_in_the_trail(tmp_path: Path) -> None:
    """Each `mlcompile step` the Makefile runs sends its events under the run's id."""
    import json

    from tests.trail import check_trail, cli

    spec = make_project(tmp_path, conformance_spec())
    done = cli(tmp_path, "run", spec, "-b", "make", "-q", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    [model] = [p.name for p in (tmp_path / ".mlcompile" / "registry").iterdir()]
    check_trail(tmp_path, spec, run_id, "make", model)
