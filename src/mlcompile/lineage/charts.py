"""Small SVG charts as data: a chart is a list of marks (path, rect, circle, line, text) in
pixel coordinates, which one template macro draws.

Geometry is computed here from numbers only; every text a mark carries (feature names, class
names, slice values: spec and data text) is left for the template to escape. Tags and
attribute names come from the allow-lists below, never from data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

TAGS = frozenset({"path", "rect", "circle", "line", "text"})
ATTRIBUTES = frozenset(
    {"d", "x", "y", "width", "height", "cx", "cy", "r", "x1", "y1", "x2", "y2", "class", "fill"}
    | {"text-anchor", "transform"}
)
WIDTH, HEIGHT = 380, 280
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 30, 42
SERIES = ("s0", "s1")  # this run, the comparison (production or another run)


@dataclass(frozen=True)
class Mark:
    tag: str
    attrs: tuple[tuple[str, str], ...]
    text: str = ""
    title: str = ""

    def __post_init__(self) -> None:
        if self.tag not in TAGS or any(name not in ATTRIBUTES for name, _ in self.attrs):
            raise ValueError(f"not an allowed SVG mark: {self.tag} {self.attrs}")


def mark(tag: str, text: str = "", title: str = "", **attrs: float | str) -> Mark:
    """A mark; `class_` and `text_anchor` stand for the attributes `class`, `text-anchor`."""
    pairs = tuple(
        (name.rstrip("_").replace("_", "-"), _attr(value)) for name, value in attrs.items()
    )
    return Mark(tag, pairs, text, title)


def bar(title: str, cls: str, x: float, y: float, width: float, height: float) -> Mark:
    """A bar of series `cls` (s0, s1, ...) with its tooltip."""
    return mark("rect", title=title, class_=f"bar {cls}", x=x, y=y, width=width, height=height)


def _attr(value: float | str) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


@dataclass
class Chart:
    """One picture: a title above, marks inside, a legend of (series class, label)."""

    key: str  # what the picture shows, for tests and anchors: "roc", "confusion", ...
    title: str
    marks: list[Mark] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""
    width: int = WIDTH
    height: int = HEIGHT


def tick_values(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick positions covering [low, high]."""
    if not high > low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def short(value: float) -> str:
    return f"{value:.3g}"


@dataclass(frozen=True)
class Frame:
    """A plot area inside a chart, with linear scales from data to pixels."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP

    @property
    def right(self) -> float:
        return self.width - RIGHT

    @property
    def bottom(self) -> float:
        return self.height - BOTTOM

    def x(self, value: float) -> float:
        low, high = self.x_range
        span = (high - low) or 1.0
        return self.left + (value - low) / span * (self.right - self.left)

    def y(self, value: float) -> float:
        low, high = self.y_range
        span = (high - low) or 1.0
        return self.bottom - (value - low) / span * (self.bottom - self.top)

    def axes(
        self, x_label: str, y_label: str, *, x_ticks: bool = True, y_ticks: bool = True
    ) -> list[Mark]:
        marks = [
            mark(
                "line", class_="axis", x1=self.left, y1=self.bottom, x2=self.right, y2=self.bottom
            ),
            mark("line", class_="axis", x1=self.left, y1=self.top, x2=self.left, y2=self.bottom),
        ]
        for value in tick_values(*self.y_range) if y_ticks else []:
            y = self.y(value)
            marks.append(mark("line", class_="grid", x1=self.left, y1=y, x2=self.right, y2=y))
            marks.append(mark("text", short(value), x=self.left - 4, y=y + 3, text_anchor="end"))
        if x_ticks:
            for value in tick_values(*self.x_range):
                x = self.x(value)
                marks.append(
                    mark("text", short(value), x=x, y=self.bottom + 13, text_anchor="middle")
                )
        middle_x, middle_y = (self.left + self.right) / 2, (self.top + self.bottom) / 2
        marks.append(
            mark(
                "text", x_label, class_="label", x=middle_x, y=self.height - 8, text_anchor="middle"
            )
        )
        marks.append(
            mark(
                "text",
                y_label,
                class_="label",
                x=12.0,
                y=middle_y,
                text_anchor="middle",
                transform=f"rotate(-90 12 {middle_y:.1f})",
            )
        )
        return marks

    def polyline(self, xs: Sequence[float | None], ys: Sequence[float | None], cls: str) -> Mark:
        points = [
            f"{self.x(x):.1f},{self.y(y):.1f}"
            for x, y in zip(xs, ys, strict=False)
            if x is not None and y is not None
        ]
        return mark("path", d="M" + " L".join(points) if points else "M0,0", class_=cls)

    def dot(self, x: float, y: float, cls: str, radius: float, title: str = "") -> Mark:
        return mark("circle", title=title, class_=cls, cx=self.x(x), cy=self.y(y), r=radius)

    def diagonal(self) -> Mark:
        low = max(self.x_range[0], self.y_range[0])
        high = min(self.x_range[1], self.y_range[1])
        return self.polyline([low, high], [low, high], "reference")


def span(values: Iterable[float | None], *, pad: float = 0.0) -> tuple[float, float]:
    found = [v for v in values if v is not None and math.isfinite(v)]
    if not found:
        return 0.0, 1.0
    low, high = min(found), max(found)
    if high == low:
        return low - 1.0, high + 1.0
    extra = (high - low) * pad
    return low - extra, high + extra


def legend_marks(chart: Chart, entries: Sequence[tuple[str, str]]) -> None:
    """Legend keys along the top edge."""
    x = float(LEFT)
    for cls, label in entries:
        chart.marks.append(mark("rect", class_=f"key {cls}", x=x, y=8.0, width=10.0, height=10.0))
        chart.marks.append(mark("text", label, x=x + 14, y=17.0))
        x += 24 + 6.5 * min(len(label), 40)
    chart.legend = list(entries)


def vertical_bars(
    key: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    y_label: str,
    *,
    y_range: tuple[float, float] | None = None,
) -> Chart:
    """Grouped bars, one group per label; `series` is (class, legend text, values)."""
    values = [v for _, _, vs in series for v in vs if v is not None]
    low, high = y_range or (min(0.0, *values, 0.0), max([*values, 0.0]) or 1.0)
    frame = Frame((0.0, float(max(len(labels), 1))), (low, high), top=TOP + 4)
    chart = Chart(key, title)
    legend_marks(chart, [(cls, text) for cls, text, _ in series])
    chart.marks += frame.axes("", y_label, x_ticks=False)
    slot = (frame.right - frame.left) / max(len(labels), 1)
    width = max(slot * 0.8 / max(len(series), 1), 1.0)
    for i, label in enumerate(labels):
        start = frame.left + i * slot + slot * 0.1
        for j, (cls, text, vs) in enumerate(series):
            value = vs[i] if i < len(vs) else None
            if value is None:
                continue
            top, base = frame.y(max(value, low)), frame.y(0.0 if low <= 0 <= high else low)
            y, height = min(top, base), abs(base - top)
            chart.marks.append(
                bar(
                    f"{label}: {text} {short(value)}",
                    cls,
                    start + j * width,
                    y,
                    width,
                    max(height, 0.5),
                )
            )
        shown = label if len(label) <= 12 else label[:11] + "…"
        x, y = frame.left + (i + 0.5) * slot, frame.bottom + 10
        chart.marks.append(
            mark(
                "text",
                shown,
                title=label,
                x=x,
                y=y,
                text_anchor="end",
                transform=f"rotate(-35 {x:.1f} {y:.1f})",
            )
        )
    return chart


def horizontal_bars(
    key: str, title: str, labels: Sequence[str], values: Sequence[float], x_label: str
) -> Chart:
    """One bar per label, largest first as given; labels on the left."""
    rows = max(len(labels), 1)
    height = max(HEIGHT, TOP + 16 * rows + BOTTOM)
    frame = Frame((0.0, max([*values, 0.0]) or 1.0), (0.0, float(rows)), height=height, left=130)
    chart = Chart(key, title, height=height)
    chart.marks += frame.axes(x_label, "", y_ticks=False)
    band = (frame.bottom - frame.top) / rows
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = frame.top + i * band + band * 0.15
        chart.marks.append(
            bar(
                f"{label}: {short(value)}",
                "s0",
                float(frame.left),
                y,
                max(frame.x(value) - frame.left, 0.5),
                band * 0.7,
            )
        )
        shown = label if len(label) <= 18 else label[:17] + "…"
        chart.marks.append(
            mark(
                "text", shown, title=label, x=frame.left - 4.0, y=y + band * 0.5, text_anchor="end"
            )
        )
    return chart


def heat_colour(share: float) -> str:
    """White to deep blue."""
    share = min(max(share, 0.0), 1.0)
    r, g, b = (round(255 - share * (255 - c)) for c in (8, 81, 156))
    return f"rgb({r},{g},{b})"


def value_colour(share: float | None) -> str:
    """Blue (low) to red (high) for the beeswarm; grey where the value is missing."""
    if share is None:
        return "rgb(160,160,160)"
    share = min(max(share, 0.0), 1.0)
    low, high = (30, 136, 229), (255, 0, 82)
    r, g, b = (round(a + (z - a) * share) for a, z in zip(low, high, strict=True))
    return f"rgb({r},{g},{b})"
