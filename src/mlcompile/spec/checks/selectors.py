"""Feature selectors in a model's `features`, resolved against the typed source.

A glob ('M*') stands for the data source's columns whose names match it, and
`{all_except: [...]}` for every column but those and the target, each in the source's
column order. Resolution replaces them with the names they select, so the plan, its
fingerprints and lineage are those of the same list written out; a name already in the
list is not repeated. A selector needs the source's columns: when validate cannot know
them (a file it cannot read, a SQL over such a file), the selector is an error.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from mlcompile import codes
from mlcompile.errors import did_you_mean
from mlcompile.spec.checks.context import Context
from mlcompile.spec.models import AllExcept, Model
from mlcompile.spec.yaml_loader import KeyPath

_GLOB = frozenset("*?[")


def _is_glob(entry: str, model: Model, ctx: Context) -> bool:
    """A name with glob characters that is not itself a feature or a column."""
    columns = ctx.columns_of(model.data) or []
    return bool(_GLOB & set(entry)) and entry not in ctx.spec.features and entry not in columns


def check(ctx: Context) -> None:
    models = dict(ctx.spec.models)
    for name, model in ctx.spec.models.items():
        if model.data not in ctx.spec.sources:
            continue  # an unknown source is the models check's to report
        if all(isinstance(f, str) and not _is_glob(f, model, ctx) for f in model.features):
            continue
        names, origins = _expand(ctx, name, model)
        models[name] = model.model_copy(update={"features": names})
        ctx.feature_origins[name] = origins
    if ctx.feature_origins:
        ctx.spec = ctx.spec.model_copy(update={"models": models})
        ctx.out.spec = ctx.spec
        ctx.out.selected = set(ctx.feature_origins)


def _expand(ctx: Context, name: str, model: Model) -> tuple[list[str], list[int]]:
    """The names the model's features stand for, each with the index of the entry that
    gave it (for the place of errors about it)."""
    at: KeyPath = ("models", name, "features")
    columns = ctx.columns_of(model.data)
    names: list[str] = []
    origins: list[int] = []

    def add(selected: list[str], index: int) -> None:
        for column in selected:
            if column not in names:
                names.append(column)
                origins.append(index)

    for index, entry in enumerate(model.features):
        if isinstance(entry, str) and not _is_glob(entry, model, ctx):
            names.append(entry)
            origins.append(index)
            continue
        if columns is None:
            ctx.error(
                codes.UNRESOLVED_SELECTOR,
                f"the columns of source '{model.data}' are not known before a run, so this "
                "selector cannot be resolved",
                (*at, index),
                "list the features by name, or give the source a strict schema",
            )
            continue
        candidates = [c for c in columns if c != model.target]
        if isinstance(entry, AllExcept):
            for position, left_out in enumerate(entry.all_except):
                if left_out not in columns:
                    ctx.error(
                        codes.UNKNOWN_NAME,
                        f"unknown column '{left_out}': not a column of source '{model.data}'",
                        (*at, index, "all_except", position),
                        did_you_mean(left_out, columns),
                    )
            add([c for c in candidates if c not in entry.all_except], index)
            continue
        matched = [c for c in candidates if fnmatchcase(c, entry)]
        if not matched:
            ctx.error(
                codes.UNRESOLVED_SELECTOR,
                f"the pattern '{entry}' matches no column of source '{model.data}'",
                (*at, index),
                "patterns match column names case-sensitively",
            )
        add(matched, index)
    return names, origins
