"""Pictures of a plan: an indented text tree for terminals, Mermaid for docs and reviews."""

from __future__ import annotations

import json

from mlcompile.plan.model import Plan


def to_text(plan: Plan) -> str:
    """One line per node in execution order, with what it reads."""
    lines = [f"plan {plan.name} ({len(plan.nodes)} steps)"]
    for node in plan.topological():
        deps = plan.dependencies(node.id)
        after = f"  <- {', '.join(deps)}" if deps else ""
        lines.append(f"  {node.id}{after}")
    return "\n".join(lines) + "\n"


def _mermaid_label(text: str) -> str:
    # Mermaid labels are quoted strings; JSON-escape, then neutralise what Mermaid reads as markup.
    return json.dumps(text)[1:-1].replace("#", "#35;").replace('\\"', "#quot;")


def to_mermaid(plan: Plan) -> str:
    ids = {node.id: f"n{i}" for i, node in enumerate(sorted(plan.nodes, key=lambda n: n.id))}
    lines = ["flowchart LR"]
    for node in sorted(plan.nodes, key=lambda n: n.id):
        lines.append(f'  {ids[node.id]}["{_mermaid_label(node.id)}"]')
    for node in sorted(plan.nodes, key=lambda n: n.id):
        for _, ref in sorted(node.inputs.items()):
            lines.append(f'  {ids[ref.node]} -- "{_mermaid_label(ref.output)}" --> {ids[node.id]}')
    return "\n".join(lines) + "\n"
