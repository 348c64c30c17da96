"""What `render` emits: deterministic, golden, valid Python, inert whatever the names."""

from __future__ import annotations

import ast
import io
import os
import subprocess
import sys
import tokenize
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlcompile_zenml.backend import ZenmlBackend
from mlcompile_zenml.render import NAME_PART, py_block
from mlcompile_zenml.settings import ZenmlSettings

from mlcompile.backends import ArtifactSet
from mlcompile.compiler import compile_spec
from mlcompile.plan import Plan
from mlcompile.testing import executor_mismatches
from mlcompile.testing.project import FORMAT_CHARACTERS, LINE_SEPARATORS
from tests.backends.zenml.conftest import HOSTILE, MARKER, flights_plan, make_project, small_spec

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def plan() -> Plan:
    return flights_plan()


def render(plan: Plan, raw: dict[str, Any] | None = None) -> ArtifactSet:
    return ZenmlBackend().render(plan, ZenmlSettings.model_validate(raw or {}))


def module_constant(source: str, name: str) -> Any:
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.Assign) and ast.unparse(statement.targets[0]) == name:
            return ast.literal_eval(statement.value)
    raise AssertionError(f"{name} is not defined")


def test_emits_the_module_and_its_run_configuration(plan: Plan) -> None:
    files = render(plan)
    assert sorted(files) == ["pipeline.py", "run_config.yaml"]
    compile(files["pipeline.py"], "pipeline.py", "exec")
    config = yaml.safe_load(files["run_config.yaml"])
    assert set(config["steps"]) == set(module_constant(files["pipeline.py"], "NODES"))


def test_golden_flights(plan: Plan, golden: Callable[[str, str], None]) -> None:
    files = render(plan)
    golden("zenml/flights/pipeline.py", files["pipeline.py"])
    golden("zenml/flights/run_config.yaml", files["run_config.yaml"])


def test_render_twice_gives_the_same_bytes(plan: Plan) -> None:
    assert dict(render(plan)) == dict(render(plan))


def test_render_is_the_same_in_another_process(plan: Plan, tmp_path: Path) -> None:
    """No hash-seed, working-directory or environment leaks into the output."""
    script = (
        "import sys\n"
        "from tests.backends.zenml.conftest import flights_plan\n"
        "from mlcompile_zenml.backend import ZenmlBackend\n"
        "from mlcompile_zenml.settings import ZenmlSettings\n"
        "files = ZenmlBackend().render(flights_plan(), ZenmlSettings())\n"
        "sys.stdout.write(files['pipeline.py'] + files['run_config.yaml'])\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    files = render(plan)
    assert done.stdout == files["pipeline.py"] + files["run_config.yaml"]


def test_settings_change_the_run_config_but_not_the_module(plan: Plan) -> None:
    """ZenML's cache keys hash step code: resources or model policy must not touch it."""
    plain = render(plan)
    tuned = render(
        plan,
        {
            "steps": {"train": {"cpu_count": 2, "memory": "4GB", "enable_cache": False}},
            "model": {"version": "fingerprint", "name_prefix": "team-"},
        },
    )
    assert tuned["pipeline.py"] == plain["pipeline.py"]
    train = yaml.safe_load(tuned["run_config.yaml"])["steps"]["train_delayed"]
    assert train["enable_cache"] is False
    assert train["settings"] == {"resources": {"cpu_count": 2.0, "memory": "4GB"}}
    assert train["model"]["name"] == "team-flights.delayed"
    assert train["model"]["version"] == "fp-" + plan.node("train:delayed").fingerprint[:12]


def test_registered_models_become_zenml_models_promoted_like_their_alias(plan: Plan) -> None:
    steps = yaml.safe_load(render(plan)["run_config.yaml"])["steps"]
    assert steps["register_delayed_registry"]["parameters"] == {"zenml_stage": "production"}
    assert steps["register_delayed_registry"]["model"] == {
        "name": "flights.delayed",
        "version": None,
    }
    assert "model" not in steps["ingest_flights"]
    not_promoted = yaml.safe_load(render(plan, {"model": {"promote": False}})["run_config.yaml"])
    assert "parameters" not in not_promoted["steps"]["register_delayed_registry"]


def test_user_run_configuration_is_merged(plan: Plan) -> None:
    raw = {
        "tags": ["nightly"],
        "run_config": {"environment": {"MLCOMPILE_PROJECT_ROOT": "/app"}},
    }
    config = yaml.safe_load(render(plan, raw)["run_config.yaml"])
    assert config["environment"] == {"MLCOMPILE_PROJECT_ROOT": "/app"}
    assert config["tags"] == ["nightly"]
    assert config["execution_mode"] == "stop_on_failure"


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, 2.5, None, True], "b": {"c": "x" * 120, "d": []}},
        ["y" * 60, "z" * 60, {"k": HOSTILE * 3}],
        {"nested": {"deeper": {"deepest": [float("nan"), float("inf"), -0.0, 10**30]}}},
    ],
)
def test_block_literals_mean_the_same_as_one_line_literals(value: Any) -> None:
    laid_out = py_block(value, 8)
    assert "\n" in laid_out
    assert repr(eval(laid_out, {})) == repr(value)


def hostile_module(tmp_path: Path) -> tuple[Plan, str]:
    spec = make_project(tmp_path / "project", small_spec(hostile=True))
    plan = compile_spec(spec, []).plan
    return plan, render(plan)["pipeline.py"]


def test_hostile_names_stay_literals(tmp_path: Path) -> None:
    plan, source = hostile_module(tmp_path)
    compile(source, "pipeline.py", "exec")
    nodes = module_constant(source, "NODES")
    assert sorted(nodes.values()) == sorted(n.id for n in plan.nodes)
    assert any(HOSTILE in node for node in nodes.values())
    assert all(name.isidentifier() for name in nodes)
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    carriers = {tokenize.tok_name[t.type] for t in tokens if "system(" in t.string}
    # The payload is inside string literals and `#` comments, never code (the identifiers
    # made from it keep letters, digits and underscores only).
    assert carriers == {"STRING", "COMMENT"}


@pytest.mark.slow
@pytest.mark.xdist_group("zenml")
def test_hostile_module_imports_without_side_effects(tmp_path: Path) -> None:
    plan, source = hostile_module(tmp_path)
    module = tmp_path / "build" / "pipeline.py"
    module.parent.mkdir()
    module.write_text(source, encoding="utf-8")
    # Importing defines every step and the pipeline (ZenML inspects each one) but runs
    # nothing; ZenML wants the main module to be a file.
    loader = module.parent / "load.py"
    loader.write_text("import pipeline\nprint(len(pipeline.NODES))\n", encoding="utf-8")
    env = {
        **os.environ,
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_CONFIG_PATH": str(tmp_path / "zenml"),
    }
    done = subprocess.run(
        [sys.executable, str(loader)],
        cwd=module.parent,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip().splitlines()[-1] == str(len(plan.nodes))
    assert not list(tmp_path.rglob(MARKER))


def test_run_config_escapes_every_separator_and_reads_back_the_same(plan: Plan) -> None:
    # PyYAML writes U+0085 raw into a quoted scalar and reads it back as a line break.
    text = f"a{LINE_SEPARATORS}{FORMAT_CHARACTERS}b"
    raw = {
        "tags": [text],
        "model": {"description": text, "license": text, "tags": [text]},
        "run_config": {"environment": {"NOTE": text}},
    }
    written = render(plan, raw)["run_config.yaml"]
    assert set(written) <= {"\n", *map(chr, range(0x20, 0x7F))}
    config = yaml.safe_load(written)
    assert config["tags"] == [text]
    assert config["environment"] == {"NOTE": text}
    models = [step["model"] for step in config["steps"].values() if "model" in step]
    assert models and all(m["description"] == m["license"] == text for m in models)
    assert all(m["tags"] == [text] for m in models)


def test_spec_names_of_200_characters_make_bounded_zenml_names(tmp_path: Path) -> None:
    spec = small_spec(hostile=False)
    long = "x" * 200
    spec["name"] = long
    spec["gates"] = {long: spec["gates"]["quality"]}  # type: ignore[index]
    plan = compile_spec(make_project(tmp_path / "p", spec), []).plan
    source = render(plan)["pipeline.py"]
    steps = module_constant(source, "NODES")
    assert max(len(step) for step in steps) <= NAME_PART
    artifacts = [
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "::" in node.value
    ]
    assert artifacts and all(
        len(part) <= NAME_PART for name in artifacts for part in name.split("::")
    )


def test_the_executor_check_sees_a_swapped_step_and_extra_code(plan: Plan) -> None:
    files = dict(render(plan))
    assert not executor_mismatches(ZenmlBackend(), files, plan)
    source = files["pipeline.py"]
    swapped = source.replace("'train:delayed'", "'@'").replace("'train:arrival'", "'train:delayed'")
    problems = executor_mismatches(
        ZenmlBackend(), {**files, "pipeline.py": swapped.replace("'@'", "'train:arrival'")}, plan
    )
    assert problems == [
        "train_arrival (for 'train:delayed') runs [\"train:arrival (the call names 'train:delayed')\"]",
        "train_delayed (for 'train:arrival') runs [\"train:delayed (the call names 'train:arrival')\"]",
    ]
    extra = source.replace("\n@step\n", "\n__import__('os').getcwd()\n@step\n", 1)
    problems = executor_mismatches(ZenmlBackend(), {**files, "pipeline.py": extra}, plan)
    assert len(problems) == len(plan.nodes)
    assert all("module-level code" in p and "getcwd" in p for p in problems)
    default = source.replace(
        '    zenml_stage: str = "",', "    zenml_stage: str = __import__('os').getcwd(),", 1
    )
    assert default != source
    problems = executor_mismatches(ZenmlBackend(), {**files, "pipeline.py": default}, plan)
    assert problems and all("getcwd" in p for p in problems)
