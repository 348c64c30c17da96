"""Custom metrics in the plan: their module's source is part of the evaluate step's
fingerprint, and their direction reaches the gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcompile.compiler import compile_spec
from mlcompile.errors import SpecError
from mlcompile.plan.model import Node
from mlcompile.spec import load_spec
from mlcompile.testing import conformance_spec, make_project


def _evaluate_node(spec: Path) -> dict[str, Node]:
    plan = compile_spec(spec, []).plan
    return {n.kind: n for n in plan.nodes if n.kind in ("evaluate", "gate")}


def test_the_module_source_is_in_the_fingerprint(tmp_path: Path) -> None:
    spec = make_project(tmp_path, conformance_spec())
    before = _evaluate_node(spec)
    [entry] = before["evaluate"].params["custom_metrics"]
    assert entry["name"] == "cost" and entry["greater_is_better"] is False
    assert len(entry["source_sha256"]) == 64
    module = tmp_path / "conformance_metrics.py"
    module.write_text(module.read_text() + "\n# a comment changes the source\n")
    after = _evaluate_node(spec)
    assert after["evaluate"].fingerprint != before["evaluate"].fingerprint
    relative = [c for c in after["gate"].params["checks"] if c.get("max_drop") is not None]
    assert relative == [
        {
            "metric": "cost",
            "slice": None,
            "text": "cost <= production + 0.05",
            "max_drop": 0.05,
            "lower_is_better": True,
        }
    ]


def test_a_module_outside_the_project_is_refused_at_validate(tmp_path: Path) -> None:
    spec = conformance_spec()
    metrics = spec["models"]["benign"]["metrics"]
    metrics[-1] = {"name": "cost", "function": "json:dumps", "greater_is_better": False}
    path = make_project(tmp_path, spec)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "E308" and diagnostic.path == "models.benign.metrics.5.function"
    assert "standard-library" in diagnostic.message
    json.dumps(diagnostic.to_dict())
