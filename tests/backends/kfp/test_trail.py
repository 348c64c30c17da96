"""The audit trail of kfp.local runs: the steps' own events make the run visible to `runs`,
`report` and `lineage`, and a run killed half-way reads as unfinished.

One run serves every assertion on a finished run (kfp.local starts a process per step: a run
of the mini project takes about a minute on two cores); the kill test has a run of its own,
killed after its first steps.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.backends.kfp.helpers import MINI_SPEC
from tests.trail import CLI, check_trail, cli, events_of

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("kfp")]


def _project(root: Path, mini_flights: Path) -> Path:
    (root / "data").mkdir(parents=True)
    shutil.copyfile(mini_flights, root / "data" / "flights.parquet")
    (root / "mlcompile.yaml").write_text(MINI_SPEC.replace("__BOUND__", "0.5"), "utf-8")
    return root


@pytest.fixture(scope="module")
def kfp_run(tmp_path_factory: pytest.TempPathFactory, mini_flights: Path) -> tuple[Path, str]:
    project = _project(tmp_path_factory.mktemp("kfp-trail") / "mini", mini_flights)
    done = cli(project, "run", "mlcompile.yaml", "-b", "kfp", "-j", "1", "-q", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    return project, str(json.loads(done.stdout)["run_id"])


def test_a_kfp_local_run_is_in_the_trail(kfp_run: tuple[Path, str]) -> None:
    project, run_id = kfp_run
    check_trail(project, project / "mlcompile.yaml", run_id, "kfp", "mini.delayed")
    registration = json.loads(
        (project / ".mlcompile/registry/mini.delayed/versions/1/registration.json").read_text()
    )
    assert registration["run_id"] == run_id  # the version names the run that made it


def test_kfp_steps_sent_valid_events_under_one_parent(
    kfp_run: tuple[Path, str], openlineage: Callable[[str, dict[str, Any]], list[str]]
) -> None:
    project, run_id = kfp_run
    events = events_of(project, run_id)
    for event in events:
        assert openlineage("RunEvent", event) == [], event["job"]["name"]
    steps = [e for e in events if "parent" in e["run"]["facets"]]
    assert {e["run"]["facets"]["parent"]["run"]["runId"] for e in steps} == {
        e["run"]["runId"] for e in events if "parent" not in e["run"]["facets"]
    }
    nodes = {e["job"]["name"] for e in steps}
    assert len(steps) == 2 * len(nodes) and "train:delayed" in nodes
    ingest = [e for e in steps if e["job"]["name"] == "ingest:flights"][-1]
    assert ingest["eventType"] == "COMPLETE"
    [raw] = ingest["inputs"]
    assert raw["facets"]["version"]["datasetVersion"] == _sha256(project / "data/flights.parquet")


def test_a_killed_kfp_local_run_reads_as_unfinished(tmp_path: Path, mini_flights: Path) -> None:
    project = _project(tmp_path / "mini", mini_flights)
    log = project / ".mlcompile" / "lineage" / "runs.jsonl"
    process = subprocess.Popen(
        [CLI, "run", "mlcompile.yaml", "-b", "kfp", "-j", "1", "-q"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: kfp.local's step processes too
    )
    deadline = time.monotonic() + 300
    try:
        # kill once two steps have ended and a third has started
        while _ended(log) < 2 or _started(log) <= _ended(log):
            assert process.poll() is None and time.monotonic() < deadline, "no steps ran"
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    listed = cli(project, "runs", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    [record] = json.loads(listed.stdout)["runs"]
    assert (record["backend"], record["status"]) == ("kfp", "unfinished")
    shown = cli(project, "runs", "show", record["id"])
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    assert f"run {record['id']} (mini, kfp): unfinished, exit -" in shown.stdout
    assert "still going, or its processes were killed" in shown.stdout
    assert " started " in shown.stdout and " ran " in shown.stdout


def _lines(log: Path) -> list[dict[str, Any]]:
    try:
        text = log.read_text("utf-8")
    except OSError:
        return []
    return [json.loads(line) for line in text.splitlines()[: text.count("\n")]]


def _started(log: Path) -> int:
    return sum(1 for e in _lines(log) if e["eventType"] == "START")


def _ended(log: Path) -> int:
    return sum(1 for e in _lines(log) if e["eventType"] in ("COMPLETE", "FAIL"))


def _sha256(path: Path) -> str:
    from mlcompile.runtime.artifacts import sha256_file

    return sha256_file(path)
