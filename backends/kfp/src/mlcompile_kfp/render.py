"""Plan -> a KFP pipeline module (Jinja2) -> its IR (the KFP SDK's own compiler).

Names in the module come from node ids through the `ident` filter, made unique, lowercase and
free of repeated underscores, so that KFP's own component naming (lowercase, `_` -> `-`) maps
them one to one: the task `train-delayed` is always the node `train:delayed`, which the runner
relies on to find a node's outputs in a kfp.local run.
"""

from __future__ import annotations

import heapq
import json
import keyword
import linecache
import re
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import PackageLoader

from mlcompile.backends.templating import comment, identifier, make_environment
from mlcompile.errors import BackendError
from mlcompile.plan import Node, Plan, canonical_json, sha256_text
from mlcompile_kfp.settings import KfpSettings, Resources

KFP_TYPES = {"dataset": "Dataset", "model": "Model", "metrics": "Metrics"}
DEPLOY_KINDS = frozenset({"register", "score", "kserve"})
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
    }
)
# Local names of a component body; its parameters must not shadow them.
_BODY_NAMES = frozenset(
    {"Path", "StepContext", "run_step", "json", "math", "report", "metric_name", "metric_value"}
)
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
class Step:
    node_id: str
    kind: str
    params: dict[str, Any]
    function: str
    task: str
    inputs: tuple[Param, ...]
    outputs: tuple[Param, ...]
    ui_metrics: str | None
    metrics_param: str | None
    after: tuple[str, ...]
    caching: bool
    retries: int
    resources: tuple[tuple[str, str], ...]
    secrets: tuple[tuple[str, dict[str, str]], ...]

    @property
    def params_list(self) -> tuple[Param, ...]:
        return self.inputs + self.outputs + self._ui_param()

    def _ui_param(self) -> tuple[Param, ...]:
        if self.ui_metrics is None:
            return ()
        return (Param(self.ui_metrics, "", "Output", "Metrics"),)


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


def _ancestors(plan: Plan) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for node in plan.topological():
        deps = plan.dependencies(node.id)
        found[node.id] = set(deps).union(*(found[d] for d in deps))
    return found


def _task_order(plan: Plan, gates: list[str]) -> list[Node]:
    """A topological order of the plan in which every deploy step also follows every gate."""
    waiting = {n.id: set(plan.dependencies(n.id)) for n in plan.nodes}
    for node in plan.nodes:
        if node.kind in DEPLOY_KINDS:
            waiting[node.id].update(gates)
    users: dict[str, list[str]] = {node_id: [] for node_id in waiting}
    for node_id, deps in waiting.items():
        for dep in deps:
            users[dep].append(node_id)
    ready = [node_id for node_id, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    order = []
    while ready:
        node_id = heapq.heappop(ready)
        order.append(plan.node(node_id))
        for user in users[node_id]:
            waiting[user].discard(node_id)
            if not waiting[user]:
                heapq.heappush(ready, user)
    return order


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
    """A node's component parameter names: plan input/output name -> Python name."""

    inputs: dict[str, str]
    outputs: dict[str, str]
    ui_metrics: str | None


def node_params(node: Node) -> NodeParams:
    taken = set(_BODY_NAMES) | {n.lower() for n in _BODY_NAMES}
    inputs = {name: unique(name, taken) for name in sorted(node.inputs)}
    outputs = {name: unique(name, taken) for name in sorted(node.outputs)}
    evaluates = node.kind == "evaluate" and "metrics" in node.outputs
    return NodeParams(inputs, outputs, unique("ui_metrics", taken) if evaluates else None)


def build_steps(plan: Plan, settings: KfpSettings) -> list[Step]:
    functions = function_names(plan)
    module_taken = {n.lower() for n in _MODULE_NAMES} | set(functions.values())
    tasks = {
        node.id: unique(f"{functions[node.id]}_task", module_taken) for node in plan.topological()
    }
    ancestors = _ancestors(plan)
    gates = sorted((n.id for n in plan.nodes if n.kind == "gate"), key=lambda i: functions[i])
    names = {node.id: node_params(node) for node in plan.nodes}
    steps = []
    for node in _task_order(plan, gates):
        own = names[node.id]
        inputs = tuple(
            Param(
                own.inputs[name],
                name,
                "Input",
                _kfp_type(ref.type),
                tasks[ref.node],
                names[ref.node].outputs[ref.output],
            )
            for name, ref in sorted(node.inputs.items())
        )
        outputs = tuple(
            Param(own.outputs[name], name, "Output", _kfp_type(artifact_type))
            for name, artifact_type in sorted(node.outputs.items())
        )
        after: tuple[str, ...] = ()
        upstream = ancestors[node.id]
        # A deploy downstream of another deploy already waits for every gate through it.
        if node.kind in DEPLOY_KINDS and not any(
            plan.node(a).kind in DEPLOY_KINDS for a in upstream
        ):
            after = tuple(tasks[g] for g in gates if g not in upstream)
        steps.append(
            Step(
                node_id=node.id,
                kind=node.kind,
                params=json.loads(canonical_json(node.params)),
                function=functions[node.id],
                task=tasks[node.id],
                inputs=inputs,
                outputs=outputs,
                ui_metrics=own.ui_metrics,
                metrics_param=own.outputs["metrics"] if own.ui_metrics else None,
                after=after,
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


def render_module(plan: Plan, settings: KfpSettings) -> str:
    """The pipeline module's text: pure, the same plan and settings give the same bytes."""
    steps = build_steps(plan, settings)
    kfp_types = sorted({p.kfp_type for s in steps for p in s.params_list} | {"Input", "Output"})
    uses_kubernetes = bool(
        settings.node_selector or settings.image_pull_policy or any(s.secrets for s in steps)
    )
    env = make_environment(PackageLoader("mlcompile_kfp", "templates"))
    return env.get_template("pipeline.py.j2").render(
        plan_name=plan.name,
        spec_sha256=plan.spec_sha256,
        pipeline_name=pipeline_name(plan),
        description=comment(f"mlcompile plan {plan.name}"),
        pipeline_root=settings.pipeline_root,
        project_root=settings.project_root,
        base_image=settings.base_image,
        packages=list(settings.packages_to_install),
        install_kfp_package=settings.install_kfp_package,
        kfp_types=kfp_types,
        uses_kubernetes=uses_kubernetes,
        node_selector=sorted(settings.node_selector.items()),
        image_pull_policy=settings.image_pull_policy,
        steps=steps,
    )


def load_module(text: str) -> types.ModuleType:
    """Execute a rendered module in a namespace of its own, never registered in sys.modules.

    KFP reads each component's source with `inspect.getsource`, so the text is put into
    linecache under a name derived from its hash; nothing is written to disk and two renders
    in one process cannot see each other's modules.
    """
    filename = f"<mlcompile-kfp pipeline {sha256_text(text)[:16]}>"
    code = compile(text, filename, "exec", dont_inherit=True)
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
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

    with tempfile.TemporaryDirectory(prefix="mlcompile-kfp-") as tmp:
        target = Path(tmp) / "pipeline.yaml"
        try:
            compiler.Compiler().compile(load_module(text).pipeline, str(target))
        except (ValueError, TypeError, KeyError) as exc:
            # The SDK validates more than `check` does (and more with each release): say
            # which tool refused, not "internal error".
            raise BackendError(f"the KFP compiler rejected the pipeline: {exc}") from exc
        return target.read_text(encoding="utf-8")
