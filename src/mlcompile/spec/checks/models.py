"""Models: their source, features, target, split and slice columns, and metrics."""

from __future__ import annotations

from mlcompile import codes
from mlcompile.errors import did_you_mean
from mlcompile.spec.checks.context import Context
from mlcompile.spec.lightgbm_params import check_params, check_space
from mlcompile.spec.metric_names import metric_hint
from mlcompile.spec.models import TASK_METRICS, CustomMetric, Model
from mlcompile.spec.yaml_loader import KeyPath
from mlcompile.tasks import PER_CLASS
from mlcompile.trust import module_source


def check(ctx: Context) -> None:
    spec = ctx.spec
    check_params(ctx.root, {name: (m.task, m.params) for name, m in spec.models.items()}, ctx.error)
    tuned = {name: m for name, m in spec.models.items() if m.tune is not None}
    check_space(
        ctx.root,
        {name: (list(m.tune.space), m.params) for name, m in tuned.items() if m.tune},
        ctx.error,
    )
    for name, model in tuned.items():
        _tune(ctx, name, model)
    for name, model in spec.models.items():
        at: KeyPath = ("models", name)
        if not ctx.ref(model.data, spec.sources, "source", (*at, "data")):
            continue
        columns = ctx.columns_of(model.data)
        for index, feature in enumerate(model.feature_names):
            if (
                feature not in spec.features
                and columns is not None
                and feature not in columns
                and feature not in ctx.broken.get("features", ())
            ):
                ctx.error(
                    codes.UNKNOWN_NAME,
                    f"unknown feature '{feature}': not in features, nor a column of source '{model.data}'",
                    ctx.feature_path(name, index),
                    did_you_mean(feature, [*spec.features, *columns]),
                )
        if model.target in model.feature_names:
            ctx.error(
                codes.TARGET_IS_FEATURE,
                f"the target '{model.target}' is also a feature of model '{name}'",
                (*at, "target"),
                "a model that sees its target learns nothing useful; remove it from features",
            )
        ctx.raw_column(model.target, model.data, (*at, "target"), "target column")
        if model.split.column:
            ctx.raw_column(model.split.column, model.data, (*at, "split", "column"), "split column")
        for index, column in enumerate(model.slices):
            ctx.raw_column(column, model.data, (*at, "slices", index), "slice column")
        _metrics(ctx, name, model)


def _metrics(ctx: Context, name: str, model: Model) -> None:
    at: KeyPath = ("models", name, "metrics")
    produced = TASK_METRICS[model.task]
    for index, metric in enumerate(model.metrics or []):
        if isinstance(metric, CustomMetric):
            if metric.name in produced:
                ctx.error(
                    codes.UNKNOWN_METRIC,
                    f"the custom metric '{metric.name}' has the name of a built-in one",
                    (*at, index, "name"),
                    "name it differently, e.g. 'my_" + metric.name + "'",
                )
            source = module_source(metric.function.split(":", 1)[0], ctx.root)
            if source.refusal is not None:
                ctx.error(
                    codes.UNTRUSTED_MODULE, source.refusal, (*at, index, "function"), source.hint
                )
        elif metric not in produced:
            ctx.error(
                codes.UNKNOWN_METRIC,
                f"a {model.task} model does not produce '{metric}'",
                (*at, index),
                metric_hint(metric, produced),
            )


def _tune(ctx: Context, name: str, model: Model) -> None:
    """The search's metric is one number of the task on the validation split; each range
    is ordered, and a log range lies above 0."""
    assert model.tune is not None
    at: KeyPath = ("models", name, "tune")
    metric, produced = model.tune.metric, TASK_METRICS[model.task]
    if metric not in produced:
        ctx.error(
            codes.UNKNOWN_METRIC,
            f"a {model.task} model does not produce '{metric}'",
            (*at, "metric"),
            metric_hint(metric, produced),
        )
    elif metric in PER_CLASS.get(model.task, ()):
        ctx.error(
            codes.UNKNOWN_METRIC,
            f"'{metric}' of a {model.task} model is one number per class, not one to optimize",
            (*at, "metric"),
            "optimize one of: " + ", ".join(m for m in produced if m not in PER_CLASS[model.task]),
        )
    for param, searched in model.tune.space.items():
        bounds = searched.bounds
        if bounds is None:
            continue
        low, high = bounds
        where = (*at, "space", param, "int" if searched.int_ is not None else "float")
        if not low < high:
            ctx.error(
                codes.BAD_SEARCH_RANGE,
                f"the range of '{param}' is [{low}, {high}]: its low end must be below its high end",
                where,
                "write [low, high]; to fix one value, put it in params instead",
            )
        elif searched.log and low <= 0:
            ctx.error(
                codes.BAD_SEARCH_RANGE,
                f"'{param}' is searched on a log scale from {low}: a log range lies above 0",
                where,
                "start the range above 0, or drop 'log: true'",
            )
