"""Champion and challenger on the flights example: two trained versions behind a real
`mlcompile serve --shadow` on loopback, December's flights through it, their outcomes as
labels, the monitor comparing the versions in the gate language, and `registry promote
--if-monitor` moving `production` only when the challenger won."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner, Result
from sklearn.metrics import log_loss, roc_auc_score

from mlcompile.runtime.registry import Registry

from .conftest import FLIGHTS, json_rows
from .serve_process import Sandbox, Served

pytestmark = pytest.mark.xdist_group("flights-rollout")

LOG = "logs/predictions"
REPORT = ".mlcompile/monitoring/delayed_rollout.json"
KEY = ["time_hour", "carrier", "origin", "dest", "sched_dep_time"]
# December's outcomes keyed by columns the log keeps (the model's inputs); the one key two
# flights share is left out, since a key must name one row
OUTCOMES = f"""
SELECT {", ".join(KEY)}, CAST(dep_delay > 15 AS INTEGER) AS is_delayed
FROM december_flights
WHERE dep_delay IS NOT NULL
QUALIFY count(*) OVER (PARTITION BY {", ".join(KEY)}) = 1
"""


def _invoke(*args: str | Path) -> Result:
    from mlcompile.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _rollout_monitor(checks: list[str]) -> dict[str, Any]:
    return {
        "model": "delayed",
        "challenger": "challenger",
        "current": {"prediction_log": {"path": LOG}},
        "labels": {"source": "served_outcomes", "key": KEY},
        "checks": checks,
    }


@pytest.fixture(scope="module")
def served(trained_flights: Path, december: pd.DataFrame, tmp_path_factory: Any) -> Path:
    """The example with version 1 (num_leaves 31) at production and version 2 (num_leaves
    15) at challenger, after December went through `serve --shadow challenger`."""
    project = tmp_path_factory.mktemp("rollout") / "flights"
    shutil.copytree(trained_flights, project)
    spec = project / "mlcompile.yaml"
    trained = _invoke("run", spec, "models.delayed.params.num_leaves=15", "-q")
    assert trained.exit_code == 0, trained.output
    registry = Registry(project / ".mlcompile" / "registry")
    registry.promote(FLIGHTS, 1, "production")
    registry.promote(FLIGHTS, 2, "challenger")
    document = yaml.safe_load(spec.read_text())
    document["sources"]["served_outcomes"] = {"sql": OUTCOMES}
    spec.write_text(json.dumps(document, indent=2))

    sandbox = Sandbox(project / ".mlcompile" / "registry")
    try:
        log = sandbox.root / "predictions"
        server = Served(sandbox, FLIGHTS, "--shadow", "challenger", "--log-dir", str(log))
        server.started()
        rows = json_rows(december)
        for start in range(0, len(rows), 250):
            status, body = server.post(rows[start : start + 250])
            assert status == 200, body
            assert body["version"] == 1 and "shadow" not in json.dumps(body)
        assert server.stop() == 143, server.output
        shutil.copytree(log, project / LOG)
    finally:
        sandbox.remove()
    return project


@pytest.fixture
def project(served: Path, tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "flights"
    shutil.copytree(served, copy)
    yield copy


def _with_monitor(project: Path, checks: list[str]) -> Path:
    spec = project / "mlcompile.yaml"
    document = json.loads(spec.read_text())
    del document["monitoring"]["delayed_drift"]  # December drifts: that is another story
    document["monitoring"]["delayed_rollout"] = _rollout_monitor(checks)
    spec.write_text(json.dumps(document, indent=2))
    return spec


def _outcomes(project: Path) -> pd.DataFrame:
    """The labels source's rows, read by DuckDB from the December file."""
    import duckdb

    con = duckdb.connect()
    december = project / "data" / "flights_december.parquet"
    con.sql(f"CREATE VIEW december_flights AS SELECT * FROM read_parquet('{december}')")
    return con.sql(OUTCOMES).df()


def _direct(project: Path) -> dict[str, float]:
    """Both versions' metrics computed with sklearn from what the log holds: the champion's
    answers and the shadow's, on the rows with an outcome."""
    log = pd.read_parquet(project / LOG)
    assert set(log["model_version"]) == {1} and set(log["shadow_version"]) == {2}
    joined = log.merge(_outcomes(project), on=KEY)
    y = joined["is_delayed"]
    return {
        "rows": float(len(joined)),
        "roc_auc_1": roc_auc_score(y, joined["probability"]),
        "roc_auc_2": roc_auc_score(y, joined["shadow_probability"]),
        "logloss_1": log_loss(y, joined["probability"]),
        "logloss_2": log_loss(y, joined["shadow_probability"]),
    }


def _monitor(cli: Callable[..., Result], spec: Path) -> tuple[int, dict[str, Any], str]:
    result = cli("monitor", spec, "--no-retrain", "--format", "json")
    human = cli("monitor", spec, "--no-retrain")
    return result.exit_code, json.loads(result.output), human.output


def _promote(cli: Callable[..., Result], project: Path) -> Result:
    registry = project / ".mlcompile" / "registry"
    return cli(
        "registry", "promote", FLIGHTS, "--alias", "production", "--if-monitor",
        project / REPORT, "--registry", registry,
    )  # fmt: skip


def test_the_comparison_measures_what_sklearn_measures_and_a_win_promotes(
    cli: Callable[..., Result], project: Path
) -> None:
    direct = _direct(project)
    gain = direct["roc_auc_2"] - direct["roc_auc_1"]
    # bounds a hair either side of the measured difference: only exact numbers pass both
    checks = [
        f"roc_auc[challenger] >= roc_auc[production] {'+' if gain >= 0 else '-'} "
        f"{abs(gain) - 1e-9 if gain >= 0 else abs(gain) + 1e-9:.12f}",
        f"logloss[challenger] <= logloss[production] + "
        f"{direct['logloss_2'] - direct['logloss_1'] + 1e-9:.12f}",
    ]
    code, out, human = _monitor(cli, _with_monitor(project, checks))
    decision = out["monitoring"]["decisions"]["delayed_rollout"]
    assert code == 0, decision
    auc, loss = decision["checks"]
    assert auc["kind"] == loss["kind"] == "comparison"
    assert auc["basis"] == "shadow" and auc["judged"] and auc["passed"]
    sides = auc["versions"]
    assert (sides["challenger"]["version"], sides["champion"]["version"]) == (2, 1)
    assert sides["challenger"]["rows"] == sides["champion"]["rows"] == direct["rows"]
    assert sides["challenger"]["value"] == pytest.approx(direct["roc_auc_2"], abs=1e-12)
    assert sides["champion"]["value"] == pytest.approx(direct["roc_auc_1"], abs=1e-12)
    assert loss["value"] == pytest.approx(direct["logloss_2"], abs=1e-12)
    assert loss["versions"]["champion"]["value"] == pytest.approx(direct["logloss_1"], abs=1e-12)
    assert decision["challenger"] == {"alias": "challenger", "version": 2}
    report = json.loads((project / REPORT).read_text())
    assert report["drift"]["comparison"]["basis"] == "shadow"
    assert report["drift"]["comparison"]["challenger"]["metrics"]["rows"] == direct["rows"]
    assert f"PASS {checks[0]}: v2 {direct['roc_auc_2']:.4f}, v1 {direct['roc_auc_1']:.4f}" in human
    assert f"({int(direct['rows'])} shadow rows)" in human

    promoted = _promote(cli, project)
    assert promoted.exit_code == 0, promoted.output
    assert "flights.delayed: production -> v2" in promoted.output
    registry = Registry(project / ".mlcompile" / "registry")
    assert registry.aliases(FLIGHTS)["production"] == 2
    event = registry.history(FLIGHTS)[-1]
    assert event["to_version"] == 2 and event["user"]
    assert event["reason"]["monitor"] == "delayed_rollout"
    assert event["reason"]["report"] == str(project / REPORT)
    assert event["reason"]["passed"] == checks
    shown = cli("registry", "show", FLIGHTS, "--registry", project / ".mlcompile" / "registry")
    assert "as monitor delayed_rollout passed" in shown.output


def test_a_challenger_that_loses_is_not_promoted(cli: Callable[..., Result], project: Path) -> None:
    direct = _direct(project)
    gain = direct["roc_auc_2"] - direct["roc_auc_1"]
    needed = f"roc_auc[challenger] >= roc_auc[production] + {max(gain, 0) + 1e-6:.9f}"
    code, out, human = _monitor(cli, _with_monitor(project, [needed]))
    decision = out["monitoring"]["decisions"]["delayed_rollout"]
    assert code == 7
    (check,) = decision["checks"]
    assert check["judged"] and not check["passed"]
    assert check["bound"] == pytest.approx(direct["roc_auc_1"] + max(gain, 0) + 1e-6, abs=1e-9)
    assert f"FAIL {needed}" in human
    before = Registry(project / ".mlcompile" / "registry").history(FLIGHTS)

    refused = _promote(cli, project)
    assert refused.exit_code == 4
    assert "the challenger v2 ('challenger') against v1 failed" in refused.output
    assert "Traceback" not in refused.output
    registry = Registry(project / ".mlcompile" / "registry")
    assert registry.aliases(FLIGHTS)["production"] == 1
    assert registry.history(FLIGHTS) == before


def test_a_stale_report_promotes_nothing(cli: Callable[..., Result], project: Path) -> None:
    direct = _direct(project)
    loose = f"roc_auc[challenger] >= roc_auc[production] - {abs(direct['roc_auc_2']) + 1:.3f}"
    code, _, _ = _monitor(cli, _with_monitor(project, [loose]))
    assert code == 0
    registry = Registry(project / ".mlcompile" / "registry")
    registry.promote(FLIGHTS, 1, "challenger")  # someone moved the challenger meanwhile
    refused = _promote(cli, project)
    assert refused.exit_code == 2
    assert "'challenger' pointed at v2, now at v1" in refused.output
    assert registry.aliases(FLIGHTS)["production"] == 1


def test_a_canary_compares_each_version_on_the_rows_it_answered(
    cli: Callable[..., Result], project: Path, december: pd.DataFrame
) -> None:
    from fastapi.testclient import TestClient

    from mlcompile.serving.app import create_app
    from mlcompile.serving.rollout import Canary

    shutil.rmtree(project / LOG)
    registry = project / ".mlcompile" / "registry"
    app = create_app(
        registry, FLIGHTS, "production", project / LOG, canary=Canary("challenger", 40)
    )
    rows = json_rows(december)
    with TestClient(app) as client:  # leaving the block flushes the log
        for start in range(0, len(rows), 20):
            assert client.post("/predict", json={"rows": rows[start : start + 20]}).is_success
    log = pd.read_parquet(project / LOG).merge(_outcomes(project), on=KEY)
    direct = {
        v: roc_auc_score(part["is_delayed"], part["probability"])
        for v, part in log.groupby("model_version")
    }
    counts = log["model_version"].value_counts().to_dict()
    assert set(direct) == {1, 2}

    code, out, human = _monitor(
        cli, _with_monitor(project, ["roc_auc[challenger] >= roc_auc[production] - 1"])
    )
    (check,) = out["monitoring"]["decisions"]["delayed_rollout"]["checks"]
    assert code == 0 and check["basis"] == "canary" and check["judged"]
    sides = check["versions"]
    assert sides["champion"]["rows"] == counts[1] and sides["challenger"]["rows"] == counts[2]
    assert sides["champion"]["value"] == pytest.approx(direct[1], abs=1e-12)
    assert sides["challenger"]["value"] == pytest.approx(direct[2], abs=1e-12)
    assert f"({counts[2]} and {counts[1]} rows each answered)" in human
