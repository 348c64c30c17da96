"""Run the emitted module on ZenML's local orchestrator, in a subprocess.

A subprocess, because ZenML keeps global state (client, active stack, logging hooks) and
reads its configuration from the environment: each run gets a clean interpreter whose
ZENML_CONFIG_PATH points at the project's own ZenML folder. The module writes a JSON summary
of what each plan node did (read back from ZenML's store); this turns it into a RunResult
shaped like the local backend's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlcompile.backends import RunOptions, RunResult, RunStatus, StepOutcome, StepStatus
from mlcompile.errors import ExitCode
from mlcompile.plan import DECISION_KINDS, Plan
from mlcompile.runtime.runrecord import RunError, typed_outcome
from mlcompile.runtime.trail.events import PipelineRun
from mlcompile.runtime.trail.run import RunTrail
from mlcompile_zenml.settings import ZenmlSettings

# Variables that would point the run at another ZenML store, stack or project.
_FOREIGN_PREFIXES = ("ZENML_STORE_",)
_FOREIGN = ("ZENML_ACTIVE_STACK_ID", "ZENML_ACTIVE_PROJECT_ID", "ZENML_REPOSITORY_PATH")
_EVENTS = {
    StepStatus.RAN: "finished",
    StepStatus.CACHED: "cached",
    StepStatus.FAILED: "failed",
    StepStatus.SKIPPED: "skipped",
}
_OUTPUT_TAIL = 4000


def environment(project_root: Path, settings: ZenmlSettings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ZENML_ANALYTICS_OPT_IN": "false",
            "AUTO_OPEN_DASHBOARD": "false",
            "ZENML_AUTO_OPEN_DASHBOARD": "false",
            "ZENML_ENABLE_RICH_TRACEBACK": "false",
            "ZENML_LOGGING_COLORS_DISABLED": "true",
            "ZENML_DISABLE_INTERACTIVE_INPUT": "true",
        }
    )
    if settings.zenml_home is not None:
        home = (project_root / settings.zenml_home).resolve()
        home.mkdir(parents=True, exist_ok=True)
        for key in list(env):
            if key in _FOREIGN or key.startswith(_FOREIGN_PREFIXES):
                del env[key]
        env["ZENML_CONFIG_PATH"] = str(home)
    return env


def run_pipeline(
    built_dir: Path, plan: Plan, settings: ZenmlSettings, options: RunOptions
) -> RunResult:
    module = built_dir / "pipeline.py"
    if not module.is_file():
        return RunResult(
            RunStatus.FAILED,
            exit_code=int(ExitCode.BACKEND_FAILED),
            error=f"{module} does not exist: build the plan for zenml first",
        )
    root = options.project_root.resolve()
    with tempfile.TemporaryDirectory(prefix="mlcompile-zenml-") as scratch:
        summary_path = Path(scratch) / "summary.json"
        command = [
            sys.executable,
            str(module.resolve()),
            "--config",
            str((built_dir / "run_config.yaml").resolve()),
            "--project-root",
            str(root),
            "--summary",
            str(summary_path),
        ]
        if options.force or not options.use_cache:
            command.append("--no-cache")
        done = subprocess.run(
            command,
            cwd=built_dir,
            env=environment(root, settings),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        summary = _read(summary_path)
    if summary is None:
        output = (done.stdout + done.stderr)[-_OUTPUT_TAIL:]
        return RunResult(
            RunStatus.FAILED,
            steps={n.id: {"status": StepStatus.NOT_RUN} for n in plan.topological()},
            exit_code=int(ExitCode.BACKEND_FAILED),
            error=f"the ZenML pipeline exited with {done.returncode} and no summary:\n{output}",
        )
    result = result_from_summary(plan, summary, options)
    if result.run_id:
        # the steps that ran sent their own events; the run's end is known here
        run = PipelineRun.of(plan, result.run_id, "zenml", summary.get("run_uuid"))
        error: RunError | None = {"node": None, "message": result.error} if result.error else None
        trail = RunTrail(run, root, hold=False)
        trail.finished(result.status, result.exit_code, error, plan.spec_sha256)
    return result


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def result_from_summary(
    plan: Plan, summary: dict[str, Any], options: RunOptions | None = None
) -> RunResult:
    """The local backend's RunResult shape: steps by node id, metrics by model name, gate
    decisions by gate name."""
    reported: dict[str, Any] = summary.get("steps") or {}
    steps: dict[str, StepOutcome] = {}
    metrics: dict[str, Any] = {}
    decisions: dict[str, Any] = {}
    for node in plan.topological():
        entry = reported.get(node.id)
        if entry is None:
            blocked = any(
                steps[dep]["status"] in (StepStatus.FAILED, StepStatus.SKIPPED)
                for dep in plan.dependencies(node.id)
            )
            steps[node.id] = {"status": StepStatus.SKIPPED if blocked else StepStatus.NOT_RUN}
        else:
            steps[node.id] = typed_outcome(
                {
                    key: entry[key]
                    for key in ("status", "seconds", "summary", "error", "exit_code", "zenml_step")
                    if key in entry
                }
            )
            records = entry.get("records") or {}
            if node.kind == "evaluate" and "metrics" in records:
                metrics[node.name] = records["metrics"]
            if node.kind in DECISION_KINDS and "decision" in records:
                decisions[node.name] = records["decision"]
        if options is not None and options.on_event is not None:
            event = _EVENTS.get(steps[node.id]["status"])
            if event is not None:
                options.on_event(
                    {"event": event, "node": node.id, "kind": node.kind, **steps[node.id]}
                )
    exit_code = int(summary.get("exit_code", ExitCode.BACKEND_FAILED))
    return RunResult(
        RunStatus.SUCCEEDED if exit_code == 0 else RunStatus.FAILED,
        steps=steps,
        metrics=metrics,
        decisions=decisions,
        exit_code=exit_code,
        error=summary.get("error"),
        run_id=summary.get("run"),
    )
