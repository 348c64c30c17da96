"""`mlcompile serve` on the command line: errors before serving, no heavy imports at start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from mlcompile.cli import (
    cli,
    serve_commands,  # noqa: F401  (registers the command)
)


def test_unknown_model_is_a_usage_error(registry_root: Path) -> None:
    result = CliRunner().invoke(
        cli, ["serve", "conformance.benig", "--registry", str(registry_root)]
    )
    assert result.exit_code == 2
    assert "no registered model 'conformance.benig'" in result.output
    assert "did you mean" in result.output


def test_unknown_alias_is_a_usage_error(registry_root: Path) -> None:
    result = CliRunner().invoke(
        cli, ["serve", "conformance.benign@staging", "--registry", str(registry_root)]
    )
    assert result.exit_code == 2
    assert "has no version or alias 'staging'" in result.output


def test_command_line_starts_without_fastapi() -> None:
    code = (
        "import sys; import mlcompile.cli.serve_commands; "
        "heavy = {'fastapi', 'uvicorn', 'pandas'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
