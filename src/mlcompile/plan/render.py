"""Pictures of a plan: an indented text tree for terminals, Mermaid for docs and reviews."""

from __future__ import annotations

import json

from mlcompile.plan.model import Plan


def longest_chain(plan: Plan) -> list[str]:
    """The longest run of steps that must happen one after another: the floor on wall time
    however many workers run the plan."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(n.id for n in plan.nodes)
    graph.add_edges_from((dep, n.id) for n in plan.nodes for dep in plan.dependencies(n.id))
    return list(nx.dag_longest_path(graph, topo_order=[n.id for n in plan.topological()]))


def to_text(plan: Plan) -> str:
    """Steps wave by wave (a wave's steps may run in parallel), with what each reads."""
    waves = plan.waves()
    chain = longest_chain(plan)
    lines = [
        f"plan {plan.name} ({len(plan.nodes)} steps in {len(waves)} waves)",
        f"longest chain ({len(chain)} steps): {' -> '.join(chain)}",
    ]
    for number, wave in enumerate(waves, start=1):
        lines.append(f"wave {number}:")
        for node_id in wave:
            deps = plan.dependencies(node_id)
            after = f"  <- {', '.join(deps)}" if deps else ""
            lines.append(f"  {node_id}{after}")
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
