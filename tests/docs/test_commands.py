"""Every command README.md and docs/ show runs here, with the exit code and the output the
page promises (the convention: docs/internals/doc-tests.md).

The flights example is run once per session (shared by the xdist workers); each page gets
its own copy of that project, laid out as in the repository (`examples/flights/`), and runs
its commands in order, so a page can build on what its earlier commands did."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.doc_commands import (
    Command,
    blocks,
    console_commands,
    output_matches,
    pages,
    read_page,
    shows_commands,
)
from tests.lineage.conftest import shared_project

BIN = Path(sys.executable).parent
RUN_ID = re.compile(r"\b\d{8}T\d{6}Z(?:-[0-9a-f]+)?\b")
TIMEOUT = 900  # per command: the ZenML run of the whole example is the longest


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCOMPILE_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(home)
    env["NO_COLOR"] = "1"
    return env


def _trained(project: Path) -> None:
    done = subprocess.run(
        [str(BIN / "mlcompile"), "run", "mlcompile.yaml", "-q"],
        cwd=project,
        env=_env(project.parent),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="session")
def trained_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The flights example after `mlcompile run`: what a reader has after the quick start."""
    return shared_project(tmp_path_factory, "docs-trained", _trained)


def _with_run_ids(command: Command, ids: list[str], project: Path) -> str:
    """Run ids a page writes stand for the project's runs: the page's oldest id for the
    project's oldest run, and so on."""
    runs = sorted(p.name for p in (project / ".mlcompile" / "runs").glob("*") if p.is_dir())

    def real(match: re.Match[str]) -> str:
        index = ids.index(match[0])
        assert index < len(runs), (
            f"{command.page}:{command.line} names run {match[0]}: too few runs"
        )
        return runs[index]

    return RUN_ID.sub(real, command.text)


def _run(command: Command, root: Path, ids: list[str]) -> subprocess.CompletedProcess[str]:
    project = root / "examples" / "flights"
    # a command naming examples/... is typed at the repository's root, any other in the project
    cwd = root if "examples/" in command.text else project
    return subprocess.run(
        ["bash", "-c", _with_run_ids(command, ids, project)],
        cwd=cwd,
        env=_env(root),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


PAGES = [read_page(path) for path in pages()]


@pytest.mark.parametrize("page", [p for p in PAGES if p.commands], ids=lambda p: p.name)
def test_every_command_of_the_page_runs_as_shown(
    page, trained_example: Path, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    shutil.copytree(trained_example, root / "examples" / "flights", symlinks=True)
    ids = sorted({m for c in page.commands for m in RUN_ID.findall(c.text)})
    for command in page.commands:
        done = _run(command, root, ids)
        printed = done.stdout + done.stderr
        where = f"{page.name}:{command.line}: `{command.text}`"
        assert done.returncode == command.exit_code, f"{where} exited {done.returncode}\n{printed}"
        assert "Traceback" not in printed, f"{where}\n{printed}"
        missing = output_matches(command.output, printed)
        assert missing is None, f"{where} did not print {missing!r}\n{printed}"


def test_commands_shown_outside_console_blocks_say_why_they_are_not_run() -> None:
    unconventional = [
        f"{b.page}:{b.line} (```{b.info})"
        for path in pages()
        for b in blocks(path)
        if shows_commands(b) and b.info != "console" and b.skip_reason is None
    ]
    assert not unconventional, (
        "shell commands outside a ```console block, with no `<!-- doc-test skip: why -->` "
        f"before them (docs/internals/doc-tests.md): {unconventional}"
    )


def test_skipped_blocks_give_a_reason() -> None:
    skipped = [b for page in PAGES for b in page.skipped]
    assert skipped, "the pages skip no block: drop this test's premise"
    for block in skipped:
        assert len(block.skip_reason or "") >= 15, f"{block.page}:{block.line}: say why"


def test_the_convention_reads_prompts_exit_codes_and_output() -> None:
    from tests.docs.doc_commands import Block

    block = Block(
        "x.md",
        10,
        "console",
        "$ mlcompile monitor mlcompile.yaml   # exit 7\nmonitor delayed_drift: FAILED …\n"
        "...\n$ mlcompile runs list\n",
        None,
    )
    first, second = console_commands(block)
    assert (first.line, first.exit_code, first.output) == (
        11,
        7,
        ("monitor delayed_drift: FAILED …", "..."),
    )
    assert (second.text, second.exit_code, second.output) == ("mlcompile runs list", 0, ())
    printed = "monitor  delayed_drift: FAILED - flights.delayed v1\nmore\n"
    assert output_matches(first.output, printed) is None
    assert output_matches(("FAILED", "monitor"), printed) == "monitor"  # order counts
