"""What each executor of the compiled IR runs, read back from pipeline.yaml (`ExecutorMap`).

A cluster runs the Python source the KFP compiler embedded in each executor, which it took
from pipeline.py with `inspect.getsource`. Each executor must carry exactly the component
function pipeline.py defines for its task's node (located by the compiler's own line
numbers), after KFP's import lines and nothing else, and that function must call the
runtime with its own node's step.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

import yaml

from mlcompile.backends.executors import Executor, literal, node_called, statement_text
from mlcompile.backends.templating import source_lines
from mlcompile.plan import Plan
from mlcompile_kfp.render import MODULE_FILE, function_names

IR_FILE = "pipeline.yaml"
# The modules KFP imports at the top of every component's source.
_PREAMBLE_MODULES = frozenset({"kfp", "kfp.dsl", "typing"})


def executors(files: Mapping[str, str], plan: Plan) -> list[Executor]:
    functions = _function_texts(files[MODULE_FILE])
    names = function_names(plan)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    ir = next(doc for doc in yaml.load_all(files[IR_FILE], Loader=loader) if doc)
    found = []
    for _, task in sorted(ir["root"]["dag"]["tasks"].items()):
        node = str(task["taskInfo"]["name"])
        label = ir["components"][task["componentRef"]["name"]]["executorLabel"]
        container = ir["deploymentSpec"]["executors"][label]["container"]
        args = list(container["args"])
        function = str(args[args.index("--function_to_execute") + 1])
        expected = functions.get(names.get(node, ""))
        invokes = _invoked(str(container["command"][-1]), function, expected, plan)
        found.append(Executor(label, node, tuple(invokes)))
    return found


def _function_texts(module: str) -> dict[str, str]:
    """Each top-level function of the module: its text from `def` to its last line."""
    lines = source_lines(module)
    return {
        stmt.name: "".join(lines[stmt.lineno - 1 : stmt.end_lineno])
        for stmt in ast.parse(module).body
        if isinstance(stmt, ast.FunctionDef)
    }


def _invoked(source: str, function: str, expected: str | None, plan: Plan) -> list[str]:
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
            calls += [_step_call(call, plan) for call in ast.walk(stmt) if _is_run_step(call)]
        elif not _is_preamble(stmt):
            problems.append(f"top-level code, {statement_text(stmt)}")
    return calls + problems


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


def _step_call(call: Any, plan: Plan) -> str:
    """The node a `run_step(kind, params, inputs, outputs, context)` call runs."""
    try:
        kind, params = literal(call.args[0]), literal(call.args[1])
        inputs, outputs = (
            [ast.literal_eval(key) for key in arg.keys if key is not None] for arg in call.args[2:4]
        )
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        return f"a run_step call that is not plain data: {exc}"
    return node_called(plan, kind, params, inputs, outputs)
