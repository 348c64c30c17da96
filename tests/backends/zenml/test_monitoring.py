"""The monitoring job on ZenML: its own module and run configuration, a monitor step ZenML
never serves from its cache, an optional schedule, and `mlcompile monitor --backend zenml`
finding the example's drift."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from mlcompile_zenml.backend import ZenmlBackend
from mlcompile_zenml.runner import environment
from mlcompile_zenml.settings import ZenmlSettings
from pydantic import ValidationError

from mlcompile.backends import ArtifactSet
from mlcompile.plan import Plan
from tests.backends.monitoring import check_drift_report, monitor_flights
from tests.backends.zenml.conftest import flights_monitor_plan, flights_plan

DAILY = {"cron_expression": "0 6 * * *"}


@pytest.fixture(scope="module")
def monitor_plan() -> Plan:
    return flights_monitor_plan()


def render(plan: Plan, raw: dict[str, Any] | None = None) -> ArtifactSet:
    return ZenmlBackend().render(plan, ZenmlSettings.model_validate(raw or {}))


def run_config(plan: Plan, raw: dict[str, Any] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(render(plan, raw)["run_config.yaml"])
    return config


def test_golden_flights_monitoring(monitor_plan: Plan, golden: Callable[[str, str], None]) -> None:
    files = render(monitor_plan)
    assert sorted(files) == ["pipeline.py", "run_config.yaml"]
    golden("zenml/flights-monitoring/pipeline.py", files["pipeline.py"])
    golden("zenml/flights-monitoring/run_config.yaml", files["run_config.yaml"])


def test_monitor_step_is_never_cached_by_default(monitor_plan: Plan) -> None:
    steps = run_config(monitor_plan)["steps"]
    assert steps["monitor_delayed_drift"]["enable_cache"] is False
    assert {name for name, step in steps.items() if not step["enable_cache"]} == {
        "monitor_delayed_drift"
    }
    # no ZenML Model version per monitoring run: the monitor reads the registry instead
    assert "model" not in steps["monitor_delayed_drift"]


def test_schedule_goes_to_the_monitoring_job_only(monitor_plan: Plan) -> None:
    training = flights_plan()
    raw = {"monitoring_schedule": DAILY}
    assert run_config(monitor_plan, raw)["schedule"] == DAILY
    assert "schedule" not in run_config(training, raw)
    # the module depends on the plan alone: a schedule leaves ZenML's cache keys alone
    assert render(monitor_plan, raw)["pipeline.py"] == render(monitor_plan)["pipeline.py"]
    weekly = {"run_config": {"schedule": {"cron_expression": "0 0 * * 0"}}}
    assert run_config(training, weekly)["schedule"] == {"cron_expression": "0 0 * * 0"}
    assert "schedule" not in run_config(monitor_plan, weekly)
    both = {**weekly, "monitoring_schedule": DAILY}
    assert run_config(monitor_plan, both)["schedule"] == DAILY


@pytest.mark.parametrize("cron", ["0 6 * * *", "0 0 6 * * *", "*/15 8-18 * * MON-FRI", "@daily"])
def test_cron_expressions_in_either_orchestrator_format(cron: str) -> None:
    settings = ZenmlSettings.model_validate({"monitoring_schedule": {"cron_expression": cron}})
    assert settings.monitoring_schedule is not None
    assert settings.monitoring_schedule.cron_expression == cron


@pytest.mark.parametrize(
    "schedule",
    [
        {"cron_expression": "daily"},
        {"cron_expression": "0 6 * *"},
        {"cron_expression": "0 6 * * * * *"},
        {"cron_expression": "0 6 * * *\nrm -rf /"},
        {"cron_expression": "0 6 * * *", "interval_second": 60},
        {},
    ],
)
def test_invalid_schedules_are_refused(schedule: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ZenmlSettings.model_validate({"monitoring_schedule": schedule})


def test_a_pipeline_name_keeps_the_two_pipelines_apart(monitor_plan: Plan) -> None:
    source = render(monitor_plan, {"pipeline_name": "delays"})["pipeline.py"]
    assert "PIPELINE_NAME = 'delays-monitoring'" in source
    assert (
        "PIPELINE_NAME = 'delays'"
        in render(flights_plan(), {"pipeline_name": "delays"})["pipeline.py"]
    )


def test_options_are_judged_against_the_plan_that_has_the_kind(monitor_plan: Plan) -> None:
    settings = ZenmlSettings.model_validate(
        {"steps": {"train": {"cpu_count": 2}, "monitor": {"cpu_count": 1}}}
    )
    for plan in (flights_plan(), monitor_plan):
        assert ZenmlBackend().check(plan, settings) == []
    cached = ZenmlSettings.model_validate({"steps": {"monitor": {"enable_cache": True}}})
    [warning] = ZenmlBackend().check(monitor_plan, cached)
    assert (warning.code, warning.severity) == ("Z112", "warning")
    assert "registry alias" in warning.message


def drift_reports(zenml_home: Path) -> list[dict[str, Any]]:
    """Every drift.json in the artifact store (ZenML archives a directory artifact)."""
    found = []
    for archive in sorted(zenml_home.rglob("*__monitor_delayed_drift__drift/**/*.tar.gz")):
        with tarfile.open(archive) as tar:
            member = tar.extractfile("./drift.json")
            assert member is not None
            found.append(json.load(member))
    return found


@pytest.mark.slow
@pytest.mark.xdist_group("zenml")
def test_monitor_on_zenml_finds_december_drift_and_schedules_only_on_request(
    flights_project: Path, cli: Callable[..., Result]
) -> None:
    # A schedule in the run configuration does not keep `mlcompile monitor` from running once.
    schedule = "+backends.zenml.monitoring_schedule.cron_expression=0 6 * * *"
    payload = monitor_flights(cli, flights_project, "zenml", schedule)
    home = flights_project / ".mlcompile" / "zenml"
    [drift] = drift_reports(home)
    check_drift_report(drift, payload)

    built = flights_project / "build" / "monitoring" / "zenml"
    assert yaml.safe_load((built / "run_config.yaml").read_text("utf-8"))["schedule"] == DAILY
    done = subprocess.run(
        [sys.executable, str(built / "pipeline.py"), "--schedule"],
        cwd=flights_project,
        env=environment(flights_project, ZenmlSettings()),
        capture_output=True,
        text=True,
        check=False,
    )
    # ZenML got the schedule and refused it: the local orchestrator cannot schedule.
    assert done.returncode == 5, done.stdout + done.stderr
    assert "does not support scheduling" in done.stderr
