"""The step kinds' one definition: complete, and what the plan builder derives from it."""

from __future__ import annotations

from typing import Any

import pytest

from mlcompile.compiler import compile_spec
from mlcompile.plan import (
    DECISION_KINDS,
    PATH_KINDS,
    STEP_DEFS,
    STEP_KINDS,
    Node,
    StepKind,
    make_node_id,
    parse_node_id,
)
from tests.conftest import EXAMPLE, TUNED


def test_every_kind_has_its_definition() -> None:
    assert list(STEP_DEFS) == list(StepKind) and tuple(StepKind) == STEP_KINDS
    assert all(d.kind is kind and d.does for kind, d in STEP_DEFS.items())


def test_derived_tables_keep_their_members() -> None:
    """The tables the plan and its runners read, as they were before they were derived:
    a change here changes plans (outside_project) or run records (decisions)."""
    assert {"gate", "monitor"} == DECISION_KINDS
    assert {"ingest", "tune", "gate", "register", "score", "kserve", "monitor"} == PATH_KINDS


def _lookup(params: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        params = params.get(part) if isinstance(params, dict) else None
    return params


def test_declared_paths_are_params_of_the_example() -> None:
    compiled = compile_spec(EXAMPLE / "mlcompile.yaml", [])
    # a monitor of a prediction log, too: the example's monitor reads a source
    logged = compile_spec(
        EXAMPLE / "mlcompile.yaml",
        [
            "~monitoring.delayed_drift.current.source",
            "+monitoring.delayed_drift.current.prediction_log.path=logs",
        ],
    )
    tuned = compile_spec(EXAMPLE / "mlcompile.yaml", [*TUNED, "+models.delayed.tune.storage=s.db"])
    nodes: list[Node] = [
        *compiled.plan.nodes,
        *tuned.plan.nodes,
        *compiled.monitoring().nodes,
        *logged.monitoring().nodes,
    ]
    for kind, definition in STEP_DEFS.items():
        of_kind = [n for n in nodes if n.kind is kind]
        assert of_kind, kind
        for path in definition.paths:
            found = [_lookup(dict(n.params), path) for n in of_kind]
            assert any(isinstance(value, str) and value for value in found), (kind, path)


@pytest.mark.parametrize("kind", list(StepKind))
def test_node_ids_are_made_and_read_by_one_pair(kind: StepKind) -> None:
    made = make_node_id(kind, "a:b c")
    assert made == f"{kind.value}:a:b c"
    assert parse_node_id(made) == (kind, "a:b c")


@pytest.mark.parametrize("text", ["model", "mystery:x", "", ":x", "gate"])
def test_text_that_is_no_node_id(text: str) -> None:
    assert parse_node_id(text) is None


def test_a_plan_with_an_unknown_kind_is_refused_on_load() -> None:
    plan = compile_spec(EXAMPLE / "mlcompile.yaml", []).plan
    data = plan.to_dict()
    data["nodes"][0]["kind"] = "mystery"
    from mlcompile.plan import Plan

    with pytest.raises(ValueError, match="unknown step kind 'mystery'"):
        Plan.from_dict(data)
    assert Plan.from_json(plan.to_json()).to_json() == plan.to_json()


def test_every_kind_has_its_params_class_and_the_plan_fits_it() -> None:
    from mlcompile.plan.params import PARAMS

    assert set(PARAMS) == set(StepKind)
    compiled = compile_spec(EXAMPLE / "mlcompile.yaml", [])
    for node in [*compiled.plan.nodes, *compiled.monitoring().nodes]:
        typed = PARAMS[node.kind]
        keys = set(node.params)
        assert typed.__required_keys__ <= keys <= typed.__required_keys__ | typed.__optional_keys__
    # the kinds that get `outside_project` are the ones whose class allows it
    for kind, typed in PARAMS.items():
        assert ("outside_project" in typed.__optional_keys__) == (kind in PATH_KINDS), kind
