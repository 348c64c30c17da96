"""Shared fixtures: the example project, golden files, running the CLI in-process, and
running it with a folder it cannot write to."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from click.testing import CliRunner, Result

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "flights"
# The flights example with its binary model's parameters searched. The example itself is not
# tuned: a search would slow the demo and every test that runs it.
TUNED = [
    "~models.delayed.params.num_leaves",
    "~models.delayed.params.learning_rate",
    "~models.delayed.params.min_data_in_leaf",
    "+models.delayed.tune.metric=roc_auc",
    "+models.delayed.tune.trials=8",
    "+models.delayed.tune.space.num_leaves.int=[7,127]",
    "+models.delayed.tune.space.num_leaves.log=true",
    "+models.delayed.tune.space.learning_rate.float=[0.02,0.3]",
    "+models.delayed.tune.space.learning_rate.log=true",
    "+models.delayed.tune.space.min_data_in_leaf.int=[10,200]",
]
GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_configure(config: pytest.Config) -> None:
    # What mlcompile learns of the installed libraries (paths.user_cache_dir) goes to a folder
    # of this test run in the system's temp folder, shared by its workers and by the CLI
    # processes tests start: the suite never reads or fills the machine's own cache.
    if "MLCOMPILE_CACHE_DIR" not in os.environ:
        run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
        os.environ["MLCOMPILE_CACHE_DIR"] = str(
            Path(tempfile.gettempdir()) / f"mlcompile-tests-{run}"
        )


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


# ---- read-only folders --------------------------------------------------------------------

MLCOMPILE = str(Path(sys.executable).parent / "mlcompile")
NOBODY = 65534


def _works(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=60).returncode == 0
    except OSError:
        return False


@functools.cache
def read_only_method() -> str | None:
    """How this machine can make a folder read-only for a process. chmod stops anyone but
    root; root (here, and in CI containers) needs a read-only bind mount in a private mount
    namespace (CAP_SYS_ADMIN), or else to run the process as an unprivileged user."""
    if os.geteuid() != 0:
        return "chmod"
    with tempfile.TemporaryDirectory() as probe:
        mounted = 'mount --bind -o ro "$0" "$0" && ! touch "$0/probe" 2>/dev/null'
        if shutil.which("unshare") and _works(["unshare", "-m", "sh", "-c", mounted, probe]):
            return "mount"
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    if shutil.which("setpriv") and _works([*as_nobody, sys.executable, "-c", "import mlcompile"]):
        return "user"
    return None


def _make_traversable(path: Path) -> None:
    for parent in [path, *path.parents]:
        parent.chmod(parent.stat().st_mode | 0o001)


def run_read_only(
    folder: Path, args: Sequence[str | Path], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """`mlcompile ARGS` in `cwd`, with `folder` (created if missing) read-only for it and the
    rest of `cwd` writable. Skips the test when this machine offers no way to do that."""
    method = read_only_method()
    if method is None:
        pytest.skip(
            "running as root without CAP_SYS_ADMIN (for a read-only bind mount) or setpriv "
            "(to drop to an unprivileged user): no way to make a folder read-only for root"
        )
    folder.mkdir(parents=True, exist_ok=True)
    command = [MLCOMPILE, *map(str, args)]
    env = dict(os.environ)
    tree = [folder, *folder.rglob("*")]
    if method == "mount":
        mount = 'mount --bind -o ro "$0" "$0" && exec "$@"'
        command = ["unshare", "-m", "sh", "-c", mount, str(folder.resolve()), *command]
    elif method == "user":
        # everything of the project belongs to the unprivileged user, except the folder
        _make_traversable(cwd)
        for path in [cwd, *cwd.rglob("*")]:
            os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
        for path in tree:
            os.chown(path, 0, 0, follow_symlinks=False)
        env["HOME"] = str(cwd)
        as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        command = [*as_nobody, *command]
    modes = {path: path.stat().st_mode for path in tree}
    if method in ("chmod", "user"):
        for path in tree:
            path.chmod(modes[path] & ~0o222)
    try:
        return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    finally:
        for path, mode in modes.items():
            path.chmod(mode)
        if method == "user":
            for path in [cwd, *cwd.rglob("*")]:
                os.chown(path, 0, 0, follow_symlinks=False)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the browser tests' screenshots, kept for a person to look at."""
    from tests.browser import ARTIFACTS

    shots = sorted(ARTIFACTS.glob("*.png")) if ARTIFACTS.is_dir() else []
    if shots:
        terminalreporter.write_sep("-", "screenshots of the report (tests/browser.py)")
        for shot in shots:
            terminalreporter.write_line(str(shot.relative_to(REPO)))


# The OpenLineage spec's JSON schema, version 2-0-2, vendored from the OpenLineage repository
# (spec/OpenLineage.json): the openlineage-python distribution ships no schema file.
OPENLINEAGE_SCHEMA = Path(__file__).parent / "lineage" / "openlineage-2-0-2.schema.json"


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

    document = json.loads(OPENLINEAGE_SCHEMA.read_text(encoding="utf-8"))
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
