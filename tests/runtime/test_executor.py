"""The local executor on the flights example: caching, gates, data checks, parallelism.

These run the real pipeline (DuckDB, pandera, LightGBM) on a sample of the example's data.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

Cli = Callable[..., Result]
FAST = ["models.delayed.num_boost_round=40", "models.arrival.num_boost_round=40"]
pytestmark = pytest.mark.slow


def run(cli: Cli, project: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = cli("run", project / "mlcompile.yaml", *FAST, *extra, "--format", "json")
    return result.exit_code, json.loads(result.stdout)


def statuses(payload: dict[str, Any], status: str) -> set[str]:
    return {node for node, step in payload["steps"].items() if step["status"] == status}


def test_rerun_with_nothing_changed_executes_nothing(cli: Cli, flights_project: Path) -> None:
    code, first = run(cli, flights_project)
    assert code == 0, first
    assert len(statuses(first, "ran")) == 25
    code, second = run(cli, flights_project)
    assert code == 0
    assert statuses(second, "ran") == set()
    assert len(statuses(second, "cached")) == 25
    assert second["metrics"] == first["metrics"]


def test_changing_one_model_reruns_only_that_model(cli: Cli, flights_project: Path) -> None:
    assert run(cli, flights_project)[0] == 0
    code, payload = run(cli, flights_project, "models.arrival.params.num_leaves=7")
    assert code == 0
    assert statuses(payload, "ran") == {
        "train:arrival",
        "evaluate:arrival",
        "gate:arrival_quality",
        "register:arrival_registry",
    }


def test_changed_data_file_reruns_what_reads_it(cli: Cli, flights_project: Path) -> None:
    assert run(cli, flights_project)[0] == 0
    planes = flights_project / "data" / "planes.csv"
    lines = planes.read_text().splitlines()
    planes.write_text("\n".join(lines[:-50]) + "\n")  # drop 50 aircraft
    code, payload = run(cli, flights_project)
    assert code == 0
    ran = statuses(payload, "ran")
    assert {"ingest:planes", "validate:planes", "ingest:training", "ingest:december"} <= ran
    assert "ingest:flights" not in ran and "validate:weather" not in ran


def test_failing_gate_exits_4_and_deploys_nothing(cli: Cli, flights_project: Path) -> None:
    code, payload = run(cli, flights_project, "gates.delayed_quality.checks=['roc_auc >= 0.99']")
    assert code == 4
    assert payload["status"] == "failed"
    assert payload["steps"]["gate:delayed_quality"]["status"] == "failed"
    for deploy in ("register:delayed_registry", "score:december_scores", "kserve:delayed_kserve"):
        assert payload["steps"][deploy]["status"] in ("skipped", "not run"), deploy
    decision = payload["decisions"]["delayed_quality"]
    assert decision["passed"] is False
    assert decision["checks"][0]["bound"] == 0.99
    assert not (flights_project / ".mlcompile" / "registry" / "flights.delayed").exists()
    assert not (flights_project / "outputs" / "december_delay_scores.parquet").exists()


def test_failing_data_check_exits_3_with_its_report(cli: Cli, flights_project: Path) -> None:
    # --keep-going: both sources using the schema fail, checks of other sources still run
    code, payload = run(
        cli, flights_project, "schemas.flights_raw.columns.distance.gt=1000", "--keep-going"
    )
    assert code == 3
    assert payload["steps"]["validate:weather"]["status"] == "ran"
    assert payload["steps"]["train:delayed"]["status"] == "skipped"
    step = payload["steps"]["validate:flights"]
    assert step["status"] == "failed"
    report = json.loads((Path(step["artifacts"]) / "report" / "report.json").read_text())
    assert report["passed"] is False
    [failure] = [f for f in report["failures"] if f["column"] == "distance"]
    assert failure["failing_rows"] > 0
    assert all(value <= 1000 for value in failure["examples"])


def test_registry_promote_and_rollback(cli: Cli, flights_project: Path) -> None:
    registry = flights_project / ".mlcompile" / "registry"
    assert run(cli, flights_project)[0] == 0
    assert run(cli, flights_project, "models.arrival.params.num_leaves=7")[0] == 0
    shown = json.loads(cli("registry", "list", "--registry", registry, "--format", "json").stdout)
    arrival = shown["models"]["flights.arrival"]
    assert [v["version"] for v in arrival["versions"]] == [1, 2]
    assert arrival["aliases"] == {"production": 2}
    rolled = cli("registry", "rollback", "flights.arrival", "--registry", registry)
    assert rolled.exit_code == 0 and "production -> v1" in rolled.output
    promoted = cli("registry", "promote", "flights.arrival@2", "--registry", registry)
    assert promoted.exit_code == 0 and "production -> v2" in promoted.output
    history = json.loads(
        cli(
            "registry", "show", "flights.arrival", "--registry", registry, "--format", "json"
        ).stdout
    )
    assert history["aliases"] == {"production": 2}
    missing = cli("registry", "show", "flights.arival", "--registry", registry)
    assert missing.exit_code == 2 and "flights.arrival" in missing.output


def test_independent_models_train_in_parallel(cli: Cli, flights_project: Path) -> None:
    code, parallel = run(cli, flights_project, "--jobs", "2")
    assert code == 0
    a, b = parallel["steps"]["train:arrival"], parallel["steps"]["train:delayed"]
    assert a["start"] < b["end"] and b["start"] < a["end"], "the two trainings did not overlap"
    code, serial = run(cli, flights_project, "--jobs", "1", "--force")
    assert code == 0
    windows = sorted((s["start"], s["end"]) for s in serial["steps"].values())
    assert all(first[1] <= second[0] for first, second in itertools.pairwise(windows))
    assert serial["metrics"] == parallel["metrics"], "thread counts must not change the models"


def test_runs_commands_show_the_record(cli: Cli, flights_project: Path) -> None:
    assert run(cli, flights_project)[0] == 0
    assert run(cli, flights_project, "models.arrival.params.num_leaves=7")[0] == 0
    runs_dir = flights_project / ".mlcompile" / "runs"
    listed = cli("runs", "list", "--runs-dir", runs_dir)
    assert listed.exit_code == 0 and len(listed.output.strip().splitlines()) == 2
    shown = cli("runs", "show", "latest", "--runs-dir", runs_dir)
    assert "train:arrival" in shown.output
    ids = [line.split()[0] for line in listed.output.strip().splitlines()]
    compared = cli("runs", "compare", ids[0], ids[1], "--runs-dir", runs_dir, "--format", "json")
    rows = {(r["model"], r["metric"]): r for r in json.loads(compared.stdout)["metrics"]}
    assert rows[("delayed", "roc_auc")]["delta"] == 0.0
    assert rows[("arrival", "rmse")]["delta"] != 0.0
    text = cli("runs", "compare", ids[0], ids[1], "--runs-dir", runs_dir).output
    assert f"{ids[0]} {ids[1]}" in text.splitlines()[0]  # the whole ids, not one short
    assert "(latest" not in shown.output and "'" not in shown.output.split("\n", 1)[0]


def test_no_cache_neither_reads_nor_writes_the_cache(cli: Cli, flights_project: Path) -> None:
    code, payload = run(cli, flights_project, "--no-cache")
    assert code == 0
    assert statuses(payload, "ran") == set(payload["steps"])
    assert not (flights_project / ".mlcompile" / "store" / "entries").exists()
    code, again = run(cli, flights_project)
    assert code == 0 and statuses(again, "cached") == set(), "a --no-cache run filled the cache"
