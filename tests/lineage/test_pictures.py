"""Every kind of model picture in the real report template, on real diagnoses (iris,
diabetes), with hostile class and feature names; drawn by headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from markupsafe import escape
from sklearn import datasets

from mlcompile.lineage.charts import Mark, mark, tick_values
from mlcompile.lineage.pictures import model_pictures
from mlcompile.lineage.report import render_report
from mlcompile.plan import InputRef, Node, Plan
from mlcompile.runtime.diagnosis import diagnose
from mlcompile.runtime.evaluate import metrics_of, predictions
from mlcompile.runtime.features import apply_features, fit_features
from mlcompile.runtime.split import split_frame
from mlcompile.runtime.train import train_model
from tests.browser import check_page
from tests.runtime.helpers import features_params, model_params

HOSTILE = '<script>alert("x")</script>&'


def _diagnosed(frame: pd.DataFrame, task: str, target: str) -> tuple[dict[str, Any], ...]:
    train, test = split_frame(frame, {"method": "random", "test_size": 0.3, "seed": 5})
    columns = [c for c in frame.columns if c not in (target, "group")]
    features = [{"name": c, "op": "passthrough", "column": c} for c in columns]
    state = fit_features(train, features_params(task, target, features))
    params = model_params(task, target, early_stopping_rounds=None, num_boost_round=30)
    _, bundle = train_model(apply_features(train, state), state, params)
    found = predictions(bundle, test, ["group"])
    evaluate = {"metrics": None, "slices": ["group"], "min_slice_rows": 5}
    return diagnose(bundle, found), metrics_of(found, evaluate)


@pytest.fixture(scope="module")
def iris() -> tuple[dict[str, Any], ...]:
    frame = datasets.load_iris(as_frame=True).frame
    names = {0: "setosa", 1: HOSTILE, 2: "virginica"}
    frame = frame.assign(species=frame["target"].map(names)).drop(columns="target")
    frame = frame.rename(columns={"petal width (cm)": f"petal {HOSTILE}"})
    return _diagnosed(frame.assign(group=["a", HOSTILE] * 75), "multiclass", "species")


@pytest.fixture(scope="module")
def diabetes() -> tuple[dict[str, Any], ...]:
    frame = datasets.load_diabetes(as_frame=True, scaled=False).frame
    frame = frame.rename(columns={"target": "progression"})
    return _diagnosed(frame.assign(group=["x", "y"] * 221), "regression", "progression")


def test_multiclass_pictures(iris: tuple[dict[str, Any], ...]) -> None:
    diagnosis, metrics = iris
    keys = [c.key for c in model_pictures(diagnosis, metrics)]
    assert keys[:2] == ["confusion", "per_class"]
    assert {"importance_gain", "importance_split", "shap_mean", "beeswarm"} <= set(keys)
    assert "slices_group" in keys
    confusion = next(c for c in model_pictures(diagnosis, metrics) if c.key == "confusion")
    cells = [m for m in confusion.marks if m.tag == "rect"]
    assert len(cells) == 9
    # every cell's tooltip names its counts: they add up to the test rows
    counts = [int(m.title.rsplit(": ", 1)[1].split()[0]) for m in cells]
    assert sum(counts) == diagnosis["rows"]


def test_regression_pictures_compare_with_another_model(
    diabetes: tuple[dict[str, Any], ...],
) -> None:
    diagnosis, metrics = diabetes
    alone = model_pictures(diagnosis, metrics)
    assert [c.key for c in alone][:3] == [
        "predicted_vs_actual",
        "residuals_vs_predicted",
        "residual_histogram",
    ]
    scatter = alone[0]
    assert sum(1 for m in scatter.marks if m.tag == "circle") == diagnosis["rows"]
    beside = model_pictures(diagnosis, metrics, diagnosis, "production v1")
    histogram = next(c for c in beside if c.key == "residual_histogram")
    assert ("s1", "production v1") in histogram.legend
    assert any(m.tag == "path" and ("class", "curve s1") in m.attrs for m in histogram.marks)


def test_marks_refuse_tags_and_attributes_off_the_allow_list() -> None:
    with pytest.raises(ValueError):
        Mark("script", ())
    with pytest.raises(ValueError):
        mark("rect", onload="alert(1)")
    assert tick_values(0.0, 1.0) == [0.0, 0.25, 0.5, 0.75, 1.0]


def _report(tmp_path: Path, models: dict[str, tuple[dict[str, Any], ...]]) -> Path:
    """The real report of a hand-made run whose store holds these models' documents."""
    store = tmp_path / "store"
    nodes, steps = [], {}
    for i, (name, (diagnosis, metrics)) in enumerate(models.items()):
        node_id = f"evaluate:{name}"
        key = f"{i:02d}" + "0" * 62
        entry = store / "entries" / key[:2] / key
        for kind, document in (("diagnosis", diagnosis), ("metrics", metrics)):
            (entry / kind).mkdir(parents=True)
            (entry / kind / f"{kind}.json").write_text(json.dumps(document))
        inputs = {"model": InputRef(f"train:{name}", "model", "model")}
        nodes.append(
            Node(node_id, "evaluate", name, {"model": name}, inputs,
                 {"metrics": "metrics", "diagnosis": "diagnosis"}, "f" * 64)
        )  # fmt: skip
        nodes.append(Node(f"train:{name}", "train", name, {}, {}, {"model": "model"}, "e" * 64))
        steps[node_id] = {"status": "ran", "key": key, "seconds": 0.5}
    plan = Plan("pictures", "0" * 64, {"registry": "r", "store": "s", "seed": 1}, tuple(nodes))
    record = {
        "id": "20260101T000000Z-abcdef",
        "status": "succeeded",
        "exit_code": 0,
        "started_at": "2026-01-01T00:00:00+00:00",
        "seconds": 1.0,
        "steps": steps,
    }
    page = tmp_path / "report.html"
    page.write_text(render_report(plan, record, store, None), encoding="utf-8")
    return page


def test_every_picture_renders_in_chromium(
    iris: tuple[dict[str, Any], ...], diabetes: tuple[dict[str, Any], ...], tmp_path: Path
) -> None:
    page = _report(tmp_path, {f"iris {HOSTILE}": iris, "diabetes": diabetes})
    text = page.read_text(encoding="utf-8")
    at = text.find(HOSTILE)
    assert at < 0, text[at - 300 : at + 40]
    assert str(escape(HOSTILE)) in text  # as Jinja escapes it
    assert "<script" not in text

    seen = check_page(page, tmp_path / "profile", "report-multiclass-regression")
    assert seen.errors == []
    # models in plan order: evaluate:diabetes, then evaluate:iris …
    charts = [c.key for c in model_pictures(*diabetes)] + [c.key for c in model_pictures(*iris)]
    assert seen.charts == charts
    pictures = [s for s in seen.svgs if s["label"] != "pipeline DAG"]
    assert len(pictures) == len(charts)
    for svg in pictures:  # drawn, at their size, with visible parts
        assert svg["width"] > 300 and svg["height"] > 150 and svg["parts"] > 5, svg
    assert seen.width <= 1280  # nothing wider than the window: no sideways scrolling
    assert seen.screenshot.stat().st_size > 20_000
