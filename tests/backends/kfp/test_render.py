"""render: deterministic, readable, compiled by the KFP SDK, and faithful to plan and settings."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from mlcompile_kfp import KfpBackend, KfpSettings
from mlcompile_kfp.render import function_names, load_module, pipeline_name, task_names

from mlcompile.compiler import Compiled
from mlcompile.plan import InputRef, Node, Plan
from tests.backends.kfp.helpers import golden_ir, ir_documents
from tests.conftest import REPO


def render(plan: Plan, settings: KfpSettings | None = None) -> dict[str, str]:
    return dict(KfpBackend().render(plan, settings or KfpSettings()))


@pytest.fixture(scope="module")
def flights_files(flights_compiled: Compiled) -> dict[str, str]:
    """The flights example rendered once with default settings, for the tests that only read."""
    return render(flights_compiled.plan)


def test_render_twice_gives_the_same_bytes(
    flights_compiled: Compiled, flights_files: dict[str, str]
) -> None:
    assert sorted(flights_files) == ["pipeline.py", "pipeline.yaml", "requirements.txt"]
    assert render(flights_compiled.plan) == flights_files


def test_golden_flights(flights_files: dict[str, str], golden: Callable[[str, str], None]) -> None:
    files = flights_files
    golden("kfp/flights/pipeline.py", files["pipeline.py"])
    golden("kfp/flights/pipeline.yaml", golden_ir(files["pipeline.yaml"]))


def test_no_absolute_paths_or_clock(flights_files: dict[str, str]) -> None:
    for text in flights_files.values():
        for local_path in (str(REPO), tempfile.gettempdir(), str(Path.home())):
            assert local_path not in text
        assert not re.search(r"20\d\d-\d\d-\d\d", text)


def test_ir_loads_back_with_the_sdk(
    flights_compiled: Compiled, flights_files: dict[str, str]
) -> None:
    from kfp import components

    text = flights_files["pipeline.yaml"]
    [spec] = ir_documents(text)
    assert spec["pipelineInfo"]["name"] == "flights"
    loaded = components.load_component_from_text(text)
    assert loaded.name == "flights"
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == set(task_names(flights_compiled.plan).values())
    assert tasks["train-delayed"]["taskInfo"]["name"] == "train:delayed"


def test_one_component_per_kind_with_typed_artifacts(
    flights_compiled: Compiled, flights_files: dict[str, str]
) -> None:
    module_text = flights_files["pipeline.py"]
    kinds = {node.kind for node in flights_compiled.plan.nodes}
    # One per kind, and a second ingest: a SQL source reads its inputs, a file source none.
    assert module_text.count("@dsl.component(") == len(kinds) + 1
    [spec] = ir_documents(flights_files["pipeline.yaml"])
    assert len(spec["components"]) == len(spec["deploymentSpec"]["executors"]) == len(kinds) + 1
    evaluate = (
        "    in_0: Input[Dataset],\n    in_1: Input[Dataset],\n    in_2: Input[Model],\n"
        "    diagnosis: Output[Artifact],\n"
    )
    assert evaluate + "    metrics: Output[Metrics]," in module_text  # a new type is an Artifact
    assert "    decision: Output[Artifact]," in module_text
    assert "ui_metrics.log_metric(metric_name, metric_value)" in module_text


def test_deploys_consume_their_models_gate_decisions(
    flights_files: dict[str, str],
) -> None:
    [spec] = ir_documents(flights_files["pipeline.yaml"])
    tasks = spec["root"]["dag"]["tasks"]

    def upstream(task: str) -> set[str]:
        direct = set(tasks[task].get("dependentTasks", []))
        return direct.union(*(upstream(t) for t in direct))

    delayed = ("register-delayed-registry", "score-december-scores", "kserve-delayed-kserve")
    for task in delayed:
        assert "gate-delayed-quality" in upstream(task), task
        assert "gate-arrival-quality" not in upstream(task), task
    assert "gate-arrival-quality" in upstream("register-arrival-registry")
    register = tasks["register-delayed-registry"]["inputs"]
    reads = json.loads(register["parameters"]["step"]["runtimeValue"]["constant"])["reads"]
    slot = f"in_{[read[0] for read in reads].index('gate:delayed_quality')}"
    assert register["artifacts"][slot]["taskOutputArtifact"] == {
        "outputArtifactKey": "decision",
        "producerTask": "gate-delayed-quality",
    }


def test_settings_reach_the_ir(flights_compiled: Compiled) -> None:
    settings = KfpSettings.model_validate(
        {
            "base_image": "registry.example/flights:1.0",
            "packages_to_install": [],
            "install_kfp_package": False,
            "pipeline_root": "s3://bucket/kfp",
            "project_root": "/mnt/project",
            "caching": False,
            "kinds": {
                "train": {
                    "resources": {"cpu_limit": "4", "memory_limit": "8Gi"},
                    "retries": 2,
                    "caching": True,
                },
            },
            "node_selector": {"pool": "cpu"},
            "secrets": [
                {"secret_name": "registry-creds", "env": {"AWS_KEY": "key"}, "kinds": ["register"]}
            ],
            "image_pull_policy": "IfNotPresent",
        }
    )
    files = render(flights_compiled.plan, settings)
    assert "project_root=Path('/mnt/project')," in files["pipeline.py"]
    spec, platform = ir_documents(files["pipeline.yaml"])
    assert spec["defaultPipelineRoot"] == "s3://bucket/kfp"
    executors = spec["deploymentSpec"]["executors"]
    train = executors["exec-train"]["container"]
    assert train["image"] == "registry.example/flights:1.0"
    assert train["resources"]["cpuLimit"] == 4.0
    assert train["resources"]["resourceMemoryLimit"] == "8Gi"
    assert "pip install" not in " ".join(train["command"])
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["train-delayed"]["cachingOptions"].get("enableCache") is True
    assert tasks["train-delayed"]["retryPolicy"]["maxRetryCount"] == 2
    assert tasks["gate-delayed-quality"]["cachingOptions"].get("enableCache") in (None, False)
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert k8s["exec-train"]["nodeSelector"]["labels"] == {"pool": "cpu"}
    assert k8s["exec-train"]["imagePullPolicy"] == "IfNotPresent"
    assert "secretAsEnv" not in k8s["exec-train"]
    [secret] = k8s["exec-register"]["secretAsEnv"]
    assert secret["secretName"] == "registry-creds"
    assert secret["keyToEnv"] == [{"envVar": "AWS_KEY", "secretKey": "key"}]


def test_default_packages_are_installed_at_step_start(flights_files: dict[str, str]) -> None:
    [spec] = ir_documents(flights_files["pipeline.yaml"])
    command = " ".join(spec["deploymentSpec"]["executors"]["exec-train"]["container"]["command"])
    assert "'mlcompile'" in command
    assert "kfp==" in command


def _node(node_id: str, inputs: dict[str, InputRef] | None = None) -> Node:
    kind, _, name = node_id.partition(":")
    return Node(node_id, kind, name, {}, inputs or {}, {"dataset": "dataset"}, "f")


def test_colliding_names_get_distinct_identifiers() -> None:
    ids = [
        "ingest:a-b",
        "ingest:a_b",
        "ingest:A b",
        "ingest:a__b",
        "ingest:class",
        "ingest:",
        "ingest:pipeline",
        "ingest:2x",
        "ingest:é",
    ]
    ref = InputRef("ingest:a-b", "dataset", "dataset")
    nodes = [_node(i) for i in ids] + [
        Node(
            "validate:x",
            "validate",
            "x",
            {},
            {"Path": ref, "path": ref, "for": ref},
            {"dataset": "dataset", "report": "report"},
            "f",
        )
    ]
    plan = Plan("Weird Name!", "0" * 64, {}, tuple(nodes))
    functions = function_names(plan)
    assert len(set(functions.values())) == len(ids) + 1
    for name in functions.values():
        assert name.isidentifier() and name == name.lower() and "__" not in name
    assert len(set(task_names(plan).values())) == len(ids) + 1
    assert pipeline_name(plan) == "weird-name"
    text = render(plan)["pipeline.py"]
    module = load_module(text)
    assert callable(module.pipeline)
    # Inputs are slots; the task's step argument names them, spec text staying data.
    assert (
        "    in_0: Input[Dataset],\n    in_1: Input[Dataset],\n    in_2: Input[Dataset],\n" in text
    )
    assert (
        """step='{"node":"validate:x","params":{},"reads":[["Path","ingest:a-b","dataset","""
        """"dataset"],["for","ingest:a-b","dataset","dataset"],"""
        """["path","ingest:a-b","dataset","dataset"]]}',"""
    ) in text
    assert "'report': Path(report_2.path)," in text


def test_an_ir_over_the_cluster_limit_fails_the_build_located(
    flights_project: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flights IR is ~57 KB: with the limits scaled down it is first warned about, then
    refused with exit 2, a K121 error at the spec's backends.kfp and the hint to split."""
    from mlcompile_kfp import backend

    spec = flights_project / "mlcompile.yaml"
    monkeypatch.setattr(backend, "IR_WARN_BYTES", 20_000)
    warned = cli("build", spec, "--backend", "kfp", "--out", "build", cwd=flights_project)
    assert warned.exit_code == 0, warned.output
    assert "K120" in warned.output and "split the pipeline" in warned.output
    monkeypatch.setattr(backend, "IR_MAX_BYTES", 40_000)
    failed = cli("build", spec, "--backend", "kfp", "--out", "build2", cwd=flights_project)
    assert failed.exit_code == 2, failed.output
    assert re.search(r"mlcompile\.yaml:\d+:\d+.*K121", failed.output), failed.output
    assert "over the 1.5 MiB a cluster stores" in failed.output
    assert "split the pipeline" in failed.output
    assert not (flights_project / "build2").exists()


def test_the_executor_check_reads_each_tasks_step_argument_and_wiring(
    flights_compiled: Compiled, flights_files: dict[str, str]
) -> None:
    """Tasks share their kind's executor, so the check rests on each task's own argument
    and inputs: another node's params, or an input wired to another model's step, fail it."""
    from mlcompile.testing import executor_mismatches

    plan, ir = flights_compiled.plan, flights_files["pipeline.yaml"]
    assert not executor_mismatches(KfpBackend(), flights_files, plan)
    [spec] = ir_documents(ir)
    tasks = spec["root"]["dag"]["tasks"]
    delayed = tasks["evaluate-delayed"]["inputs"]["parameters"]["step"]["runtimeValue"]
    arrival = tasks["evaluate-arrival"]["inputs"]["parameters"]["step"]["runtimeValue"]
    delayed["constant"] = arrival["constant"]
    swapped = yaml.safe_dump(spec)
    problems = executor_mismatches(KfpBackend(), {**flights_files, "pipeline.yaml": swapped}, plan)
    assert len(problems) == 1 and "(for 'evaluate:delayed') runs" in problems[0], problems
    assert "evaluate:arrival" in problems[0]
    rewired = ir.replace("producerTask: train-arrival", "producerTask: train-delayed", 1)
    problems = executor_mismatches(KfpBackend(), {**flights_files, "pipeline.yaml": rewired}, plan)
    assert problems and all("wired to 'train:delayed'" in p for p in problems), problems


def test_a_large_plan_compiles_as_parts_that_only_read_pipeline_steps(
    flights_compiled: Compiled, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With parts of at most five steps, the flights plan compiles the way a plan of hundreds
    of steps does: every node runs once, in the pipeline or in one part; what a part's steps
    read from outside it comes from steps of the pipeline itself, through the part's inputs,
    and the executor check follows that wiring (a part input passed the wrong output fails
    it)."""
    from kfp import components
    from mlcompile_kfp import render as kfp_render

    from mlcompile.testing import executor_mismatches

    plan = flights_compiled.plan
    monkeypatch.setattr(kfp_render, "PART_SIZE", 5)
    parts = kfp_render.partition(plan)
    assert len(parts) >= 2 and all(2 <= len(ids) <= 5 for ids in parts)
    part_of = {node_id: i for i, ids in enumerate(parts) for node_id in ids}
    assert len(part_of) == sum(len(ids) for ids in parts)
    for node in plan.nodes:
        for ref in node.inputs.values():
            if ref.node in part_of:
                assert part_of.get(node.id) == part_of[ref.node], (node.id, ref.node)

    files = render(plan)
    assert render(plan) == files
    assert components.load_component_from_text(files["pipeline.yaml"]).name == "flights"
    assert not executor_mismatches(KfpBackend(), files, plan)
    [spec] = ir_documents(files["pipeline.yaml"])
    dags = {name: c["dag"] for name, c in spec["components"].items() if "dag" in c}
    assert len(dags) == len(parts)
    assert all("outputs" not in dag for dag in dags.values())
    root = spec["root"]["dag"]["tasks"]
    assert len(root) == len(plan.nodes) - len(part_of) + len(parts)
    # each part's steps are named after their nodes, as in a pipeline without parts
    inner = {key for dag in dags.values() for key in dag["tasks"]}
    assert inner == {kfp_render.task_names(plan)[node_id] for node_id in part_of}

    passed = next(
        task["inputs"]["artifacts"]
        for task in root.values()
        if task["componentRef"]["name"] in dags and len(task["inputs"]["artifacts"]) >= 2
    )
    first, second = sorted(passed)[:2]
    passed[first], passed[second] = passed[second], passed[first]
    swapped = {**files, "pipeline.yaml": yaml.safe_dump(spec)}
    problems = executor_mismatches(KfpBackend(), swapped, plan)
    assert problems and all("wired to" in p for p in problems), problems
