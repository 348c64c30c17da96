"""What each ZenML step of the emitted pipeline.py runs, read back from it (`ExecutorMap`).

ZenML names each step after its function, and the run summary maps it to a plan node
through the module's `NODES`; the step runs its body and, since every step imports the
module, all of the module's top-level code. So each step must call `_run` once, with its own
node's step, the pipeline must call each step once, and the module's top level may hold only
the template's kinds of statement: imports, assignments of plain data, function definitions
whose decorators, defaults and annotations call nothing but ZenML's configuration classes,
and the `__main__` guard. Anything else is reported as code every step executes.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Mapping

from mlcompile.backends.executors import Executor, literal, node_called, statement_text
from mlcompile.plan import Plan
from mlcompile_zenml.render import MODULE_FILE

PIPELINE_FUNCTION = "mlcompile_pipeline"
# What the template calls while defining functions (decorators and annotations).
_DEFINITION_CALLS = frozenset({"pipeline", "CachePolicy", "ArtifactConfig"})


def executors(files: Mapping[str, str], plan: Plan) -> list[Executor]:
    tree = ast.parse(files[MODULE_FILE])
    extra = tuple(f"module-level code, {text}" for text in _extra_code(tree))
    steps = {
        stmt.name: stmt
        for stmt in tree.body
        if isinstance(stmt, ast.FunctionDef)
        and any(_is_name(d, "step") for d in stmt.decorator_list)
    }
    claimed = _nodes_table(tree)
    called = _pipeline_calls(tree)
    found = []
    for name in sorted(set(steps) | set(claimed)):
        invokes: list[str] = []
        if name in steps:
            invokes += _run_calls(steps[name], plan)
        else:
            invokes.append(f"NODES names {name}, which the module does not define as a step")
        if called[name] != 1:
            invokes.append(f"the pipeline calls {name} {called[name]} times")
        found.append(Executor(name, claimed.get(name, ""), (*invokes, *extra)))
    return found


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _nodes_table(tree: ast.Module) -> dict[str, str]:
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(_is_name(t, "NODES") for t in stmt.targets):
            return {str(k): str(v) for k, v in literal(stmt.value).items()}
    return {}


def _pipeline_calls(tree: ast.Module) -> Counter[str]:
    """How many times the pipeline function calls each function by name."""
    calls: Counter[str] = Counter()
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == PIPELINE_FUNCTION:
            for node in ast.walk(stmt):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    calls[node.func.id] += 1
    return calls


def _run_calls(function: ast.FunctionDef, plan: Plan) -> list[str]:
    """The node of each `_run(node_id, kind, params, inputs, output_names)` call in a step."""
    found = []
    for call in ast.walk(function):
        if not (isinstance(call, ast.Call) and _is_name(call.func, "_run")):
            continue
        try:
            node_id, kind, params = (literal(arg) for arg in call.args[:3])
            inputs = call.args[3]
            assert isinstance(inputs, ast.Dict)
            names = [ast.literal_eval(key) for key in inputs.keys if key is not None]
            outputs = literal(call.args[4])
        except (ValueError, TypeError, IndexError, AssertionError) as exc:
            found.append(f"a _run call that is not plain data: {exc!r}")
            continue
        node = node_called(plan, kind, params, names, outputs)
        found.append(node if node == node_id else f"{node} (the call names {node_id!r})")
    return found


def _extra_code(tree: ast.Module) -> list[str]:
    """Top-level statements outside the template's kinds, and definition-time calls."""
    found = []
    for index, stmt in enumerate(tree.body):
        if index == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # the docstring
        if isinstance(stmt, ast.Import | ast.ImportFrom) or _is_main_guard(stmt):
            continue
        if isinstance(stmt, ast.Assign) and _is_plain_data(stmt.value):
            continue
        if isinstance(stmt, ast.FunctionDef):
            found += [
                f"line {stmt.lineno}: defining {stmt.name} calls {call}"
                for call in _definition_calls(stmt)
            ]
            continue
        found.append(statement_text(stmt))
    return found


def _is_plain_data(value: ast.expr) -> bool:
    try:
        literal(value)
    except (ValueError, TypeError, SyntaxError):
        return False
    return True


def _is_main_guard(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.If)
        and isinstance(stmt.test, ast.Compare)
        and _is_name(stmt.test.left, "__name__")
        and isinstance(stmt.test.comparators[0], ast.Constant)
        and stmt.test.comparators[0].value == "__main__"
    )


def _definition_calls(function: ast.FunctionDef) -> list[str]:
    """Calls Python makes while defining `function`, other than ZenML's configuration."""
    args = function.args
    evaluated: list[ast.expr] = [*function.decorator_list, *args.defaults]
    evaluated += [d for d in args.kw_defaults if d is not None]
    evaluated += [a.annotation for a in (*args.args, *args.kwonlyargs) if a.annotation]
    if function.returns is not None:
        evaluated.append(function.returns)
    return [
        ast.unparse(node)
        for expr in evaluated
        for node in ast.walk(expr)
        if isinstance(node, ast.Call)
        and not (isinstance(node.func, ast.Name) and node.func.id in _DEFINITION_CALLS)
    ]
