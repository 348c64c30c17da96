"""Run a built KFP pipeline on kfp.local and read back what its steps produced.

The emitted module targets a cluster: an image, a project at /workspace, pip installs at step
start. kfp.local's SubprocessRunner (use_venv=False) runs steps in this interpreter instead,
where pip would install into the user's environment. So the runner checks that the built
pipeline.py is the current render of the plan, then runs the same template rendered with this
machine's project root and nothing to install: same steps, same params, same wiring.

kfp.local runs in a child process: it prints every step's output on stdout and keeps global
configuration, neither of which belongs in the caller (`mlcompile run --format json` prints
its result on stdout). The child's output goes to a log file in the run folder, and its
lines announcing a task's start and end drive the progress display.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlcompile.backends import RunOptions, RunResult, RunStatus, StepOutcome, StepStatus
from mlcompile.backends.bundle import ProjectBundle
from mlcompile.errors import ExitCode
from mlcompile.plan import DECISION_KINDS, Node, Plan
from mlcompile.runtime.runrecord import RunError
from mlcompile.runtime.trail.events import PipelineRun
from mlcompile.runtime.trail.run import RunTrail
from mlcompile_kfp.render import node_params, render_module, task_names
from mlcompile_kfp.settings import KfpSettings

RESULT_FILE = "result.json"
LOG_FILE = "kfp-local.log"
OUTPUTS_DIR = "outputs"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r" - INFO - Executing task '([^']+)'$")
_FINISHED = re.compile(r" - (?:INFO|ERROR) - Task '([^']+)' finished with status (\w+)$")
# The last line of a Python traceback: `package.module.SomeError: message`.
_EXCEPTION = re.compile(r"^\s*((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Failed)): (.+)$")


def local_variant(
    plan: Plan, settings: KfpSettings, project_root: Path, bundle: ProjectBundle | None = None
) -> str:
    """The module for this machine; with a bundle its steps still fetch it and run in empty
    folders, as on a cluster."""
    update = {
        "packages_to_install": [],
        "install_kfp_package": False,
        "project_root": str(project_root),
        "pipeline_root": None,
    }
    return render_module(plan, settings.model_copy(update=update), bundle)


def run_local(built_dir: Path, plan: Plan, settings: KfpSettings, options: RunOptions) -> RunResult:
    emitted = built_dir / "pipeline.py"
    expected = render_module(plan, settings, options.bundle)
    if not emitted.is_file() or emitted.read_text("utf-8") != expected:
        return RunResult(
            status=RunStatus.FAILED,
            exit_code=int(ExitCode.BACKEND_FAILED),
            error=f"{emitted} is missing or does not match the plan: build again",
        )
    project_root = options.project_root.resolve()
    runs = project_root / settings.local_root
    runs.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=runs))
    (run_dir / "pipeline.py").write_text(
        local_variant(plan, settings, project_root, options.bundle), encoding="utf-8"
    )
    progress = _Progress(plan, options.on_event)
    with (
        (run_dir / LOG_FILE).open("w", encoding="utf-8") as log,
        subprocess.Popen(
            [sys.executable, "-m", "mlcompile_kfp.local_child", str(run_dir)],
            cwd=project_root,
            # Unbuffered, so step output and kfp.local's log lines reach the log in order.
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        ) as child,
    ):
        assert child.stdout is not None
        for line in child.stdout:
            log.write(line)
            progress.feed(line)
    try:
        outcome: dict[str, Any] = json.loads((run_dir / RESULT_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        outcome = {
            "status": "failed",
            "failed_task": None,
            "error": f"kfp.local exited with code {child.returncode}",
        }
    result = collect(plan, run_dir, outcome, progress.exceptions)
    for node_id, step in result.steps.items():
        if node_id in progress.timing:
            step["seconds"] = progress.timing[node_id]
    progress.finish(result)
    if result.run_id is not None:
        # The steps sent their own events under kfp.local's run name; the run's end is known
        # here. kfp.local's run "id" is a random number, not a UUID: the steps and this event
        # both derive the run's UUID from the name.
        error: RunError | None = {"node": None, "message": result.error} if result.error else None
        trail = RunTrail(PipelineRun.of(plan, result.run_id, "kfp"), project_root, hold=False)
        trail.finished(result.status, result.exit_code, error, plan.spec_sha256)
    return result


class _Progress:
    """Step events for `mlcompile run`, read from kfp.local's log lines as they come, and the
    exception each failed step raised (kfp.local reports only that a task failed).

    Only the display and error messages depend on these lines; statuses, exit codes, metrics
    and decisions come from the run folder afterwards.
    """

    def __init__(self, plan: Plan, sink: Callable[[dict[str, Any]], None] | None) -> None:
        self.nodes = {task: node_id for node_id, task in task_names(plan).items()}
        self.sink = sink
        self.started: dict[str, float] = {}
        self.timing: dict[str, float] = {}
        self.reported: set[str] = set()
        self.exceptions: dict[str, str] = {}
        self.running: str | None = None

    def feed(self, line: str) -> None:
        text = ANSI.sub("", line)
        if self.running is not None and (raised := _EXCEPTION.match(text)):
            name = raised.group(1).rsplit(".", 1)[-1]
            self.exceptions[self.running] = f"{name}: {raised.group(2)}"
        if found := _STARTED.search(text):
            node = self.nodes.get(found.group(1))
            if node is not None:
                self.started[node] = time.monotonic()
                self.running = node
                self._emit({"event": "started", "node": node})
        elif found := _FINISHED.search(text):
            node = self.nodes.get(found.group(1))
            if node is not None and node in self.started:
                seconds = round(time.monotonic() - self.started[node], 3)
                self.timing[node] = seconds
                if found.group(2) == "SUCCESS":
                    self.reported.add(node)
                    self._emit({"event": "finished", "node": node, "seconds": seconds})

    def finish(self, result: RunResult) -> None:
        """Report what the log did not: the failed step, with its error, and skipped ones."""
        for node_id, step in result.steps.items():
            if node_id not in self.reported:
                self._emit({"event": _EVENTS[step["status"]], "node": node_id, **step})

    def _emit(self, event: dict[str, Any]) -> None:
        if self.sink is not None:
            self.sink(event)


_EVENTS = {
    StepStatus.RAN: "finished",
    StepStatus.FAILED: "failed",
    StepStatus.SKIPPED: "skipped",
    StepStatus.NOT_RUN: "skipped",
}


def collect(
    plan: Plan, run_dir: Path, outcome: dict[str, Any], reasons: dict[str, str]
) -> RunResult:
    """Step statuses, metrics and gate decisions from a kfp.local run folder.

    `reasons` holds, per node, the exception its step raised, as read from the log.
    """
    runs = sorted(p for p in (run_dir / OUTPUTS_DIR).glob("*") if p.is_dir())
    pipeline_dir = runs[-1] if runs else run_dir / OUTPUTS_DIR
    # kfp.local names the run's folder after the run (PIPELINE_JOB_NAME), as the steps do
    run_name = pipeline_dir.name if runs else None
    tasks = task_names(plan)
    failed_task = outcome.get("failed_task")
    steps: dict[str, StepOutcome] = {}
    metrics: dict[str, Any] = {}
    decisions: dict[str, Any] = {}
    failed_node: Node | None = None
    for node in plan.topological():
        task_dir = pipeline_dir / tasks[node.id]
        out = {name: task_dir / param for name, param in node_params(node).outputs.items()}
        if (task_dir / "executor_output.json").is_file():
            status = StepStatus.RAN
        elif tasks[node.id] == failed_task:
            status, failed_node = StepStatus.FAILED, node
        elif outcome["status"] != RunStatus.SUCCEEDED:
            status = StepStatus.SKIPPED
        else:
            status = StepStatus.NOT_RUN
        steps[node.id] = {"status": status, "task": tasks[node.id], "outputs": str(task_dir)}
        if node.kind == "evaluate" and status == StepStatus.RAN:
            metrics[node.name] = _read_json(out["metrics"] / "metrics.json")
        if node.kind in DECISION_KINDS and status in (StepStatus.RAN, StepStatus.FAILED):
            decision = _read_json(out["decision"] / "decision.json")
            if decision is not None:
                decisions[node.name] = decision
    if outcome["status"] == RunStatus.SUCCEEDED:
        return RunResult(
            status=RunStatus.SUCCEEDED,
            steps=steps,
            metrics=metrics,
            decisions=decisions,
            run_id=run_name,
        )
    if failed_node is None:
        code = ExitCode.BACKEND_FAILED
        error = f"{outcome.get('error') or 'kfp.local failed'} (log: {run_dir / LOG_FILE})"
    else:
        code = _exit_code(failed_node, pipeline_dir / tasks[failed_node.id])
        reason = reasons.get(failed_node.id, "see the log")
        error = f"step {failed_node.id!r} failed: {reason} (log: {run_dir / LOG_FILE})"
        steps[failed_node.id]["error"] = error
    return RunResult(
        status=RunStatus.FAILED,
        steps=steps,
        metrics=metrics,
        decisions=decisions,
        exit_code=int(code),
        error=error,
        run_id=run_name,
    )


def _exit_code(node: Node, task_dir: Path) -> ExitCode:
    """The exit code the local backend would give: what the failed step left says why."""
    out = {name: task_dir / param for name, param in node_params(node).outputs.items()}
    if node.kind == "gate":
        decision = _read_json(out["decision"] / "decision.json")
        if isinstance(decision, dict) and decision.get("passed") is False:
            return ExitCode.GATE_FAILED
    if node.kind == "validate":
        report = _read_json(out["report"] / "report.json")
        if isinstance(report, dict) and report.get("passed") is False:
            return ExitCode.DATA_INVALID
    return ExitCode.BACKEND_FAILED


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
