"""The Plan: a frozen, versioned, hashed DAG of steps. Backends see nothing else."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from mlcompile.plan.kinds import STEP_KINDS, StepKind

PLAN_FORMAT = "mlcompile.plan/v1"
ARTIFACT_TYPES = frozenset(
    {
        "dataset",
        "model",
        "transformer",
        "metrics",
        "report",
        "decision",
        "registration",
        "file",
        "drift",
        "diagnosis",
        "tuning",
    }
)


def canonical_json(value: Any) -> str:
    """The one JSON encoding used for hashing and for plan.json: sorted, compact, stable."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def indented_json(value: Any, encoded: str | None = None) -> str:
    """`value` as sorted JSON indented by two, for files people read and diff. orjson writes a
    large plan in a twentieth of the time json's pure-Python indenting takes; json is kept for
    what orjson cannot write alike: NaN and infinities (orjson writes null) and integers past
    64 bits. `encoded`, the value as json already wrote it, spares encoding it again to look
    for NaN: without the words NaN and Infinity, it has none."""
    try:
        if encoded is None or "NaN" in encoded or "Infinity" in encoded:
            json.dumps(value, allow_nan=False, check_circular=False)  # finds NaN, at C speed
        text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    except (ValueError, TypeError):
        text = json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)
    return text + "\n"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class InputRef:
    node: str
    output: str
    type: str


@dataclass(frozen=True)
class Node:
    id: str
    kind: StepKind
    name: str
    params: Mapping[str, Any]
    inputs: Mapping[str, InputRef]
    outputs: Mapping[str, str]
    fingerprint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "params": self.params,
            "inputs": {
                k: {"node": v.node, "output": v.output, "type": v.type}
                for k, v in sorted(self.inputs.items())
            },
            "outputs": dict(sorted(self.outputs.items())),
            "fingerprint": self.fingerprint,
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Node:
        if data["kind"] not in STEP_KINDS:
            raise ValueError(f"node {data['id']!r} has an unknown step kind {data['kind']!r}")
        return Node(
            id=data["id"],
            kind=StepKind(data["kind"]),
            name=data["name"],
            params=data["params"],
            inputs={k: InputRef(**v) for k, v in data["inputs"].items()},
            outputs=dict(data["outputs"]),
            fingerprint=data["fingerprint"],
        )


@dataclass(frozen=True)
class Plan:
    name: str
    spec_sha256: str
    settings: Mapping[str, Any]
    nodes: tuple[Node, ...]
    format: str = PLAN_FORMAT
    _by_id: dict[str, Node] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id.update({n.id: n for n in self.nodes})

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def node(self, node_id: str) -> Node:
        return self._by_id[node_id]

    def dependencies(self, node_id: str) -> list[str]:
        return sorted({ref.node for ref in self._by_id[node_id].inputs.values()})

    def topological(self) -> list[Node]:
        """Nodes in a deterministic execution order (Kahn, ties broken by id)."""
        return list(self._order)

    @functools.cached_property
    def _order(self) -> tuple[Node, ...]:
        import heapq

        waiting = {n.id: set(self.dependencies(n.id)) for n in self.nodes}
        users: dict[str, list[str]] = {n.id: [] for n in self.nodes}
        for node_id, deps in waiting.items():
            for dep in deps:
                users[dep].append(node_id)
        ready = [node_id for node_id, deps in waiting.items() if not deps]
        heapq.heapify(ready)
        order: list[Node] = []
        while ready:
            node_id = heapq.heappop(ready)
            order.append(self._by_id[node_id])
            for user in users[node_id]:
                waiting[user].discard(node_id)
                if not waiting[user]:
                    heapq.heappush(ready, user)
        return tuple(order)

    def waves(self) -> list[list[str]]:
        """Steps grouped by depth: every step in a wave depends only on earlier waves, so the
        steps of one wave may run side by side."""
        depth: dict[str, int] = {}
        for node in self.topological():
            deps = self.dependencies(node.id)
            depth[node.id] = 1 + max((depth[d] for d in deps), default=-1)
        grouped: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for node_id, level in sorted(depth.items()):
            grouped[level].append(node_id)
        return grouped

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "name": self.name,
            "spec_sha256": self.spec_sha256,
            "settings": self.settings,
            "nodes": [n.to_dict() for n in sorted(self.nodes, key=lambda n: n.id)],
        }

    # A large plan takes seconds to encode: each form is made once, from one dict.
    @functools.cached_property
    def _dict(self) -> dict[str, Any]:
        return self.to_dict()

    @functools.cached_property
    def _compact(self) -> str:
        return json.dumps(self._dict, separators=(",", ":"), ensure_ascii=False)

    @functools.cached_property
    def _json(self) -> str:
        return indented_json(self._dict, self._compact)

    def to_json(self) -> str:
        """plan.json's text."""
        return self._json

    def compact_json(self) -> str:
        """The plan as compact JSON, unsorted (NaN written as json writes it), for the plan
        cache."""
        return self._compact

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Plan:
        if data.get("format") != PLAN_FORMAT:
            raise ValueError(f"not an {PLAN_FORMAT} plan (format: {data.get('format')!r})")
        return Plan(
            name=data["name"],
            spec_sha256=data["spec_sha256"],
            settings=data["settings"],
            nodes=tuple(Node.from_dict(n) for n in data["nodes"]),
        )

    @staticmethod
    def from_json(text: str) -> Plan:
        return Plan.from_dict(json.loads(text))
