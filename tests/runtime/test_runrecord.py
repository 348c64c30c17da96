"""Run records written as a run goes: a run whose process died reads as interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlcompile.runtime.runrecord import read_run

# A run of three steps, in a process of its own; argv: the run folder, and "hang" to wait
# after the second step (a live run) instead of ending.
RUN = """
import sys, time
from pathlib import Path
from mlcompile.runtime.runrecord import RunLog

plan = '{"nodes": [{"id": "ingest:a"}, {"id": "train:m"}, {"id": "register:m"}]}'
record = {"format": "mlcompile.run/v1", "backend": "local", "id": "r1", "plan": "p",
          "status": "running", "exit_code": None, "seconds": 0.0,
          "pid": 0, "steps": {}, "metrics": {}, "decisions": {}, "error": None}
with RunLog(Path(sys.argv[1])) as log:
    log.start(record, plan)
    log.step("ingest:a", {"status": "started", "key": "k1"})
    log.step("ingest:a", {"status": "ran", "key": "k1", "seconds": 0.1, "summary": {"rows": 3}})
    log.step("train:m", {"status": "started", "key": "k2"})
    print("ready", flush=True)
    if sys.argv[2:] == ["hang"]:
        time.sleep(60)
    log.step("train:m", {"status": "ran", "key": "k2", "seconds": 0.2, "summary": {}})
    log.finish({**record, "status": "succeeded", "exit_code": 0, "steps": {"x": {"status": "ran"}}})
"""


def test_a_killed_run_reads_as_interrupted(tmp_path: Path) -> None:
    run_dir = tmp_path / "r1"
    killed = subprocess.run(
        [sys.executable, "-c", RUN, str(run_dir)],
        env={**os.environ, "MLCOMPILE_KILL_AT": "run.step:4"},  # before train:m ends
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    record = read_run(run_dir)
    assert record is not None and record["status"] == "interrupted"
    assert record["steps"] == {
        "ingest:a": {"status": "ran", "key": "k1", "seconds": 0.1, "summary": {"rows": 3}},
        "train:m": {"status": "interrupted", "key": "k2"},
        "register:m": {"status": "not run"},
    }
    assert record["error"]["node"] == "train:m"
    assert "ended before the run did" in record["error"]["message"]
    assert record["exit_code"] is None and record["seconds"] >= 0


def test_a_live_run_reads_as_running_and_a_finished_one_as_written(tmp_path: Path) -> None:
    run_dir = tmp_path / "r1"
    live = subprocess.Popen(
        [sys.executable, "-c", RUN, str(run_dir), "hang"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert live.stdout is not None and live.stdout.readline() == "ready\n"
        record = read_run(run_dir)
        assert record is not None and record["status"] == "running"
        assert record["steps"]["train:m"]["status"] == "running"
        assert record["steps"]["register:m"]["status"] == "not run"
    finally:
        live.kill()
        live.wait()
    deadline = time.monotonic() + 10
    while (record := read_run(run_dir)) is not None and record["status"] == "running":
        assert time.monotonic() < deadline, "the dead run's lock was never released"
        time.sleep(0.05)
    assert record is not None and record["status"] == "interrupted"

    finished = tmp_path / "r2"
    subprocess.run([sys.executable, "-c", RUN, str(finished)], check=True, capture_output=True)
    written = json.loads((finished / "run.json").read_text())
    assert written["status"] == "succeeded" and read_run(finished) == written
    assert read_run(tmp_path / "missing") is None
