"""Gates: checks written as text are parsed, and name a metric and slice the model has."""

from __future__ import annotations

import re

from mlcompile import codes
from mlcompile.spec import metric_names
from mlcompile.spec.checks.context import Context
from mlcompile.spec.models import MAX_CHECK_LENGTH, Check
from mlcompile.spec.resolved import GateCheck
from mlcompile.spec.yaml_loader import KeyPath
from mlcompile.tasks import base_metric, lower_is_better, metric_problem, scoped_metric

# Possessive quantifiers (*+, ++) never give back what they matched, and no two of them can
# match the same characters, so a failing match costs one pass over the text: a run of
# spaces cannot make it backtrack (it once took 34 s on 40,000 of them).
_METRIC = r"[A-Za-z_]\w*+(?:\.[A-Za-z_]\w*+){0,2}+"
_NUMBER = r"[-+]?+(?:\d++(?:\.\d*+)?+|\.\d++)(?:[eE][-+]?+\d++)?+"
# The right side is a bound, a bound relative to production ('production - 0.02'), or the
# same metric of another version ('roc_auc[production]', optionally '+ d' or '- d'): the
# two brackets of a comparison name registry aliases (see spec/checks/monitoring.py).
CHECK_PATTERN = re.compile(
    rf"\s*+(?P<metric>{_METRIC})\s*+(?:\[(?P<slice>[^\]]*+)\])?+\s*+(?P<op>>=|<=|>|<)\s*+"
    rf"(?:(?P<other>{_METRIC})\s*+\[(?P<against>[^\]]*+)\]\s*+"
    rf"(?:(?P<osign>[+-])\s*+(?P<margin>{_NUMBER}))?+"
    rf"|(?:(?P<prod>production|baseline)\s*+(?P<sign>[+-])\s*+)?+(?P<value>{_NUMBER}))\s*+"
)


def parse_check(text: str, lower: frozenset[str] = frozenset()) -> GateCheck | None:
    """`text` in normal form; `lower` names the custom metrics that are better when lower."""
    match = CHECK_PATTERN.fullmatch(text) if len(text) <= MAX_CHECK_LENGTH else None
    slice_ = match["slice"].strip() if match and match["slice"] is not None else None
    if not match or slice_ == "":
        return None
    metric, op = match["metric"], match["op"]
    if match["other"] is not None:
        return _comparison(match, lower, text.strip())
    value = float(match["value"])
    metric, slice_ = scoped_metric(metric, slice_)
    if match["prod"]:
        drop = value if match["sign"] == "-" else -value
        higher_better = not (lower_is_better(metric) or metric in lower)
        # 'roc_auc >= production - 0.02' and 'rmse <= production + 0.5' are the sensible forms
        if higher_better != (op in (">=", ">")) or drop * (1 if higher_better else -1) < 0:
            return GateCheck(metric, op, None, None, slice_, text.strip())
        return GateCheck(metric, None, None, abs(value), slice_, text.strip())
    return GateCheck(metric, op, value, None, slice_, text.strip())


def _comparison(match: re.Match[str], lower: frozenset[str], text: str) -> GateCheck | None:
    """`m[a] op m[b] (+|- d)`: the same metric of two versions, or None."""
    left, right = match["slice"], match["against"].strip()
    metric, op = match["metric"], match["op"]
    if left is None or not right or match["other"] != metric:
        return None
    margin = float(match["margin"] or 0) * (-1 if match["osign"] == "-" else 1)
    versions = (left.strip(), right)
    if (lower_is_better(metric) or metric in lower) == (op in (">=", ">")):
        return GateCheck(metric, None, None, None, None, text, versions)
    return GateCheck(metric, op, margin, None, None, text, versions)


def check(ctx: Context) -> None:
    spec = ctx.spec
    for name, at, model in ctx.with_models("gates", spec.gates):
        gate = spec.gates[name]
        produced = metric_names.produced(model)
        normal: list[GateCheck] = []
        for index, written in enumerate(gate.checks):
            where = (*at, "checks", index)
            parsed = gate_check(ctx, written, where, model.lower_is_better)
            if parsed is None:
                continue
            if parsed.versions is not None:
                ctx.error(
                    codes.MISPLACED_COMPARISON,
                    f"'{parsed.text}' compares two versions; a gate judges one, the new model",
                    where,
                    "compare a challenger with production in a monitor that names it "
                    "('challenger: <alias>'), or bound the drop: 'm >= production - 0.02'",
                )
                continue
            if base_metric(parsed.metric) not in produced:
                ctx.error(
                    codes.UNKNOWN_METRIC,
                    f"model '{gate.model}' ({model.task}) does not produce '{parsed.metric}'",
                    where,
                    metric_names.metric_hint(base_metric(parsed.metric), produced),
                )
                continue
            problem = metric_problem(
                parsed.metric,
                model.task,
                produced,
                has_validation=model.early_stopping is not None,
                has_intervals=model.bootstrap is not None,
            )
            if problem:
                ctx.error(
                    codes.UNKNOWN_METRIC, f"model '{gate.model}': {problem[0]}", where, problem[1]
                )
                continue
            if parsed.slice is not None and parsed.slice not in model.slices:
                ctx.error(
                    codes.UNKNOWN_METRIC,
                    f"model '{gate.model}' reports no slice '{parsed.slice}'",
                    where,
                    f"add '{parsed.slice}' to models.{gate.model}.slices",
                )
                continue
            normal.append(parsed)
        ctx.out.gate_checks[name] = normal


def gate_check(
    ctx: Context, check: str | Check, where: KeyPath, lower: frozenset[str] = frozenset()
) -> GateCheck | None:
    """A check in normal form, or None after reporting why it cannot be read."""
    if isinstance(check, Check):
        op = check.op
        text = (
            f"{check.metric} max_drop {check.max_drop}"
            if check.max_drop is not None
            else f"{check.metric} {op} {check.value}"
        )
        return GateCheck(check.metric, op, check.value, check.max_drop, check.slice, text)
    parsed = parse_check(check, lower)
    if parsed is None:
        ctx.error(
            codes.UNREADABLE_CHECK,
            f"cannot read the check '{check}'",
            where,
            "write 'metric >= 0.8', 'metric[slice_column] >= 0.7', 'metric >= production - 0.02' "
            "or, in a monitor, 'metric[challenger] >= metric[production]' (one metric, two aliases)",
        )
        return None
    if parsed.value is None and parsed.max_drop is None:
        against = "m[production]" if parsed.versions else "production"
        ctx.error(
            codes.UNREADABLE_CHECK,
            f"the check '{check}' compares in the wrong direction for '{parsed.metric}'",
            where,
            f"higher-is-better metrics: 'm >= {against} - d'; lower-is-better: 'm <= {against} + d'",
        )
        return None
    return parsed
