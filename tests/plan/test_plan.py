"""The Plan of the flights example: its shape, its determinism, and its golden file."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from mlcompile.compiler import compile_spec
from mlcompile.plan import STEP_KINDS, Plan
from mlcompile.plan.render import to_mermaid, to_text
from tests.conftest import EXAMPLE


def test_flights_plan_matches_golden(golden: Callable[[str, str], None]) -> None:
    plan = compile_spec(EXAMPLE / "mlcompile.yaml", []).plan
    golden("plan/flights.plan.json", plan.to_json())
    golden("plan/flights.mermaid", to_mermaid(plan))


def test_plan_has_every_step_kind_with_typed_artifacts() -> None:
    compiled = compile_spec(EXAMPLE / "mlcompile.yaml", [])
    plan, monitoring = compiled.plan, compiled.monitor_plan
    assert monitoring is not None
    kinds = {n.kind for n in (*plan.nodes, *monitoring.nodes)}
    # every kind but the search, which the example leaves out (tests/plan/test_tune_plan.py)
    assert kinds == set(STEP_KINDS) - {"tune"}
    watch = monitoring.node("monitor:delayed_drift")
    assert watch.outputs == {"drift": "drift", "decision": "decision"}
    assert {r.node for r in watch.inputs.values()} == {
        "ingest:december",
        "ingest:december_outcomes",
    }
    # the outcomes only the monitor reads are no part of training
    assert "ingest:december_outcomes" not in {n.id for n in plan.nodes}
    assert "monitor" not in {n.kind for n in plan.nodes}
    register = plan.node("register:delayed_registry")
    assert register.inputs["gate:delayed_quality"].type == "decision"
    assert plan.node("train:delayed").outputs == {"model": "model"}
    # deployments run only after every gate on their model
    score = plan.node("score:december_scores")
    assert "gate:delayed_quality" in score.inputs


def test_plan_round_trips_through_json() -> None:
    plan = compile_spec(EXAMPLE / "mlcompile.yaml", []).plan
    again = Plan.from_json(plan.to_json())
    assert again.to_json() == plan.to_json()
    assert [n.id for n in again.topological()] == [n.id for n in plan.topological()]


def test_same_spec_in_another_folder_gives_the_same_plan(tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("build", ".mlcompile"))
    first = compile_spec(EXAMPLE / "mlcompile.yaml", []).plan.to_json()
    second = compile_spec(copy / "mlcompile.yaml", []).plan.to_json()
    assert first == second


def test_changing_one_model_changes_only_its_fingerprints() -> None:
    base = compile_spec(EXAMPLE / "mlcompile.yaml", []).plan
    changed = compile_spec(EXAMPLE / "mlcompile.yaml", ["models.arrival.params.num_leaves=15"]).plan
    differ = {n.id for n in base.nodes if n.fingerprint != changed.node(n.id).fingerprint}
    assert differ == {
        "train:arrival",
        "evaluate:arrival",
        "gate:arrival_quality",
        "register:arrival_registry",
    }


def test_fingerprints_chain_through_inputs() -> None:
    base = compile_spec(EXAMPLE / "mlcompile.yaml", []).plan
    changed = compile_spec(
        EXAMPLE / "mlcompile.yaml", ["schemas.flights_raw.columns.distance.gt=1"]
    ).plan
    differ = {n.id for n in base.nodes if n.fingerprint != changed.node(n.id).fingerprint}
    assert "validate:flights" in differ and "train:delayed" in differ
    assert "validate:weather" not in differ and "ingest:flights" not in differ


def test_text_graph_lists_nodes_in_execution_order() -> None:
    plan = compile_spec(EXAMPLE / "mlcompile.yaml", []).plan
    text = to_text(plan)
    assert text.startswith("plan flights (25 steps in 11 waves)")
    assert "longest chain (11 steps): ingest:flights -> validate:flights -> ingest:training" in text
    order = [line.split()[0] for line in text.splitlines()[2:] if line.startswith("  ")]
    assert (
        order.index("ingest:training") < order.index("split:delayed") < order.index("train:delayed")
    )
    assert json.loads(plan.to_json())["format"] == "mlcompile.plan/v1"
