"""Monitors: the model is registered, sources and label columns exist, checks make sense."""

from __future__ import annotations

from mlcompile import codes
from mlcompile.errors import did_you_mean
from mlcompile.spec import metric_names
from mlcompile.spec.checks.context import Context
from mlcompile.spec.checks.gates import gate_check, parse_check
from mlcompile.spec.models import Model, Monitor, RegistryDeployment
from mlcompile.spec.resolved import GateCheck
from mlcompile.spec.yaml_loader import KeyPath
from mlcompile.tasks import DRIFT_METRICS, PREDICTION, lower_is_better, metric_problem


def check(ctx: Context) -> None:
    spec = ctx.spec
    for name, at, model in ctx.with_models("monitoring", spec.monitoring):
        monitor = spec.monitoring[name]
        if not ctx.broken.get("deployments") and not any(
            isinstance(d, RegistryDeployment) and d.model == monitor.model
            for d in spec.deployments.values()
        ):
            ctx.error(
                codes.UNKNOWN_NAME,
                f"monitor '{name}' watches model '{monitor.model}', which nothing registers",
                (*at, "model"),
                "add a deployment with kind: registry for that model",
            )
        current = monitor.current
        if current.source is not None:
            ctx.ref(current.source, spec.sources, "source", (*at, "current", "source"))
        if monitor.reference is not None:
            ctx.ref(monitor.reference, spec.sources, "source", (*at, "reference"))
        labels = monitor.labels
        if labels is not None and ctx.ref(
            labels.source, spec.sources, "source", (*at, "labels", "source")
        ):
            for index, column in enumerate(labels.key):
                ctx.raw_column(column, labels.source, (*at, "labels", "key", index), "key")
                if current.source in spec.sources:
                    ctx.raw_column(column, current.source, (*at, "labels", "key", index), "key")
            ctx.raw_column(
                labels.target or model.target,
                labels.source,
                (*at, "labels", "target" if labels.target else "source"),
                "label column",
            )
        versions = _versions(ctx, monitor, at)
        produced = metric_names.produced(model)
        normal: list[GateCheck] = []
        for index, written in enumerate(monitor.checks):
            where = (*at, "checks", index)
            early = (
                parse_check(written, model.lower_is_better) if isinstance(written, str) else None
            )
            if early is not None and early.versions is not None:
                # which versions it names, before which way it compares them
                if not _compares(ctx, early, versions, where, model):
                    continue
            elif early is not None and early.metric in DRIFT_METRICS and early.value is None:
                _drift_is_absolute(ctx, early, where)
                continue
            parsed = gate_check(ctx, written, where, model.lower_is_better)
            if parsed is not None and _monitor_check(
                ctx, parsed, monitor.model, produced, labels is not None, where
            ):
                normal.append(parsed)
        ctx.out.monitor_checks[name] = normal


def _versions(ctx: Context, monitor: Monitor, at: KeyPath) -> tuple[str, str] | None:
    """(challenger, watched alias) when the monitor can compare them, else None (after
    saying why, when it names a challenger it cannot compare)."""
    if monitor.challenger is None:
        return None
    where = (*at, "challenger")
    if monitor.challenger == monitor.alias:
        ctx.error(
            codes.MISPLACED_COMPARISON,
            f"the challenger '{monitor.challenger}' is the watched alias itself",
            where,
            "name the alias of the version on trial, e.g. 'challenger: challenger'",
        )
        return None
    if monitor.current.prediction_log is None:
        ctx.error(
            codes.MISPLACED_COMPARISON,
            f"challenger '{monitor.challenger}': only the prediction log knows which version "
            "scored a row",
            where,
            "watch what `mlcompile serve --shadow` or `--canary` logged: "
            "'current: {prediction_log: {path: ...}}'",
        )
        return None
    return monitor.challenger, monitor.alias


def _compares(
    ctx: Context,
    check: GateCheck,
    versions: tuple[str, str] | None,
    where: KeyPath,
    model: Model,
) -> bool:
    """Whether a comparison of two versions names the monitor's two, challenger first (a
    check of one version passes through)."""
    if check.versions is None:
        return True
    slices = model.slices
    if check.metric in DRIFT_METRICS:
        ctx.error(
            codes.MISPLACED_COMPARISON,
            f"'{check.text}': drift is measured against the reference rows, not between versions",
            where,
            f"bound it outright, as in '{check.metric} <= 0.2'",
        )
        return False
    if versions is None:
        ctx.error(
            codes.MISPLACED_COMPARISON,
            f"'{check.text}' compares two versions, and the monitor names no challenger",
            where,
            "add 'challenger: <alias>' (the version served with --shadow or --canary) to the "
            "monitor, and watch the prediction log",
        )
        return False
    unknown = [v for v in check.versions if v not in versions]
    if unknown:
        ctx.error(
            codes.UNKNOWN_VERSION,
            f"'{check.text}': '{unknown[0]}' is neither the challenger '{versions[0]}' nor the "
            f"watched alias '{versions[1]}'",
            where,
            f"'{unknown[0]}' is a slice: check it as '{check.metric}[{unknown[0]}] {check.op} <bound>'; "
            "a comparison names two versions"
            if unknown[0] in slices
            else did_you_mean(unknown[0], versions),
        )
        return False
    if check.versions != versions:
        lower = lower_is_better(check.metric) or check.metric in model.lower_is_better
        better = "<=" if lower else ">="
        ctx.error(
            codes.MISPLACED_COMPARISON,
            f"'{check.text}': the challenger goes on the left, the watched version on the right",
            where,
            f"write '{check.metric}[{versions[0]}] {better} {check.metric}[{versions[1]}]'",
        )
        return False
    return True


def _drift_is_absolute(ctx: Context, check: GateCheck, where: KeyPath) -> None:
    ctx.error(
        codes.UNREADABLE_CHECK,
        f"'{check.text}': drift has no production value to compare with",
        where,
        f"bound it outright, as in '{check.metric} <= 0.2'",
    )


def _monitor_check(
    ctx: Context, check: GateCheck, model: str, produced: list[str], labelled: bool, where: KeyPath
) -> bool:
    """A drift check names a model input (or 'prediction'); a performance check needs
    labels and, when bracketed, one of the model's slices."""
    definition = ctx.spec.models[model]
    if check.metric in DRIFT_METRICS:
        if check.max_drop is not None:
            _drift_is_absolute(ctx, check, where)
            return False
        inputs = [*definition.feature_names, PREDICTION]
        if check.slice is not None and check.slice not in inputs:
            ctx.error(
                codes.UNKNOWN_METRIC,
                f"'{check.slice}' is not an input of model '{model}', nor '{PREDICTION}'",
                where,
                did_you_mean(check.slice, inputs),
            )
            return False
        return True
    if metric_problem(check.metric, definition.task, produced, has_validation=False):
        ctx.error(
            codes.UNKNOWN_METRIC,
            f"'{check.metric}' is neither a drift measure nor a metric of model '{model}'",
            where,
            metric_names.metric_hint(check.metric, [*DRIFT_METRICS, *produced])
            or f"drift measures: {', '.join(DRIFT_METRICS)}",
        )
        return False
    if not labelled:
        ctx.error(
            codes.UNKNOWN_METRIC,
            f"'{check.text}' needs outcomes to measure performance",
            where,
            "add 'labels: {source: ..., key: [...]}' to the monitor",
        )
        return False
    if check.slice is not None and check.slice not in definition.slices:
        ctx.error(
            codes.UNKNOWN_METRIC,
            f"model '{model}' reports no slice '{check.slice}'",
            where,
            f"add '{check.slice}' to models.{model}.slices",
        )
        return False
    return True
