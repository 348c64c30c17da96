"""Names and strings from a spec are data in the emitted module, never code."""

from __future__ import annotations

import ast
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from mlcompile_kfp.backend import KfpBackend
from mlcompile_kfp.render import load_module

from mlcompile.compiler import compile_spec, render
from mlcompile.errors import BackendError
from mlcompile.testing import executor_mismatches

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


def _quoted(name: str) -> str:
    """`name` as an SQL identifier: hostile, but valid SQL, since validate binds the query."""
    return '"' + name.replace('"', '""') + '"'


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
                    f"SELECT *, CAST(dep_delay > 15 AS INTEGER) AS {_quoted(feature)}"
                    f" FROM {_quoted(source)} WHERE dep_delay IS NOT NULL"
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
    assert top_level <= {"Import", "ImportFrom", "Assign", "FunctionDef"}
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    functions = {stmt.name for stmt in tree.body if isinstance(stmt, ast.FunctionDef)}
    assert calls <= functions | {
        "Path",
        "StepContext",
        "StepTrail",
        "PipelineRun",
        "run_step",
        "sorted",
        "isinstance",
        "dict",
        "zip",
    }
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

    assert f"set_display_name({'ingest:' + HOSTILE[0]!r})" in module_text
    docs = [d for d in yaml.safe_load_all(files["pipeline.yaml"]) if d]
    assert docs[0]["pipelineInfo"]["name"] == "x-import-os-system-touch-pwned"


# Issue 12: a deployment name with U+0085 (`\N` in YAML). str.splitlines ends a line there and
# the Python compiler does not, so a linecache filled by splitlines made inspect.getsource hand
# KFP the payload as the score step's component.
NEL_NAME = "december_scores\x85def f(x=__import__('os').system('touch PWNED')): pass"
NEL_YAML = "\"december_scores\\Ndef f(x=__import__('os').system('touch PWNED')): pass\""


def _rename_deployment(spec: Path, old: str) -> None:
    text = spec.read_text(encoding="utf-8")
    assert f"\n  {old}:\n" in text
    spec.write_text(text.replace(f"\n  {old}:\n", f"\n  {NEL_YAML}:\n"), encoding="utf-8")


def _executor_sources(ir_text: str) -> dict[str, tuple[str, str]]:
    """Executor label -> (the function it runs, the Python source it embeds)."""
    executors = yaml.safe_load(ir_text)["deploymentSpec"]["executors"]
    found = {}
    for label, executor in executors.items():
        container = executor["container"]
        args = container["args"]
        found[label] = (args[args.index("--function_to_execute") + 1], container["command"][-1])
    return found


def test_nel_payload_builds_executors_that_carry_their_own_component(
    flights_project: Path, cli: Callable[..., Result]
) -> None:
    spec = flights_project / "mlcompile.yaml"
    _rename_deployment(spec, "december_scores")
    assert cli("validate", spec, cwd=flights_project).exit_code == 0
    built = cli("build", spec, "--backend", "kfp", "--out", "build", cwd=flights_project)
    assert built.exit_code == 0, built.output
    out = flights_project / "build" / "kfp"
    files = {name: (out / name).read_text("utf-8") for name in ("pipeline.py", "pipeline.yaml")}
    compiled = compile_spec(spec, [])
    assert f"score:{NEL_NAME}" in {node.id for node in compiled.plan.nodes}

    # The module spells the character as an escape, in its comment and its literals.
    assert "\x85" not in files["pipeline.py"]
    assert "# score steps: score:december_scores\\x85def f(" in files["pipeline.py"]
    assert not executor_mismatches(KfpBackend(), files, compiled.plan)
    sources = _executor_sources(files["pipeline.yaml"])
    assert len(sources) == files["pipeline.py"].count("@dsl.component(")
    for label, (function, source) in sources.items():
        tree = ast.parse(source)
        defined = [stmt.name for stmt in tree.body if isinstance(stmt, ast.FunctionDef)]
        assert defined == [function], label
        called = {
            n.func.id
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }
        assert "__import__" not in called, label
    assert not list(flights_project.rglob("PWNED"))


def test_the_executor_check_catches_the_old_shift(
    flights_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the filter and the linecache of before the fix, the kit's check fails: it can."""
    import re

    from mlcompile_kfp import render as rendering

    from mlcompile.backends import templating

    monkeypatch.setattr(
        templating, "comment", lambda text: re.sub("[\x00-\x1f\x7f\u2028\u2029]", " ", text)
    )
    monkeypatch.setattr(rendering, "check_generated", lambda path, text: text)
    monkeypatch.setattr(rendering, "source_lines", lambda text: text.splitlines(keepends=True))
    spec = flights_project / "mlcompile.yaml"
    _rename_deployment(spec, "december_scores")
    compiled = compile_spec(spec, [])
    files = render(compiled, "kfp").files
    problems = executor_mismatches(KfpBackend(), files, compiled.plan)
    assert len(problems) == 1
    assert "is not pipeline.py's score" in problems[0]
    assert (
        "top-level code, line 7: def f(x=__import__('os').system('touch PWNED')): pass"
        in (problems[0])
    )


def test_load_module_refuses_a_separator_the_compiler_would_keep() -> None:
    with pytest.raises(BackendError, match=r"\\x85 at line 2"):
        load_module("x = 1\n# a\x85def f(): pass\n")


@pytest.mark.slow
@pytest.mark.xdist_group("kfp")
def test_nel_payload_runs_on_kfp_local_and_creates_nothing(
    make_project: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    root = make_project()
    _rename_deployment(root / "mlcompile.yaml", "scores")
    result = cli("run", root / "mlcompile.yaml", "--backend", "kfp", "-q", cwd=root)
    assert not list(root.parent.rglob("PWNED"))
    assert result.exit_code == 0, result.output
    assert (root / "outputs" / "scores.parquet").is_file()
