"""Trust as the operator gives it: custom modules and paths, on the command line, in the
environment and in pyproject.toml, checked at validate and again where steps run."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from mlcompile.plan import Plan
from mlcompile.trust import MODULES_ENV, OUTSIDE_ENV

Cli = Callable[..., Result]
QUICK = ["models.delayed.num_boost_round=20", "models.arrival.num_boost_round=20"]


@pytest.fixture(autouse=True)
def _no_grants(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODULES_ENV, raising=False)
    monkeypatch.delenv(OUTSIDE_ENV, raising=False)


def _add_feature(spec: Path, name: str, definition: str) -> None:
    """Add a feature to the flights spec and give it to the delayed model."""
    text = spec.read_text()
    text = text.replace("features:\n", f"features:\n  {name}: {definition}\n", 1)
    text = text.replace("features: [dep_hour,", f"features: [{name}, dep_hour,", 1)
    spec.write_text(text)


def test_the_spec_cannot_allow_a_shell_for_itself(
    cli: Cli, flights_project: Path, tmp_path: Path
) -> None:
    """The probe's exploit: `settings.custom_modules: [subprocess]` and a custom feature
    `subprocess:getoutput` ran shell commands from column values."""
    spec = flights_project / "mlcompile.yaml"
    spec.write_text(
        spec.read_text().replace("  seed: 13", "  seed: 13\n  custom_modules: [subprocess]")
    )
    _add_feature(spec, "shell", '{custom: "subprocess:getoutput"}')
    result = cli("validate", spec, "--format", "json")
    assert result.exit_code == 2
    found = {d["code"]: d for d in json.loads(result.stdout)["diagnostics"]}
    assert found["E308"]["path"] == "features.shell.custom"
    assert "standard-library module" in found["E308"]["message"]
    assert "--allow-module subprocess" in found["E308"]["hint"]
    assert found["W102"]["path"] == "settings.custom_modules"
    assert (
        found["E308"]["span"]["line"]
        == spec.read_text().splitlines().index('  shell: {custom: "subprocess:getoutput"}') + 1
    )
    assert cli("run", spec, *QUICK).exit_code == 2


def test_operator_grants_come_from_flag_environment_or_pyproject(
    cli: Cli, flights_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = flights_project / "mlcompile.yaml"
    _add_feature(spec, "loads", '{custom: "json:loads"}')
    assert cli("validate", spec).exit_code == 2
    assert cli("validate", spec, "--allow-module", "json").exit_code == 0
    assert MODULES_ENV not in os.environ  # the flag lasts for its command only
    assert cli("validate", spec, "--allow-module", "js on").exit_code == 2
    monkeypatch.setenv(MODULES_ENV, "json")
    assert cli("validate", spec).exit_code == 0
    monkeypatch.delenv(MODULES_ENV)
    (flights_project / "pyproject.toml").write_text('[tool.mlcompile]\nallow_modules = ["json"]\n')
    assert cli("validate", spec).exit_code == 0
    (flights_project / "pyproject.toml").write_text("[tool.mlcompile]\nallow_modules = 'json'\n")
    broken = cli("validate", spec)
    assert broken.exit_code == 2 and "allow_modules must be a list" in broken.output


@pytest.mark.slow
def test_a_project_module_runs_on_the_local_backend_without_pythonpath(
    cli: Cli, flights_project: Path, tmp_path: Path
) -> None:
    package = flights_project / "flight_features"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "speed.py").write_text(
        "def per_mile(frame):\n    return frame['sched_dep_time'] / frame['distance']\n"
    )
    spec = flights_project / "mlcompile.yaml"
    _add_feature(spec, "per_mile", '{custom: "flight_features.speed:per_mile"}')
    assert "PYTHONPATH" not in os.environ
    # run from elsewhere: the project is not the working directory, nor on sys.path
    result = cli("run", spec, *QUICK, "--format", "json", cwd=tmp_path)
    payload = json.loads(result.stdout)
    assert result.exit_code in (0, 4), payload["error"]
    assert payload["steps"]["features:delayed"]["status"] == "ran"

    # a plan edited by hand gets no trust either: the runtime checks the module again
    plan_file = flights_project / "build" / "plan.json"
    plan = json.loads(plan_file.read_text())
    node = next(n for n in plan["nodes"] if n["id"] == "features:delayed")
    for feature in node["params"]["features"]:
        if feature["op"] == "custom":
            feature["function"] = "subprocess:getoutput"
    edited = tmp_path / "edited-plan.json"
    edited.write_text(json.dumps(plan))
    index = [n.id for n in sorted(Plan.from_json(edited.read_text()).nodes, key=lambda n: n.id)]
    refused = cli(
        "step",
        edited,
        "--index",
        str(index.index("features:delayed")),
        "--in",
        f"train={_split_output(flights_project, payload)}",
        "--out",
        f"transformer={tmp_path / 'transformer'}",
        "--out",
        f"train={tmp_path / 'train'}",
        "--project-root",
        flights_project,
    )
    assert refused.exit_code == 5
    assert "'subprocess' is a standard-library module" in refused.output
    assert not (tmp_path / "transformer").exists()


def _split_output(project: Path, payload: dict[str, object]) -> Path:
    steps = payload["steps"]
    assert isinstance(steps, dict)
    key = steps["split:delayed"]["key"]
    return project / ".mlcompile" / "store" / "entries" / key[:2] / key / "train"


def test_a_store_outside_the_project_is_refused_before_anything_runs(
    cli: Cli, flights_project: Path, tmp_path: Path
) -> None:
    """`settings.store` was not checked: a run wrote there, and cleaning its staging folder
    deleted a file outside the project."""
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "staging").mkdir(parents=True)
    (elsewhere / "staging" / "keep.txt").write_text("not mlcompile's")
    spec = flights_project / "mlcompile.yaml"
    result = cli("run", spec, f"settings.store={elsewhere}", *QUICK)
    assert result.exit_code == 2
    assert f"the path '{elsewhere}' leaves the project folder" in result.output
    assert (elsewhere / "staging" / "keep.txt").read_text() == "not mlcompile's"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["staging"]


def test_backend_paths_are_checked_at_validate(cli: Cli, flights_project: Path) -> None:
    spec = flights_project / "mlcompile.yaml"
    spec.write_text(spec.read_text() + "\nbackends:\n  local:\n    runs: ../runs\n    store: .\n")
    lines = spec.read_text().splitlines()
    result = cli("validate", spec, "--format", "json")
    assert result.exit_code == 2
    found = {d["path"]: d for d in json.loads(result.stdout)["diagnostics"]}
    assert found["backends.local.runs"]["code"] == "E306"
    assert found["backends.local.runs"]["span"]["line"] == lines.index("    runs: ../runs") + 1
    assert "is the project folder itself" in found["backends.local.store"]["message"]
    allowed = cli("validate", spec, "--allow-paths-outside-project", "--format", "json")
    assert [d["path"] for d in json.loads(allowed.stdout)["diagnostics"]] == [
        "backends.local.store"
    ]


def test_plugin_backend_paths_are_checked_at_validate(cli: Cli, flights_project: Path) -> None:
    """The KFP and ZenML plugins' own folders go through the same E306 check."""
    spec = flights_project / "mlcompile.yaml"
    spec.write_text(
        spec.read_text()
        + "\nbackends:\n  kfp:\n    local_root: /tmp/kfp-elsewhere\n"
        + "  zenml:\n    zenml_home: ../zenml-elsewhere\n"
    )
    result = cli("validate", spec, "--format", "json")
    assert result.exit_code == 2, result.output
    found = {d["path"]: d["code"] for d in json.loads(result.stdout)["diagnostics"]}
    assert found == {"backends.kfp.local_root": "E306", "backends.zenml.zenml_home": "E306"}
