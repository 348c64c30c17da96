"""Data outside the project folder: refused by default, read when the operator allows it
(never the spec), and refused again by a step run where the operator has not."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from mlcompile.plan import Plan
from mlcompile.trust import OUTSIDE_ENV

Cli = Callable[..., Result]


@pytest.mark.slow
def test_outside_paths_need_the_operators_grant(
    cli: Cli, flights_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(OUTSIDE_ENV, raising=False)
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
    # the spec's own setting is read, warned about, and grants nothing
    self_granted = cli("validate", spec, "+settings.allow_paths_outside_project=true")
    assert self_granted.exit_code == 2
    assert "W102" in self_granted.output and "E306" in self_granted.output
    allowed = cli(
        "run",
        spec,
        "--allow-paths-outside-project",
        "models.delayed.num_boost_round=20",
        "models.arrival.num_boost_round=20",
        "--format",
        "json",
    )
    payload = json.loads(allowed.stdout)
    assert allowed.exit_code in (0, 4), payload["error"]
    assert payload["steps"]["ingest:planes"]["status"] == "ran"

    # the plan records that the build was granted, but a step run without the grant refuses
    plan_file = flights_project / "build" / "plan.json"
    nodes = sorted(Plan.from_json(plan_file.read_text()).nodes, key=lambda n: n.id)
    index = [n.id for n in nodes].index("ingest:planes")
    out = tmp_path / "artifacts"
    args = ["step", plan_file, "--index", str(index), "--artifacts", out]
    step = cli(*args, "--project-root", flights_project)
    assert step.exit_code == 5
    assert "points outside the project folder" in step.output
    assert "--allow-paths-outside-project" in step.output
    granted = cli(*args, "--project-root", flights_project, "--allow-paths-outside-project")
    assert granted.exit_code == 0, granted.output
