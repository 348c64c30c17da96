"""The audit report: one self-contained HTML file for one run of one plan.

No script, no web font, no CDN: the CSS is inline and the DAG is an inline SVG laid out
here (nodes in columns by topological depth), so the file opens the same offline, in an
archive, in five years. Every text that comes from the spec, the plan or the data goes
through Jinja2's autoescaping.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcompile import __version__
from mlcompile.lineage.names import safe
from mlcompile.lineage.records import artifact_facts, data_checks, output_dir, read_artifact
from mlcompile.lineage.trace import params_summary, registry_history
from mlcompile.plan import Plan

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 190, 34, 60, 16, 16


@dataclass(frozen=True)
class Box:
    id: str
    kind: str
    status: str
    x: int
    y: int

    @property
    def anchor(self) -> str:
        return f"node-{safe(self.id)}"

    @property
    def label(self) -> str:
        return self.id if len(self.id) <= 26 else self.id[:25] + "…"


@dataclass(frozen=True)
class Edge:
    path: str


def layout(plan: Plan, statuses: Mapping[str, str]) -> tuple[list[Box], list[Edge], int, int]:
    """Boxes in columns by depth (longest path from a root), rows by id; curved edges."""
    depth: dict[str, int] = {}
    for node in plan.topological():
        deps = plan.dependencies(node.id)
        depth[node.id] = 1 + max((depth[d] for d in deps), default=-1)
    columns: dict[int, list[str]] = {}
    for node_id in sorted(depth):
        columns.setdefault(depth[node_id], []).append(node_id)
    boxes = {}
    for level, ids in columns.items():
        for row, node_id in enumerate(ids):
            boxes[node_id] = Box(
                id=node_id,
                kind=plan.node(node_id).kind,
                status=statuses.get(node_id, "planned"),
                x=MARGIN + level * (BOX_W + GAP_X),
                y=MARGIN + row * (BOX_H + GAP_Y),
            )
    edges = []
    for node in sorted(plan.nodes, key=lambda n: n.id):
        for dep in plan.dependencies(node.id):
            a, b = boxes[dep], boxes[node.id]
            x1, y1, x2, y2 = a.x + BOX_W, a.y + BOX_H // 2, b.x, b.y + BOX_H // 2
            middle = (x1 + x2) // 2
            edges.append(Edge(f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}"))
    width = 2 * MARGIN + len(columns) * BOX_W + max(len(columns) - 1, 0) * GAP_X
    tallest = max((len(ids) for ids in columns.values()), default=0)
    height = 2 * MARGIN + tallest * BOX_H + max(tallest - 1, 0) * GAP_Y
    return [boxes[k] for k in sorted(boxes)], edges, width, height


def report_data(
    plan: Plan, record: Mapping[str, Any], store_dir: Path, registry_dir: Path | None
) -> dict[str, Any]:
    """Everything the report shows, as plain data (also handy for tests and JSON output)."""
    steps = record.get("steps", {})
    nodes, checks, metrics, gates, registered = [], [], [], [], set()
    for node in plan.topological():
        step = steps.get(node.id) or {}
        outputs = {}
        for output, kind in sorted(node.outputs.items()):
            where = output_dir(record, node.id, output, store_dir)
            facts = artifact_facts(where, kind)
            outputs[output] = {
                "type": kind,
                "sha256": facts.get("sha256"),
                "rows": facts.get("rows"),
            }
            document = read_artifact(where, kind)
            if kind == "report" and document is not None:
                checks.append(
                    {
                        "node": node.id,
                        "report": document,
                        "checks": data_checks(node.params, document),
                    }
                )
            elif kind == "metrics" and document is not None:
                metrics.append({"node": node.id, "model": node.name, "metrics": document})
            elif kind == "decision" and document is not None:
                gates.append({"node": node.id, "decision": document})
        if node.kind == "register":
            registered.add(str(node.params.get("registered_name")))
        nodes.append(
            {
                "id": node.id,
                "anchor": f"node-{safe(node.id)}",
                "kind": node.kind,
                "status": step.get("status", "planned"),
                "seconds": step.get("seconds"),
                "key": step.get("key"),
                "error": step.get("error"),
                "summary": params_summary(node.kind, node.params),
                "params": json.dumps(node.params, indent=2, sort_keys=True, ensure_ascii=False),
                "fingerprint": node.fingerprint,
                "outputs": outputs,
            }
        )
    history = []
    if registry_dir is not None:
        for name in sorted(registered):
            history += [{"model": name, **e} for e in registry_history(registry_dir, name)]
    history.sort(key=lambda e: str(e.get("timestamp")))
    return {
        "plan": plan.name,
        "spec_sha256": plan.spec_sha256,
        "version": __version__,
        "run": {
            k: record.get(k)
            for k in ("id", "status", "exit_code", "started_at", "seconds", "error")
        },
        "nodes": nodes,
        "checks": checks,
        "metrics": metrics,
        "gates": gates,
        "history": history,
    }


def render_report(
    plan: Plan, record: Mapping[str, Any], store_dir: Path, registry_dir: Path | None
) -> str:
    import jinja2

    data = report_data(plan, record, store_dir, registry_dir)
    boxes, edges, width, height = layout(plan, {n["id"]: n["status"] for n in data["nodes"]})
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["num"] = _number
    template = env.get_template("report.html.j2")
    return template.render(
        **data, boxes=boxes, edges=edges, width=width, height=height, box_w=BOX_W, box_h=BOX_H
    )


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
