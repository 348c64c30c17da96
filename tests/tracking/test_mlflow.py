"""MLflow tracking against a real `mlflow server` on 127.0.0.1 (SQLite backend store, a local
artifact root), started here and killed at the end: runs of the trimmed example are read
back through MLflow's own client — params, metrics, tags, artifacts, the LightGBM model and
the registered versions with their alias, moved again by `registry rollback`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlcompile.plan import Plan
from mlcompile.runtime.artifacts import read_model
from mlcompile.runtime.trail.records import load_runs
from mlcompile.runtime.train import model_inputs
from mlcompile.tracking import mlflow_config
from tests.lineage.conftest import TRIM, copy_example, invoke

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mlflow")]

REPO = Path(__file__).resolve().parents[2]
SERVER = Path(
    os.environ.get("MLCOMPILE_MLFLOW_SERVER", REPO / ".venv-mlflow-server" / "bin" / "mlflow")
)
START_TIMEOUT = 240.0
# MLflow reports usage to its makers unless told not to; nothing leaves this machine.
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
PASSING = [
    *TRIM,
    'gates.arrival_quality.checks=["rmse <= 1000"]',
    'gates.delayed_quality.checks=["roc_auc >= 0.5"]',
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not SERVER.is_file():
        message = f"no MLflow server at {SERVER} (make test builds .venv-mlflow-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    home = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    log = (home / "server.log").open("w")
    process = subprocess.Popen(
        [
            str(SERVER),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{home / 'mlflow.db'}",
            "--artifacts-destination",
            str(home / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **QUIET},
        start_new_session=True,  # its workers in a group of their own, ended together
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((home / "server.log").read_text()[-2000:])
            time.sleep(1)
        yield uri
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def logged(server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two deploying runs (the second with other params), then an experiment that does not
    deploy; all logged to the server."""
    saved = {k: os.environ.get(k) for k in (*QUIET, "MLFLOW_TRACKING_URI")}
    os.environ.update(QUIET)
    project = copy_example(tmp_path_factory.mktemp("tracked") / "flights")
    tracking = [f"tracking.mlflow.tracking_uri={server}", "tracking.mlflow.experiment=flights-exp"]
    outputs = []
    for extra in (
        [],
        ["models.delayed.params.num_leaves=7"],
        ["--no-deploy", "models.delayed.params.num_leaves=5"],
    ):
        result = invoke("run", "mlcompile.yaml", *PASSING, *tracking, *extra, "-q", "--format", "json",
                        cwd=project)  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs.append(json.loads(result.output))
    try:
        yield {"project": project, "server": server, "outputs": outputs}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _client(server: str) -> Any:
    import mlflow

    mlflow.set_tracking_uri(server)
    return mlflow.MlflowClient(server)


def test_every_model_run_is_logged(logged: dict[str, Any]) -> None:
    project, first = logged["project"], logged["outputs"][0]
    client = _client(logged["server"])
    assert {m["model"] for m in first["mlflow"]} == {"arrival", "delayed"}
    experiment = client.get_experiment_by_name("flights-exp")
    found = {r.info.run_id: r for r in client.search_runs([experiment.experiment_id])}
    assert len(found) == 6  # two models, three runs
    run = found[next(m["run_id"] for m in first["mlflow"] if m["model"] == "delayed")]
    record = next(
        r for r in load_runs(project / ".mlcompile" / "runs") if r["id"] == first["run_id"]
    )
    plan = Plan.from_json(
        (project / ".mlcompile" / "runs" / first["run_id"] / "plan.json").read_text()
    )

    tags = run.data.tags
    assert tags["mlcompile.run_id"] == first["run_id"]
    assert tags["mlcompile.spec_sha256"] == plan.spec_sha256 == record["spec_sha256"]
    assert tags["mlcompile.backend"] == "local" and tags["mlcompile.status"] == "succeeded"
    assert tags["mlcompile.gate.delayed_quality"] == "passed"
    assert run.info.status == "FINISHED"

    params = run.data.params
    assert params["num_boost_round"] == "30" and params["params.num_leaves"] == "31"
    assert params["lightgbm.deterministic"] == "true"  # the effective LightGBM params
    assert int(params["best_iteration"]) >= 1

    metrics = run.data.metrics
    overall = record["metrics"]["delayed"]["overall"]
    assert metrics["test_roc_auc"] == pytest.approx(overall["roc_auc"])
    jfk = record["metrics"]["delayed"]["slices"]["origin"]["JFK"]["roc_auc"]
    assert metrics["test_roc_auc/origin/JFK"] == pytest.approx(jfk)
    assert "validation_binary_logloss" in metrics

    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"diagnosis", "plots", "report.html", "metrics.json"} <= names
    plots = [a.path for a in client.list_artifacts(run.info.run_id, "plots")]
    assert any(p.endswith("-roc.svg") for p in plots) and len(plots) >= 8
    import mlflow

    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="diagnosis/diagnosis.json"
        )
    )
    key = record["steps"]["evaluate:delayed"]["key"]
    stored = (
        project
        / ".mlcompile"
        / "store"
        / "entries"
        / key[:2]
        / key
        / "diagnosis"
        / "diagnosis.json"
    )
    assert json.loads(local.read_text()) == json.loads(stored.read_text())


def test_the_model_is_logged_and_registered_with_its_alias(logged: dict[str, Any]) -> None:
    import lightgbm as lgb
    import mlflow.lightgbm

    project, outputs = logged["project"], logged["outputs"]
    client = _client(logged["server"])
    assert [m["model_version"] for m in outputs[0]["mlflow"] if m["model"] == "delayed"] == ["1"]
    assert [m["model_version"] for m in outputs[1]["mlflow"] if m["model"] == "delayed"] == ["2"]
    # the arrival model did not change in the second run: its registration was cached, and
    # MLflow's registry got no second copy of it
    assert [m["model_version"] for m in outputs[1]["mlflow"] if m["model"] == "arrival"] == ["1"]
    assert all(m["model_version"] is None for m in outputs[2]["mlflow"])  # --no-deploy

    production = client.get_model_version_by_alias("flights.delayed", "production")
    assert production.version == "2" and production.tags["mlcompile.version"] == "2"
    versions = client.search_model_versions("name='flights.delayed'")
    assert sorted(v.version for v in versions) == ["1", "2"]

    booster = mlflow.lightgbm.load_model("models:/flights.delayed@production")
    version = project / ".mlcompile" / "registry" / "flights.delayed" / "versions" / "2"
    bundle = read_model(version)
    rows = model_inputs(bundle, pd.read_parquet(version / "reference.parquet").head(200))
    local = lgb.Booster(model_str=bundle.text)
    np.testing.assert_allclose(booster.predict(rows), local.predict(rows))

    experiment_run = client.get_run(outputs[2]["mlflow"][0]["run_id"])
    assert experiment_run.data.tags["mlcompile.deploy"] == "false"


def test_rollback_is_mirrored_to_mlflow(logged: dict[str, Any]) -> None:
    project, server = logged["project"], logged["server"]
    registry = project / ".mlcompile" / "registry"
    os.environ["MLFLOW_TRACKING_URI"] = server
    try:
        result = invoke("registry", "rollback", "flights.delayed", "--registry", registry)
    finally:
        del os.environ["MLFLOW_TRACKING_URI"]
    assert result.exit_code == 0, result.output
    assert "flights.delayed: production -> v1" in result.output
    assert "mlflow: flights.delayed alias production -> version 1" in result.output
    client = _client(server)
    assert client.get_model_version_by_alias("flights.delayed", "production").version == "1"


def test_config_comes_from_the_spec_or_the_environment() -> None:
    from mlcompile.errors import UsageError

    assert mlflow_config(None, {}, "flights") is None
    from_env = mlflow_config(None, {"MLFLOW_TRACKING_URI": "http://127.0.0.1:1"}, "flights")
    assert from_env is not None and from_env.experiment == "flights" and from_env.registry
    spec = {"tracking_uri": "http://127.0.0.1:2", "experiment": "e", "registry": False}
    chosen = mlflow_config(spec, {"MLFLOW_TRACKING_URI": "http://127.0.0.1:1"}, "flights")
    assert chosen is not None and chosen.tracking_uri == "http://127.0.0.1:2"
    assert chosen.experiment == "e" and not chosen.registry
    with pytest.raises(UsageError, match="no tracking_uri"):
        mlflow_config({"experiment": "e"}, {}, "flights")
