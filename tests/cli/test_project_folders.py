"""Commands that read run records without a spec argument find them where the project's
spec keeps them (backends.local.runs), unless --runs-dir says otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from mlcompile import paths
from mlcompile.testing import conformance_spec, make_project

Cli = Callable[..., Result]


def test_runs_commands_read_the_folder_the_spec_names(cli: Cli, tmp_path: Path) -> None:
    project = tmp_path / "p"
    spec = make_project(project, conformance_spec({"local": {"runs": "records/local"}}))
    ran = cli("run", spec, "-q", "--format", "json")
    assert ran.exit_code == 0, ran.output
    run_id = json.loads(ran.output)["run_id"]
    assert (project / "records" / "local" / run_id / "run.json").is_file()
    assert not (project / paths.RUNS).exists()

    listed = cli("runs", "list", "--format", "json", cwd=project)
    assert [r["id"] for r in json.loads(listed.output)["runs"]] == [run_id]
    shown = cli("runs", "show", "latest", cwd=project)
    assert shown.exit_code == 0 and f"run {run_id}" in shown.output
    # an option given wins over the spec
    elsewhere = cli("runs", "list", "--runs-dir", project / paths.RUNS, cwd=project)
    assert elsewhere.output.startswith("no runs in")


def test_without_a_spec_the_default_folder(cli: Cli, tmp_path: Path) -> None:
    listed = cli("runs", "list", cwd=tmp_path)
    assert listed.exit_code == 0
    assert listed.output.strip() == f"no runs in {paths.RUNS}"


def test_a_spec_that_does_not_load_is_reported(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "mlcompile.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    listed = cli("runs", "list", cwd=tmp_path)
    assert listed.exit_code == 2
    assert "mlcompile.yaml:" in listed.output
