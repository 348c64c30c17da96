"""docs/trust-model.md: every command it shows runs here, with the exit code it claims.

Each line of a ```sh block is run by bash (environment assignments included) with this
checkout's `mlcompile`, from a copy of the flights example that needs the grant the line
is about; a trailing `# exit N` is the exit code the page promises (default 0). The page's
pyproject.toml snippet must grant both.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, REPO

PAGE = REPO / "docs" / "trust-model.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def _blocks(kind: str) -> list[str]:
    return [body for info, body in BLOCK.findall(PAGE.read_text()) if info == kind]


def _commands() -> list[str]:
    return [line for body in _blocks("sh") for line in body.splitlines() if line.strip()]


def _project(tmp: Path, needs: str) -> Path:
    """The flights example, changed so that it needs `needs`: a module that is not a file of
    the project, or a path outside it."""
    project = tmp / needs / "flights"
    shutil.copytree(
        EXAMPLE, project, ignore=shutil.ignore_patterns("build", ".mlcompile", "outputs")
    )
    spec = project / "mlcompile.yaml"
    text = spec.read_text()
    if needs == "module":
        text = text.replace(
            "features:\n", 'features:\n  per_mile: {custom: "company_features.speed:per_mile"}\n', 1
        )
    else:
        shutil.move(project / "data" / "planes.csv", project.parent / "planes.csv")
        text = text.replace("path: data/planes.csv", "path: ../planes.csv")
    spec.write_text(text)
    return project


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCOMPILE_ALLOW")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_page_shows_commands_for_both_grants() -> None:
    commands = _commands()
    assert any("--allow-module" in c for c in commands)
    assert any("MLCOMPILE_ALLOW_MODULES=" in c for c in commands)
    assert any("--allow-paths-outside-project" in c for c in commands)
    assert any("MLCOMPILE_ALLOW_PATHS_OUTSIDE_PROJECT=" in c for c in commands)


@pytest.mark.parametrize("command", _commands())
def test_each_command_runs_as_the_page_says(tmp_path: Path, command: str) -> None:
    expected = re.search(r"#\s*exit (\d+)", command)
    needs = "module" if "E308" in command or "MODULE" in command.upper() else "path"
    project = _project(tmp_path, needs)
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=project,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == (int(expected[1]) if expected else 0), output
    assert "internal error" not in output and "Traceback" not in output
    if expected:
        code = re.search(r"(E\d{3})", command)
        assert code is not None and code[1] in output, output


def _validate(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["mlcompile", "validate", "mlcompile.yaml"],
        cwd=project,
        env=_env(),
        text=True,
        capture_output=True,
        timeout=300,
    )


def test_the_pyproject_snippet_grants_both(tmp_path: Path) -> None:
    [snippet] = _blocks("toml")
    for needs in ("module", "path"):
        project = _project(tmp_path, needs)
        refused = _validate(project)
        assert refused.returncode == 2, refused.stderr
        (project / "pyproject.toml").write_text(snippet)
        granted = _validate(project)
        assert granted.returncode == 0, granted.stderr
