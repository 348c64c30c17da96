"""How plan objects are named in OpenLineage: one namespace per pipeline, stable names.

Build-time and run-time events use the same names, so a lineage server joins the plan's
static jobs with the runs of those jobs. Names hold project-relative paths only: the same
project checked out in two places gives the same names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlcompile.plan import Node, Plan


def namespace(plan_name: str) -> str:
    return f"mlcompile://{plan_name}"


def artifact(node_id: str, output: str) -> str:
    return f"artifacts/{node_id}/{output}"


def project_file(relative: str) -> str:
    return f"files/{relative}"


def registered_model(registered_name: str) -> str:
    return f"registry/{registered_name}"


def safe(node_id: str) -> str:
    """A node id as a file name (ids hold ':' and whatever names the spec chose)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in node_id)


@dataclass(frozen=True)
class Port:
    """One dataset a step reads or writes, with the artifact type behind it."""

    name: str
    type: str
    node: str | None = None  # the node whose output this is; None outside the store
    output: str | None = None


def reads(node: Node) -> list[Port]:
    ports = [Port(artifact(r.node, r.output), r.type, r.node, r.output) for r in _inputs(node)]
    if node.kind == "ingest" and node.params.get("format") != "sql":
        ports.append(Port(project_file(str(node.params["path"])), "file"))
    return sorted(ports, key=lambda p: p.name)


def writes(node: Node) -> list[Port]:
    ports = [Port(artifact(node.id, out), kind, node.id, out) for out, kind in node.outputs.items()]
    if node.kind in ("score", "kserve") and node.params.get("output"):
        ports.append(Port(project_file(str(node.params["output"])), "file"))
    if node.kind == "register":
        ports.append(Port(registered_model(str(node.params["registered_name"])), "model"))
    return sorted(ports, key=lambda p: p.name)


def _inputs(node: Node) -> list[Any]:
    return [node.inputs[k] for k in sorted(node.inputs)]


def check_text(rule: Mapping[str, Any]) -> str:
    """A schema check as a reader writes it: `>= -120`, `isin [EWR, JFK]`."""
    kind = rule.get("check")
    symbols = {"ge": ">=", "le": "<=", "gt": ">", "lt": "<"}
    if kind in symbols:
        return f"{symbols[str(kind)]} {rule.get('value')}"
    if kind in ("isin", "notin"):
        return f"{kind} [{', '.join(str(v) for v in rule.get('values', []))}]"
    if kind == "regex":
        return f"regex {rule.get('pattern')}"
    return f"{kind} {rule.get('min')}..{rule.get('max')}"


def column_rules(columns: Mapping[str, Any]) -> dict[str, list[str]]:
    """Per column, every rule the validate step enforces, in words."""
    rules: dict[str, list[str]] = {}
    for column, spec in sorted(columns.items()):
        texts = [f"dtype {spec.get('dtype')}"] if spec.get("dtype") else []
        texts.append("nullable" if spec.get("nullable") else "not null")
        if spec.get("unique"):
            texts.append("unique")
        texts += [check_text(rule) for rule in spec.get("checks") or []]
        rules[column] = texts
    return rules


def declared_schemas(plan: Plan) -> dict[str, dict[str, Any]]:
    """Dataset name -> the columns a validate node declares for it.

    The schema describes the raw file, what ingest read from it, and what validate passes
    on, so all three datasets carry it.
    """
    found: dict[str, dict[str, Any]] = {}
    for node in plan.nodes:
        columns = (node.params.get("schema") or {}).get("columns")
        if node.kind != "validate" or not columns:
            continue
        found[artifact(node.id, "dataset")] = columns
        for ref in node.inputs.values():
            found[artifact(ref.node, ref.output)] = columns
            upstream = plan.node(ref.node)
            if upstream.kind == "ingest" and upstream.params.get("format") != "sql":
                found[project_file(str(upstream.params["path"]))] = columns
    return found
