"""Plan + settings -> `pipeline.py` and `run_config.yaml`: pure, the same input gives the same
bytes.

Names from the spec reach the module two ways only: as Python literals through the `py`
filter, or turned into identifiers here (letters, digits, underscores, never a keyword,
never a name the module already uses). ZenML names (pipeline, artifacts, models) are reduced
to a safe alphabet too, since ZenML formats them with `str.format` (`{` would be read as a
placeholder).
"""

from __future__ import annotations

import hashlib
import keyword
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from jinja2 import PackageLoader

from mlcompile.backends import ArtifactSet
from mlcompile.backends.bundle import ProjectBundle
from mlcompile.backends.templating import (
    check_generated,
    identifier,
    make_environment,
    py_literal,
)
from mlcompile.errors import BackendError
from mlcompile.plan import Node, Plan
from mlcompile.runtime.trail.sink import transport_of
from mlcompile_zenml.settings import ZenmlSettings

MODULE_FILE = "pipeline.py"
CONFIG_FILE = "run_config.yaml"
# Names the template defines at module level; a step function or variable never takes one.
MODULE_NAMES = frozenset(
    {
        "Annotated",
        "Any",
        "ArtifactConfig",
        "ArtifactType",
        "CachePolicy",
        "NODES",
        "PIPELINE_NAME",
        "PLAN",
        "PLAN_NODES",
        "PROJECT_ROOT_ENV",
        "Path",
        "RECORDS",
        "argparse",
        "atexit",
        "get_step_context",
        "hashlib",
        "json",
        "log_metadata",
        "main",
        "mlcompile_pipeline",
        "os",
        "pipeline",
        "shutil",
        "step",
        "sys",
        "tempfile",
        "uuid",
    }
)
# Step parameters the template adds besides the node's inputs.
EXTRA_PARAMS = frozenset({"source_sha256", "custom_code_sha256", "zenml_stage"})
ZENML_STAGES = frozenset({"staging", "production", "archived"})
LINE_WIDTH = 100
# ZenML makes folders of step names and artifact names, which hold the pipeline's name: each
# part is kept this short so that names of the 200 characters a spec allows fit in a path.
NAME_PART = 64
# The core names the monitoring plan "<spec name>-monitoring"; a `pipeline_name` setting keeps
# that suffix for it, so the two pipelines stay two pipelines in ZenML.
MONITORING_SUFFIX = "-monitoring"


def zenml_name(text: str, fallback: str = "mlcompile") -> str:
    """A name ZenML accepts as is: no braces, quotes, spaces or slashes."""
    return re.sub(r"[^A-Za-z0-9_.:\-]", "_", text) or fallback


def bounded(name: str) -> str:
    """`name`, or when it is longer than NAME_PART its start and a hash of all of it (two
    long names with the same start stay apart)."""
    if len(name) <= NAME_PART:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{name[: NAME_PART - 9]}_{digest}"


class Names:
    """Hands out unique Python identifiers, deterministically, in the order asked."""

    def __init__(self, taken: frozenset[str] = frozenset()) -> None:
        self.taken = set(taken)

    def new(self, text: str, prefix: str = "n") -> str:
        base = bounded(identifier(text, prefix))
        if keyword.iskeyword(base) or keyword.issoftkeyword(base):
            base = f"{base}_{prefix}"
        name, count = base, 1
        while name in self.taken:
            count += 1
            name = f"{base}_{count}"
        self.taken.add(name)
        return name


@dataclass
class InputView:
    name: str
    param: str
    var: str


@dataclass
class OutputView:
    name: str
    type: str
    artifact: str
    var: str


@dataclass
class StepView:
    node_id: str
    kind: str
    func: str
    params: dict[str, Any]
    inputs: list[InputView] = field(default_factory=list)
    outputs: list[OutputView] = field(default_factory=list)
    ingest_path: str | None = None
    custom_modules: list[str] = field(default_factory=list)

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]


def is_monitoring(plan: Plan) -> bool:
    """The monitoring job is the plan with monitor steps: a training plan never has one."""
    return any(node.kind == "monitor" for node in plan.nodes)


def pipeline_name(plan: Plan, settings: ZenmlSettings) -> str:
    if settings.pipeline_name is None:
        return zenml_name(plan.name)
    suffix = MONITORING_SUFFIX if is_monitoring(plan) else ""
    return zenml_name(settings.pipeline_name + suffix)


def step_views(plan: Plan, pipeline: str) -> list[StepView]:
    """One view per node in execution order, with every identifier the template needs."""
    module = Names(MODULE_NAMES)
    views: list[StepView] = []
    produced: dict[tuple[str, str], str] = {}
    consumed = {(ref.node, ref.output) for node in plan.nodes for ref in node.inputs.values()}
    for node in plan.topological():
        if not node.outputs:
            raise BackendError(f"plan node {node.id!r} has no outputs; ZenML needs at least one")
        func = module.new(node.id, prefix="step")
        view = StepView(node.id, node.kind, func, dict(node.params))
        local = Names(EXTRA_PARAMS)
        for name, ref in sorted(node.inputs.items()):
            view.inputs.append(
                InputView(name, local.new(name, "arg"), produced[(ref.node, ref.output)])
            )
        for name, kind in sorted(node.outputs.items()):
            var = module.new(f"{func}__{name}", prefix="artifact")
            produced[(node.id, name)] = var
            if (node.id, name) not in consumed:
                # Unused by later steps (still stored by ZenML); the underscore says so.
                var = f"_{var}"
            artifact = f"{bounded(pipeline)}::{func}::{bounded(zenml_name(name, 'output'))}"
            view.outputs.append(OutputView(name, kind, artifact, var))
        if node.kind == "ingest" and node.params.get("format") != "sql":
            view.ingest_path = str(node.params.get("path", ""))
        view.custom_modules = custom_modules(node)
        views.append(view)
    return views


def custom_modules(node: Node) -> list[str]:
    if node.kind != "features":
        return []
    found = {
        str(f["function"]).split(":", 1)[0]
        for f in node.params.get("features", [])
        if isinstance(f, dict) and f.get("op") == "custom" and f.get("function")
    }
    return sorted(found)


def model_names(plan: Plan) -> dict[str, str]:
    """mlcompile model name -> its registered name, for models that a step registers or gates."""
    found: dict[str, str] = {}
    for node in sorted(plan.nodes, key=lambda n: n.id):
        if node.kind in ("register", "gate", "kserve") and node.params.get("registered_name"):
            found.setdefault(str(node.params["model"]), str(node.params["registered_name"]))
    return found


def py_block(value: Any, indent: int = 0, prefix: int = 0) -> str:
    """`py_literal`, with the containers that do not fit in a line laid out one item per line
    (the same value: only whitespace differs), so that a step's params stay readable."""
    flat = py_literal(value)
    if (
        not isinstance(value, dict | list | tuple)
        or not value
        or indent + prefix + len(flat) <= LINE_WIDTH
    ):
        return flat
    inner = " " * (indent + 4)
    if isinstance(value, dict):
        lines = []
        for key, item in sorted(value.items()):
            label = f"{py_literal(str(key))}: "
            lines.append(f"{inner}{label}{py_block(item, indent + 4, len(label))},")
        opening, closing = "{", "}"
    else:
        lines = [f"{inner}{py_block(item, indent + 4)}," for item in value]
        opening, closing = "[", "]"
    return "\n".join([opening, *lines, " " * indent + closing])


def render_module(
    plan: Plan, views: list[StepView], pipeline: str, bundle: ProjectBundle | None = None
) -> str:
    env = make_environment(PackageLoader("mlcompile_zenml", "templates"))
    env.filters["pyblock"] = py_block
    text = env.get_template("pipeline.py.j2").render(
        plan_name=plan.name,
        transport=transport_of(plan.settings),
        spec_sha256=plan.spec_sha256,
        pipeline_name=pipeline,
        bundle=bundle,
        steps=views,
        plan_nodes={
            node.id: {
                "name": node.name,
                "inputs": {k: [r.node, r.output, r.type] for k, r in node.inputs.items()},
                "outputs": dict(node.outputs),
            }
            for node in plan.nodes
        },
    )
    return check_generated(MODULE_FILE, text)


def run_config(plan: Plan, settings: ZenmlSettings, views: list[StepView]) -> dict[str, Any]:
    """ZenML's run configuration: caching, resources and Model versions, per step."""
    models = model_names(plan) if settings.model.enabled else {}
    train_fingerprints = {
        str(n.params.get("model")): n.fingerprint for n in plan.nodes if n.kind == "train"
    }
    steps: dict[str, Any] = {}
    for view in views:
        node = plan.node(view.node_id)
        options = settings.step_options(view.kind)
        entry: dict[str, Any] = {"enable_cache": settings.caches(view.kind)}
        resources = {
            key: value
            for key, value in (
                ("cpu_count", options.cpu_count),
                ("gpu_count", options.gpu_count),
                ("memory", options.memory),
            )
            if value is not None
        }
        if resources:
            entry["settings"] = {"resources": resources}
        model = str(node.params.get("model", ""))
        if model in models:
            entry["model"] = zenml_model(models[model], train_fingerprints.get(model, ""), settings)
            if view.kind == "register" and settings.model.promote:
                alias = str(node.params.get("alias") or "")
                if alias in ZENML_STAGES:
                    entry["parameters"] = {"zenml_stage": alias}
        steps[view.func] = entry
    generated: dict[str, Any] = {
        "enable_cache": settings.enable_cache,
        "execution_mode": settings.execution_mode,
        "steps": steps,
    }
    if settings.tags:
        generated["tags"] = list(settings.tags)
    user = dict(settings.run_config)
    if is_monitoring(plan):
        # A `run_config.schedule` times the training pipeline; the monitoring job has its own.
        user.pop("schedule", None)
        if settings.monitoring_schedule is not None:
            generated["schedule"] = settings.monitoring_schedule.model_dump()
    return deep_merge(user, generated)


def zenml_model(registered: str, fingerprint: str, settings: ZenmlSettings) -> dict[str, Any]:
    policy = settings.model
    model: dict[str, Any] = {"name": zenml_name(policy.name_prefix + registered)}
    # "fp-" keeps an all-digit fingerprint from reading as a version number.
    model["version"] = f"fp-{fingerprint[:12]}" if policy.version == "fingerprint" else None
    for key, value in (("description", policy.description), ("license", policy.license)):
        if value is not None:
            model[key] = value
    if policy.tags:
        model["tags"] = list(policy.tags)
    return model


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def render(plan: Plan, settings: ZenmlSettings, bundle: ProjectBundle | None = None) -> ArtifactSet:
    pipeline = pipeline_name(plan, settings)
    views = step_views(plan, pipeline)
    header = (
        "# ZenML run configuration generated by mlcompile; use it with\n"
        "#   python pipeline.py --config run_config.yaml\n"
    )
    # Escaped, not raw Unicode: PyYAML writes U+0085 raw inside a quoted scalar and reads it
    # back as a line break, and other YAML readers disagree on such characters anyway.
    config = yaml.safe_dump(
        run_config(plan, settings, views), sort_keys=True, allow_unicode=False, width=100
    )
    return ArtifactSet(
        {
            MODULE_FILE: render_module(plan, views, pipeline, bundle),
            CONFIG_FILE: check_generated(CONFIG_FILE, header + config),
        }
    )
