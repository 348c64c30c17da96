"""The audit report: one self-contained HTML file for one run of one plan.

No script, no web font, no CDN: the CSS is inline, the DAG and every model's pictures are
inline SVG laid out here (nodes in columns by topological depth; charts in
`lineage.pictures`), so the file opens the same offline, in an archive, in five years.
Every text that comes from the spec, the plan or the data goes through Jinja2's
autoescaping.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcompile import __version__
from mlcompile.lineage.pictures import model_pictures, tuning_chart
from mlcompile.lineage.trace import params_summary, registry_history
from mlcompile.plan import Node, Plan, StepKind, make_node_id
from mlcompile.runtime.trail.names import safe
from mlcompile.runtime.trail.records import (
    artifact_facts,
    data_checks,
    output_dir,
    read_artifact,
    read_json,
)
from mlcompile.tasks import PREDICTION

if TYPE_CHECKING:
    import jinja2

    from mlcompile.runtime.registry import ModelRegistry

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 190, 34, 60, 16, 16
# One drift picture: its size, the plot's margins (room for the y label on the left, the
# legend on top, the x labels below) and how much of a category name fits under a bar.
PIC_W, PIC_H, PIC_LEFT, PIC_RIGHT, PIC_TOP = 360, 150, 40, 8, 24
PIC_BOTTOM = {"numeric": 18, "categorical": 56}
PIC_LABEL = 12


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


@dataclass(frozen=True)
class Baseline:
    """The model each model is drawn beside: its label and diagnosis, by model name."""

    label: str
    diagnoses: Mapping[str, Mapping[str, Any]]


def run_diagnoses(
    plan: Plan, record: Mapping[str, Any], store_dir: Path
) -> dict[str, dict[str, Any]]:
    """Model name -> the diagnosis its evaluate step wrote in this run."""
    found = {}
    for node in plan.nodes:
        if node.kind == "evaluate" and "diagnosis" in node.outputs:
            where = output_dir(record, node.id, "diagnosis", store_dir)
            document = read_artifact(where, "diagnosis")
            if isinstance(document, dict):
                found[node.name] = document
    return found


def run_tuning(
    plan: Plan, record: Mapping[str, Any], store_dir: Path, model: str
) -> dict[str, Any] | None:
    """The search this run made for the model's parameters (tuning.json), if it made one."""
    node = make_node_id(StepKind.TUNE, model)
    if node not in {n.id for n in plan.nodes}:
        return None
    document = read_artifact(output_dir(record, node, "tuning", store_dir), "tuning")
    return document if isinstance(document, dict) else None


def production_baseline(
    plan: Plan,
    record: Mapping[str, Any],
    store_dir: Path,
    registry: ModelRegistry | None,
    model: str,
) -> tuple[str, dict[str, Any]] | None:
    """The version that stood at the model's production alias when the run started, with its
    diagnosis; None when there was none, it kept no diagnosis, or it is this very model."""
    if registry is None:
        return None
    watching = [
        n
        for n in plan.topological()
        if n.kind in ("gate", "register")
        and n.params.get("model") == model
        and n.params.get("registered_name")
    ]
    if not watching:
        return None
    first = watching[0]
    name = str(first.params["registered_name"])
    alias = str(first.params.get("compare_alias") or "production")
    started = _moment(record.get("started_at"))
    version = None
    for event in registry_history(registry, name):
        if event.get("alias") == alias and _moment(event.get("timestamp")) < started:
            version = event.get("to_version")
    if version is None:
        return None
    folder = registry.get(name, int(version)).path
    diagnosis = read_json(folder / "diagnosis.json")
    registration = read_json(folder / "registration.json") or {}
    trained = artifact_facts(
        output_dir(record, make_node_id(StepKind.TRAIN, model), "model", store_dir), "model"
    )
    if not isinstance(diagnosis, dict) or registration.get("model_sha256") == trained.get("sha256"):
        return None
    return f"{alias} v{version}", diagnosis


def _moment(text: Any) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(str(text))
    except ValueError:
        return dt.datetime.max.replace(tzinfo=dt.UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def model_sections(
    plan: Plan,
    record: Mapping[str, Any],
    store_dir: Path,
    registry: ModelRegistry | None,
    metrics: list[dict[str, Any]],
    baseline: Baseline | None,
) -> list[dict[str, Any]]:
    """Per evaluated model: its pictures (beside the baseline's, or production's), then its
    metrics."""
    diagnoses = run_diagnoses(plan, record, store_dir)
    sections = []
    for position, item in enumerate(metrics):
        model = item["model"]
        other: tuple[str, Mapping[str, Any]] | None = None
        if baseline is not None and model in baseline.diagnoses:
            other = (baseline.label, baseline.diagnoses[model])
        elif baseline is None:
            other = production_baseline(plan, record, store_dir, registry, model)
        diagnosis = diagnoses.get(model)
        tuning = run_tuning(plan, record, store_dir, model)
        sections.append(
            {
                **item,
                "anchor": f"model-{position}",
                "compared_with": other[0] if other else None,
                "pictures": model_pictures(
                    diagnosis, item["metrics"], other[1] if other else None,
                    other[0] if other else "",
                ),
                "tuning": tuning,
                "tuning_chart": tuning_chart(tuning) if tuning else None,
            }
        )  # fmt: skip
    return sections


def report_data(
    plan: Plan,
    record: Mapping[str, Any],
    store_dir: Path,
    registry: ModelRegistry | None,
    baseline: Baseline | None = None,
) -> dict[str, Any]:
    """Everything the report shows, as plain data (also handy for tests and JSON output)."""
    steps = record.get("steps", {})
    nodes, checks, metrics, gates, monitoring, registered = [], [], [], [], [], set()
    for node in plan.topological():
        step = steps.get(node.id) or {}
        outputs = {}
        documents: dict[str, Any] = {}
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
            elif kind == "decision" and document is not None and node.kind == "gate":
                gates.append({"node": node.id, "decision": document})
            documents[kind] = document
        if node.kind == "monitor" and (documents.get("drift") or documents.get("decision")):
            monitoring.append(monitor_data(node, documents.get("drift"), documents.get("decision")))
        # a monitor's history shows which version stood at the watched alias, and since when
        if node.kind in ("register", "monitor"):
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
    if registry is not None:
        for name in sorted(registered):
            history += [{"model": name, **e} for e in registry_history(registry, name)]
    # an old run's report shows the registry as it stood when the run ended, not what
    # happened to those models since
    if record.get("finished_at"):
        ended = _moment(record["finished_at"])
        history = [e for e in history if _moment(e.get("timestamp")) <= ended]
    history.sort(key=lambda e: str(e.get("timestamp")))
    return {
        "plan": plan.name,
        "deploy": plan.settings.get("deploy", True),
        "spec_sha256": plan.spec_sha256,
        "version": __version__,
        "run": {
            k: record.get(k)
            for k in ("id", "status", "exit_code", "started_at", "seconds", "error")
        },
        "nodes": nodes,
        "checks": checks,
        "metrics": metrics,
        "models": model_sections(plan, record, store_dir, registry, metrics, baseline),
        "gates": gates,
        "monitoring": monitoring,
        "history": history,
    }


def monitor_data(
    node: Node, drift: Mapping[str, Any] | None, decision: Mapping[str, Any] | None
) -> dict[str, Any]:
    """One monitor's drift and decision, shaped for the report: features that failed a drift
    check first, then in the model's input order with the prediction last."""
    drift, decision = drift or {}, decision or {}
    failing: dict[str, list[str]] = {}
    for check in decision.get("checks") or []:
        if check.get("kind") == "drift" and not check.get("passed") and "feature" in check:
            failing.setdefault(str(check["feature"]), []).append(str(check.get("check")))
    measured = drift.get("features") or {}
    order = [*map(str, node.params.get("features") or []), PREDICTION]
    position = {name: i for i, name in enumerate(order)}
    names = sorted(measured, key=lambda n: (n not in failing, position.get(n, len(order)), n))
    # by position, not by name: two names can differ only in characters an id cannot hold
    anchors = {name: f"drift-{safe(node.id)}-{i}" for i, name in enumerate(names)}
    features = [
        {
            "name": name,
            "anchor": anchors[name],
            "failed": failing.get(name, []),
            "measures": measured[name],
        }
        for name in names
    ]
    return {
        "node": node.id,
        "anchor": f"monitor-{safe(node.id)}",
        "monitor": decision.get("monitor", drift.get("monitor")),
        "model": decision.get("model", drift.get("model")),
        "registered_name": decision.get("registered_name", drift.get("registered_name")),
        "version": decision.get("version", drift.get("version")),
        "alias": decision.get("alias", drift.get("alias")),
        "reference": drift.get("reference") or {},
        "current": drift.get("current") or {"rows": decision.get("rows")},
        "verdict": _verdict(decision),
        "retrain": decision.get("retrain"),
        "reason": decision.get("reason"),
        "failed": decision.get("failed") or {},
        "checks": [
            {**check, "anchor": anchors.get(check.get("feature"))}
            for check in decision.get("checks") or []
        ],
        "features": features,
        "performance": performance_table(
            drift.get("performance"), drift.get("production_performance")
        ),
    }


def _verdict(decision: Mapping[str, Any]) -> str:
    if not decision:
        return "no decision"
    if not decision.get("judged"):
        return "not judged"
    return "passed" if decision.get("passed") else "FAILED"


def performance_table(
    current: Mapping[str, Any] | None, production: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Metrics on the labelled current rows next to the version's own test metrics: one row
    per metric, a (current, production) pair of columns per slice."""
    if not current and not production:
        return None
    current, production = current or {}, production or {}
    slices = sorted(
        {
            (str(column), str(value))
            for side in (current, production)
            for column, values in (side.get("slices") or {}).items()
            for value in values
        }
    )

    def sliced(side: Mapping[str, Any], column: str, value: str) -> Mapping[str, Any]:
        return ((side.get("slices") or {}).get(column) or {}).get(value) or {}

    overall = (current.get("overall") or {}, production.get("overall") or {})
    groups = [("overall", (current.get("rows"), production.get("rows")), *overall)]
    for column, value in slices:
        now, then = sliced(current, column, value), sliced(production, column, value)
        groups.append((f"{column}={value}", (now.get("rows"), then.get("rows")), now, then))
    return {
        "task": current.get("task", production.get("task")),
        "groups": [{"label": label, "rows": rows} for label, rows, _, _ in groups],
        "metrics": [
            {"name": name, "pairs": [(now.get(name), then.get(name)) for *_, now, then in groups]}
            for name in sorted({*overall[0], *overall[1]})
        ],
    }


@dataclass(frozen=True)
class Bar:
    side: str  # "ref" or "cur"
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Slot:
    """One bin or category: its two bars and the tooltip that says what they show."""

    title: str
    bars: tuple[Bar, Bar]


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    title: str
    anchor: str  # SVG text-anchor
    rotate: bool


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    left: int
    right: int
    top: int
    baseline: int
    peak: str  # the share the top of the plot stands for
    slots: list[Slot]
    labels: list[Label]


def drift_picture(measures: Mapping[str, Any]) -> Picture:
    """Reference and current histograms of one feature as paired bars on one share scale:
    equal-width bins with the range's ends and middle labelled for numbers, one slot per
    category (names cut to fit, whole in the tooltip) for categories."""
    histogram = measures.get("histogram") or {}
    kind = "categorical" if "categories" in histogram else "numeric"
    reference = [float(v) for v in histogram.get("reference") or []]
    current = [float(v) for v in histogram.get("current") or []]
    baseline = PIC_H - PIC_BOTTOM[kind]
    right = PIC_W - PIC_RIGHT
    width, height = right - PIC_LEFT, baseline - PIC_TOP
    peak = max([*reference, *current], default=0.0) or 1.0
    edges = [float(e) for e in histogram.get("edges") or []]
    if kind == "categorical":
        names = [str(c) for c in histogram["categories"]]
    else:
        names = [f"[{_short(a)}, {_short(b)})" for a, b in pairwise(edges)]
    count = min(len(names), len(reference), len(current))
    slot = width / max(count, 1)
    bar = max(slot / 2 - 1, 0.5)
    slots, labels = [], []
    for i in range(count):
        x = PIC_LEFT + i * slot + (slot - 2 * bar) / 2
        pair = (
            _bar("ref", x, bar, reference[i] / peak * height, baseline),
            _bar("cur", x + bar, bar, current[i] / peak * height, baseline),
        )
        title = f"{names[i]}: reference {_percent(reference[i])}, current {_percent(current[i])}"
        slots.append(Slot(title, pair))
        if kind == "categorical":
            text = names[i] if len(names[i]) <= PIC_LABEL else names[i][: PIC_LABEL - 1] + "…"
            middle = round(PIC_LEFT + (i + 0.5) * slot, 2)
            labels.append(Label(middle, baseline + 10, text, names[i], "end", True))
    if kind == "numeric" and count:
        ends: list[tuple[float, str, float]] = [
            (PIC_LEFT, "start", edges[0]),
            ((PIC_LEFT + right) / 2, "middle", edges[count // 2]),
            (right, "end", edges[count]),
        ]
        for x, anchor, value in ends:
            labels.append(Label(x, baseline + 13, _short(value), str(value), anchor, False))
    return Picture(PIC_W, PIC_H, PIC_LEFT, right, PIC_TOP, baseline, _percent(peak), slots, labels)


def _bar(side: str, x: float, width: float, height: float, baseline: int) -> Bar:
    # rounded so the file stays small and the same shares always give the same text
    return Bar(side, round(x, 2), round(baseline - height, 2), round(width, 2), round(height, 2))


def _short(value: float) -> str:
    return f"{value:.4g}"


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def render_report(
    plan: Plan,
    record: Mapping[str, Any],
    store_dir: Path,
    registry: ModelRegistry | None,
    baseline: Baseline | None = None,
) -> str:
    """The report's HTML; with a `baseline`, each model is drawn beside the baseline's model
    instead of production's."""
    data = report_data(plan, record, store_dir, registry, baseline)
    boxes, edges, width, height = layout(plan, {n["id"]: n["status"] for n in data["nodes"]})
    env = _environment()
    env.filters["num"] = _number
    env.filters["percent"] = _percent
    env.globals["drift_picture"] = drift_picture
    template = env.get_template("report.html.j2")
    return template.render(
        **data, boxes=boxes, edges=edges, width=width, height=height, box_w=BOX_W, box_h=BOX_H
    )


def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def chart_files(
    diagnosis: Mapping[str, Any] | None, metrics: Mapping[str, Any] | None
) -> dict[str, str]:
    """A model's pictures as standalone SVG files, named by position and kind."""
    template = _environment().get_template("chart.svg.j2")
    files = {}
    for position, chart in enumerate(model_pictures(diagnosis, metrics)):
        kind = "".join(c if c.isalnum() or c in "-_" else "_" for c in chart.key)
        files[f"{position:02d}-{kind}.svg"] = template.render(chart=chart)
    return files


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
