"""Experiments that do not deploy, and what a person sees of them: a deploying run of the
trimmed example, then `run --no-deploy` with other model params; the registry, batch
outputs and KServe manifest stay as they were; `runs compare` names the changed params and
its report draws both runs' curves; the experiment's own report draws production's."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlcompile.runtime.trail.records import load_runs
from tests.browser import check_page
from tests.lineage.conftest import TRIM, invoke, shared_project

pytestmark = pytest.mark.slow

PASSING = [
    *TRIM,
    'gates.arrival_quality.checks=["rmse <= 1000"]',
    'gates.delayed_quality.checks=["roc_auc >= 0.5"]',
]
IDEA = ["models.delayed.params.num_leaves=7", "models.arrival.params.num_leaves=7"]
# everything a deployment writes outside the artifact store
DEPLOYED = (".mlcompile/registry", "outputs", "deploy")


def snapshot(project: Path) -> dict[str, str]:
    """sha256 of every file the deployments own."""
    found = {}
    for folder in DEPLOYED:
        for path in sorted((project / folder).rglob("*")):
            if path.is_file() and path.name != ".lock":
                found[path.relative_to(project).as_posix()] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
    return found


@dataclass
class Tried:
    project: Path
    deployed: dict[str, Any]
    experiment: dict[str, Any]
    before: dict[str, str]
    after: dict[str, str]
    output: str


@pytest.fixture(scope="session")
def tried(tmp_path_factory: pytest.TempPathFactory) -> Tried:
    def prepare(project: Path) -> None:
        result = invoke("run", "mlcompile.yaml", *PASSING, "-q", cwd=project)
        assert result.exit_code == 0, result.output
        (project / "before.json").write_text(json.dumps(snapshot(project)))
        result = invoke("run", "mlcompile.yaml", *PASSING, *IDEA, "--no-deploy", "-q", cwd=project)
        assert result.exit_code == 0, result.output
        (project / "experiment.txt").write_text(result.output)

    project = shared_project(tmp_path_factory, "experiments", prepare)
    deployed, experiment = load_runs(project / ".mlcompile" / "runs")
    return Tried(
        project,
        deployed,
        experiment,
        json.loads((project / "before.json").read_text()),
        snapshot(project),
        (project / "experiment.txt").read_text(),
    )


def test_no_deploy_trains_evaluates_gates_and_deploys_nothing(tried: Tried) -> None:
    assert {"outputs/december_delay_scores.parquet", "deploy/delayed_kserve.yaml"} <= set(
        tried.before
    )
    assert any(
        p.startswith(".mlcompile/registry/flights.delayed/versions/1/") for p in tried.before
    )
    assert tried.after == tried.before  # registry, scores and manifest untouched
    steps = tried.experiment["steps"]
    assert steps["train:delayed"]["status"] == "ran" and steps["train:arrival"]["status"] == "ran"
    assert steps["gate:delayed_quality"]["status"] == "ran"
    assert not [n for n in steps if n.split(":")[0] in ("register", "score", "kserve")]
    assert tried.experiment["decisions"]["delayed_quality"]["passed"] is True
    assert "experiment: no deployment ran" in tried.output
    plan = json.loads(
        (tried.project / ".mlcompile" / "runs" / tried.experiment["id"] / "plan.json").read_text()
    )
    assert plan["settings"]["deploy"] is False


def test_a_deploy_false_setting_plans_no_deployment(tried: Tried) -> None:
    result = invoke("graph", "mlcompile.yaml", "settings.deploy=false", "--format", "json",
                    cwd=tried.project)  # fmt: skip
    assert result.exit_code == 0, result.output
    nodes = {n["id"] for n in json.loads(result.output)["nodes"]}
    assert not {n for n in nodes if n.startswith(("register:", "score:", "kserve:"))}
    assert {"gate:delayed_quality", "evaluate:arrival"} <= nodes


def test_runs_compare_names_the_changed_params(tried: Tried) -> None:
    runs_dir = tried.project / ".mlcompile" / "runs"
    first, second = tried.deployed["id"], tried.experiment["id"]
    result = invoke("runs", "compare", first, second, "--runs-dir", runs_dir, "--format", "json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    changed = {p["param"]: (p["first"], p["second"]) for p in found["params"]}
    assert changed["train:delayed params.num_leaves"] == (31, 7)
    assert changed["train:arrival params.num_leaves"] == (63, 7)  # the regression preset
    assert changed["settings.deploy"] == ("(absent)", False)
    assert changed["register:delayed_registry"] == ("register step", "(absent)")
    assert not [p for p in changed if p.startswith(("ingest:", "validate:"))]
    roc = next(m for m in found["metrics"] if m["model"] == "delayed" and m["metric"] == "roc_auc")
    assert roc["delta"] == pytest.approx(roc["second"] - roc["first"])
    text = invoke("runs", "compare", first, second, "--runs-dir", runs_dir).output
    assert "train:delayed params.num_leaves" in text and "delayed.roc_auc" in text


def test_compare_report_draws_both_runs(tried: Tried, tmp_path: Path) -> None:
    runs_dir = tried.project / ".mlcompile" / "runs"
    out = tmp_path / "compare.html"
    first, second = tried.deployed["id"], tried.experiment["id"]
    result = invoke("runs", "compare", first, second, "--runs-dir", runs_dir, "--report", out)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert f"dashed: run {first}" in page
    roc = page.split('data-chart="roc"', 1)[1].split("</figure>", 1)[0]
    assert 'class="curve s0"' in roc and 'class="curve s1"' in roc
    seen = check_page(out, tmp_path / "profile", "report-compare")
    assert seen.errors == [] and seen.width <= 1280
    assert all(svg["width"] > 0 and svg["height"] > 0 for svg in seen.svgs)


def test_the_experiments_report_draws_production_beside_it(tried: Tried, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = invoke(
        "report", "mlcompile.yaml", *PASSING, *IDEA, "settings.deploy=false", "--out", out,
        cwd=tried.project,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert tried.experiment["id"] in result.output
    page = out.read_text(encoding="utf-8")
    assert page.count("dashed: production v1") == 2  # both models were in production
    assert "An experiment: settings.deploy is false" in page
    for chart in ("roc", "pr", "calibration", "residual_histogram"):
        drawn = page.split(f'data-chart="{chart}"', 1)[1].split("</figure>", 1)[0]
        assert 'class="curve s1"' in drawn, chart
