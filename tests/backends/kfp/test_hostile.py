"""Names and strings from a spec are data in the emitted module, never code."""

from __future__ import annotations

import ast
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from mlcompile_kfp.render import load_module

from mlcompile.compiler import compile_spec, render

PAYLOAD = "__import__('os').system('touch PWNED')"
HOSTILE = [
    f"x'); {PAYLOAD}; ('",
    f'x"""); {PAYLOAD}; ("""',
    f"x\n{PAYLOAD}\n",
    "{{ cycler.__init__.__globals__.os.system('touch PWNED') }}",
    "{% for x in [1] %}{{ x }}{% endfor %}",
    f"x\\'); {PAYLOAD} #",
    f"x\r\n\u2028{PAYLOAD}",
]


def hostile_spec(names: list[str]) -> dict[str, object]:
    source, feature, model, gate, deploy, name, description = names
    return {
        "name": name,
        "description": description,
        "settings": {"seed": 13},
        "sources": {
            source: {"path": "data/flights.parquet"},
            "training": {
                "description": description,
                "inputs": [source],
                "sql": (
                    f"-- {PAYLOAD} {names[3]}\n"
                    f'SELECT *, CAST(dep_delay > 15 AS INTEGER) AS "{feature}"'
                    f' FROM "{source}" WHERE dep_delay IS NOT NULL'
                ),
            },
        },
        "features": {
            "dep_hour": {"expr": "sched_dep_time // 100"},
            "log_distance": {"log": "distance"},
        },
        "models": {
            model: {
                "task": "binary",
                "data": "training",
                "target": feature,
                "features": ["dep_hour", "log_distance"],
                "split": {"method": "random", "test_size": 0.2},
                "num_boost_round": 5,
                "early_stopping": None,
            }
        },
        "gates": {gate: {"model": model, "checks": ["roc_auc >= 0.5"]}},
        "deployments": {deploy: {"kind": "registry", "model": model, "alias": "production"}},
        "backends": {
            "kfp": {
                "pipeline_root": description,
                "project_root": f"/{names[0]}",
                "node_selector": {"pool": "cpu"},
                "secrets": [{"secret_name": "creds", "env": {"TOKEN": "token"}}],
            }
        },
    }


@pytest.fixture
def hostile_project(make_project: Callable[..., Path]) -> Path:
    spec = yaml.safe_dump(hostile_spec(HOSTILE), sort_keys=True, allow_unicode=True)
    return make_project(name="hostile", spec=spec)


def test_hostile_names_render_an_inert_module(
    hostile_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled = compile_spec(hostile_project / "mlcompile.yaml", [])
    files = render(compiled, "kfp").files
    module_text = files["pipeline.py"]
    compile(module_text, "pipeline.py", "exec")

    tree = ast.parse(module_text)
    top_level = {type(stmt).__name__ for stmt in tree.body}
    assert top_level <= {"ImportFrom", "Assign", "FunctionDef"}
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    functions = {stmt.name for stmt in tree.body if isinstance(stmt, ast.FunctionDef)}
    assert calls <= functions | {"Path", "StepContext", "run_step", "sorted", "isinstance"}
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not names & {"__import__", "os", "eval", "exec", "cycler", "x"}
    assert not attributes & {"system", "__globals__", "__init__"}

    workdir = tmp_path / "import-here"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    module = load_module(module_text)
    assert callable(module.pipeline)
    assert not (workdir / "PWNED").exists()
    assert not (hostile_project / "PWNED").exists()
    assert not Path(os.getcwd(), "PWNED").exists()

    assert repr(HOSTILE[0]) in module_text
    docs = [d for d in yaml.safe_load_all(files["pipeline.yaml"]) if d]
    assert docs[0]["pipelineInfo"]["name"] == "x-import-os-system-touch-pwned"
