"""Reading executors back: matching a runtime call to its node, and the local manifest."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from mlcompile.backends.executors import literal, node_called
from mlcompile.backends.local import MANIFEST, LocalBackend
from mlcompile.compiler import compile_spec, render
from mlcompile.testing import conformance_spec, executor_mismatches, make_project


def test_a_call_names_the_one_node_with_its_kind_params_and_artifacts(tmp_path: Path) -> None:
    plan = compile_spec(make_project(tmp_path, conformance_spec()), []).plan
    for node in plan.nodes:
        assert node_called(plan, node.kind, node.params, node.inputs, node.outputs) == node.id
    train = plan.node("train:benign")
    changed = {**train.params, "num_boost_round": 41}
    assert node_called(plan, "train", changed, train.inputs, train.outputs) == (
        "a 'train' step call matching 0 plan nodes"
    )
    assert "matching 0" in node_called(plan, "train", train.params, [], train.outputs)


def test_literals_of_generated_code_include_special_floats() -> None:
    value = literal(ast.parse("{'a': [float('nan'), float('-inf'), 1, 'x\\x85']}").body[0].value)  # type: ignore[attr-defined]
    assert repr(value) == repr({"a": [float("nan"), float("-inf"), 1, "x\x85"]})


def test_the_local_manifest_check_sees_a_mislabelled_fingerprint(tmp_path: Path) -> None:
    compiled = compile_spec(make_project(tmp_path, conformance_spec()), [])
    files = dict(render(compiled, "local").files)
    assert not executor_mismatches(LocalBackend(), files, compiled.plan)
    manifest = json.loads(files[MANIFEST])
    fingerprints = manifest["fingerprints"]
    fingerprints["train:benign"], fingerprints["split:benign"] = (
        fingerprints["split:benign"],
        fingerprints["train:benign"],
    )
    manifest["waves"][0].append("train:benign")
    problems = executor_mismatches(LocalBackend(), {MANIFEST: json.dumps(manifest)}, compiled.plan)
    assert problems == [
        "split:benign (for 'split:benign') runs ['train:benign']",
        "train:benign (for 'train:benign') runs ['split:benign', '2 places in the waves']",
    ]
