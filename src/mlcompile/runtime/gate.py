"""Metric gates: absolute bounds, and bounded drops against the production model.

Every check is reported, passed or not, with the numbers it compared. A check on a slice
column expands to one entry per slice value. A metric the model does not have fails its
check; a relative check with nothing to compare with passes, and says so.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlcompile.errors import GateFailed, UsageError
from mlcompile.tasks import BOUNDS, VALIDATION, base_metric, lower_is_better

# The direction a drop is measured in; every other metric is better when higher.
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True)
class _Check:
    metric: str
    op: str
    slice: str | None
    amount: float  # the bound itself, or the largest drop when `relative`
    relative: bool

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> _Check:
        metric = raw.get("metric")
        if not metric:
            raise UsageError(f"a gate check needs 'metric': {dict(raw)}")
        if raw.get("max_drop") is not None:
            lower = raw.get("lower_is_better") or lower_is_better(metric)
            op = "<=" if lower else ">="
            return cls(metric, op, raw.get("slice"), float(raw["max_drop"]), relative=True)
        op = str(raw.get("op"))
        if op not in OPERATORS or raw.get("value") is None:
            raise UsageError(
                f"gate check on '{metric}' needs 'op' (one of {', '.join(OPERATORS)}) and "
                "'value', or 'max_drop'"
            )
        return cls(metric, op, raw.get("slice"), float(raw["value"]), relative=False)

    def text(self, alias: str, slice_value: Any) -> str:
        where = "" if self.slice is None else f"[{self.slice}={slice_value}]"
        if self.slice is not None and slice_value is None:
            where = f"[{self.slice}]"
        if not self.relative:
            return f"{self.metric}{where} {self.op} {self.amount:g}"
        sign = "+" if self.op == "<=" else "-"
        return f"{self.metric}{where} {self.op} {alias} {sign} {self.amount:g}"

    def verdict(
        self, value: float | None, production: float | None, has_production: bool, why: str | None
    ) -> tuple[float | None, bool, str | None]:
        """(bound, passed, note)."""
        if value is None:
            reason = f"undefined: {why}" if why else "undefined or not computed"
            return None, False, f"the model has no '{self.metric}' here ({reason})"
        if not self.relative:
            return self.amount, OPERATORS[self.op](value, self.amount), None
        if not has_production:
            return None, True, "no production model to compare with"
        if production is None:
            return None, True, f"the production model has no '{self.metric}' here"
        bound = production + self.amount if self.op == "<=" else production - self.amount
        return bound, OPERATORS[self.op](value, bound), f"production {self.metric} is {production}"

    def judge(
        self,
        alias: str,
        slice_value: Any,
        value: float | None,
        production: float | None,
        has_production: bool,
        why: str | None = None,
    ) -> dict[str, Any]:
        bound, passed, note = self.verdict(value, production, has_production, why)
        return {
            "check": self.text(alias, slice_value),
            "metric": self.metric,
            "slice": self.slice,
            "slice_value": slice_value,
            "value": value,
            "bound": bound,
            "op": self.op,
            "passed": passed,
            "note": note,
        }


@dataclass(frozen=True)
class Scope:
    slice_value: Any
    value: float | None
    production: float | None
    why: str | None  # why the value is undefined, when metrics.json says


def _values(
    document: Mapping[str, Any] | None, metric: str
) -> tuple[Mapping[str, Any], str, str, str]:
    """The metrics table a scoped name reads from, its name there, and where metrics.json
    says why it is undefined (table, name)."""
    document = document or {}
    if metric.startswith(VALIDATION):
        name = metric[len(VALIDATION) :]
        return (document.get("validation") or {}).get("overall") or {}, name, "validation", name
    for bound in BOUNDS:
        if metric.endswith(bound):
            base = metric[: -len(bound)]
            interval = (document.get("intervals") or {}).get(base) or {}
            return {k: interval[k] for k in interval}, bound[1:], "intervals", base
    return document.get("overall") or {}, metric, "overall", metric


def _scopes(
    check: _Check, metrics: Mapping[str, Any], production: Mapping[str, Any] | None
) -> list[Scope]:
    """Every scope the check covers, with the values it compares."""
    undefined = metrics.get("undefined") or {}
    if check.slice is None:
        current, name, table, key = _values(metrics, check.metric)
        previous, _, _, _ = _values(production, check.metric)
        why = (undefined.get(table) or {}).get(key)
        return [Scope(None, current.get(name), previous.get(name), why)]
    current_slices = metrics.get("slices", {}).get(check.slice) or {}
    previous_slices = (production or {}).get("slices", {}).get(check.slice) or {}
    reasons = (undefined.get("slices") or {}).get(check.slice) or {}
    return [
        Scope(
            v,
            current_slices[v].get(check.metric),
            (previous_slices.get(v) or {}).get(check.metric),
            (reasons.get(v) or {}).get(check.metric),
        )
        for v in sorted(current_slices)
    ]


def _skipped(
    check: _Check, alias: str, metrics: Mapping[str, Any], has_production: bool
) -> list[dict[str, Any]]:
    """Slice values with fewer rows than min_slice_rows: not judged, but listed, so that a
    value does not drop out of a gate without a word."""
    if check.slice is None:
        return []
    few = (metrics.get("skipped_slices") or {}).get(check.slice) or {}
    entries = []
    for value, rows in sorted(few.items()):
        entry = check.judge(alias, value, None, None, has_production)
        entry.update(
            passed=True,
            skipped=True,
            rows=rows,
            note=f"skipped: {rows} rows, fewer than min_slice_rows ({metrics['min_slice_rows']})",
        )
        entries.append(entry)
    return entries


def evaluate_gate(
    metrics: Mapping[str, Any],
    params: Mapping[str, Any],
    production_metrics: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """decision.json: `{"gate", "model", "passed", "checks": [...]}`."""
    alias = str(params.get("compare_alias") or "production")
    has_production = production_metrics is not None
    entries = []
    for raw in params.get("checks") or []:
        check = _Check.parse(raw)
        scopes = _scopes(check, metrics, production_metrics)
        if not scopes:
            entry = check.judge(alias, None, None, None, has_production)
            entry["note"] = f"no value of slice '{check.slice}' has metrics (too few rows?)"
            entries.append(entry)
        for scope in scopes:
            entry = check.judge(
                alias, scope.slice_value, scope.value, scope.production, has_production, scope.why
            )
            if check.metric.endswith(BOUNDS):
                # the bound beside the estimate it bounds, so a record shows both
                entry["point"] = (metrics.get("overall") or {}).get(base_metric(check.metric))
            entries.append(entry)
        entries += _skipped(check, alias, metrics, has_production)
    return {
        "gate": params.get("gate"),
        "model": params.get("model"),
        "passed": all(e["passed"] for e in entries),
        "checks": entries,
    }


def compare_versions(
    raw: Mapping[str, Any], left: Mapping[str, Any], right: Mapping[str, Any]
) -> dict[str, Any]:
    """A comparison of two versions' metrics documents, `m[left] op m[right] + margin`
    (`value` in `raw` is the margin): the left side's value against the bound the right
    side's makes."""
    metric, op, margin = str(raw["metric"]), str(raw["op"]), float(raw.get("value") or 0)
    found = []
    for document in (left, right):
        table, name, where, key = _values(document, metric)
        found.append(
            (table.get(name), ((document.get("undefined") or {}).get(where) or {}).get(key))
        )
    (value, why_left), (against, why_right) = found
    bound = None if against is None else against + margin
    note = None
    if value is None or bound is None:
        side, why = ("left", why_left) if value is None else ("right", why_right)
        note = f"the {side} side has no '{metric}' ({why or 'undefined or not computed'})"
    return {
        "metric": metric,
        "op": op,
        "value": value,
        "against": against,
        "margin": margin,
        "bound": bound,
        "passed": bound is not None and value is not None and OPERATORS[op](value, bound),
        "note": note,
    }


def raise_if_failed(decision: Mapping[str, Any]) -> None:
    if decision["passed"]:
        return
    failed = "; ".join(
        e["check"] + (f" (value {e['value']})" if e["value"] is not None else f" ({e['note']})")
        for e in decision["checks"]
        if not e["passed"]
    )
    raise GateFailed(f"gate '{decision['gate']}' on model '{decision['model']}' failed: {failed}")
