"""Fixtures for lineage tests: example copies, the CLI with the lineage commands, and an
OpenLineage validator that needs no network."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.conftest import EXAMPLE

# A small, fast run of the example: sampled sources and few boosting rounds.
TRIM = ["+profile=dev", "models.delayed.num_boost_round=30", "models.arrival.num_boost_round=30"]


def copy_example(target: Path) -> Path:
    shutil.copytree(
        EXAMPLE,
        target,
        ignore=shutil.ignore_patterns("build", ".mlcompile", "outputs", "deploy", "__pycache__"),
    )
    return target


def shared_project(
    factory: pytest.TempPathFactory, name: str, prepare: Callable[[Path], None]
) -> Path:
    """A copy of the example that `prepare` runs things in once per test session, shared by
    the xdist workers (read-only): the first worker prepares it, the others wait and reuse."""
    base = factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    project = shared / name / "flights"
    with (shared / f"{name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (project.parent / "done").exists():
            copy_example(project)
            prepare(project)
            (project.parent / "done").touch()
    return project


def invoke(*args: str | Path, cwd: Path | None = None) -> Result:
    from mlcompile.cli import cli

    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)
