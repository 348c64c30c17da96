"""End to end on kfp.local: the same metrics as the local backend, and gates that stop deploys."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from mlcompile.backends import Runner, RunOptions, RunResult
from mlcompile.compiler import compile_spec, emitted_files, render, write
from tests.backends.kfp.helpers import MINI_SPEC

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("kfp")]
DEPLOYS = ("register:delayed_registry", "score:scores", "kserve:delayed_kserve")


def run(root: Path, backend: str, events: list[dict[str, Any]] | None = None) -> RunResult:
    compiled = compile_spec(root / "mlcompile.yaml", [])
    rendered = render(compiled, backend)
    out = root / "build"
    write(out, emitted_files(compiled, rendered))
    runner = rendered.backend
    assert isinstance(runner, Runner)
    # One job leaves LightGBM every core; kfp.local steps run one at a time with one thread.
    sink = events.append if events is not None else None
    options = RunOptions(project_root=compiled.project_root, jobs=1, on_event=sink)
    return runner.run(out / backend, compiled.plan, rendered.settings, options)


@pytest.fixture
def in_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mini plan's evaluate, gate and deploy steps in a part (a pipeline used as a
    component), as a plan of hundreds of steps is compiled; the conformance tests run a
    pipeline without parts."""
    from mlcompile_kfp import render as kfp_render

    monkeypatch.setattr(kfp_render, "PART_SIZE", 6)


def built_parts(root: Path) -> list[str]:
    module = (root / "build" / "kfp" / "pipeline.py").read_text("utf-8")
    return re.findall(r"^@dsl\.pipeline\(name='(part[-\d]*)'\)$", module, re.M)


def close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (a != a and b != b)
    return bool(a == b)


@pytest.mark.usefixtures("in_parts")
def test_kfp_local_gives_the_local_backends_metrics(make_project: Callable[..., Path]) -> None:
    kfp_root, local_root = make_project("kfp"), make_project("local")
    events: list[dict[str, Any]] = []
    result = run(kfp_root, "kfp", events)
    assert built_parts(kfp_root) == ["part"]
    assert result.status == "succeeded", result.error
    assert result.exit_code == 0
    assert {step["status"] for step in result.steps.values()} == {"ran"}
    assert [e["node"] for e in events if e["event"] == "started"] == [
        e["node"] for e in events if e["event"] == "finished"
    ]
    assert {e["node"] for e in events if e["event"] == "finished"} == set(result.steps)
    # the run's id is kfp.local's run name, its outputs folder
    assert result.run_id
    assert list((kfp_root / ".mlcompile" / "kfp-local").glob(f"*/outputs/{result.run_id}"))

    expected = run(local_root, "local")
    assert expected.status == "succeeded", expected.error
    assert set(result.metrics) == {"delayed"}
    assert result.metrics["delayed"]["overall"]["roc_auc"] > 0.5
    assert close(result.metrics, expected.metrics), (result.metrics, expected.metrics)
    assert result.decisions["delayed_quality"]["passed"] is True
    assert close(result.decisions, expected.decisions)

    scores = kfp_root / "outputs" / "scores.parquet"
    assert scores.is_file()
    assert (kfp_root / ".mlcompile" / "registry").is_dir()
    outputs = Path(result.steps["evaluate:delayed"]["outputs"])
    ui = json.loads((outputs / "executor_output.json").read_text("utf-8"))
    [logged] = ui["artifacts"]["ui_metrics"]["artifacts"]
    assert logged["metadata"]["roc_auc"] == result.metrics["delayed"]["overall"]["roc_auc"]


@pytest.mark.usefixtures("in_parts")
def test_failed_gate_exits_4_and_deploys_nothing(make_project: Callable[..., Path]) -> None:
    """The gate fails inside a part: kfp.local names the part's task and the step in it."""
    root = make_project(bound=0.99)
    events: list[dict[str, Any]] = []
    result = run(root, "kfp", events)
    assert built_parts(root) == ["part"]
    assert result.status == "failed"
    assert result.exit_code == 4, result.error
    assert "GateFailed: gate 'delayed_quality'" in (result.error or "")
    decision = result.decisions["delayed_quality"]
    assert decision["passed"] is False
    assert result.steps["gate:delayed_quality"]["status"] == "failed"
    assert result.steps["evaluate:delayed"]["status"] == "ran"
    assert "delayed" in result.metrics
    assert {(e["event"], e["node"]) for e in events if e["event"] in ("failed", "skipped")} == {
        ("failed", "gate:delayed_quality"),
        *(("skipped", node) for node in DEPLOYS),
    }
    for node in DEPLOYS:
        assert result.steps[node]["status"] == "skipped"
        assert not Path(result.steps[node]["outputs"]).exists(), node
    assert not (root / "outputs").exists()
    registry = root / ".mlcompile" / "registry"
    assert not registry.exists() or not any(registry.rglob("*.json"))


def test_cli_run_prints_only_its_json_and_exits_3_on_invalid_data(
    make_project: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    spec = MINI_SPEC.replace("__BOUND__", "0.5").replace("{min: 1, max: 12}", "{min: 1, max: 2}")
    root = make_project(spec=spec)
    result = cli("run", root / "mlcompile.yaml", "-b", "kfp", "--format", "json", "-q")
    assert result.exit_code == 3, result.output
    payload = json.loads(result.stdout)
    assert payload["steps"]["validate:flights"]["status"] == "failed"
    assert payload["steps"]["train:delayed"]["status"] == "skipped"
    assert "DataValidationError: " in payload["error"]


def test_stale_build_is_refused(make_project: Callable[..., Path]) -> None:
    root = make_project()
    compiled = compile_spec(root / "mlcompile.yaml", [])
    rendered = render(compiled, "kfp")
    out = root / "build"
    write(out, emitted_files(compiled, rendered))
    (out / "kfp" / "pipeline.py").write_text("# edited\n", encoding="utf-8")
    runner = rendered.backend
    assert isinstance(runner, Runner)
    options = RunOptions(project_root=root)
    result = runner.run(out / "kfp", compiled.plan, rendered.settings, options)
    assert (result.status, result.exit_code) == ("failed", 5)
    assert "build again" in (result.error or "")
