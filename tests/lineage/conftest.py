"""Fixtures for lineage tests: example copies, the CLI with the lineage commands, and an
OpenLineage validator that needs no network."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from click.testing import CliRunner, Result

from tests.conftest import EXAMPLE

SCHEMA = Path(__file__).with_name("openlineage-2-0-2.schema.json")
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


def _date_time(value: object) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _uri(value: object) -> bool:
    return isinstance(value, str) and bool(urlparse(value).scheme)


@pytest.fixture(scope="session")
def openlineage() -> Callable[[str, dict[str, Any]], list[str]]:
    """validate("RunEvent" | "JobEvent", event) -> the schema errors (empty when valid)."""
    import jsonschema

    document = json.loads(SCHEMA.read_text(encoding="utf-8"))
    checker = jsonschema.FormatChecker()
    # jsonschema checks these two formats only with optional packages: check them here.
    checker.checks("date-time")(_date_time)
    checker.checks("uri")(_uri)
    validators = {
        name: jsonschema.Draft202012Validator(
            {"$defs": document["$defs"], "$ref": f"#/$defs/{name}"}, format_checker=checker
        )
        for name in ("RunEvent", "JobEvent")
    }

    def validate(kind: str, event: dict[str, Any]) -> list[str]:
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validators[kind].iter_errors(event)
        ]

    return validate
