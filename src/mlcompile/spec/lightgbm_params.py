"""LightGBM parameters checked at validate, against the installed LightGBM itself.

The names, aliases and types come from LightGBM: its alias table (`LGBM_DumpParamAliases`)
and the typed parameters a model text carries. Values are checked by letting LightGBM build
a booster on a few rows with the spec's parameters, so a range error is LightGBM's own
message. Both are kept in the project's cache keyed by LightGBM's version (read from the
package metadata), so a warm validate does not import lightgbm; only a new version or new
parameter values pay for it, and they ask LightGBM in a child process, so validate itself
never imports lightgbm.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlcompile import codes, paths
from mlcompile.errors import did_you_mean
from mlcompile.spec import cache

# mlcompile sets these on every training run, whatever the spec says (runtime/train.py).
FORCED = frozenset({"seed", "deterministic", "force_col_wise", "num_threads"})
# where LightGBM's checks name the file of its own source; machine paths stay out of errors
_SOURCE_AT = re.compile(r"\s+at \S+, line \d+\s*\.?$")
_OBJECTIVES = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}

Report = Callable[[str, str, tuple[str, ...], str | None], None]


def _version() -> str | None:
    try:
        return importlib.metadata.version("lightgbm")
    except importlib.metadata.PackageNotFoundError:
        return None


def _learn_catalogue() -> dict[str, Any]:
    import lightgbm as lgb
    import numpy as np
    from lightgbm.basic import _ConfigAliases

    aliases: dict[str, str] = {}
    for canonical, names in _ConfigAliases._get_all_param_aliases().items():
        for name in [canonical, *names]:
            aliases.setdefault(name, canonical)
    x = np.arange(40, dtype=float).reshape(20, 2)
    booster = lgb.train({"verbosity": -1}, lgb.Dataset(x, np.arange(20) % 2), num_boost_round=1)
    loaded = lgb.Booster(model_str=booster.model_to_string()).params
    types = {name: type(value).__name__ for name, value in loaded.items()}
    for canonical in set(aliases.values()):
        types.setdefault(canonical, "str")
    return {"aliases": aliases, "types": types}


@functools.cache
def catalogue(project_root: Path) -> dict[str, Any] | None:
    """{"version", "aliases": {name or alias: canonical}, "types": {canonical: type name}}, or None
    when LightGBM is not installed (nothing to check against). Read once per process: a spec
    with a thousand models asks for it a thousand times."""
    version = _version()
    if version is None:
        return None
    key = f"params-{version}"
    found = cache.load(project_root, key, paths.user_cache_dir("lightgbm"))
    if found is None:
        learned = _in_child("_learn_catalogue")
        if learned is None:
            return None
        found = {**learned, "version": version}
        cache.store(project_root, key, found, paths.user_cache_dir("lightgbm"))
    return found


def _type_problem(value: Any, kind: str) -> str | None:
    # A model text writes 1.0 as 1, so a number's type says int or float by its default's
    # look; LightGBM's own check (below) tells a whole number from a fraction.
    if kind in ("int", "float") and (isinstance(value, bool) or not isinstance(value, int | float)):
        return "a number"
    if kind == "bool" and not isinstance(value, bool):
        return "true or false"
    if kind == "str" and isinstance(value, float | bool):
        return "text"
    return None


def _lightgbm_verdicts(asked: list[tuple[str, dict[str, Any]]]) -> list[dict[str, str | None]]:
    """{"error": LightGBM's own complaint, or None} for each (task, parameters) asked."""
    import lightgbm as lgb
    import numpy as np

    rows = 30
    x = np.arange(rows * 2, dtype=float).reshape(rows, 2)
    verdicts: list[dict[str, str | None]] = []
    for task, params in asked:
        labels = np.arange(rows) % 3 if task == "multiclass" else np.arange(rows) % 2
        # one thread: OpenMP's start-up for a 30-row booster took 60 ms of each 63 on a busy
        # machine; a user's own num_threads (or alias) still wins
        merged: dict[str, Any] = {
            "objective": _OBJECTIVES.get(task, task),
            "verbosity": -1,
            "num_threads": 1,
        }
        if task == "multiclass":
            merged["num_class"] = 3
        merged.update(params)
        try:
            lgb.Booster(merged, lgb.Dataset(x, labels.astype(float), params=merged))
        except lgb.basic.LightGBMError as exc:
            verdicts.append({"error": _SOURCE_AT.sub("", str(exc)).strip()})
        else:
            verdicts.append({"error": None})
    return verdicts


def _in_child(function: str, *args: Any) -> Any:
    """`function(*args)` of this module, run in a child Python: validate itself never
    imports lightgbm (nor numpy), cold or warm. The arguments travel as JSON on stdin, never
    as code. None when the child fails: the check is skipped, and nothing is cached."""
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from mlcompile.spec import lightgbm_params as m\n"
        "print(json.dumps(getattr(m, sys.argv[1])(*json.load(sys.stdin))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, function],
        input=json.dumps(args),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    return json.loads(done.stdout)


def _values_verdicts(
    project_root: Path, version: str, asked: list[tuple[str, dict[str, Any]]]
) -> list[str | None] | None:
    """LightGBM's complaint (or None) for each (task, parameters), from the cache or from one
    child for all the uncached ones: a child per model would cost a LightGBM import each.
    Each distinct set is looked up once (a large spec repeats a few). None when the child
    fails."""
    folder = paths.user_cache_dir("lightgbm")
    keys = [
        "values-"
        + hashlib.sha256(
            json.dumps([version, task, sorted(params.items())], default=str).encode("utf-8")
        ).hexdigest()
        for task, params in asked
    ]
    distinct = dict(zip(keys, asked, strict=True))
    found = {key: cache.load(project_root, key, folder) for key in distinct}
    missing = [key for key, entry in found.items() if entry is None]
    if missing:
        learned = _in_child("_lightgbm_verdicts", [distinct[key] for key in missing])
        if learned is None:
            return None
        for key, entry in zip(missing, learned, strict=True):
            found[key] = entry
            cache.store(project_root, key, entry, folder)
    return [entry["error"] for entry in map(found.get, keys) if entry is not None]


def _names(problem: str, name: str, canonical: str) -> bool:
    return any(re.search(rf"\b{re.escape(n)}\b", problem) for n in (name, canonical))


def check_params(
    project_root: Path,
    models: Mapping[str, tuple[str, Mapping[str, Any]]],
    report: Report,
) -> None:
    """Report (code, message, key path, hint) for every parameter LightGBM does not know,
    holds to another type, or refuses, over all models: {model: (task, params)}."""
    if not any(params for _, params in models.values()):
        return
    known = catalogue(project_root)
    if known is None:
        return
    typed = {
        model: kept
        for model, (task, params) in models.items()
        if (kept := _names_and_types(known, model, params, report))
    }
    # names and types first: LightGBM reports only its first problem
    asked = [(models[model][0], params) for model, params in typed.items()]
    verdicts = _values_verdicts(project_root, known["version"], asked) if asked else None
    if verdicts is None:
        return  # nothing left to ask, or the child failed: values go unchecked
    for (model, params), problem in zip(typed.items(), verdicts, strict=True):
        if problem:
            where = next((n for n in params if _names(problem, n, known["aliases"][n])), None)
            at = ("models", model, "params")
            report(
                codes.LIGHTGBM_PARAM_REFUSED,
                f"LightGBM refuses these parameters: {problem}",
                (*at, where) if where else at,
                "see https://lightgbm.readthedocs.io/en/latest/Parameters.html",
            )


def _names_and_types(
    known: dict[str, Any], model: str, params: Mapping[str, Any], report: Report
) -> dict[str, Any] | None:
    """The parameters whose names and types pass, or None when one does not (or none is set)."""
    aliases, types = known["aliases"], known["types"]
    at = ("models", model, "params")
    typed: dict[str, Any] = {}
    refused = False
    for name, value in params.items():
        canonical = aliases.get(name)
        if canonical is None:
            hint = did_you_mean(name, aliases)
            report(
                codes.UNKNOWN_LIGHTGBM_PARAM,
                f"LightGBM has no parameter '{name}'",
                (*at, name),
                hint,
            )
            refused = True
            continue
        if canonical in FORCED:
            report(
                codes.IGNORED_LIGHTGBM_PARAM,
                f"mlcompile sets '{canonical}' itself; this value is ignored",
                (*at, name),
                f"use models.{model}.seed for the seed"
                if canonical == "seed"
                else "training is always deterministic, single-process per step",
            )
            continue
        wanted = _type_problem(value, types.get(canonical, "str"))
        if wanted:
            report(
                codes.LIGHTGBM_PARAM_REFUSED,
                f"LightGBM's '{name}' takes {wanted}, not {value!r}",
                (*at, name),
                f"write {wanted}, as LightGBM's parameter list documents for '{canonical}'",
            )
            refused = True
            continue
        typed[name] = value
    return None if refused or not typed else typed


def check_space(
    project_root: Path,
    models: Mapping[str, tuple[list[str], Mapping[str, Any]]],
    report: Report,
) -> None:
    """Report every search-space name LightGBM does not know (with did-you-mean), and every
    one that the model's `params` also fix, under any alias, or that mlcompile sets itself:
    {model: (space names, fixed params)}."""
    if not models:
        return
    known = catalogue(project_root)
    if known is None:
        return
    aliases = known["aliases"]
    for model, (names, fixed) in models.items():
        at = ("models", model, "tune", "space")
        fixed_by = {aliases[n]: n for n in fixed if n in aliases}
        for name in names:
            canonical = aliases.get(name)
            if canonical is None:
                report(
                    codes.UNKNOWN_LIGHTGBM_PARAM,
                    f"LightGBM has no parameter '{name}'",
                    (*at, name),
                    did_you_mean(name, aliases),
                )
            elif canonical in FORCED:
                report(
                    codes.TUNED_PARAM_FIXED,
                    f"mlcompile sets '{canonical}' itself; it cannot be searched",
                    (*at, name),
                    "remove it from the space",
                )
            elif canonical in fixed_by:
                also = fixed_by[canonical]
                written = f"'{also}'" + (f" (an alias of '{canonical}')" if also != name else "")
                report(
                    codes.TUNED_PARAM_FIXED,
                    f"'{name}' is searched, but params also fix {written}",
                    (*at, name),
                    f"remove '{also}' from models.{model}.params, or '{name}' from the space"
                    if also != name
                    else f"remove '{name}' from models.{model}.params, or from the space",
                )
