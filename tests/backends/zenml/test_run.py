"""End to end on ZenML's local orchestrator: a small flights project, hostile names and all.

One ZenML home serves the three runs of this module, in order: a fresh run (compared with
the local backend on the same data), the same run again (ZenML's step cache), a run whose
gate fails (nothing deploys), and a forced run. Each run takes ~10 s on two cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlcompile.backends import Runner, RunOptions, RunResult
from mlcompile.compiler import compile_spec, emitted_files, render, write
from mlcompile.plan import Plan
from tests.backends.zenml.conftest import HOSTILE, MARKER, make_project, small_spec
from tests.trail import check_trail, events_of

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("zenml")]

UPSTREAM = ("ingest", "validate", "split", "features", "train", "evaluate")
DEPLOYS = ("register", "score", "kserve")
CLI = str(Path(sys.executable).with_name("mlcompile"))


@dataclass
class Run:
    plan: Plan
    result: RunResult
    project: Path


def run_zenml(spec: Path, *, force: bool = False) -> Run:
    compiled = compile_spec(spec, [])
    rendered = render(compiled, "zenml")
    out = spec.parent / "build"
    write(out, emitted_files(compiled, rendered))
    runner = rendered.backend
    assert isinstance(runner, Runner)
    options = RunOptions(project_root=compiled.project_root, force=force)
    result = runner.run(out / "zenml", compiled.plan, rendered.settings, options)
    return Run(compiled.plan, result, spec.parent)


def statuses(run: Run) -> dict[str, str]:
    return {node_id: step["status"] for node_id, step in run.result.steps.items()}


def of_kind(run: Run, kinds: tuple[str, ...]) -> list[str]:
    return sorted(n.id for n in run.plan.nodes if n.kind in kinds)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zenml-e2e")
    return make_project(root / "project", small_spec(hostile=True))


@pytest.fixture(scope="module")
def local_result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The local backend on a copy of the same project, through the command line."""
    root = tmp_path_factory.mktemp("local-e2e")
    spec = make_project(root / "project", small_spec(hostile=True))
    done = subprocess.run(
        [CLI, "run", str(spec), "--jobs", "1", "--quiet", "--format", "json"],
        cwd=spec.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def first(project: Path) -> Run:
    return run_zenml(project)


@pytest.fixture(scope="module")
def second(first: Run, project: Path) -> Run:
    return run_zenml(project)


@pytest.fixture(scope="module")
def failing(second: Run, project: Path) -> Run:
    spec = make_project(
        project.parent, small_spec(hostile=True, gate="roc_auc >= 0.999"), name="failing.yaml"
    )
    return run_zenml(spec)


@pytest.fixture(scope="module")
def forced(failing: Run, project: Path) -> Run:
    return run_zenml(project, force=True)


def test_first_run_runs_every_step(first: Run) -> None:
    assert first.result.status == "succeeded", first.result.error
    assert first.result.exit_code == 0
    assert set(statuses(first).values()) == {"ran"}
    assert first.result.run_id


def test_metrics_and_decisions_equal_the_local_backend(
    first: Run, local_result: dict[str, Any]
) -> None:
    assert first.result.metrics == local_result["metrics"]
    assert list(first.result.metrics) == [HOSTILE]
    assert first.result.metrics[HOSTILE]["slices"]["origin"]
    assert first.result.decisions == local_result["decisions"]
    (decision,) = first.result.decisions.values()
    assert decision["passed"] is True


def test_second_run_takes_upstream_steps_from_zenml_cache(second: Run, first: Run) -> None:
    assert second.result.status == "succeeded", second.result.error
    found = statuses(second)
    assert {found[n] for n in of_kind(second, UPSTREAM)} == {"cached"}
    # Gates read the registry and deploys act outside ZenML: they run every time.
    assert {found[n] for n in of_kind(second, ("gate", *DEPLOYS))} == {"ran"}
    assert second.result.metrics == first.result.metrics


def test_failed_gate_stops_every_deploy(failing: Run) -> None:
    result = failing.result
    assert (result.status, result.exit_code) == ("failed", 4)
    (gate,) = of_kind(failing, ("gate",))
    assert statuses(failing)[gate] == "failed"
    assert "failed" in (result.error or "")
    (decision,) = result.decisions.values()
    assert decision["passed"] is False
    deploys = of_kind(failing, DEPLOYS)
    assert deploys
    assert {statuses(failing)[n] for n in deploys} == {"skipped"}


def test_deploys_left_no_trace_of_the_failed_run(failing: Run, second: Run) -> None:
    registrations = [
        step["summary"]["version"]
        for node_id, step in second.result.steps.items()
        if node_id.startswith("register:")
    ]
    registry = failing.project / ".mlcompile" / "registry"
    versions = sorted(p.name for p in registry.rglob("versions/*") if p.is_dir())
    assert versions == sorted({str(v) for v in registrations})


def test_hostile_names_ran_nothing_but_the_pipeline(failing: Run) -> None:
    assert not list(failing.project.parent.rglob(MARKER))
    assert not Path(MARKER).exists()


def test_force_runs_every_step_again(forced: Run, first: Run) -> None:
    assert forced.result.status == "succeeded", forced.result.error
    assert set(statuses(forced).values()) == {"ran"}
    assert forced.result.metrics == first.result.metrics


def test_zenml_runs_are_in_the_trail(forced: Run, first: Run) -> None:
    """The first run registered the model: its version, the runs list, the report and the
    lineage all name it, from the events its steps sent."""
    assert first.result.run_id
    [model] = [p.name for p in (first.project / ".mlcompile" / "registry").iterdir()]
    spec = first.project / "mlcompile.yaml"
    check_trail(first.project, spec, first.result.run_id, "zenml", model)
    # the forced run's steps all ran again, under its own run
    assert forced.result.run_id and forced.result.run_id != first.result.run_id
    sent = {e["job"]["name"] for e in events_of(first.project, forced.result.run_id)}
    assert set(statuses(forced)) <= sent
