"""Plan -> a KFP pipeline module (Jinja2) -> its IR (the KFP SDK's own compiler).

Names in the module come from node ids through the `ident` filter, made unique, lowercase and
free of repeated underscores, so that KFP's own component naming (lowercase, `_` -> `-`) maps
them one to one: the task `train-delayed` is always the node `train:delayed`, which the runner
relies on to find a node's outputs in a kfp.local run.
"""

from __future__ import annotations

import keyword
import linecache
import re
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import PackageLoader

from mlcompile.backends.bundle import ProjectBundle
from mlcompile.backends.templating import (
    check_generated,
    comment,
    identifier,
    make_environment,
    source_lines,
)
from mlcompile.errors import BackendError
from mlcompile.plan import Node, Plan, canonical_json, sha256_text
from mlcompile.runtime.trail.sink import transport_of
from mlcompile_kfp.merge import merge_components
from mlcompile_kfp.settings import KfpSettings, Resources
from mlcompile_kfp.speedups import kfp_speedups

MODULE_FILE = "pipeline.py"
KFP_TYPES = {"dataset": "Dataset", "model": "Model", "metrics": "Metrics"}
# Module-level names of the generated module; a node whose id would map to one gets a suffix.
_MODULE_NAMES = frozenset(
    {
        "dsl",
        "kubernetes",
        "Artifact",
        "Dataset",
        "Input",
        "Metrics",
        "Model",
        "Output",
        "BASE_IMAGE",
        "PACKAGES_TO_INSTALL",
        "INSTALL_KFP_PACKAGE",
        "pipeline",
        "named",
        "copy",
        "dataclasses",
    }
)
# Local names of a component body; its parameters must not shadow them.
_BODY_NAMES = frozenset(
    {
        "Path",
        "PipelineRun",
        "StepContext",
        "enter_project",
        "StepTrail",
        "run_step",
        "json",
        "math",
        "report",
        "metric_name",
        "metric_value",
        "pipeline_run",
        "pipeline_run_id",
        "step",
        "call",
    }
)
# A component's input artifacts are slots: the task's `step` argument names what each holds.
INPUT_SLOT = "in_{}"
_RESOURCE_SETTERS = (
    ("set_cpu_request", "cpu_request"),
    ("set_cpu_limit", "cpu_limit"),
    ("set_memory_request", "memory_request"),
    ("set_memory_limit", "memory_limit"),
)


@dataclass(frozen=True)
class Param:
    name: str  # the component function's parameter
    artifact: str  # the plan's input or output name, as the runtime knows it
    direction: str  # "Input" | "Output"
    kfp_type: str
    upstream_task: str = ""
    upstream_output: str = ""


@dataclass(frozen=True)
class Component:
    """The component of one step kind and artifact signature, shared by all its nodes."""

    kind: str
    function: str
    inputs: tuple[Param, ...]  # slots: `artifact` is empty, the task's `step` names them
    outputs: tuple[Param, ...]
    ui_metrics: str | None
    metrics_param: str | None
    nodes: tuple[str, ...]

    @property
    def params_list(self) -> tuple[Param, ...]:
        ui = () if self.ui_metrics is None else (Param(self.ui_metrics, "", "Output", "Metrics"),)
        return self.inputs + self.outputs + ui


@dataclass(frozen=True)
class Step:
    node_id: str
    kind: str
    component: str
    call: str  # the `step` argument: canonical JSON of the node's params and input names
    function: str  # the node's own name, which KFP's task name derives from
    task: str
    inputs: tuple[Param, ...]
    caching: bool
    retries: int
    resources: tuple[tuple[str, str], ...]
    secrets: tuple[tuple[str, dict[str, str]], ...]


def unique(text: str, taken: set[str]) -> str:
    """A fresh lowercase identifier for `text`, recorded in `taken`."""
    base = re.sub("_+", "_", identifier(text).lower())
    name, n = base, 1
    while name in taken or keyword.iskeyword(name) or keyword.issoftkeyword(name):
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def function_names(plan: Plan) -> dict[str, str]:
    """Node id -> component function name, stable for a given plan."""
    taken = {name.lower() for name in _MODULE_NAMES}
    return {node.id: unique(node.id, taken) for node in plan.topological()}


def task_names(plan: Plan) -> dict[str, str]:
    """Node id -> the task (and kfp.local output folder) name KFP derives from the function."""
    return {node_id: fn.replace("_", "-") for node_id, fn in function_names(plan).items()}


def pipeline_name(plan: Plan) -> str:
    """KFP requires `[a-z0-9][a-z0-9-]*` for pipeline names."""
    name = re.sub("-+", "-", re.sub("[^a-z0-9]+", "-", plan.name.lower())).strip("-")
    return name[:128].rstrip("-") or "mlcompile-pipeline"


def _kfp_type(artifact_type: str) -> str:
    return KFP_TYPES.get(artifact_type, "Artifact")


def _secret_groups(env: dict[str, str]) -> list[dict[str, str]]:
    """Secret key -> env var maps; a key feeding two variables needs a second call."""
    groups: list[dict[str, str]] = []
    for var, key in sorted(env.items()):
        for group in groups:
            if key not in group:
                group[key] = var
                break
        else:
            groups.append({key: var})
    return groups


def _resources(res: Resources) -> tuple[tuple[str, str], ...]:
    return tuple(
        (setter, value)
        for setter, field in _RESOURCE_SETTERS
        if (value := getattr(res, field)) is not None
    )


@dataclass(frozen=True)
class NodeParams:
    """A node's component parameter names: input slots in order, plan output name -> name."""

    inputs: dict[str, str]
    outputs: dict[str, str]
    ui_metrics: str | None


def node_params(node: Node) -> NodeParams:
    # Slots in the order of their types, then names: nodes that differ only in the names of
    # their inputs (a register step's gate decisions) share one component.
    ordered = sorted(node.inputs.items(), key=lambda item: (_kfp_type(item[1].type), item[0]))
    inputs = {name: INPUT_SLOT.format(i) for i, (name, _) in enumerate(ordered)}
    taken = set(_BODY_NAMES) | {n.lower() for n in _BODY_NAMES} | set(inputs.values())
    outputs = {name: unique(name, taken) for name in sorted(node.outputs)}
    evaluates = node.kind == "evaluate" and "metrics" in node.outputs
    return NodeParams(inputs, outputs, unique("ui_metrics", taken) if evaluates else None)


def _signature(node: Node, own: NodeParams) -> tuple[Any, ...]:
    return (
        node.kind,
        tuple(_kfp_type(node.inputs[name].type) for name in own.inputs),
        tuple((name, own.outputs[name], node.outputs[name]) for name in sorted(node.outputs)),
        own.ui_metrics,
    )


def build_components(plan: Plan) -> tuple[list[Component], dict[str, str]]:
    """The components of a plan, in order of first use, and node id -> component function."""
    taken = {n.lower() for n in _MODULE_NAMES}
    by_signature: dict[tuple[Any, ...], tuple[str, list[str]]] = {}
    first: dict[str, Node] = {}
    for node in plan.topological():
        key = _signature(node, node_params(node))
        if key not in by_signature:
            by_signature[key] = (unique(node.kind, taken), [])
            first[by_signature[key][0]] = node
        by_signature[key][1].append(node.id)
    components, of_node = [], {}
    for function, nodes in by_signature.values():
        node = first[function]
        own = node_params(node)
        components.append(
            Component(
                kind=node.kind,
                function=function,
                inputs=tuple(
                    Param(slot, "", "Input", _kfp_type(node.inputs[name].type))
                    for name, slot in own.inputs.items()
                ),
                outputs=tuple(
                    Param(own.outputs[name], name, "Output", _kfp_type(artifact_type))
                    for name, artifact_type in sorted(node.outputs.items())
                ),
                ui_metrics=own.ui_metrics,
                metrics_param=own.outputs["metrics"] if own.ui_metrics else None,
                nodes=tuple(nodes),
            )
        )
        of_node.update(dict.fromkeys(nodes, function))
    return components, of_node


def step_call(node: Node) -> str:
    """A node's `step` argument: its params, its input names in slot order, and its place in
    the plan for its lineage events (node id and name, input -> [node, output, type], output
    -> type)."""
    inputs = list(node_params(node).inputs)
    return canonical_json(
        {
            "inputs": inputs,
            "name": node.name,
            "node": node.id,
            "params": node.params,
            "reads": {k: [r.node, r.output, r.type] for k, r in sorted(node.inputs.items())},
            "writes": dict(sorted(node.outputs.items())),
        }
    )


def build_steps(plan: Plan, settings: KfpSettings, components: dict[str, str]) -> list[Step]:
    functions = function_names(plan)
    module_taken = {n.lower() for n in _MODULE_NAMES} | set(functions.values())
    tasks = {
        node.id: unique(f"{functions[node.id]}_task", module_taken) for node in plan.topological()
    }
    names = {node.id: node_params(node) for node in plan.nodes}
    steps = []
    # Deploy steps read their model's gate decisions, so a failed gate stops exactly the
    # deployments of that model: the plan's own edges, as every backend runs them.
    for node in plan.topological():
        own = names[node.id]
        inputs = tuple(
            Param(
                slot,
                name,
                "Input",
                _kfp_type(node.inputs[name].type),
                tasks[node.inputs[name].node],
                names[node.inputs[name].node].outputs[node.inputs[name].output],
            )
            for name, slot in own.inputs.items()
        )
        steps.append(
            Step(
                node_id=node.id,
                kind=node.kind,
                component=components[node.id],
                call=step_call(node),
                function=functions[node.id],
                task=tasks[node.id],
                inputs=inputs,
                caching=settings.caching_for(node.kind),
                retries=settings.retries_for(node.kind),
                resources=_resources(settings.resources_for(node.kind)),
                secrets=_secrets(settings, node),
            )
        )
    return steps


def _secrets(settings: KfpSettings, node: Node) -> tuple[tuple[str, dict[str, str]], ...]:
    return tuple(
        (secret.secret_name, group)
        for secret in settings.secrets
        if secret.kinds is None or node.kind in secret.kinds
        for group in _secret_groups(secret.env)
    )


def render_module(plan: Plan, settings: KfpSettings, bundle: ProjectBundle | None = None) -> str:
    """The pipeline module's text: pure, the same plan, settings and bundle give the same
    bytes. With a bundle, steps run from it instead of the project at `project_root`."""
    components, of_node = build_components(plan)
    steps = build_steps(plan, settings, of_node)
    kfp_types = sorted(
        {p.kfp_type for c in components for p in c.params_list} | {"Input", "Output"}
    )
    uses_kubernetes = bool(
        settings.node_selector or settings.image_pull_policy or any(s.secrets for s in steps)
    )
    env = make_environment(PackageLoader("mlcompile_kfp", "templates"))
    text = env.get_template("pipeline.py.j2").render(
        plan_name=plan.name,
        plan=plan.name,
        transport=transport_of(plan.settings),
        spec_sha256=plan.spec_sha256,
        pipeline_name=pipeline_name(plan),
        description=comment(f"mlcompile plan {plan.name}"),
        pipeline_root=settings.pipeline_root,
        project_root=settings.project_root,
        bundle=bundle,
        base_image=settings.base_image,
        packages=list(settings.packages_to_install),
        install_kfp_package=settings.install_kfp_package,
        kfp_types=kfp_types,
        uses_kubernetes=uses_kubernetes,
        node_selector=sorted(settings.node_selector.items()),
        image_pull_policy=settings.image_pull_policy,
        components=components,
        steps=steps,
    )
    return check_generated(MODULE_FILE, text)


def load_module(text: str) -> types.ModuleType:
    """Execute a rendered module in a namespace of its own, never registered in sys.modules.

    KFP reads each component's source with `inspect.getsource`, so the text is put into
    linecache under a name derived from its hash; nothing is written to disk and two renders
    in one process cannot see each other's modules. linecache gets the lines the compiler
    counts: were they split anywhere else, `inspect.getsource` would hand KFP the lines of
    another step (the module is checked to hold no such character, too).
    """
    check_generated(MODULE_FILE, text)
    filename = f"<mlcompile-kfp pipeline {sha256_text(text)[:16]}>"
    code = compile(text, filename, "exec", dont_inherit=True)
    linecache.cache[filename] = (len(text), None, source_lines(text), filename)
    module = types.ModuleType("mlcompile_kfp_pipeline")
    module.__file__ = filename
    exec(code, module.__dict__)
    return module


def compile_ir(text: str) -> str:
    """The KFP v2 IR YAML of a rendered module, written by the KFP SDK's own compiler.

    In-process rather than in a subprocess: the module is our template with every spec value
    entering as a literal, so executing it runs nothing but pipeline definitions, and a
    build avoids starting a second interpreter and importing kfp twice.
    """
    from kfp import compiler  # type: ignore[import-untyped]

    with tempfile.TemporaryDirectory(prefix="mlcompile-kfp-") as tmp, kfp_speedups():
        target = Path(tmp) / "pipeline.yaml"
        try:
            pipeline = load_module(text).pipeline
            merge_components(pipeline.pipeline_spec, pipeline.platform_spec)
            compiler.Compiler().compile(pipeline, str(target))
        except (ValueError, TypeError, KeyError) as exc:
            # The SDK validates more than `check` does (and more with each release): say
            # which tool refused, not "internal error".
            raise BackendError(f"the KFP compiler rejected the pipeline: {exc}") from exc
        return target.read_text(encoding="utf-8")
