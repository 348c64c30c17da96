"""Two runs side by side: the parameters that differ between the plans they executed, and
their metrics with the difference."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlcompile.plan import Plan


def flat_params(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested params as dotted keys; lists stay whole (as compact JSON), since an element
    only means something in its place."""
    if isinstance(value, Mapping):
        found: dict[str, Any] = {}
        for key, item in sorted(value.items()):
            found.update(flat_params(item, f"{prefix}.{key}" if prefix else str(key)))
        return found
    if isinstance(value, list):
        return {prefix: json.dumps(value, sort_keys=True, separators=(",", ":"))}
    return {prefix: value}


def param_differences(first: Plan | None, second: Plan | None) -> list[dict[str, Any]]:
    """Every plan setting and node parameter whose value differs. A step in only one plan
    is one entry, `"<kind> step"` on the side that has it and `"(absent)"` on the other."""
    if first is None or second is None:
        return []
    absent = "(absent)"
    a_nodes = {n.id: n for n in first.nodes}
    b_nodes = {n.id: n for n in second.nodes}

    def table(plan: Plan, other: Mapping[str, Any]) -> dict[str, Any]:
        found = {f"settings.{k}": v for k, v in flat_params(dict(plan.settings)).items()}
        for node in plan.nodes:
            if node.id not in other:
                found[node.id] = f"{node.kind} step"
                continue
            found.update({f"{node.id} {k}": v for k, v in flat_params(dict(node.params)).items()})
        return found

    a, b = table(first, b_nodes), table(second, a_nodes)
    differences = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, absent), b.get(key, absent)
        if va != vb:
            differences.append({"param": key, "first": va, "second": vb})
    return differences


def metric_differences(first: Mapping[str, Any], second: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Overall metrics of every model in either run record, with second minus first."""
    rows = []
    metrics_a, metrics_b = first.get("metrics") or {}, second.get("metrics") or {}
    for model in sorted(set(metrics_a) | set(metrics_b)):
        ma = (metrics_a.get(model) or {}).get("overall", {})
        mb = (metrics_b.get(model) or {}).get("overall", {})
        for metric in sorted(set(ma) | set(mb)):
            va, vb = ma.get(metric), mb.get(metric)
            delta = vb - va if isinstance(va, float) and isinstance(vb, float) else None
            rows.append(
                {"model": model, "metric": metric, "first": va, "second": vb, "delta": delta}
            )
    return rows
