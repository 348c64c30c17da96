"""Run records, written as a run goes, so that a killed run still leaves one.

    <runs>/<id>/run.json     the record (a `RunRecord`, format `RUN_FORMAT`): status "running"
                             from the start, replaced (atomically) by the final record when
                             the run ends
    <runs>/<id>/plan.json    the plan the run executes
    <runs>/<id>/steps.jsonl  one line when a step starts, one when it ends
    <runs>/<id>/lock         held (flock) by the running process; the kernel releases it when
                             the process dies, however it dies

A record still "running" whose lock nobody holds belongs to a process that died (SIGKILL,
the OOM killer, a power cut). Reading it gives status "interrupted", with the steps its log
says ended, "interrupted" for the steps that had started, and "not run" for the rest.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, NotRequired, TypedDict

from .artifacts import atomic_write_bytes
from .killpoints import boundary

RUN_FILE = "run.json"
PLAN_FILE = "plan.json"
STEPS_FILE = "steps.jsonl"
LOCK_FILE = "lock"
# The version of run.json's layout; readers accept records without it (older mlcompile).
RUN_FORMAT = "mlcompile.run/v1"


class StepStatus(StrEnum):
    """What happened to one step of a run, on every backend. The values are the JSON text."""

    STARTED = "started"  # in the step log only: the step began and has not ended yet
    RUNNING = "running"  # read back while the run's process still lives
    RAN = "ran"
    CACHED = "cached"
    FAILED = "failed"
    SKIPPED = "skipped"  # an upstream step failed
    NOT_RUN = "not run"  # the run stopped (failure, kill) before reaching it
    INTERRUPTED = "interrupted"  # had started when the run's process died


# Statuses whose outputs exist (in the store, or in the orchestrator's artifact store).
DONE = frozenset({StepStatus.RAN, StepStatus.CACHED})


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    # known from events only, with steps started and not ended: still going, or killed
    UNFINISHED = "unfinished"


class StepOutcome(TypedDict):
    """One step's entry in a run record, whichever backend ran it."""

    status: StepStatus
    seconds: NotRequired[float | None]
    key: NotRequired[str]  # the local store's cache key
    summary: NotRequired[dict[str, Any]]
    exit_code: NotRequired[int]
    error: NotRequired[str]
    artifacts: NotRequired[str | None]  # what a failed step left, kept for the user
    outputs: NotRequired[str]  # where an orchestrator's task wrote its outputs
    start: NotRequired[float]  # seconds after the run started
    end: NotRequired[float]
    reason: NotRequired[str]
    task: NotRequired[str]  # the orchestrator's name for the step
    zenml_step: NotRequired[str]
    # read from its events: what it wrote (by output) and, for validate, its checks
    datasets: NotRequired[dict[str, dict[str, Any]]]
    checks: NotRequired[list[dict[str, Any]]]


class RunError(TypedDict):
    node: str | None
    message: str


class RunRecord(TypedDict):
    """run.json: what a run did. Events-only runs (an orchestrator's) are read into the same
    shape, with the fields they cannot know left None."""

    format: str
    id: str
    plan: str
    backend: str
    spec_sha256: str | None
    project_root: str | None
    pid: int | None
    host: str | None
    started_at: str | None
    finished_at: str | None
    seconds: float
    status: RunStatus
    exit_code: int | None
    error: RunError | None
    jobs: int | None
    store: str | None
    steps: dict[str, StepOutcome]
    metrics: dict[str, Any]
    decisions: dict[str, Any]


@dataclass(frozen=True)
class Failure:
    """The first step that failed in a run: which, its exit code, and why."""

    node: str
    exit_code: int
    message: str


def _dumps(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")


class RunLog:
    """The records of one run while it runs: `start`, `step` for each step event, `finish`."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._lock: int | None = None
        self._steps: int | None = None
        self._started = time.time()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for fd in (self._steps, self._lock):
            if fd is not None:
                os.close(fd)
        self._steps = self._lock = None

    def start(self, record: RunRecord, plan_json: str) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(self.run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self._started = time.time()
        # the plan beside its record: lineage and reports must not depend on build/ later
        atomic_write_bytes(self.run_dir / PLAN_FILE, plan_json.encode("utf-8"))
        atomic_write_bytes(self.run_dir / RUN_FILE, _dumps(record))
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        self._steps = os.open(self.run_dir / STEPS_FILE, flags, 0o644)

    def step(self, node_id: str, entry: StepOutcome) -> None:
        """Append what happened to a step; one write(2) of a whole line, never half of one."""
        if self._steps is None:
            return
        at = round(time.time() - self._started, 3)
        line = json.dumps({"node": node_id, "at": at, **entry}, sort_keys=True, default=str)
        boundary("run.step")
        data = memoryview((line + "\n").encode("utf-8"))
        while data:
            data = data[os.write(self._steps, data) :]

    def finish(self, record: RunRecord) -> None:
        atomic_write_bytes(self.run_dir / RUN_FILE, _dumps(record))


def _held(lock: Path) -> bool:
    """Whether a live process holds the run's lock."""
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _logged_steps(run_dir: Path) -> tuple[dict[str, StepOutcome], float | None]:
    """The latest line of each step in the log, and the time of the last line."""
    try:
        lines = (run_dir / STEPS_FILE).read_bytes().split(b"\n")[:-1]
    except OSError:
        return {}, None
    steps: dict[str, StepOutcome] = {}
    last = None
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or "node" not in entry:
            continue
        node = str(entry.pop("node"))
        last = entry.pop("at", last)
        steps[node] = typed_outcome(entry)
    return steps, last


def typed_outcome(entry: dict[str, Any]) -> StepOutcome:
    """A step entry read from JSON, its status typed (an unknown one reads as not run)."""
    try:
        status = StepStatus(str(entry.get("status")))
    except ValueError:
        status = StepStatus.NOT_RUN
    return {**entry, "status": status}  # type: ignore[typeddict-item]


def typed_record(data: dict[str, Any]) -> RunRecord:
    """A run record read from JSON, with typed statuses; fields an older record lacks
    (format, backend) get the values it had then."""
    try:
        status = RunStatus(str(data.get("status")))
    except ValueError:
        status = RunStatus.FAILED
    steps = {str(k): typed_outcome(v) for k, v in (data.get("steps") or {}).items()}
    defaults = {"format": RUN_FORMAT, "backend": "local", "metrics": {}, "decisions": {}}
    return {**defaults, **data, "status": status, "steps": steps}  # type: ignore[typeddict-item]


def read_run(run_dir: Path) -> RunRecord | None:
    """The run record in `run_dir` (None when there is none), completed from the step log
    while its run is still going, or after its process died."""
    data = _read(run_dir / RUN_FILE)
    if not isinstance(data, dict) or "steps" not in data:
        return None
    record = typed_record(data)
    if record["status"] != RunStatus.RUNNING:
        return record
    alive = _held(run_dir / LOCK_FILE)
    logged, last = _logged_steps(run_dir)
    plan = _read(run_dir / PLAN_FILE)
    nodes = [str(n["id"]) for n in plan.get("nodes", [])] if isinstance(plan, dict) else []
    started = StepStatus.RUNNING if alive else StepStatus.INTERRUPTED
    steps: dict[str, StepOutcome] = {}
    for node in sorted({*nodes, *logged}):
        entry = logged.get(node, StepOutcome(status=StepStatus.NOT_RUN))
        steps[node] = (
            {**entry, "status": started} if entry["status"] == StepStatus.STARTED else entry
        )
    if alive:
        return {**record, "steps": steps}
    cut = sorted(node for node, step in steps.items() if step["status"] == StepStatus.INTERRUPTED)
    return {
        **record,
        "status": RunStatus.INTERRUPTED,
        "seconds": last if last is not None else 0.0,
        "steps": steps,
        "error": {
            "node": cut[0] if cut else None,
            "message": (
                f"the run's process (pid {record.get('pid')}) ended before the run did, "
                "without writing its final record: killed, or the machine stopped"
            ),
        },
    }
