"""Shared fixtures: the example project, golden files, and running the CLI in-process."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "flights"
GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite golden files from the current output (review the diff before committing).",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """Compare text with tests/golden/<name>; rewrite it with --update-golden."""
    update = (
        request.config.getoption("--update-golden")
        or os.environ.get("MLCOMPILE_UPDATE_GOLDEN") == "1"
    )

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        assert path.is_file(), f"missing golden file {name}: run `make golden` and review it"
        assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"

    return check


@pytest.fixture
def flights_project(tmp_path: Path) -> Path:
    """A private copy of the flights example (spec, schemas, data) to run and break."""
    target = tmp_path / "flights"
    shutil.copytree(
        EXAMPLE,
        target,
        ignore=shutil.ignore_patterns("build", ".mlcompile", "outputs", "deploy", "__pycache__"),
    )
    return target


@pytest.fixture
def cli() -> Callable[..., Result]:
    from mlcompile.cli import cli as group
    from mlcompile.cli import (  # noqa: F401  (registers the commands)
        commands,
        monitor_commands,
        run_commands,
    )

    def invoke(*args: str | Path, cwd: Path | None = None) -> Result:
        runner = CliRunner()
        old = Path.cwd()
        if cwd is not None:
            os.chdir(cwd)
        try:
            return runner.invoke(group, [str(a) for a in args], catch_exceptions=False)
        finally:
            os.chdir(old)

    return invoke


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the browser tests' screenshots, kept for a person to look at."""
    from tests.browser import ARTIFACTS

    shots = sorted(ARTIFACTS.glob("*.png")) if ARTIFACTS.is_dir() else []
    if shots:
        terminalreporter.write_sep("-", "screenshots of the report (tests/browser.py)")
        for shot in shots:
            terminalreporter.write_line(str(shot.relative_to(REPO)))
