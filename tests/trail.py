"""What every backend's run must leave in the project's audit trail, checked through the
command line: the run in `runs list` with its backend, `runs show`, `report --run`, and the
lineage of the version it registered back to the raw files' hashes with nothing unknown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

CLI = str(Path(sys.executable).with_name("mlcompile"))


def cli(
    project: Path, *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *map(str, args)],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def events_of(project: Path, run_id: str) -> list[dict[str, Any]]:
    """The events of one run in the project's log, in the order sent: its steps' (whose
    facet names the run) and its own (whose run id is their parent's)."""
    lines = (project / ".mlcompile" / "lineage" / "runs.jsonl").read_text("utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    parents = {
        e["run"]["facets"]["parent"]["run"]["runId"]
        for e in events
        if e["run"]["facets"].get("mlcompile_step", {}).get("runRecord") == run_id
    }
    return [
        e
        for e in events
        if e["run"]["runId"] in parents
        or e["run"]["facets"].get("parent", {}).get("run", {}).get("runId") in parents
    ]


def check_trail(project: Path, spec: Path, run_id: str, backend: str, model: str) -> None:
    listed = cli(project, "runs", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    [record] = [r for r in json.loads(listed.stdout)["runs"] if r["id"] == run_id]
    assert record["backend"] == backend
    text = cli(project, "runs", "list").stdout
    assert any(line.startswith(run_id) and f" {backend} " in line for line in text.splitlines())
    shown = cli(project / "data", "runs", "show", run_id)  # from a folder inside the project
    assert shown.returncode == 0, shown.stderr
    assert f"run {run_id} (" in shown.stdout
    assert not [line for line in shown.stdout.splitlines() if line.startswith("0 ran, 0 cached")]

    report = project / "report.html"
    written = cli(project, "report", spec, "--run", run_id, "-o", report)
    assert written.returncode == 0, written.stdout + written.stderr
    assert run_id in report.read_text("utf-8")

    traced = cli(project, "lineage", model, "--format", "json")
    assert traced.returncode == 0, traced.stderr
    found = json.loads(traced.stdout)
    assert found["run"]["id"] == run_id and found["run"]["backend"] == backend
    assert found["plan_source"] in ("run", "build")
    assert found["raw_files"] and all(raw["path"] and raw["sha256"] for raw in found["raw_files"])
    steps = {step["id"]: step for step in found["steps"]}
    assert any(step["kind"] == "ingest" for step in steps.values())
    for step in steps.values():
        assert step["status"] in ("ran", "cached"), step
        assert all(facts.get("sha256") for facts in step["outputs"].values()), step
    trained = [s for s in steps.values() if s["kind"] == "train"]
    assert [s["outputs"]["model"]["sha256"] for s in trained] == [found["model_sha256"]]
    text = cli(project, "lineage", model).stdout
    assert "?" not in text, text
