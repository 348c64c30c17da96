"""`mlcompile monitor` on the flights example: a model trained on January to November meets
December (real seasonal drift), and the retrain policy closes the loop through the gates."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import Result

from mlcompile.runtime.registry import Registry
from mlcompile.runtime.store import Store

pytestmark = pytest.mark.xdist_group("flights-monitor")

SEASONAL = {"day_of_year", "month", "temp_filled"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The flights example after one training run: version 1 of both models in production."""
    from mlcompile.cli import cli as group
    from tests.conftest import EXAMPLE

    target = tmp_path_factory.mktemp("trained") / "flights"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("build", ".mlcompile"))
    result = _invoke(group, ["run", str(target / "mlcompile.yaml"), "-q"])
    assert result.exit_code == 0, result.output
    return target


def _invoke(group: Any, args: list[str]) -> Result:
    from click.testing import CliRunner

    return CliRunner().invoke(group, args, catch_exceptions=False)


@pytest.fixture
def project(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "flights"
    shutil.copytree(trained, copy)
    return copy


def _monitor(cli: Callable[..., Result], project: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("monitor", project / "mlcompile.yaml", "--format", "json", *args)
    return result.exit_code, json.loads(result.output)


def _deliver_december(project: Path) -> None:
    """What the upstream data feed does at the start of January: December joins the history."""
    data = project / "data"
    history = pd.read_parquet(data / "flights.parquet")
    december = pd.read_parquet(data / "flights_december.parquet")
    pd.concat([history, december], ignore_index=True).to_parquet(
        data / "flights.parquet", index=False
    )


def _production(project: Path, model: str) -> int:
    return Registry(project / ".mlcompile" / "registry").aliases(f"flights.{model}")["production"]


def _failing(decision: dict[str, Any]) -> set[str]:
    return {c["feature"] for c in decision["checks"] if c["kind"] == "drift" and not c["passed"]}


def test_december_drifts_and_a_report_only_run_says_so(
    cli: Callable[..., Result], project: Path
) -> None:
    code, out = _monitor(cli, project, "--no-retrain")
    assert code == 7
    decision = out["monitoring"]["decisions"]["delayed_drift"]
    assert decision["version"] == 1 and decision["rows"] == 4000
    assert _failing(decision) >= SEASONAL
    # stable inputs do not drift: distance and carriers are the same in December
    assert not {"log_distance", "carrier_code", "origin_code"} & _failing(decision)
    assert decision["retrain"] is True and out["retrain"] is None
    performance = [c for c in decision["checks"] if c["kind"] == "performance"]
    assert performance and performance[0]["passed"]
    # December's own AUC, on the 3,863 flights that left, against the test split's
    assert 0.6 < performance[0]["value"] < 0.75

    run_dir = project / ".mlcompile" / "runs" / out["monitoring"]["run_id"]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["plan"] == "flights-monitoring"
    key = record["steps"]["monitor:delayed_drift"]["key"]
    entry = Store(project / ".mlcompile" / "store").entry(key)
    drift = json.loads((entry / "drift" / "drift.json").read_text())
    assert drift["reference"] == {"from": "registry", "rows": 20000}
    assert drift["features"]["day_of_year"]["psi"] > 1
    assert drift["current"]["labelled_rows"] == 3863
    # the same report, where people look for it
    assert out["reports"] == {"delayed_drift": ".mlcompile/monitoring/delayed_drift.json"}
    report = json.loads((project / out["reports"]["delayed_drift"]).read_text())
    assert report == {"drift": drift, "decision": decision}
    # and in the OpenLineage run events, for lineage servers and auditors
    events = [
        json.loads(line)
        for line in (project / ".mlcompile" / "lineage" / "runs.jsonl").read_text().splitlines()
    ]
    (done,) = [
        e
        for e in events
        if e["job"]["name"] == "monitor:delayed_drift" and e["eventType"] == "COMPLETE"
    ]
    facet = done["run"]["facets"]["mlcompile_monitor"]
    assert facet["version"] == 1 and facet["retrain"] is True and facet["passed"] is False
    assert (
        facet["drift"]["features"]["day_of_year"]["psi"] == drift["features"]["day_of_year"]["psi"]
    )


def test_retrain_on_unchanged_data_replaces_nothing(
    cli: Callable[..., Result], project: Path
) -> None:
    code, out = _monitor(cli, project)
    assert out["retrain"]["status"] == "succeeded"
    # the same rows train the same model: version 1 stays, and the drift is still there
    assert out["replaced"] == {"delayed_drift": None}
    assert code == 7
    assert _production(project, "delayed") == 1


def test_retrain_on_fresh_data_deploys_what_passes_its_gates(
    cli: Callable[..., Result], project: Path
) -> None:
    _deliver_december(project)
    code, out = _monitor(cli, project)
    retrain = out["retrain"]
    # the delayed model passes every gate, the comparison with production included ...
    delayed = retrain["decisions"]["delayed_quality"]
    assert delayed["passed"]
    assert any("production" in c["check"] and c["bound"] is not None for c in delayed["checks"])
    assert out["replaced"] == {"delayed_drift": 2}
    assert _production(project, "delayed") == 2
    # ... while December makes arrival delays harder to predict than in production: that
    # model's gate refuses its retrained version, which never reaches the registry
    arrival = retrain["decisions"]["arrival_quality"]
    assert not arrival["passed"]
    assert _production(project, "arrival") == 1
    assert Registry(project / ".mlcompile" / "registry").versions("flights.arrival") == [1]
    assert code == 4


def test_a_retrain_that_fails_its_gates_deploys_nothing(
    cli: Callable[..., Result], project: Path
) -> None:
    _deliver_december(project)
    code, out = _monitor(cli, project, "gates.delayed_quality.checks=['roc_auc >= 0.9']")
    assert code == 4
    assert out["retrain"]["decisions"]["delayed_quality"]["passed"] is False
    assert out["replaced"] == {"delayed_drift": None}
    assert _production(project, "delayed") == 1
    assert Registry(project / ".mlcompile" / "registry").versions("flights.delayed") == [1]


def test_monitor_without_monitors_is_a_usage_error(
    cli: Callable[..., Result], project: Path
) -> None:
    result = cli("monitor", project / "mlcompile.yaml", "~monitoring")
    assert result.exit_code == 2
    assert "has no monitors" in result.output


def test_monitor_before_any_training_says_what_is_missing(
    cli: Callable[..., Result], flights_project: Path
) -> None:
    result = cli("monitor", flights_project / "mlcompile.yaml", "-q")
    assert result.exit_code == 2
    assert "no registered model 'flights.delayed'" in result.output


def test_a_cached_monitor_still_leaves_its_report(
    cli: Callable[..., Result], project: Path
) -> None:
    first = _monitor(cli, project, "--no-retrain")[1]
    report = project / first["reports"]["delayed_drift"]
    again = _monitor(cli, project, "--no-retrain")[1]
    assert again["monitoring"]["steps"]["monitor:delayed_drift"]["status"] == "cached"
    report.unlink()
    third = _monitor(cli, project, "--no-retrain")[1]
    assert third["monitoring"]["steps"]["monitor:delayed_drift"]["status"] == "ran"
    assert json.loads(report.read_text())["decision"]["version"] == 1


LENIENT_ARRIVAL = "gates.arrival_quality.checks=['r2 >= 0.5']"


def test_a_replaced_model_settles_the_monitor(cli: Callable[..., Result], project: Path) -> None:
    _deliver_december(project)
    code, out = _monitor(cli, project, LENIENT_ARRIVAL)
    assert out["retrain"]["status"] == "succeeded"
    assert out["replaced"] == {"delayed_drift": 2}
    assert code == 0


def test_a_failing_report_only_monitor_keeps_the_run_unsettled(
    cli: Callable[..., Result], project: Path
) -> None:
    _deliver_december(project)
    watch = (
        "+monitoring.arrival_watch={model:arrival,current:{source:december},checks:['psi <= 0.01']}"
    )
    code, out = _monitor(cli, project, LENIENT_ARRIVAL, watch)
    decisions = out["monitoring"]["decisions"]
    assert decisions["arrival_watch"]["passed"] is False
    assert decisions["arrival_watch"]["retrain"] is False  # no policy: it only reports
    assert out["replaced"] == {"delayed_drift": 2}
    assert code == 7
