"""The monitoring job on KFP: its own pipeline and IR, a monitor step KFP never serves from its
cache, and `mlcompile monitor --backend kfp` on kfp.local finding the example's drift."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from mlcompile_kfp import KfpBackend, KfpSettings
from mlcompile_kfp.settings import check_settings

from mlcompile.compiler import Compiled
from mlcompile.plan import Plan
from tests.backends.kfp.helpers import golden_ir, ir_documents
from tests.backends.monitoring import MONITOR, check_drift_report, monitor_flights

TASK = "monitor-delayed-drift"


@pytest.fixture(scope="module")
def monitor_plan(flights_compiled: Compiled) -> Plan:
    assert flights_compiled.monitor_plan is not None
    return flights_compiled.monitor_plan


def render(plan: Plan, raw: dict[str, Any] | None = None) -> dict[str, str]:
    return dict(KfpBackend().render(plan, KfpSettings.model_validate(raw or {})))


def caching(files: dict[str, str]) -> dict[str, bool]:
    """Task -> whether KFP may serve it from its cache, as the compiled IR says."""
    [spec] = ir_documents(files["pipeline.yaml"])
    tasks = spec["root"]["dag"]["tasks"]
    return {name: bool(task["cachingOptions"].get("enableCache")) for name, task in tasks.items()}


def test_golden_flights_monitoring(monitor_plan: Plan, golden: Callable[[str, str], None]) -> None:
    files = render(monitor_plan)
    assert sorted(files) == ["pipeline.py", "pipeline.yaml", "requirements.txt"]
    golden("kfp/flights-monitoring/pipeline.py", files["pipeline.py"])
    golden("kfp/flights-monitoring/pipeline.yaml", golden_ir(files["pipeline.yaml"]))


def test_monitoring_pipeline_compiles_with_its_monitor_uncached(monitor_plan: Plan) -> None:
    from kfp import components

    files = render(monitor_plan)
    loaded = components.load_component_from_text(files["pipeline.yaml"])
    assert loaded.name == "flights-monitoring"
    cached = caching(files)
    assert cached[TASK] is False
    # everything else keeps the pipeline-wide default
    assert {name for name, on in cached.items() if not on} == {TASK}
    [spec] = ir_documents(files["pipeline.yaml"])
    monitor = spec["root"]["dag"]["tasks"][TASK]
    assert monitor["taskInfo"]["name"] == MONITOR
    assert set(monitor["inputs"]["artifacts"]) == {"in_0", "in_1"}
    step = json.loads(monitor["inputs"]["parameters"]["step"]["runtimeValue"]["constant"])
    assert {read[0] for read in step["reads"]} == {"current", "labels"}
    component = monitor["componentRef"]["name"]
    outputs = spec["components"][component]["outputDefinitions"]["artifacts"]
    assert set(outputs) == {"decision", "drift"}


def test_caching_a_monitor_takes_an_explicit_setting_and_warns(monitor_plan: Plan) -> None:
    assert caching(render(monitor_plan, {"caching": True}))[TASK] is False
    raw = {"kinds": {"monitor": {"caching": True}}}
    assert caching(render(monitor_plan, raw))[TASK] is True
    [warning] = check_settings(KfpSettings.model_validate(raw))
    assert (warning.code, warning.severity) == ("K111", "warning")
    assert warning.path == "backends.kfp.kinds.monitor.caching"
    assert (
        check_settings(KfpSettings.model_validate({"kinds": {"monitor": {"caching": False}}})) == []
    )


@pytest.mark.slow
@pytest.mark.xdist_group("kfp")
def test_monitor_on_kfp_local_finds_december_drift(
    flights_project: Path, cli: Callable[..., Result]
) -> None:
    payload = monitor_flights(cli, flights_project, "kfp")
    outputs = Path(payload["monitoring"]["steps"][MONITOR]["outputs"])
    assert outputs.is_relative_to(flights_project / ".mlcompile" / "kfp-local")
    drift = json.loads((outputs / "drift" / "drift.json").read_text("utf-8"))
    check_drift_report(drift, payload)
    built = flights_project / "build" / "monitoring" / "kfp"
    assert sorted(p.name for p in built.iterdir()) == [
        "SHA256SUMS.json",
        "pipeline.py",
        "pipeline.yaml",
        "requirements.txt",
    ]
