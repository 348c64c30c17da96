"""The operator's grants: from the environment, the command line and pyproject.toml only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlcompile.errors import UsageError
from mlcompile.trust import (
    MODULES_ENV,
    OUTSIDE_ENV,
    granted,
    grants,
    module_source,
    project_module_file,
)


@pytest.fixture(autouse=True)
def _no_grants(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODULES_ENV, raising=False)
    monkeypatch.delenv(OUTSIDE_ENV, raising=False)


def test_nothing_is_granted_by_default(tmp_path: Path) -> None:
    found = grants(tmp_path)
    assert found.modules == () and not found.paths_outside_project
    assert not found.allows_module("subprocess")


def test_environment_and_pyproject_grant_and_join(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MODULES_ENV, " company_features , numpy")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\n[tool.mlcompile]\nallow_modules = ["scipy.special", "numpy"]\n'
        "allow_paths_outside_project = true\n"
    )
    found = grants(tmp_path)
    assert found.modules == ("company_features", "numpy", "scipy.special")
    assert found.paths_outside_project
    assert found.allows_module("company_features.speed")
    assert found.allows_module("scipy.special") and not found.allows_module("scipy")
    assert not found.allows_module("numpyx")


@pytest.mark.parametrize(
    ("pyproject", "message"),
    [
        ("[tool.mlcompile]\nallow_modules = 'os'\n", "must be a list of module names"),
        ("[tool.mlcompile]\nallow_modules = ['os; rm']\n", "not a Python module name"),
        ("[tool.mlcompile]\nallow_paths_outside_project = 'yes'\n", "must be true or false"),
        ("[tool.mlcompile]\nallow_module = ['os']\n", "unknown key 'allow_module'"),
        ("[tool.mlcompile\n", "cannot read"),
    ],
)
def test_a_malformed_pyproject_is_a_usage_error(
    tmp_path: Path, pyproject: str, message: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(pyproject)
    with pytest.raises(UsageError, match=message):
        grants(tmp_path)


def test_malformed_environment_values_are_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OUTSIDE_ENV, "maybe")
    with pytest.raises(UsageError, match="must be 1 or 0"):
        grants(tmp_path)
    monkeypatch.setenv(OUTSIDE_ENV, "0")
    monkeypatch.setenv(MODULES_ENV, "../evil")
    with pytest.raises(UsageError, match="not a Python module name"):
        grants(tmp_path)


def test_command_line_grants_last_for_the_command_only(tmp_path: Path) -> None:
    os.environ[MODULES_ENV] = "already"
    with granted(["extra"], paths_outside_project=True):
        assert grants(tmp_path).modules == ("already", "extra")
        assert grants(tmp_path).paths_outside_project
    assert os.environ[MODULES_ENV] == "already"
    assert OUTSIDE_ENV not in os.environ
    with pytest.raises(RuntimeError), granted(["x"], paths_outside_project=True):
        raise RuntimeError
    assert OUTSIDE_ENV not in os.environ


def test_project_modules_are_found_by_path_inside_the_project(tmp_path: Path) -> None:
    (tmp_path / "feats" / "deep").mkdir(parents=True)
    (tmp_path / "feats" / "deep" / "mod.py").write_text("")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    assert (
        project_module_file("feats.deep.mod", tmp_path)
        == (tmp_path / "feats" / "deep" / "mod.py").resolve()
    )
    assert project_module_file("pkg", tmp_path) == (tmp_path / "pkg" / "__init__.py").resolve()
    assert project_module_file("feats.deep", tmp_path) is None  # a folder, not a module
    assert project_module_file("../feats", tmp_path) is None
    assert module_source("feats.deep.mod", tmp_path).refusal is None


def test_a_link_out_of_the_project_is_not_a_project_module(tmp_path: Path) -> None:
    import subprocess

    project = tmp_path / "project"
    project.mkdir()
    (project / "subprocess.py").symlink_to(subprocess.__file__)
    (project / "lib").symlink_to(Path(subprocess.__file__).parent)
    assert project_module_file("subprocess", project) is None
    assert project_module_file("lib.subprocess", project) is None
    refused = module_source("subprocess", project)
    assert refused.refusal is not None and "standard-library" in refused.refusal
    assert refused.hint is not None and "--allow-module subprocess" in refused.hint


def test_refusals_say_what_the_module_is(tmp_path: Path) -> None:
    installed = module_source("yaml", tmp_path)
    assert installed.refusal is not None and "installed module" in installed.refusal
    missing = module_source("no_such_thing.here", tmp_path)
    assert missing.refusal is not None and "not a file of the project" in missing.refusal
    assert missing.hint is not None and "no_such_thing/here.py" in missing.hint


def test_an_allowed_module_needs_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODULES_ENV, "math")
    assert module_source("math", tmp_path).refusal is None
    assert module_source("mathx", tmp_path).refusal is not None
