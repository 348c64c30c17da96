"""`mlcompile serve` on the command line: errors before serving, no heavy imports at start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from mlcompile.cli import cli


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


def test_a_log_folder_that_cannot_be_made_stops_serve(registry_root: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    log_dir = tmp_path / "file" / "predictions"
    result = CliRunner().invoke(
        cli,
        [
            "serve",
            "conformance.benign",
            "--registry",
            str(registry_root),
            "--log-dir",
            str(log_dir),
        ],
    )
    assert result.exit_code == 5
    assert f"mlcompile: error: cannot write {log_dir}: Not a directory" in result.output


def test_a_buffer_smaller_than_a_request_is_a_usage_error(registry_root: Path) -> None:
    args = ["--registry", str(registry_root), "--max-rows", "500", "--max-buffered-rows", "499"]
    result = CliRunner().invoke(cli, ["serve", "conformance.benign", *args])
    assert result.exit_code == 2
    assert "--max-buffered-rows (499) must be at least --max-rows (500)" in result.output


def test_command_line_starts_without_fastapi() -> None:
    code = (
        "import sys; import mlcompile.cli.serve; "
        "heavy = {'fastapi', 'uvicorn', 'pandas'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
