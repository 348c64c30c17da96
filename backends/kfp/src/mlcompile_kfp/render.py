"""Plan -> a KFP pipeline module (Jinja2) -> its IR (the KFP SDK's own compiler).

Names in the module come from node ids through the `ident` filter, made unique, lowercase and
free of repeated underscores, so that KFP's own component naming (lowercase, `_` -> `-`) maps
them one to one: the task `train-delayed` is always the node `train:delayed`, which the runner
relies on to find a node's outputs in a kfp.local run. A plan of more than PART_SIZE nodes
puts most of them in parts, pipelines used as components (`partition`); task names stay the
same, unique across parts.
"""

from __future__ import annotations

import dataclasses
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
from mlcompile_kfp.speedups import import_kfp, kfp_speedups

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
        "run",
        "run_id",
        "named",
        "copy",
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
        "run",
        "run_id",
        "read",
        "step",
        "call",
    }
)
# A component's input artifacts are slots: the task's `step` argument names what each holds.
INPUT_SLOT = "in_{}"
# The most steps one pipeline (or part) holds directly. The kfp SDK's compiler builds a DAG in
# time quadratic in its tasks (`build_spec_by_group` lists the names of all the DAG's tasks
# once for each of them), so a larger plan is split into parts of at most this many steps,
# each a pipeline used as a component; `partition` says which.
PART_SIZE = 64
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
    part_input: str = ""  # in a part, the part's input that carries it, when it comes from outside


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
    writes: dict[str, str]  # plan output name -> its type, for the lineage events

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
    name: str  # the task's name in the IR: the one KFP derives from the node's function
    task: str
    inputs: tuple[Param, ...]
    caching: bool
    retries: int
    resources: tuple[tuple[str, str], ...]
    secrets: tuple[tuple[str, dict[str, str]], ...]
    in_part: bool = False  # a part's step reads the run's name and id from the part's inputs


@dataclass(frozen=True)
class Part:
    """A pipeline used as a component, holding some steps: its inputs are the outputs of root
    steps its steps read, one per output (`Param.name` the part's parameter)."""

    function: str
    name: str  # the part's pipeline (and root task) name
    task: str
    inputs: tuple[Param, ...]
    steps: tuple[Step, ...]


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


def kfp_task_name(function: str) -> str:
    """The task (and kfp.local output folder) name KFP derives from a component function's
    name (lowercase already, see `unique`)."""
    return function.replace("_", "-")


def task_names(plan: Plan) -> dict[str, str]:
    """Node id -> the task name KFP derives from its function."""
    return {node_id: kfp_task_name(fn) for node_id, fn in function_names(plan).items()}


def partition(plan: Plan) -> list[list[str]]:
    """The plan's node ids in parts of at most PART_SIZE, each in topological order; a node
    in no part is a step of the pipeline itself (all of them, for a plan of PART_SIZE nodes or
    fewer).

    Nodes are taken in an order that follows each branch to its end before the next, and cut
    into consecutive runs. A part's outputs never leave it: a node whose output a step outside
    its part reads (a shared validate, a branch cut at a part's end) moves up to the pipeline,
    and with it what it reads from its part. So a part waits only for pipeline steps, never for
    a whole other part, and a part that fails stops only what depends on it.
    """
    if len(plan.nodes) <= PART_SIZE:
        return []
    order = _branch_order(plan)
    part_of = {node.id: i // PART_SIZE for i, node in enumerate(order)}
    # Users before producers: a node's own place is settled before its inputs are looked at.
    for node in reversed(order):
        for ref in node.inputs.values():
            if ref.node in part_of and part_of[ref.node] != part_of.get(node.id):
                del part_of[ref.node]
    parts: dict[int, list[str]] = {}
    for node in order:
        if node.id in part_of:
            parts.setdefault(part_of[node.id], []).append(node.id)
    return [ids for _, ids in sorted(parts.items()) if len(ids) > 1]


def _branch_order(plan: Plan) -> list[Node]:
    """A topological order, depth first: the users a node frees come next (ties by id)."""
    waiting = {n.id: set(plan.dependencies(n.id)) for n in plan.nodes}
    users: dict[str, list[str]] = {n.id: [] for n in plan.nodes}
    for node_id, deps in sorted(waiting.items()):
        for dep in deps:
            users[dep].append(node_id)
    stack = sorted((node_id for node_id, deps in waiting.items() if not deps), reverse=True)
    order: list[Node] = []
    while stack:
        node_id = stack.pop()
        order.append(plan.node(node_id))
        freed = []
        for user in users[node_id]:
            waiting[user].discard(node_id)
            if not waiting[user]:
                freed.append(user)
        stack.extend(sorted(freed, reverse=True))
    return order


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


def build_components(
    plan: Plan, names: dict[str, NodeParams]
) -> tuple[list[Component], dict[str, str]]:
    """The components of a plan, in order of first use, and node id -> component function;
    `names` holds each node's `node_params`."""
    taken = {n.lower() for n in _MODULE_NAMES}
    by_signature: dict[tuple[Any, ...], tuple[str, list[str]]] = {}
    first: dict[str, Node] = {}
    for node in plan.topological():
        key = _signature(node, names[node.id])
        if key not in by_signature:
            by_signature[key] = (unique(node.kind, taken), [])
            first[by_signature[key][0]] = node
        by_signature[key][1].append(node.id)
    components, of_node = [], {}
    for function, nodes in by_signature.values():
        node = first[function]
        own = names[node.id]
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
                writes=dict(sorted(node.outputs.items())),
            )
        )
        of_node.update(dict.fromkeys(nodes, function))
    return components, of_node


def step_call(node: Node, own: NodeParams) -> str:
    """A node's `step` argument: its id, its params, and its inputs in slot order, each with
    its place in the plan for the lineage events ([input, node, output, type]).

    Only what differs between the nodes of a component: the outputs' types are the
    component's, and the node's name is the end of its id (`kind:name`). A task's share of
    the IR is mostly this argument.
    """
    return canonical_json(
        {
            "node": node.id,
            "params": node.params,
            "reads": [
                [name, ref.node, ref.output, ref.type]
                for name in own.inputs
                for ref in [node.inputs[name]]
            ],
        }
    )


def build_steps(
    plan: Plan,
    settings: KfpSettings,
    components: dict[str, str],
    names: dict[str, NodeParams],
    module_taken: set[str],
) -> list[Step]:
    """The steps in topological order; their task variables are recorded in `module_taken`."""
    functions = function_names(plan)
    module_taken |= set(functions.values())
    tasks = {
        node.id: unique(f"{functions[node.id]}_task", module_taken) for node in plan.topological()
    }
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
                call=step_call(node, own),
                name=kfp_task_name(functions[node.id]),
                task=tasks[node.id],
                inputs=inputs,
                caching=settings.caching_for(node.kind),
                retries=settings.retries_for(node.kind),
                resources=_resources(settings.resources_for(node.kind)),
                secrets=_secrets(settings, node),
            )
        )
    return steps


def build_parts(
    plan: Plan, steps: list[Step], module_taken: set[str]
) -> tuple[list[Step], list[Part]]:
    """The pipeline's own steps and its parts (`partition`); a part's steps read what comes
    from outside through the part's inputs."""
    parts = partition(plan)
    in_part = {node_id for ids in parts for node_id in ids}
    by_node = {step.node_id: step for step in steps}
    built = []
    for ids in parts:
        function = unique("part", module_taken)
        members, local = set(ids), set(module_taken)
        carried: dict[tuple[str, str], Param] = {}
        part_steps = []
        for node_id in ids:
            step = by_node[node_id]
            inputs = []
            for param in step.inputs:
                if plan.node(node_id).inputs[param.artifact].node in members:
                    inputs.append(param)
                    continue
                key = (param.upstream_task, param.upstream_output)
                if key not in carried:
                    name = unique(f"in_{len(carried)}", local)
                    carried[key] = dataclasses.replace(param, name=name, artifact="")
                inputs.append(dataclasses.replace(param, part_input=carried[key].name))
            part_steps.append(dataclasses.replace(step, inputs=tuple(inputs), in_part=True))
        built.append(
            Part(
                function=function,
                name=function.replace("_", "-"),
                task=unique(f"{function}_task", module_taken),
                inputs=tuple(carried.values()),
                steps=tuple(part_steps),
            )
        )
    return [step for step in steps if step.node_id not in in_part], built


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
    names = {node.id: node_params(node) for node in plan.nodes}
    components, of_node = build_components(plan, names)
    module_taken = {n.lower() for n in _MODULE_NAMES} | {c.function for c in components}
    every_step = build_steps(plan, settings, of_node, names, module_taken)
    steps, parts = build_parts(plan, every_step, module_taken)
    kfp_types = sorted(
        {p.kfp_type for c in components for p in c.params_list} | {"Input", "Output"}
    )
    uses_kubernetes = bool(
        settings.node_selector or settings.image_pull_policy or any(s.secrets for s in every_step)
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
        parts=parts,
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
    import_kfp()
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
