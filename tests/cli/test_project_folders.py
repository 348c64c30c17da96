"""Commands that read run records or the registry without a spec argument find them where
the project's spec keeps them (backends.local.runs, settings.registry), unless --runs-dir
or --registry says otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from mlcompile import paths
from mlcompile.testing import conformance_spec, make_project

Cli = Callable[..., Result]


def test_project_commands_read_the_folders_the_spec_names(cli: Cli, tmp_path: Path) -> None:
    project = tmp_path / "p"
    data = conformance_spec({"local": {"runs": "records/local"}})
    data["settings"] = {**data.get("settings", {}), "registry": "models/registry"}
    spec = make_project(project, data)
    ran = cli("run", spec, "-q", "--format", "json")
    assert ran.exit_code == 0, ran.output
    run_id = json.loads(ran.output)["run_id"]
    assert (project / "records" / "local" / run_id / "run.json").is_file()
    assert not (project / paths.RUNS).exists()
    assert not (project / paths.REGISTRY).exists()

    listed = cli("runs", "list", "--format", "json", cwd=project)
    assert [r["id"] for r in json.loads(listed.output)["runs"]] == [run_id]
    shown = cli("runs", "show", "latest", cwd=project)
    assert shown.exit_code == 0 and f"run {run_id}" in shown.output
    # an option given wins over the spec
    elsewhere = cli("runs", "list", "--runs-dir", project / paths.RUNS, cwd=project)
    assert elsewhere.output.startswith("no runs in")

    # from a folder inside the project, as git finds its repository
    models = cli("registry", "list", "--format", "json", cwd=project / "data")
    assert list(json.loads(models.output)["models"]) == ["conformance.benign"]
    shown = cli("registry", "show", "conformance.benign@production", cwd=project)
    assert shown.exit_code == 0 and "production" in shown.output
    other = cli("registry", "list", "--registry", project / paths.REGISTRY, cwd=project)
    assert other.output.startswith("no models in")


def test_outside_a_project_it_says_how_to_point_at_one(cli: Cli, tmp_path: Path) -> None:
    listed = cli("runs", "list", cwd=tmp_path)
    assert listed.exit_code == 2
    assert "not inside an mlcompile project" in listed.output
    assert "pass --project DIR" in listed.output
    (tmp_path / paths.PROJECT_DIR).mkdir()
    inside = cli("runs", "list", cwd=tmp_path)
    assert inside.exit_code == 0
    assert inside.output.strip() == f"no runs in {tmp_path.resolve() / paths.RUNS}"


def test_a_spec_that_does_not_load_is_reported(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "mlcompile.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    listed = cli("runs", "list", cwd=tmp_path)
    assert listed.exit_code == 2
    assert "mlcompile.yaml:" in listed.output
