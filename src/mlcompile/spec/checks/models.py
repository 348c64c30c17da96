"""Models: their source, features, target, split and slice columns, and metrics."""

from __future__ import annotations

from mlcompile import codes
from mlcompile.errors import did_you_mean
from mlcompile.spec.checks.context import Context
from mlcompile.spec.lightgbm_params import check_params
from mlcompile.spec.metric_names import metric_hint
from mlcompile.spec.models import TASK_METRICS, CustomMetric, Model
from mlcompile.spec.yaml_loader import KeyPath
from mlcompile.trust import module_source


def check(ctx: Context) -> None:
    spec = ctx.spec
    check_params(ctx.root, {name: (m.task, m.params) for name, m in spec.models.items()}, ctx.error)
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
