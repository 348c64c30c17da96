"""`mlcompile diff`: which steps change between two specs, and why."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mlcompile.lineage.diff import diff_plans, flatten
from mlcompile.plan import InputRef, Node, Plan
from tests.lineage.conftest import copy_example, invoke


def _node(node_id: str, params: dict[str, object], fingerprint: str, *deps: str) -> Node:
    inputs = {d: InputRef(d, "dataset", "dataset") for d in deps}
    return Node(
        node_id, node_id.split(":")[0], node_id, params, inputs, {"dataset": "dataset"}, fingerprint
    )


def test_reasons_name_params_and_upstream() -> None:
    old = Plan(
        "p",
        "a",
        {},
        (_node("ingest:x", {"path": "a.csv"}, "1"), _node("train:m", {"lr": 0.1}, "2", "ingest:x")),
    )
    new = Plan("p", "b", {}, (_node("ingest:x", {"path": "b.csv"}, "9"), _node("train:m", {"lr": 0.1}, "8", "ingest:x"), _node("score:s", {}, "7", "train:m")))  # fmt: skip
    result = diff_plans(old, new)
    assert result["added"] == [{"id": "score:s", "kind": "score"}]
    changed = {c["id"]: c for c in result["changed"]}
    assert changed["ingest:x"]["params"] == [{"key": "path", "old": "a.csv", "new": "b.csv"}]
    assert changed["train:m"]["reasons"] == ["upstream changed"]
    assert changed["train:m"]["upstream"] == ["ingest:x"]


def test_flatten_names_list_items() -> None:
    features = [{"name": "dep_hour", "op": "expr", "expr": "x // 100"}]
    assert flatten({"features": features, "checks": [{"value": 1}]}) == {
        "features[dep_hour].expr": "x // 100",
        "features[dep_hour].op": "expr",
        "checks[0].value": 1,
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "flights")


def _edit(spec: Path, old: str, new: str) -> None:
    text = spec.read_text(encoding="utf-8")
    assert old in text
    spec.write_text(text.replace(old, new), encoding="utf-8")


def test_diff_two_specs(project: Path) -> None:
    spec = project / "mlcompile.yaml"
    changed = project / "changed.yaml"
    shutil.copy(spec, changed)
    _edit(changed, "- roc_auc >= 0.65", "- roc_auc >= 0.7")
    _edit(
        changed,
        "metrics: [rmse, mae, r2]",
        "metrics: [rmse, mae, r2]\n    params: {num_leaves: 15}",
    )
    result = invoke("diff", spec, changed, "--format", "json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    changes = {c["id"]: c for c in found["changed"]}
    assert changes["gate:delayed_quality"]["params"] == [
        {"key": "checks[0].text", "old": "roc_auc >= 0.65", "new": "roc_auc >= 0.7"},
        {"key": "checks[0].value", "old": 0.65, "new": 0.7},
    ]
    assert {"key": "params.num_leaves", "old": 63, "new": 15} in changes["train:arrival"]["params"]
    assert changes["evaluate:arrival"]["upstream"] == ["train:arrival"]
    assert "train:delayed" not in changes and "ingest:flights" not in changes
    assert found["added"] == found["removed"] == []

    text = invoke("diff", spec, changed).output
    assert "~ train:arrival: params changed" in text
    assert "params.num_leaves: 63 -> 15" in text
    assert "upstream changed: train:arrival" in text


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_diff_against_a_git_revision(project: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "spec"], cwd=project, check=True)
    spec = project / "mlcompile.yaml"
    _edit(spec, "  arrival_registry: {kind: registry, model: arrival, alias: production}\n", "")
    result = invoke("diff", spec, "--rev", "HEAD", "--format", "json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["removed"] == [{"id": "register:arrival_registry", "kind": "register"}]
    assert found["changed"] == []
    leftovers = [p.name for p in project.iterdir() if p.name.startswith(".mlcompile.")]
    assert leftovers == []  # the temporary spec is gone

    bad = invoke("diff", spec, "--rev", "no-such-rev")
    assert bad.exit_code == 2 and "git show no-such-rev" in bad.output
