"""What changed between two plans, node by node, and why.

A node's fingerprint hashes its kind, params, input fingerprints and the runtime version,
so a changed fingerprint has one of three causes, each reported: its own params changed
(every changed key with old -> new), its inputs were rewired, or something upstream
changed (the inputs whose fingerprints differ). Nodes are matched by id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlcompile.plan import Node, Plan

_MISSING = "<absent>"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested params as dotted keys; lists of objects by name (features) or position (checks)."""
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key in sorted(value):
            flat.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return flat or {prefix: {}}
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        named = all(isinstance(v.get("name"), str) for v in value)
        flat = {}
        for index, item in enumerate(value):
            if named:
                rest = {k: v for k, v in item.items() if k != "name"}
                flat.update(flatten(rest, f"{prefix}[{item['name']}]"))
            else:
                flat.update(flatten(item, f"{prefix}[{index}]"))
        return flat
    return {prefix: value}


def param_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    a, b = flatten(old), flatten(new)
    return [
        {"key": key, "old": a.get(key, _MISSING), "new": b.get(key, _MISSING)}
        for key in sorted(set(a) | set(b))
        if a.get(key, _MISSING) != b.get(key, _MISSING)
    ]


def diff_plans(old: Plan, new: Plan) -> dict[str, Any]:
    """Nodes added, removed and changed (with reasons); unchanged ones are only counted."""
    before = {n.id: n for n in old.nodes}
    after = {n.id: n for n in new.nodes}
    changed = []
    for node_id in sorted(set(before) & set(after)):
        a, b = before[node_id], after[node_id]
        if a.fingerprint == b.fingerprint:
            continue
        changed.append(_why(a, b, before, after))
    return {
        "old": {"plan": old.name, "spec_sha256": old.spec_sha256, "nodes": len(before)},
        "new": {"plan": new.name, "spec_sha256": new.spec_sha256, "nodes": len(after)},
        "added": [_brief(after[i]) for i in sorted(set(after) - set(before))],
        "removed": [_brief(before[i]) for i in sorted(set(before) - set(after))],
        "changed": changed,
        "unchanged": sum(
            1 for i in set(before) & set(after) if before[i].fingerprint == after[i].fingerprint
        ),
    }


def _brief(node: Node) -> dict[str, Any]:
    return {"id": node.id, "kind": node.kind}


def _why(a: Node, b: Node, before: Mapping[str, Node], after: Mapping[str, Node]) -> dict[str, Any]:
    wiring_a = {k: (r.node, r.output) for k, r in a.inputs.items()}
    wiring_b = {k: (r.node, r.output) for k, r in b.inputs.items()}
    rewired = [
        {
            "input": name,
            "old": "/".join(wiring_a[name]) if name in wiring_a else _MISSING,
            "new": "/".join(wiring_b[name]) if name in wiring_b else _MISSING,
        }
        for name in sorted(set(wiring_a) | set(wiring_b))
        if wiring_a.get(name) != wiring_b.get(name)
    ]
    upstream = sorted(
        {
            ref.node
            for name, ref in b.inputs.items()
            if wiring_a.get(name) == (ref.node, ref.output)
            and ref.node in before
            and before[ref.node].fingerprint != after[ref.node].fingerprint
        }
    )
    params = param_changes(a.params, b.params)
    reasons = []
    if a.kind != b.kind:
        reasons.append("kind changed")
    if params:
        reasons.append("params changed")
    if rewired:
        reasons.append("inputs rewired")
    if upstream:
        reasons.append("upstream changed")
    if a.outputs != b.outputs:
        reasons.append("outputs changed")
    return {
        "id": b.id,
        "kind": b.kind,
        "reasons": reasons or ["runtime version changed"],
        "params": params,
        "rewired": rewired,
        "upstream": upstream,
    }


def diff_text(result: Mapping[str, Any]) -> str:
    """The diff for a terminal: one line per node, indented details below."""
    lines = [
        f"{result['old']['plan']} ({result['old']['nodes']} steps) -> "
        f"{result['new']['plan']} ({result['new']['nodes']} steps): "
        f"{len(result['added'])} added, {len(result['removed'])} removed, "
        f"{len(result['changed'])} changed, {result['unchanged']} unchanged"
    ]
    lines += [f"+ {n['id']} ({n['kind']})" for n in result["added"]]
    lines += [f"- {n['id']} ({n['kind']})" for n in result["removed"]]
    for node in result["changed"]:
        lines.append(f"~ {node['id']}: {', '.join(node['reasons'])}")
        lines += [f"    {p['key']}: {_show(p['old'])} -> {_show(p['new'])}" for p in node["params"]]
        lines += [f"    input {r['input']}: {r['old']} -> {r['new']}" for r in node["rewired"]]
        lines += [f"    upstream changed: {u}" for u in node["upstream"]]
    return "\n".join(lines)


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:59] + "…"
