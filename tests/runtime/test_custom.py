"""Custom feature functions load from project files by path, or by the operator's grant."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlcompile.errors import StepError
from mlcompile.runtime.custom import load_function, project
from mlcompile.trust import MODULES_ENV


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project folder that is not on sys.path, and whose modules are forgotten after."""
    monkeypatch.delenv(MODULES_ENV, raising=False)
    before = set(sys.modules)
    with project(tmp_path):
        yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_a_project_file_loads_by_path_without_pythonpath(root: Path) -> None:
    (root / "mlc_speed_features.py").write_text("def speed(df):\n    return df * 2\n")
    assert str(root) not in sys.path and "PYTHONPATH" not in os.environ
    function = load_function("mlc_speed_features:speed", "f")
    assert function(21) == 42


def test_a_package_module_imports_its_own_package(root: Path) -> None:
    package = root / "mlc_pkg_features"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("FACTOR = 3\n")
    (package / "helpers.py").write_text("def triple(x):\n    return x * 3\n")
    (package / "sub" / "mod.py").write_text(
        "from mlc_pkg_features import FACTOR\n"
        "from ..helpers import triple\n\n"
        "def run(x):\n    return triple(x) + FACTOR\n"
    )
    assert load_function("mlc_pkg_features.sub.mod:run", "f")(1) == 6


def test_an_edited_file_is_loaded_again(root: Path) -> None:
    module = root / "mlc_edited_features.py"
    module.write_text("def f(x):\n    return 1\n")
    assert load_function("mlc_edited_features:f", "f")(0) == 1
    module.write_text("def f(x):\n    return 22\n")
    os.utime(module, ns=(1, 1))  # a different stamp even within the clock's resolution
    assert load_function("mlc_edited_features:f", "f")(0) == 22


def test_modules_outside_the_project_need_the_operators_grant(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(StepError, match="'subprocess' is a standard-library module"):
        load_function("subprocess:getoutput", "model 'm': feature 'shell'")
    with pytest.raises(StepError, match="installed module"):
        load_function("yaml:safe_load", "f")
    monkeypatch.setenv(MODULES_ENV, "math")
    assert load_function("math:sqrt", "f")(9.0) == 3.0


def test_another_projects_file_of_the_same_name_replaces_the_first(
    root: Path, tmp_path: Path
) -> None:
    (root / "mlc_shared_metrics.py").write_text("def f():\n    return 'first'\n")
    assert load_function("mlc_shared_metrics:f", "f")() == "first"
    other = tmp_path / "other_project"
    other.mkdir()
    (other / "mlc_shared_metrics.py").write_text("def f():\n    return 'second'\n")
    with project(other):
        assert load_function("mlc_shared_metrics:f", "f")() == "second"
    assert load_function("mlc_shared_metrics:f", "f")() == "first"


def test_a_project_file_cannot_stand_in_for_an_imported_module(root: Path) -> None:
    (root / "json.py").write_text("def loads(text):\n    return 'not the real json'\n")
    with pytest.raises(StepError, match="already imported from"):
        load_function("json:loads", "f")


def test_failures_name_the_feature(root: Path) -> None:
    (root / "mlc_broken_features.py").write_text("raise RuntimeError('boom')\n")
    (root / "mlc_plain_features.py").write_text("VALUE = 3\n")
    with pytest.raises(StepError, match=r"feature 'x': cannot load .*RuntimeError: boom"):
        load_function("mlc_broken_features:f", "feature 'x'")
    assert "mlc_broken_features" not in sys.modules
    with pytest.raises(StepError, match="cannot load 'mlc_plain_features:missing'"):
        load_function("mlc_plain_features:missing", "f")
    with pytest.raises(StepError, match="is not a function"):
        load_function("mlc_plain_features:VALUE", "f")
