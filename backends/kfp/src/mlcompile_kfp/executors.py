"""What each task of the compiled IR runs, read back from pipeline.yaml (`ExecutorMap`).

A cluster runs the Python source the KFP compiler embedded in each executor, which it took
from pipeline.py with `inspect.getsource`, and hands it the task's `step` argument. Tasks of
one step kind share a component, so what a task runs is the pair: the executor's source must
be exactly the component function pipeline.py defines (located by the compiler's own line
numbers) after KFP's import lines and nothing else; that function must call the runtime with
its kind, the `step` argument's params and input names and its own artifacts, in the one shape
the template writes; and the task's `step` argument with the component's outputs must name its
own node, its input slots wired to the very upstream outputs the plan says (through the
part's inputs, for a task in a part).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from typing import Any

import yaml

from mlcompile.backends.executors import Executor, node_called, statement_text
from mlcompile.backends.templating import source_lines
from mlcompile.plan import Plan
from mlcompile_kfp.render import MODULE_FILE, node_params

IR_FILE = "pipeline.yaml"
# The modules KFP imports at the top of every component's source.
_PREAMBLE_MODULES = frozenset({"kfp", "kfp.dsl", "typing"})
_CALL = "call = json.loads(step)"
_PARAMS = 'call["params"]'


def executors(files: Mapping[str, str], plan: Plan) -> list[Executor]:
    functions = _function_texts(files[MODULE_FILE])
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    ir = next(doc for doc in yaml.load_all(files[IR_FILE], Loader=loader) if doc)
    tasks = step_tasks(ir)
    found = []
    for key, task in sorted(tasks.items()):
        node = str(task["taskInfo"]["name"])
        label = ir["components"][task["componentRef"]["name"]]["executorLabel"]
        container = ir["deploymentSpec"]["executors"][label]["container"]
        args = list(container["args"])
        function = str(args[args.index("--function_to_execute") + 1])
        source = str(container["command"][-1])
        invokes = _invoked(source, function, functions.get(function), task, tasks, plan)
        found.append(Executor(f"{key} ({label})", node, tuple(invokes)))
    return found


def step_tasks(ir: Mapping[str, Any]) -> dict[str, Any]:
    """Every step's task in the IR by name, those of parts (pipelines used as components)
    too, with a part's inputs replaced by what the part's own task passes in: so each input
    names the task that produced it. Task names are unique across parts (one per node)."""
    flat = {}
    for key, task in ir["root"]["dag"]["tasks"].items():
        component = ir["components"][task["componentRef"]["name"]]
        if "dag" not in component:
            flat[key] = task
            continue
        passed = task.get("inputs", {}).get("artifacts", {})
        for inner_key, inner in component["dag"]["tasks"].items():
            artifacts = {
                slot: passed.get(source["componentInputArtifact"], {})
                if "componentInputArtifact" in source
                else source
                for slot, source in inner.get("inputs", {}).get("artifacts", {}).items()
            }
            flat[inner_key] = {**inner, "inputs": {**inner["inputs"], "artifacts": artifacts}}
    return flat


def _function_texts(module: str) -> dict[str, str]:
    """Each top-level function of the module: its text from `def` to its last line."""
    lines = source_lines(module)
    return {
        stmt.name: "".join(lines[stmt.lineno - 1 : stmt.end_lineno])
        for stmt in ast.parse(module).body
        if isinstance(stmt, ast.FunctionDef)
    }


def _invoked(
    source: str,
    function: str,
    expected: str | None,
    task: Mapping[str, Any],
    tasks: Mapping[str, Any],
    plan: Plan,
) -> list[str]:
    problems = []
    if expected is None:
        problems.append(f"{function}: pipeline.py defines no component for this task")
    elif not source.rstrip("\n").endswith("\n" + expected.rstrip("\n")):
        problems.append(f"{function}: the embedded source is not pipeline.py's {function}")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [*problems, f"{function}: the embedded source does not parse: {exc}"]
    calls: list[str] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == function:
            calls += _component_calls(stmt, task, tasks, plan)
        elif not _is_preamble(stmt):
            problems.append(f"top-level code, {statement_text(stmt)}")
    return calls + problems


def _component_calls(
    func: ast.FunctionDef, task: Mapping[str, Any], tasks: Mapping[str, Any], plan: Plan
) -> list[str]:
    """The nodes the component runs for this task: one per `run_step` call in its body."""
    slots = [arg.arg for arg in func.args.args if _annotation(arg) == "Input"]
    assigned = [
        stmt
        for stmt in ast.walk(func)
        if isinstance(stmt, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.NamedExpr)
        and "call" in {t.id for t in ast.walk(stmt) if isinstance(t, ast.Name)}
    ]
    if [ast.unparse(stmt) for stmt in assigned] != [_CALL]:
        return [f"{func.name}: `call` is not just {_CALL!r}"]
    try:
        argument = json.loads(task["inputs"]["parameters"]["step"]["runtimeValue"]["constant"])
        params, inputs = argument["params"], [str(read[0]) for read in argument["reads"]]
        named = str(argument["node"])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return [f"{func.name}: the task's step argument is not node, params and reads: {exc}"]
    found = []
    for call in ast.walk(func):
        if _is_run_step(call):
            found.append(_step_call(call, slots, params, inputs, plan))
    # the argument's node id names the step in its lineage events: it must be the node run
    return [
        _wired(result, slots, inputs, task, tasks, plan)
        if result == named
        else f"{result} under the name of {named!r}"
        for result in found
    ]


def _step_call(call: Any, slots: list[str], params: Any, inputs: list[str], plan: Plan) -> str:
    """The node a `run_step(kind, params, inputs, outputs, context)` call runs for a task."""
    paths = ", ".join(f"Path({slot}.path)" for slot in slots)
    zipped = f'dict(zip([read[0] for read in call["reads"]], [{paths}], strict=True))'
    try:
        kind = ast.literal_eval(call.args[0])
        if ast.dump(call.args[1]) != ast.dump(ast.parse(_PARAMS, mode="eval").body):
            return f"a run_step call whose params are not {_PARAMS}"
        if ast.dump(call.args[2]) != ast.dump(ast.parse(zipped, mode="eval").body):
            return f"a run_step call whose inputs are not {zipped}"
        outputs = [ast.literal_eval(key) for key in call.args[3].keys if key is not None]
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        return f"a run_step call that is not plain data: {exc}"
    if len(inputs) != len(slots):
        return f"a task naming {len(inputs)} inputs for {len(slots)} slots"
    return node_called(plan, kind, params, inputs, outputs)


def _wired(
    node_id: str,
    slots: list[str],
    inputs: list[str],
    task: Mapping[str, Any],
    tasks: Mapping[str, Any],
    plan: Plan,
) -> str:
    """`node_id` if each input slot of the task gets the upstream output the plan names."""
    if node_id not in {node.id for node in plan.nodes}:
        return node_id
    node = plan.node(node_id)
    artifacts = task.get("inputs", {}).get("artifacts", {})
    for slot, name in zip(slots, inputs, strict=True):
        ref = node.inputs[name]
        source = artifacts.get(slot, {}).get("taskOutputArtifact", {})
        producer = tasks.get(source.get("producerTask", ""), {}).get("taskInfo", {}).get("name")
        wanted = node_params(plan.node(ref.node)).outputs[ref.output]
        if (producer, source.get("outputArtifactKey")) != (ref.node, wanted):
            return f"{node_id} with {slot} ({name!r}) wired to {producer!r}"
    return node_id


def _annotation(arg: ast.arg) -> str:
    annotation = arg.annotation
    if isinstance(annotation, ast.Subscript) and isinstance(annotation.value, ast.Name):
        return annotation.value.id
    return ""


def _is_preamble(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Import):
        return all(alias.name in _PREAMBLE_MODULES for alias in stmt.names)
    return isinstance(stmt, ast.ImportFrom) and stmt.module in _PREAMBLE_MODULES


def _is_run_step(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "run_step"
    )
