"""A model's pictures for the report, from its diagnosis and metrics documents.

Binary: ROC and precision-recall curves with the operating point, calibration, confusion at
the threshold, score histogram by class. Multiclass: confusion, per-class precision and
recall. Regression: predicted against actual, residuals against predicted, residual
histogram. Every task: importance (gain, split count), mean |SHAP|, a SHAP beeswarm, and a
headline metric per slice. When there is a model to compare with (production, or another
run), its curves are drawn on the same axes, dashed.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlcompile.lineage.charts import (
    Chart,
    Frame,
    bar,
    heat_colour,
    horizontal_bars,
    legend_marks,
    mark,
    short,
    span,
    value_colour,
    vertical_bars,
)

TOP_FEATURES = 15
# The metric a slice bar chart shows, by task: the first of these the metrics document has.
SLICE_METRICS = {
    "binary": ("roc_auc", "accuracy", "logloss"),
    "multiclass": ("accuracy", "macro_f1", "logloss"),
    "regression": ("rmse", "mae", "r2"),
}

Doc = Mapping[str, Any]


def model_pictures(
    diagnosis: Doc | None,
    metrics: Doc | None,
    other: Doc | None = None,
    other_label: str = "",
) -> list[Chart]:
    """Every picture of one model; `other` is the diagnosis of the model to compare with."""
    charts: list[Chart] = []
    if diagnosis:
        series = [("s0", "this run")] + ([("s1", other_label)] if other else [])
        if "binary" in diagnosis:
            charts += _binary(diagnosis["binary"], (other or {}).get("binary"), series)
        if "multiclass" in diagnosis:
            charts += _multiclass(diagnosis["multiclass"])
        if "regression" in diagnosis:
            charts += _regression(diagnosis["regression"], (other or {}).get("regression"), series)
        charts += _importance(diagnosis)
    if metrics:
        charts += _slices(metrics)
    return charts


def _line_chart(
    key: str,
    title: str,
    curves: Sequence[tuple[str, Sequence[Any], Sequence[Any]]],
    labels: tuple[str, str],
    series: Sequence[tuple[str, str]],
    *,
    diagonal: bool = False,
) -> tuple[Chart, Frame]:
    frame = Frame((0.0, 1.0), (0.0, 1.0))
    chart = Chart(key, title)
    legend_marks(chart, series[: len(curves)])
    chart.marks += frame.axes(*labels)
    if diagonal:
        chart.marks.append(frame.diagonal())
    for cls, xs, ys in curves:
        chart.marks.append(frame.polyline(xs, ys, f"curve {cls}"))
    return chart, frame


@dataclass(frozen=True)
class _Curve:
    """A threshold curve of a binary model: where its points and its score stand in the
    metrics, and how its chart is titled."""

    key: str
    x: str
    y: str
    score: str
    title: str
    labels: tuple[str, str]
    diagonal: bool


_CURVES = (
    _Curve("roc", "fpr", "tpr", "auc", "ROC curve · AUC",
           ("false positive rate", "true positive rate"), diagonal=True),
    _Curve("pr", "recall", "precision", "average_precision", "Precision-recall · AP",
           ("recall", "precision"), diagonal=False),
)  # fmt: skip


def _curve_chart(
    curve: _Curve,
    found: Doc,
    other: Doc | None,
    series: Sequence[tuple[str, str]],
    point: Doc,
    threshold: str,
) -> Chart:
    """The curve, the other run's beside it when that has one, and the operating point."""
    data = found[curve.key]
    curves = [("s0", data[curve.x], data[curve.y])]
    title = f"{curve.title} {short(data[curve.score])}"
    if other and curve.key in other:
        theirs = other[curve.key]
        curves.append(("s1", theirs[curve.x], theirs[curve.y]))
        title += f" (vs {short(theirs[curve.score])})"
    chart, frame = _line_chart(
        curve.key, title, curves, curve.labels, series, diagonal=curve.diagonal
    )
    _operating_point(chart, frame, point.get(curve.x), point.get(curve.y), threshold)
    return chart


def _binary(found: Doc, other: Doc | None, series: Sequence[tuple[str, str]]) -> list[Chart]:
    charts = []
    point = found.get("operating_point") or {}
    threshold = short(float(found.get("threshold", 0.5)))
    for curve in _CURVES:
        if curve.key in found:
            charts.append(_curve_chart(curve, found, other, series, point, threshold))
    calibration = found.get("calibration") or {}
    if calibration.get("predicted"):
        curves = [("s0", calibration["predicted"], calibration["observed"])]
        theirs = (other or {}).get("calibration") or {}
        if theirs.get("predicted"):
            curves.append(("s1", theirs["predicted"], theirs["observed"]))
        chart, frame = _line_chart(
            "calibration", "Calibration", curves, ("mean score", "share positive"), series,
            diagonal=True,
        )  # fmt: skip
        for x, y, rows in zip(
            calibration["predicted"], calibration["observed"], calibration["rows"], strict=True
        ):
            title = f"score {short(x)}: {short(y)} positive of {rows} rows"
            chart.marks.append(frame.dot(x, y, "dot s0", 3.0, title))
        charts.append(chart)
    confusion = found.get("confusion")
    if confusion:
        charts.append(
            _confusion(confusion, ["negative (0)", "positive (1)"], f"at threshold {threshold}")
        )
    histogram = found.get("score_histogram")
    if histogram:
        charts.append(_score_histogram(histogram, float(found.get("threshold", 0.5))))
    return charts


def _operating_point(
    chart: Chart, frame: Frame, x: float | None, y: float | None, threshold: str
) -> None:
    if x is None or y is None:
        return
    title = f"operating point at threshold {threshold}: ({short(x)}, {short(y)})"
    chart.marks.append(frame.dot(x, y, "point", 5.0, title))
    chart.note = f"● operating point at threshold {threshold}"


def _confusion(confusion: Doc, names: Sequence[str], note: str) -> Chart:
    matrix = [[int(v) for v in row] for row in confusion["matrix"]]
    count = len(matrix)
    total = sum(map(sum, matrix)) or 1
    size = min(40.0, 300.0 / max(count, 1))
    left, top = 110.0, 40.0
    height = int(top + size * count + 70)
    chart = Chart("confusion", f"Confusion matrix · {total} rows", height=max(height, 200))
    chart.note = note
    peak = max((v for row in matrix for v in row), default=0) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            x, y = left + j * size, top + i * size
            chart.marks.append(
                mark(
                    "rect",
                    title=f"actual {names[i]}, predicted {names[j]}: {value} rows",
                    class_="cell",
                    fill=heat_colour(value / peak),
                    x=x,
                    y=y,
                    width=size,
                    height=size,
                )
            )
            if size >= 18:
                dark = value / peak > 0.55
                chart.marks.append(
                    mark(
                        "text",
                        str(value),
                        class_="count light" if dark else "count",
                        x=x + size / 2,
                        y=y + size / 2 + 4,
                        text_anchor="middle",
                    )
                )
        label = _cut(str(names[i]), 14)
        chart.marks.append(
            mark("text", label, title=str(names[i]), x=left - 4, y=top + (i + 0.5) * size + 4,
                 text_anchor="end")
        )  # fmt: skip
    for j, name in enumerate(names):
        x, y = left + (j + 0.5) * size, top + count * size + 10
        chart.marks.append(
            mark("text", _cut(str(name), 14), title=str(name), x=x, y=y, text_anchor="end",
                 transform=f"rotate(-35 {x:.1f} {y:.1f})")
        )  # fmt: skip
    chart.marks.append(mark("text", "predicted →", class_="label", x=left, y=top - 8))
    chart.marks.append(mark("text", "actual ↓", class_="label", x=left - 4, y=top - 8,
                            text_anchor="end"))  # fmt: skip
    return chart


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _score_histogram(histogram: Doc, threshold: float) -> Chart:
    edges = [float(e) for e in histogram["edges"]]
    negative, positive = histogram["negative"], histogram["positive"]
    peak = max([*negative, *positive, 1])
    frame = Frame((edges[0], edges[-1]), (0.0, float(peak)))
    chart = Chart("score_histogram", "Scores by actual class")
    legend_marks(chart, [("s0", "negative (0)"), ("s1", "positive (1)")])
    chart.marks += frame.axes("score", "rows")
    for i in range(len(edges) - 1):
        x0, x1 = frame.x(edges[i]), frame.x(edges[i + 1])
        half = (x1 - x0) / 2
        for j, (cls, counts, name) in enumerate(
            (("s0", negative, "negative"), ("s1", positive, "positive"))
        ):
            top = frame.y(counts[i])
            chart.marks.append(
                bar(
                    f"[{short(edges[i])}, {short(edges[i + 1])}): {counts[i]} {name}",
                    cls,
                    x0 + j * half,
                    top,
                    max(half - 0.5, 0.5),
                    frame.bottom - top,
                )
            )
    x = frame.x(threshold)
    chart.marks.append(mark("line", class_="threshold", x1=x, y1=frame.top, x2=x, y2=frame.bottom))
    chart.note = f"| threshold {short(threshold)}"
    return chart


def _multiclass(found: Doc) -> list[Chart]:
    names = [str(c) for c in found.get("classes") or []]
    charts = [_confusion(found["confusion"], names, "predicted class: the most likely")]
    per_class = found.get("per_class") or []
    charts.append(
        vertical_bars(
            "per_class",
            "Precision and recall per class",
            [str(e["class"]) for e in per_class],
            [
                ("s0", "precision", [e.get("precision") for e in per_class]),
                ("s1", "recall", [e.get("recall") for e in per_class]),
            ],
            "",
            y_range=(0.0, 1.0),
        )
    )
    return charts


def _regression(found: Doc, other: Doc | None, series: Sequence[tuple[str, str]]) -> list[Chart]:
    sample = found["sample"]
    actual, predicted = sample["actual"], sample["predicted"]
    low, high = span([*actual, *predicted], pad=0.03)
    frame = Frame((low, high), (low, high))
    scatter = Chart("predicted_vs_actual", f"Predicted against actual · {len(actual)} rows")
    scatter.marks += frame.axes("actual", "predicted")
    scatter.marks.append(frame.diagonal())
    residual = [a - p for a, p in zip(actual, predicted, strict=True)]
    for a, p in zip(actual, predicted, strict=True):
        scatter.marks.append(frame.dot(a, p, "dot s0", 2.0))
    r_low, r_high = span(residual, pad=0.05)
    p_low, p_high = span(predicted, pad=0.03)
    frame = Frame((p_low, p_high), (min(r_low, 0.0), max(r_high, 0.0)))
    residuals = Chart("residuals_vs_predicted", "Residuals (actual - predicted) against predicted")
    residuals.marks += frame.axes("predicted", "residual")
    zero = frame.y(0.0)
    residuals.marks.append(
        mark("line", class_="threshold", x1=frame.left, y1=zero, x2=frame.right, y2=zero)
    )
    for p, r in zip(predicted, residual, strict=True):
        residuals.marks.append(frame.dot(p, r, "dot s0", 2.0))
    return [scatter, residuals, _residual_histogram(found["residuals"], other, series)]


def _residual_histogram(found: Doc, other: Doc | None, series: Sequence[tuple[str, str]]) -> Chart:
    """Shares of rows per residual bin, so a comparison with another test set lines up."""
    edges, counts = [float(e) for e in found["edges"]], found["counts"]
    total = sum(counts) or 1
    theirs = (other or {}).get("residuals") or {}
    their_edges = [float(e) for e in theirs.get("edges") or []]
    their_counts = theirs.get("counts") or []
    their_total = sum(their_counts) or 1
    peak = max([c / total for c in counts] + [c / their_total for c in their_counts] + [0.01])
    low, high = span([*edges, *their_edges])
    frame = Frame((low, high), (0.0, peak))
    title = f"Residuals · mean {short(found['mean'])}, sd {short(found['std'])}"
    chart = Chart("residual_histogram", title)
    legend_marks(chart, series[: 2 if their_counts else 1])
    chart.marks += frame.axes("residual", "share of rows")
    for i, count in enumerate(counts):
        x0, x1 = frame.x(edges[i]), frame.x(edges[i + 1])
        top = frame.y(count / total)
        chart.marks.append(
            bar(
                f"[{short(edges[i])}, {short(edges[i + 1])}): {count} rows",
                "s0",
                x0,
                top,
                max(x1 - x0 - 0.5, 0.5),
                frame.bottom - top,
            )
        )
    if their_counts:
        xs, ys = [], []
        for i, count in enumerate(their_counts):
            xs += [their_edges[i], their_edges[i + 1]]
            ys += [count / their_total] * 2
        chart.marks.append(frame.polyline(xs, ys, "curve s1"))
    return chart


def _importance(diagnosis: Doc) -> list[Chart]:
    charts = []
    found = list(diagnosis.get("importance") or [])[:TOP_FEATURES]
    if found:
        names = [str(f["feature"]) for f in found]
        charts.append(
            horizontal_bars(
                "importance_gain", "Importance: total gain", names,
                [float(f["gain"]) for f in found], "gain",
            )
        )  # fmt: skip
        by_split = sorted(found, key=lambda f: (-int(f["split"]), str(f["feature"])))
        charts.append(
            horizontal_bars(
                "importance_split", "Importance: split count",
                [str(f["feature"]) for f in by_split], [float(f["split"]) for f in by_split],
                "splits",
            )
        )  # fmt: skip
    shap = diagnosis.get("shap") or {}
    mean_abs = list(shap.get("mean_abs") or [])[:TOP_FEATURES]
    if mean_abs:
        charts.append(
            horizontal_bars(
                "shap_mean", f"Mean |SHAP| · {shap.get('rows')} sampled rows",
                [str(f["feature"]) for f in mean_abs], [float(f["value"]) for f in mean_abs],
                "mean |SHAP value| (raw score)",
            )
        )  # fmt: skip
    swarm = shap.get("beeswarm") or {}
    if swarm.get("features"):
        charts.append(_beeswarm(swarm))
    return charts


def _beeswarm(swarm: Doc) -> Chart:
    """One row per input, a dot per sampled row at its SHAP value, coloured by the input's
    value (blue low, red high, grey missing). Dots are spread vertically by a hash of the
    row, so the picture is the same on every render."""
    features = swarm["features"]
    rows = len(features)
    values = [v for f in features for v in f["shap"] if v is not None]
    low, high = span([*values, 0.0], pad=0.05)
    height = max(260, 40 + 22 * rows + 42)
    frame = Frame((low, high), (0.0, float(rows)), height=height, left=130)
    chart = Chart("beeswarm", f"SHAP values · {len(swarm.get('rows') or [])} rows", height=height)
    chart.note = "colour: the input's value, blue low → red high, grey missing"
    chart.marks += frame.axes("SHAP value (impact on the raw score)", "", y_ticks=False)
    zero = frame.x(0.0)
    chart.marks.append(
        mark("line", class_="threshold", x1=zero, y1=frame.top, x2=zero, y2=frame.bottom)
    )
    band = (frame.bottom - frame.top) / max(rows, 1)
    for i, feature in enumerate(features):
        middle = frame.top + (i + 0.5) * band
        name = str(feature["feature"])
        chart.marks.append(
            mark("text", _cut(name, 18), title=name, x=frame.left - 4.0, y=middle + 4,
                 text_anchor="end")
        )  # fmt: skip
        for n, (value, colour) in enumerate(zip(feature["shap"], feature["value"], strict=True)):
            if value is None:
                continue
            jitter = (zlib.crc32(f"{i}:{n}".encode()) % 1000 / 1000 - 0.5) * band * 0.7
            chart.marks.append(
                mark("circle", class_="swarm", fill=value_colour(colour), cx=frame.x(value),
                     cy=middle + jitter, r=2.2)
            )  # fmt: skip
    return chart


def _slices(metrics: Doc) -> list[Chart]:
    overall = metrics.get("overall") or {}
    task = str(metrics.get("task"))
    metric = next((m for m in SLICE_METRICS.get(task, ()) if m in overall), None)
    if metric is None:
        return []
    charts = []
    for column, values in sorted((metrics.get("slices") or {}).items()):
        names = sorted(values)
        if not names:
            continue
        numbers = [values[n].get(metric) for n in names]
        chart = vertical_bars(
            f"slices_{column}",
            f"{metric} by {column}",
            names,
            [("s0", metric, numbers)],
            metric,
        )
        chart.note = f"overall {metric} {short(float(overall[metric]))}"
        charts.append(chart)
    return charts


def tuning_chart(tuning: Doc) -> Chart:
    """A search's objective by trial: a dot per trial that gave a value, the best so far as
    a line, and the chosen trial ringed; pruned and failed trials are counted in the note."""
    trials = [t for t in tuning.get("trials") or [] if t.get("value") is not None]
    metric, greater = str(tuning.get("metric")), tuning.get("direction") == "maximize"
    numbers = [float(t["number"]) for t in tuning.get("trials") or []] or [0.0]
    frame = Frame((min(numbers), max(max(numbers), min(numbers) + 1)), span(
        (float(t["value"]) for t in trials), pad=0.05
    ))  # fmt: skip
    chart = Chart("tuning", f"Search · {metric} by trial ({tuning.get('direction')})")
    legend_marks(chart, [("s0", "trial"), ("s1", "best so far")])
    chart.marks += frame.axes("trial", f"validation {metric}")
    best_xs: list[float | None] = []
    best_ys: list[float | None] = []
    best: float | None = None
    for trial in trials:
        value = float(trial["value"])
        if best is None or (value > best if greater else value < best):
            best = value
        best_xs.append(float(trial["number"]))
        best_ys.append(best)
    chart.marks.append(frame.polyline(best_xs, best_ys, "curve s1"))
    for trial in trials:
        value, number = float(trial["value"]), float(trial["number"])
        chart.marks.append(frame.dot(number, value, "dot s0", 3.0, f"trial {trial['number']}: "
                                     f"{short(value)}"))  # fmt: skip
    chosen = tuning.get("best") or {}
    if chosen.get("value") is not None:
        chart.marks.append(
            frame.dot(float(chosen["number"]), float(chosen["value"]), "point", 5.0,
                      f"best: trial {chosen['number']}, {short(float(chosen['value']))}")
        )  # fmt: skip
    states = [str(t.get("state")) for t in tuning.get("trials") or []]
    chart.note = ", ".join(
        f"{states.count(s)} {s}" for s in ("complete", "pruned", "failed") if s in states
    )
    return chart
