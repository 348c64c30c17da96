"""Run lineage, the model trace and the HTML report, on real runs of the trimmed example.

On the dev profile with 30 boosting rounds and pinned gates, the arrival model passes its
gate and is registered, and the delayed model fails its gate: one run covers COMPLETE and
FAIL.
"""

from __future__ import annotations

import html
import json
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlcompile.plan import Plan
from mlcompile.runtime.trail.events import run_uuid
from mlcompile.runtime.trail.records import load_runs
from tests.browser import check_page
from tests.lineage.conftest import TRIM, invoke, shared_project
from tests.trail import events_of

pytestmark = pytest.mark.slow

# Gates pinned so the outcome does not hang on model quality: arrival passes, delayed fails.
PINNED = [
    *TRIM,
    'gates.arrival_quality.checks=["rmse <= 1000", "r2 >= -10"]',
    'gates.delayed_quality.checks=["roc_auc >= 0.99", "roc_auc[origin] >= 0.5"]',
]


@dataclass
class Ran:
    project: Path
    plan: Plan
    first: dict[str, Any]  # the run that trained and registered
    second: dict[str, Any]  # the same command again: the latest run

    @property
    def store(self) -> Path:
        return self.project / ".mlcompile" / "store"


@pytest.fixture(scope="session")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    """One pair of runs per test session, shared by the xdist workers (read-only)."""

    def twice(project: Path) -> None:
        for _ in range(2):
            # -k: the arrival model registers whichever gate finishes first
            result = invoke("run", "mlcompile.yaml", *PINNED, "-k", "-q", cwd=project)
            assert result.exit_code == 4, result.output  # the delayed gate fails, by design

    project = shared_project(tmp_path_factory, "lineage-run", twice)
    plan = Plan.from_json((project / "build" / "plan.json").read_text(encoding="utf-8"))
    first, second = load_runs(project / ".mlcompile" / "runs")
    return Ran(project, plan, first, second)


def _by_job(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        found.setdefault(event["job"]["name"], []).append(event)
    return found


def test_run_events_are_valid_and_complete(
    ran: Ran, openlineage: Callable[[str, dict[str, Any]], list[str]]
) -> None:
    events = events_of(ran.project, ran.first["id"])
    for event in events:
        assert openlineage("RunEvent", event) == [], event["job"]["name"]
    jobs = _by_job(events)
    executed = [n for n, s in ran.first["steps"].items() if s["status"] in ("ran", "failed")]
    assert set(jobs) == {*executed, "flights"}  # skipped steps have no events
    assert [e["eventType"] for e in jobs["flights"]] == ["START", "FAIL"]
    outcome = jobs["flights"][1]["run"]["facets"]["mlcompile_run"]
    assert (outcome["exitCode"], outcome["runRecord"]) == (4, ran.first["id"])
    assert "gitCommit" not in outcome  # the copy is not in a repository
    assert [e["eventType"] for e in jobs["train:arrival"]] == ["START", "COMPLETE"]
    assert [e["eventType"] for e in jobs["gate:delayed_quality"]] == ["START", "FAIL"]
    pipeline_run = jobs["flights"][0]["run"]["runId"]
    for name, pair in jobs.items():
        assert pair[0]["run"]["runId"] == pair[1]["run"]["runId"]
        if name != "flights":
            assert pair[1]["run"]["facets"]["parent"]["run"]["runId"] == pipeline_run
    # Step run ids derive from the pipeline run's: every process names a step the same way.
    assert pipeline_run == run_uuid(ran.plan.name, ran.first["id"])


def test_hashes_link_raw_files_to_the_model(ran: Ran) -> None:
    jobs = _by_job(events_of(ran.project, ran.first["id"]))
    raw_hash = json.loads(
        (ran.project / ".mlcompile" / "registry" / "flights.arrival" / "versions" / "1")
        .joinpath("registration.json")
        .read_text()
    )["training_data"]["sources"]["flights"]
    ingest = jobs["ingest:flights"][1]
    (raw,) = ingest["inputs"]
    assert raw["name"] == "files/data/flights.parquet"
    assert raw["facets"]["version"]["datasetVersion"] == raw_hash
    written = ingest["outputs"][0]
    meta = json.loads(
        (ran.store / "entries")
        .glob(f"*/{ran.first['steps']['ingest:flights']['key']}/dataset/meta.json")
        .__next__()
        .read_text()
    )
    assert written["facets"]["version"]["datasetVersion"] == meta["sha256"]
    assert written["outputFacets"]["outputStatistics"]["rowCount"] == meta["rows"] > 0
    # What train wrote is what evaluate read.
    model_out = jobs["train:arrival"][1]["outputs"][0]
    model_in = {d["name"]: d for d in jobs["evaluate:arrival"][1]["inputs"]}[model_out["name"]]
    assert model_in["facets"]["version"] == model_out["facets"]["version"]
    summary = ran.first["steps"]["train:arrival"]["summary"]
    assert model_out["facets"]["version"]["datasetVersion"] == summary["model_sha256"]


def test_checks_metrics_gates_and_registration_facets(ran: Ran) -> None:
    jobs = _by_job(events_of(ran.project, ran.first["id"]))
    start, done = jobs["validate:flights"]
    assert "dataQualityAssertions" not in start["inputs"][0]["inputFacets"]
    assertions = done["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    origin = [a for a in assertions if a.get("column") == "origin"]
    assert {a["description"] for a in origin} == {"dtype str", "not null", "isin [EWR, JFK, LGA]"}
    assert all(a["success"] and a["severity"] == "error" for a in assertions)
    weather = jobs["validate:weather"][1]["inputs"][0]["inputFacets"]["dataQualityAssertions"]
    assert weather["assertions"][0]["severity"] == "warn"

    metrics = jobs["evaluate:arrival"][1]["run"]["facets"]["mlcompile_metrics"]
    assert metrics["overall"] == ran.first["metrics"]["arrival"]["overall"]
    assert set(metrics["slices"]["origin"]) == {"EWR", "JFK", "LGA"}

    failed = jobs["gate:delayed_quality"][1]["run"]["facets"]
    assert failed["mlcompile_gate"]["passed"] is False
    assert "roc_auc" in failed["errorMessage"]["message"]
    values = [c["value"] for c in failed["mlcompile_gate"]["checks"]]
    assert values == [c["value"] for c in ran.first["decisions"]["delayed_quality"]["checks"]]

    registration = jobs["register:arrival_registry"][1]
    facet = registration["run"]["facets"]["mlcompile_registration"]
    assert (facet["modelName"], facet["version"], facet["alias"]) == (
        "flights.arrival",
        1,
        "production",
    )
    model = {d["name"]: d for d in registration["outputs"]}["registry/flights.arrival"]
    assert model["facets"]["version"]["datasetVersion"] == "1"


def test_cached_steps_are_reported_as_cached(ran: Ran) -> None:
    # The second run found every step but the failed gate in the cache, and sent their
    # events when the gate ran again.
    cached = ran.second["steps"]["train:delayed"]
    assert cached["status"] == "cached"
    start, done = _by_job(events_of(ran.project, ran.second["id"]))["train:delayed"]
    assert (start["eventType"], done["eventType"]) == ("START", "COMPLETE")
    step = done["run"]["facets"]["mlcompile_step"]
    assert (step["status"], step["cacheKey"], step["backend"]) == ("cached", cached["key"], "local")
    model = done["outputs"][0]["facets"]["version"]["datasetVersion"]
    assert model == cached["summary"]["model_sha256"]


def test_failed_ingest_reports_the_file_on_disk(ran: Ran, tmp_path: Path) -> None:
    from openlineage.client.serde import Serde

    from mlcompile.runtime.runrecord import StepStatus
    from mlcompile.runtime.trail.events import PipelineRun, StepEvents, StepTrail
    from mlcompile.runtime.trail.records import sha256_file

    node = ran.plan.node("ingest:flights")
    trail = StepTrail.of(PipelineRun(ran.plan.name, "r1", "local"), node)
    # the step failed before writing its output: the file on disk is the witness
    events = StepEvents(trail, node, ran.project, {}, {"dataset": tmp_path / "nothing"})
    start = Serde.to_dict(events.start())
    fail = Serde.to_dict(events.end(StepStatus.FAILED, {"error": "boom", "exit_code": 5}))
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    assert fail["run"]["facets"]["errorMessage"]["message"] == "boom"
    assert fail["run"]["facets"]["mlcompile_step"]["exitCode"] == 5
    (raw,) = fail["inputs"]
    on_disk = sha256_file(ran.project / "data" / "flights.parquet")
    assert raw["facets"]["version"]["datasetVersion"] == on_disk
    (written,) = fail["outputs"]
    assert written["name"] == "artifacts/ingest:flights/dataset"
    assert "version" not in written.get("facets", {})  # it wrote nothing


def test_append_writes_whole_lines_under_concurrency(tmp_path: Path) -> None:
    from mlcompile.runtime.trail.sink import append_line

    line = json.dumps({"event": "x" * 5000})  # longer than a pipe's atomic write
    log = tmp_path / "runs.jsonl"

    def write() -> None:
        for _ in range(50):
            append_line(log, line)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines == [line] * 400  # no torn or interleaved line


def test_lineage_command_walks_back_to_raw_files(ran: Ran) -> None:
    mlc = ran.project / ".mlcompile"
    args = ["--registry", mlc / "registry", "--runs-dir", mlc / "runs"]
    result = invoke("lineage", "flights.arrival@production", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["version"] == 1 and found["aliases"] == ["production"]
    assert found["run"]["id"] == ran.first["id"]  # the run that created it, not the cached one
    assert found["plan_source"] == "run"  # the plan.json kept beside the run record
    raw = {r["source"]: r for r in found["raw_files"]}
    assert set(raw) == {"flights", "planes", "weather"}
    assert raw["weather"]["path"] == "data/weather.csv"
    steps = {s["id"]: s for s in found["steps"]}
    assert "train:delayed" not in steps and "ingest:december" not in steps
    assert steps["train:arrival"]["outputs"]["model"]["sha256"] == found["model_sha256"]
    assert "num_boost_round=30" in steps["train:arrival"]["params"]
    assert all(c["success"] for c in steps["validate:training"]["checks"])
    assert steps["gate:arrival_quality"]["decision"]["passed"] is True
    assert [e["event"] for e in found["history"]] == ["register", "promote"]

    text = invoke("lineage", "flights.arrival", *args).output
    assert "data/flights.parquet" in text and raw["flights"]["sha256"] in text
    assert "gate arrival_quality: PASSED" in text
    assert "promote production: - -> v1" in text


def test_lineage_without_a_plan_uses_store_metadata(ran: Ran, tmp_path: Path) -> None:
    mlc = tmp_path / "mlc"
    shutil.copytree(ran.project / ".mlcompile", mlc, ignore=shutil.ignore_patterns("lock"))
    for kept in (mlc / "runs").glob("*/plan.json"):
        kept.unlink()  # as if the runs predated plans being kept beside their records
    records = sorted((mlc / "runs").glob("*/run.json"))
    for path in records:  # as if the project had moved: build/plan.json is out of reach
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "project_root": str(tmp_path / "gone")}))
    result = invoke(
        "lineage", "flights.arrival", "--registry", mlc / "registry", "--runs-dir", mlc / "runs",
        "--format", "json",
    )  # fmt: skip
    found = json.loads(result.output)
    assert found["plan_source"] == "none"
    ids = [s["id"] for s in found["steps"]]
    assert ids[-1] == "register:arrival_registry"
    assert {"ingest:flights", "validate:training", "train:arrival", "gate:arrival_quality"} <= set(
        ids
    )
    assert not {"ingest:december", "train:delayed", "split:delayed"} & set(ids)


def test_lineage_unknown_version_is_a_usage_error(ran: Ran) -> None:
    mlc = ran.project / ".mlcompile"
    result = invoke("lineage", "flights.arrival@staging", "--registry", mlc / "registry")
    assert result.exit_code == 2
    assert "no version or alias 'staging'" in result.output


# ---- the HTML report in a real browser --------------------------------------------------


def test_report_renders_in_chromium(ran: Ran, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = invoke("report", "mlcompile.yaml", *PINNED, "--out", out, cwd=ran.project)
    assert result.exit_code == 0, result.output
    assert ran.second["id"] in result.output  # the latest run of this plan
    page = out.read_text(encoding="utf-8")
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")

    seen = check_page(out, tmp_path / "profile", "report-flights")
    assert seen.errors == []
    assert all(svg["width"] > 0 and svg["height"] > 0 and svg["parts"] > 0 for svg in seen.svgs)
    dag = next(svg for svg in seen.svgs if svg["label"] == "pipeline DAG")
    assert dag["parts"] >= len(ran.plan.nodes)  # a box per step, and the edges
    assert {"roc", "pr", "calibration", "confusion", "score_histogram"} <= set(seen.charts)
    assert {"predicted_vs_actual", "residuals_vs_predicted", "residual_histogram"} <= set(
        seen.charts
    )
    assert seen.width <= 1280
    assert seen.screenshot.stat().st_size > 20_000

    table = page.split('id="gate-table"', 1)[1].split("</table>", 1)[0]
    for gate, decision in ran.second["decisions"].items():
        for check in decision["checks"]:
            assert f">{html.escape(check['check'], quote=False)}<" in table
            if check["bound"] is not None:
                assert f">{check['value']:.6g}<" in table and f">{check['bound']:.6g}<" in table
        assert f'data-gate="{gate}"' in table
    assert table.count(">FAIL<") == sum(
        1 for d in ran.second["decisions"].values() for c in d["checks"] if not c["passed"]
    )
    assert "flights.arrival" in page.split('id="registry-table"', 1)[1]
    # pictures first: each model's charts come before its metrics table
    delayed = page.split('data-model="delayed"', 1)[1].split("</section>", 1)[0]
    assert delayed.index('data-chart="roc"') < delayed.index('class="metrics"')


def test_report_escapes_spec_text(ran: Ran, tmp_path: Path) -> None:
    from mlcompile.lineage.report import render_report

    hostile = "<img src=x onerror=alert(1)>"
    nodes = [
        n.__class__(**{**n.__dict__, "params": {**n.params, "note": hostile}})
        if n.id == "train:arrival"
        else n
        for n in ran.plan.nodes
    ]
    plan = Plan(ran.plan.name, ran.plan.spec_sha256, ran.plan.settings, tuple(nodes))
    html = render_report(plan, ran.first, ran.store, None)
    assert hostile not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
