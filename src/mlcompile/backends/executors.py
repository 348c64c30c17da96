"""Reading back what each emitted executor runs: the optional `executors` hook of a backend.

An orchestrator runs what a backend wrote, not the plan: a template or source-extraction bug
can make one step's executor carry another step's code (or text from the spec) while every
name still looks right. A backend that implements `ExecutorMap` decodes its own emitted
files into one `Executor` per unit the orchestrator runs, naming the plan node the
orchestrator attributes it to and the nodes its code actually invokes; the conformance kit
then requires every node to have exactly one executor, invoking that node and nothing else.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from mlcompile.plan import Plan, canonical_json


@dataclass(frozen=True)
class Executor:
    """One unit an orchestrator runs, as decoded from the emitted files.

    `name` is the orchestrator's name for it, `node` the plan node id it is attributed to
    (by the orchestrator's own naming: a task's display name, a target's index), and
    `invokes` what its code runs: plan node ids, or a description of anything else it
    would execute (extra top-level code, a call that matches no node). A sound executor
    has `invokes == (node,)`.
    """

    name: str
    node: str
    invokes: tuple[str, ...]


@runtime_checkable
class ExecutorMap(Protocol):
    def executors(self, files: Mapping[str, str], plan: Plan) -> Sequence[Executor]: ...


def node_called(
    plan: Plan, kind: str, params: Any, inputs: Iterable[str], outputs: Iterable[str]
) -> str:
    """The id of the one plan node a runtime call with these arguments runs (a step is its
    kind, params and artifact names), or a description of the call when none or several
    match."""
    wanted = (kind, canonical_json(params), sorted(inputs), sorted(outputs))
    found = [
        node.id
        for node in plan.nodes
        if (node.kind, canonical_json(node.params), sorted(node.inputs), sorted(node.outputs))
        == wanted
    ]
    if len(found) == 1:
        return found[0]
    return f"a {kind!r} step call matching {len(found)} plan nodes"


def literal(node: ast.expr) -> Any:
    """The value of a literal in generated code, `float('nan')` and the like included."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "float"
        and len(node.args) == 1
        and not node.keywords
    ):
        return float(ast.literal_eval(node.args[0]))
    if isinstance(node, ast.List):
        return [literal(item) for item in node.elts]
    if isinstance(node, ast.Dict):
        return {
            ast.literal_eval(key): literal(value)
            for key, value in zip(node.keys, node.values, strict=True)
            if key is not None
        }
    return ast.literal_eval(node)


def statement_text(stmt: ast.stmt) -> str:
    """A short description of a statement that should not be there."""
    text = " ".join(ast.unparse(stmt).split())
    return f"line {stmt.lineno}: {text[:80]}"
