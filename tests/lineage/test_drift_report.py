"""The monitoring section of the audit report, on a real monitor run of the trimmed example.

The example's monitor compares the delayed model's training rows with December, the month
after them: the calendar and the weather move, so day_of_year, month and temp_filled
drift for real, and December's outcomes give labelled rows for the performance table.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from mlcompile.lineage.report import PIC_LABEL, drift_picture, render_report
from mlcompile.plan import Plan
from mlcompile.runtime.registry import open_registry
from mlcompile.runtime.trail.records import load_runs, output_dir
from tests.lineage.conftest import TRIM, invoke, shared_project

# Only the delayed model's gate is relaxed: it must reach production for the monitor to
# find it, and 30 boosting rounds do not always clear the example's per-origin bound.
PASSING = [*TRIM, 'gates.delayed_quality.checks=["roc_auc >= 0.5"]']
# One worker takes the group under `--dist loadgroup`; under plain `-n` the fixture's lock
# still makes the workers share one pair of runs.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("drift-report")]

MONITOR = "monitor:delayed_drift"
SVG = "{http://www.w3.org/2000/svg}"
FIGURE = re.compile(
    r'<figure class="feature( drifting)?" id="[^"]*" data-feature="([^"]*)">(.*?)</figure>',
    re.DOTALL,
)


@dataclass
class Watched:
    project: Path
    record: dict[str, Any]  # the monitor run's record
    plan: Plan  # the monitoring plan that run stored

    @property
    def store(self) -> Path:
        return self.project / ".mlcompile" / "store"

    @property
    def run_dir(self) -> Path:
        return self.project / ".mlcompile" / "runs" / str(self.record["id"])

    def document(self, output: str) -> dict[str, Any]:
        where = output_dir(self.record, MONITOR, output, self.store)
        assert where is not None
        loaded: dict[str, Any] = json.loads((where / f"{output}.json").read_text("utf-8"))
        return loaded


@pytest.fixture(scope="session")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Watched:
    """A training run, then one monitor run; shared by the xdist workers (read-only)."""

    def train_then_watch(project: Path) -> None:
        trained = invoke("run", "mlcompile.yaml", *PASSING, "-q", cwd=project)
        assert trained.exit_code == 0, trained.output
        args = ("monitor", "mlcompile.yaml", *PASSING, "-q", "--no-retrain")
        monitored = invoke(*args, cwd=project)
        assert monitored.exit_code == 7, monitored.output  # drift found, no retrain

    project = shared_project(tmp_path_factory, "drift-report", train_then_watch)
    (record,) = [r for r in load_runs(project / ".mlcompile" / "runs") if MONITOR in r["steps"]]
    stored = project / ".mlcompile" / "runs" / str(record["id"]) / "plan.json"
    return Watched(project, record, Plan.from_json(stored.read_text(encoding="utf-8")))


def _report(watched: Watched, out: Path, *target: str | Path) -> str:
    result = invoke("report", *target, "--out", out, cwd=watched.project)
    assert result.exit_code == 0, result.output
    assert str(watched.record["id"]) in result.output
    return out.read_text(encoding="utf-8")


def _figures(page: str) -> list[tuple[str, bool, str]]:
    """(feature name, marked drifting, inner HTML) of every feature picture, in page order."""
    return [(html.unescape(m[2]), bool(m[1]), m[3]) for m in FIGURE.finditer(page)]


def _svg(figure: str) -> ET.Element:
    """The picture parsed as XML: it must be well-formed, escapes included."""
    return ET.fromstring(figure[figure.index("<svg") : figure.index("</svg>") + 6])


def _labels(svg: ET.Element) -> list[tuple[str, str]]:
    """(whole text in the tooltip, text shown) of each axis label."""
    found = []
    for text in svg.findall(f"{SVG}text"):
        title = text.find(f"{SVG}title")
        if title is not None:
            found.append(("".join(title.itertext()), title.tail or ""))
    return found


def test_monitor_run_report_shows_the_monitor(watched: Watched, tmp_path: Path) -> None:
    page = _report(watched, tmp_path / "report.html", watched.run_dir)
    decision, drift = watched.document("decision"), watched.document("drift")

    assert page.count('<h2 id="monitoring">') == 1
    # the run ended (exit 0); the monitor's verdict is what `mlcompile monitor` exits with
    top = page.split("</header>", 1)[0]
    assert "monitor checks failed: <code>mlcompile monitor</code> exits 7" in top
    section = page.split('<h2 id="monitoring">', 1)[1].split('<h2 id="gates">', 1)[0]
    assert 'data-monitor="delayed_drift"' in section
    header = section.split('<p class="verdict">', 1)[1].split("</p>", 1)[0]
    assert "model <code>delayed</code>" in section
    assert f"flights.delayed v{decision['version']} at alias production" in section
    assert f"current {drift['current']['rows']} rows" in header
    assert f"{drift['current']['labelled_rows']} labelled" in header
    assert drift["current"]["labelled_rows"] > 0
    assert '<span class="fail">FAILED</span>' in header
    assert f"{decision['failed']['drift']} drift," in header
    assert f'retrain <span class="fail">yes</span>: {decision["reason"]}' in header

    table = section.split('<table class="monitor-checks">', 1)[1].split("</table>", 1)[0]
    rows = table.split("<tbody>", 1)[1].count("<tr>")
    assert rows == len(decision["checks"]) > 0
    for check in decision["checks"]:
        assert f"<code>{escape(check['check'])}</code>" in table
    assert table.count(">FAIL<") == sum(not c["passed"] for c in decision["checks"])
    assert "<td>performance</td>" in table and "<td>drift</td>" in table

    performance = section.split('<table class="performance">', 1)[1].split("</table>", 1)[0]
    now = drift["performance"]["overall"]["roc_auc"]
    then = drift["production_performance"]["overall"]["roc_auc"]
    assert f'<td>roc_auc</td><td class="num">{now:.6g}</td><td class="num">{then:.6g}</td>' in (
        performance
    )
    assert "origin=EWR" in performance

    # monitor decisions have no gate and no slice: they stay out of the gates table
    assert 'id="gate-table"' not in page and "No gate ran." in page


def test_drifting_features_are_marked_and_listed_first(watched: Watched, tmp_path: Path) -> None:
    page = _report(watched, tmp_path / "report.html", watched.run_dir)
    decision, drift = watched.document("decision"), watched.document("drift")
    figures = _figures(page)

    assert sorted(name for name, _, _ in figures) == sorted(drift["features"])
    assert "prediction" in drift["features"]
    failing = {
        c["feature"]: escape(c["check"])
        for c in decision["checks"]
        if c["kind"] == "drift" and not c["passed"]
    }
    marked = {name for name, drifting, _ in figures if drifting}
    assert marked == set(failing)
    assert {"day_of_year", "month", "temp_filled"} <= marked
    flags = [drifting for _, drifting, _ in figures]
    assert flags == sorted(flags, reverse=True)  # every drifting picture before the others
    for name, drifting, inner in figures:
        assert ('<span class="badge">DRIFT</span>' in inner) == drifting
        if drifting:
            assert f'<span class="fail">FAIL {failing[name]}</span>' in inner
    # a failing check in the table links to its feature's picture
    for name, check in failing.items():
        anchor = re.search(rf'id="([^"]*)" data-feature="{re.escape(name)}"', page)
        assert anchor is not None
        assert f'<a href="#{anchor[1]}"><code>{check}</code></a>' in page


def test_every_feature_picture_has_a_bar_per_bin_and_side(watched: Watched, tmp_path: Path) -> None:
    page = _report(watched, tmp_path / "report.html", watched.run_dir)
    drift = watched.document("drift")
    kinds = set()
    for name, _, inner in _figures(page):
        measures = drift["features"][name]
        histogram = measures["histogram"]
        kinds.add(measures["type"])
        svg = _svg(inner)
        bars = svg.findall(f"{SVG}g/{SVG}rect")
        assert [b.get("class") for b in bars] == ["bar ref", "bar cur"] * len(
            histogram["reference"]
        )
        assert [r.get("class") for r in svg.findall(f"{SVG}rect")] == ["key ref", "key cur"]
        # one scale for both sides: the largest share fills the plot's height
        picture = drift_picture(measures)
        tallest = max(float(b.get("height") or 0) for b in bars)
        assert tallest == pytest.approx(picture.baseline - picture.top, abs=0.01)
        peak = max(histogram["reference"] + histogram["current"])
        assert f">{peak * 100:.1f}%<" in inner
        shown = _labels(svg)
        if measures["type"] == "numeric":
            edges = histogram["edges"]
            assert len(bars) == 40
            assert [text for _, text in shown] == [f"{edges[i]:.4g}" for i in (0, 10, 20)]
        else:
            assert [title for title, _ in shown] == histogram["categories"]
            assert "(unseen)" in histogram["categories"]
    assert kinds == {"numeric", "categorical"}


def test_spec_route_finds_the_monitor_run_and_rendering_is_deterministic(
    watched: Watched, tmp_path: Path
) -> None:
    from_dir = _report(watched, tmp_path / "dir.html", watched.run_dir)
    run_id = str(watched.record["id"])
    from_spec = _report(
        watched, tmp_path / "spec.html", "mlcompile.yaml", *PASSING, "--run", run_id
    )
    assert from_spec == from_dir  # the monitoring plan, not the training plan
    assert f"pipeline <code>{watched.plan.name}</code>" in from_spec

    registry = open_registry(watched.project / ".mlcompile" / "registry")
    again = render_report(watched.plan, watched.record, watched.store, registry)
    assert again == render_report(watched.plan, watched.record, watched.store, registry)
    assert again == from_dir
    assert "<script" not in again and "http://" not in again.replace("http://www.w3.org", "")


def test_feature_and_category_names_are_escaped(watched: Watched, tmp_path: Path) -> None:
    hostile = "<script>alert('f')</script>"
    category = '<script>alert("c")</script>'
    long = "x" * 40 + "<b>"
    entry = output_dir(watched.record, MONITOR, "drift", watched.store)
    assert entry is not None
    store = tmp_path / "store"
    copy = store / entry.parent.relative_to(watched.store)
    shutil.copytree(entry.parent, copy)
    drift = json.loads((copy / "drift" / "drift.json").read_text("utf-8"))
    drift["features"][hostile] = {
        **drift["features"]["origin_code"],
        "histogram": {
            "categories": [category, long, "(unseen)"],
            "reference": [0.5, 0.5, 0.0],
            "current": [0.2, 0.3, 0.5],
        },
    }
    (copy / "drift" / "drift.json").write_text(json.dumps(drift), encoding="utf-8")
    decision = json.loads((copy / "decision" / "decision.json").read_text("utf-8"))
    decision["checks"].append(
        {
            "check": f"unseen[{hostile}] <= 0.05",
            "kind": "drift",
            "metric": "unseen",
            "feature": hostile,
            "value": 0.5,
            "bound": 0.05,
            "op": "<=",
            "passed": False,
            "note": hostile,
        }
    )
    (copy / "decision" / "decision.json").write_text(json.dumps(decision), encoding="utf-8")

    page = render_report(watched.plan, watched.record, store, None)
    assert "<script" not in page and "<b>" not in page
    assert f'<code>{escape(hostile)}</code> <span class="badge">DRIFT</span>' in page
    assert f"<td>{escape(hostile)}</td>" in page  # the note
    ((drifting, figure),) = [(d, inner) for name, d, inner in _figures(page) if name == hostile]
    assert drifting
    assert _labels(_svg(figure)) == [
        (category, category[: PIC_LABEL - 1] + "…"),
        (long, long[: PIC_LABEL - 1] + "…"),
        ("(unseen)", "(unseen)"),
    ]
    assert f"<title>{escape(category)}</title>{escape(category[: PIC_LABEL - 1])}…" in figure
