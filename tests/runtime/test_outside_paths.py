"""Data outside the project folder: refused by default, read when the spec allows it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

Cli = Callable[..., Result]


@pytest.mark.slow
def test_outside_paths_need_the_setting(cli: Cli, flights_project: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared-data"
    shared.mkdir()
    shutil.move(flights_project / "data" / "planes.csv", shared / "planes.csv")
    spec = flights_project / "mlcompile.yaml"
    spec.write_text(
        spec.read_text().replace("path: data/planes.csv", "path: ../shared-data/planes.csv")
    )
    refused = cli("validate", spec)
    assert refused.exit_code == 2
    assert "E306" in refused.output and "leaves the project folder" in refused.output
    allowed = cli(
        "run",
        spec,
        "+settings.allow_paths_outside_project=true",
        "models.delayed.num_boost_round=20",
        "models.arrival.num_boost_round=20",
        "--format",
        "json",
    )
    payload = json.loads(allowed.stdout)
    assert allowed.exit_code in (0, 4), payload["error"]
    assert payload["steps"]["ingest:planes"]["status"] == "ran"
