"""Faults: killed runs, concurrent runs, unwritable folders and bad data lose nothing.

Each test drives real `mlcompile run` processes on a copy of the flights example.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlcompile.runtime.registry import Registry

pytestmark = pytest.mark.slow
MLCOMPILE = str(Path(sys.executable).parent / "mlcompile")
FAST = ["models.delayed.num_boost_round=30", "models.arrival.num_boost_round=30"]


def start(project: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [MLCOMPILE, "run", "mlcompile.yaml", *FAST, *extra, "--format", "json"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, dict[str, Any]]:
    out, err = process.communicate(timeout=300)
    assert out, err
    return process.returncode, json.loads(out)


def registry_state(project: Path) -> dict[str, Any]:
    root = project / ".mlcompile" / "registry"
    state = {}
    for model in sorted(p for p in root.iterdir() if (p / "versions").is_dir()):
        versions = sorted(int(v.name) for v in (model / "versions").iterdir() if v.name.isdigit())
        shas = [
            json.loads((model / "versions" / str(v) / "registration.json").read_text())[
                "model_sha256"
            ]
            for v in versions
        ]
        aliases = json.loads((model / "aliases.json").read_text())
        assert aliases == Registry(root).aliases(model.name), "aliases.json disagrees with the log"
        state[model.name] = {"versions": versions, "shas": shas, "aliases": aliases}
    return state


def test_killed_runs_leave_a_consistent_store_and_registry(flights_project: Path) -> None:
    rng = random.Random(7)
    for _ in range(5):
        process = start(flights_project, "--no-cache" if rng.random() < 0.3 else "--jobs=2")
        time.sleep(rng.uniform(0.8, 4.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
    code, payload = finish(start(flights_project))
    assert code == 0, payload
    entries = flights_project / ".mlcompile" / "store" / "entries"
    for entry in entries.glob("*/*"):
        assert (entry / "entry.json").is_file(), f"half-written store entry {entry}"
    for model, info in registry_state(flights_project).items():
        assert len(set(info["shas"])) == len(info["shas"]), f"{model}: a model registered twice"
        assert info["aliases"]["production"] in info["versions"]
    again = finish(start(flights_project))[1]
    assert {s["status"] for s in again["steps"].values()} == {"cached"}


def test_two_runs_at_once_wait_for_each_other(flights_project: Path) -> None:
    first, second = start(flights_project), start(flights_project)
    (code_a, a), (code_b, b) = finish(first), finish(second)
    assert code_a == code_b == 0
    assert a["metrics"] == b["metrics"]
    state = registry_state(flights_project)
    for info in state.values():
        assert info["versions"] == [1], "the same model was registered twice"
        assert info["aliases"] == {"production": 1}


def test_disk_full_while_registering_keeps_the_previous_state(
    flights_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry publishes a version with one rename: when the disk is full at that
    moment, the previous versions and aliases stay exactly as they were."""
    import errno

    from mlcompile.runtime import artifacts

    assert finish(start(flights_project))[0] == 0
    before = registry_state(flights_project)
    registry = Registry(flights_project / ".mlcompile" / "registry")
    current = registry.get("flights.arrival", "production")
    bundle = current.bundle()
    changed = artifacts.ModelBundle(bundle.text + "\n", bundle.meta)

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(artifacts.os, "replace", full)
    with pytest.raises(OSError, match="No space left"):
        registry.register("flights.arrival", changed, current.metrics(), alias="production")
    monkeypatch.undo()
    assert registry_state(flights_project) == before
    leftovers = [p for p in registry.root.rglob("*") if p.name.startswith(".") and p.is_dir()]
    assert leftovers == [], f"staging folders left behind: {leftovers}"


def repeat_seats(data: Path) -> None:
    """pandas would call the real seats column 'seats.1': the model would train on engines."""
    path = data / "planes.csv"
    header, rest = path.read_text().split("\n", 1)
    path.write_text(header.replace("engines", "seats") + "\n" + rest)


def infinite_temperatures(data: Path) -> None:
    """40 hourly readings of inf in January: the weather checks only warn (on_invalid:
    warn), so the infinities reach the temp_filled features of both models."""
    lines = (data / "weather.csv").read_text().splitlines()
    column = lines[0].split(",").index("temp")
    for number in range(1, 41):
        cells = lines[number].split(",")
        cells[column] = "inf"
        lines[number] = ",".join(cells)
    (data / "weather.csv").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("mutate", "code", "words"),
    [
        (
            lambda d: (d / "planes.csv").write_bytes(b"tailnum,year\n\x00\x01\x02garbage"),
            3,
            ["planes"],
        ),
        (
            lambda d: (d / "flights.parquet").write_bytes(b"PAR1 truncated"),
            5,
            ["flights", "parquet"],
        ),
        # an empty file is the data's failure, not the step's
        (lambda d: (d / "planes.csv").write_text(""), 3, ["planes", "empty"]),
        (repeat_seats, 3, ["planes.csv", "repeated column names: 'seats' (2 times)"]),
        (infinite_temperatures, 3, ["features:", "input column holds inf or -inf: 'temp' in"]),
    ],
    ids=["garbled-csv", "truncated-parquet", "empty-file", "repeated-header", "inf-values"],
)
def test_bad_data_files_get_clear_errors(
    flights_project: Path, mutate: Any, code: int, words: list[str]
) -> None:
    mutate(flights_project / "data")
    exit_code, payload = finish(start(flights_project))
    assert exit_code == code, payload["error"]
    message = payload["error"].lower()
    assert all(word in message for word in words), payload["error"]
    assert "traceback" not in message


def test_ctrl_c_stops_cleanly_and_the_rerun_finishes(flights_project: Path) -> None:
    process = start(flights_project, "--jobs=1")
    # Interrupt the executor, not the start-up: on a loaded machine composing and building
    # can take longer than any fixed sleep, and a run stopped before it began has no record.
    # A committed entry, not merely the store's lock file, which exists before any step ran.
    entries = flights_project / ".mlcompile" / "store" / "entries"
    deadline = time.monotonic() + 120
    while not any(entries.glob("*/*/entry.json")):
        assert process.poll() is None and time.monotonic() < deadline, "no step ever ran"
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    [record_file] = (flights_project / ".mlcompile" / "runs").glob("*/run.json")
    record = json.loads(record_file.read_text())
    assert record["status"] == "interrupted" and record["exit_code"] == 130
    code, payload = finish(start(flights_project))
    assert code == 0, payload["error"]
    assert any(step["status"] == "cached" for step in payload["steps"].values())


def mlcompile(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLCOMPILE, *args], cwd=project, capture_output=True, text=True, timeout=300
    )


def test_a_killed_run_is_listed_as_interrupted_with_the_steps_it_finished(
    flights_project: Path,
) -> None:
    process = start(flights_project, "--jobs=1")
    runs = flights_project / ".mlcompile" / "runs"
    deadline = time.monotonic() + 120
    trained = None
    while trained is None and time.monotonic() < deadline:
        for log in runs.glob("*/steps.jsonl"):
            lines = [json.loads(line) for line in log.read_text().splitlines() if line]
            trained = next(
                (x for x in lines if x["node"].startswith("train:") and x["status"] == "ran"), None
            )
        time.sleep(0.05)
    assert trained is not None, "the run never finished a train step"
    process.send_signal(signal.SIGKILL)
    process.wait()
    [run_dir] = runs.iterdir()

    listed = mlcompile(flights_project, "runs", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"{run_dir.name}  local  interrupted" in listed.stdout
    shown = mlcompile(flights_project, "runs", "show", run_dir.name, "--format", "json")
    record = json.loads(shown.stdout)
    assert record["status"] == "interrupted" and record["exit_code"] is None
    assert "ended before the run did" in record["error"]["message"]
    steps = record["steps"]
    assert steps[trained["node"]]["status"] == "ran"
    assert steps[trained["node"]]["key"] == trained["key"]
    finished = [n for n, s in steps.items() if s["status"] == "ran"]
    assert len(finished) >= 5 and all(steps[n].get("summary") is not None for n in finished)
    assert {s["status"] for s in steps.values()} <= {"ran", "interrupted", "not run"}
    assert any(s["status"] == "not run" for s in steps.values())
    human = mlcompile(flights_project, "runs", "show", run_dir.name)
    assert f"({record['plan']}, local): interrupted, exit -" in human.stdout
    assert f"ran      {trained['node']}" in human.stdout

    # the next run reuses what the killed one finished, and the killed run stays interrupted
    code, payload = finish(start(flights_project))
    assert code == 0, payload["error"]
    assert payload["steps"][trained["node"]]["status"] == "cached"
    statuses = [
        line.split()[2] for line in mlcompile(flights_project, "runs", "list").stdout.splitlines()
    ]
    assert statuses == ["interrupted", "succeeded"]


def test_lineage_credits_a_version_to_the_killed_run_that_registered_it(
    flights_project: Path,
) -> None:
    """Killed after publishing a registry version and before logging it: the next run finds
    the version (and logs it), but lineage still names the killed run as its producer."""
    killed = subprocess.run(
        [MLCOMPILE, "run", "mlcompile.yaml", *FAST, "--quiet"],
        cwd=flights_project,
        env={**os.environ, "MLCOMPILE_KILL_AT": "registry.event"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [killed_run] = (flights_project / ".mlcompile" / "runs").iterdir()
    registry = flights_project / ".mlcompile" / "registry"
    [model] = [p.name for p in registry.iterdir() if (p / "versions" / "1").is_dir()]
    assert not (registry / model / "events.jsonl").exists()

    code, payload = finish(start(flights_project))
    assert code == 0, payload["error"]
    [register] = [
        step
        for node, step in payload["steps"].items()
        if node.startswith("register:") and step["summary"]["model_name"] == model
    ]
    assert register["summary"]["version"] == 1 and register["summary"]["created"] is False
    state = registry_state(flights_project)[model]
    assert state["versions"] == [1] and state["aliases"] == {"production": 1}
    events = [
        json.loads(line) for line in (registry / model / "events.jsonl").read_text().splitlines()
    ]
    assert [(e["event"], e.get("recovered")) for e in events] == [
        ("register", True),
        ("promote", None),
    ]

    traced = mlcompile(flights_project, "lineage", f"{model}@1", "--format", "json")
    assert traced.returncode == 0, traced.stderr
    lineage = json.loads(traced.stdout)
    assert lineage["run"]["id"] == killed_run.name != payload["run_id"]
    assert lineage["run"]["status"] == "interrupted"
    steps = {step["id"]: step["status"] for step in lineage["steps"]}
    assert [s for n, s in steps.items() if n.startswith("register:")] == ["interrupted"]
    assert steps[f"train:{model.split('.', 1)[1]}"] == "ran"
