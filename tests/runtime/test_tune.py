"""The parameter search on the flights example's data: it beats the untuned model on the
validation split, it is reproducible to the byte, and a killed study resumes."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlcompile.runtime.evaluate import BINARY, Scorer, validation_scores
from mlcompile.runtime.features import apply_features, fit_features
from mlcompile.runtime.split import split_frame
from mlcompile.runtime.train import train_model
from mlcompile.runtime.tune import study_name, tune
from tests.conftest import EXAMPLE

from .helpers import features_params, model_params

ROWS = 12_000
FEATURES: list[dict[str, Any]] = [
    {"name": "hour", "op": "passthrough", "column": "hour"},
    {"name": "month", "op": "passthrough", "column": "month"},
    {"name": "day", "op": "passthrough", "column": "day"},
    {"name": "log_distance", "op": "log", "column": "distance"},
    {"name": "carrier", "op": "encode", "column": "carrier", "method": "category"},
    {"name": "origin", "op": "encode", "column": "origin", "method": "onehot"},
    {"name": "dest", "op": "encode", "column": "dest", "method": "category"},
]
SPACE = {
    "learning_rate": {"float": [0.02, 0.3], "log": True},
    "min_data_in_leaf": {"int": [5, 200]},
    "num_leaves": {"int": [7, 127], "log": True},
}
# what the search leaves fixed: the example's binary preset without the searched ones
FIXED = {"bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.9, "lambda_l2": 1.0}
# the preset's values of the searched ones: the model the search must beat
UNTUNED = {"learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 40}


@pytest.fixture(scope="module")
def rows() -> tuple[pd.DataFrame, dict[str, Any]]:
    """The example's flights that departed, is_delayed as in its spec: the transformed
    training rows of a random split, and the fitted transformer."""
    frame = pd.read_parquet(EXAMPLE / "data" / "flights.parquet")
    frame = frame.dropna(subset=["dep_delay"]).head(ROWS).reset_index(drop=True)
    frame = frame.assign(is_delayed=(frame["dep_delay"] > 15).astype("int64"))
    split = {"model": "binary_model", "method": "random", "test_size": 0.2, "seed": 13}
    train, _ = split_frame(frame, split)
    state = fit_features(train, features_params("binary", "is_delayed", FEATURES))
    return apply_features(train, state), state


def search_params(**overrides: Any) -> dict[str, Any]:
    base = model_params(
        "binary", "is_delayed", params=FIXED, num_boost_round=300, early_stopping_rounds=20
    )
    return {
        **base,
        "metric": "roc_auc",
        "greater_is_better": True,
        "space": SPACE,
        "trials": 10,
        "timeout_s": None,
        "tune_seed": 7,
        "sampler": "tpe",
        "pruning": True,
        **overrides,
    }


def _name(params: dict[str, Any], state: dict[str, Any]) -> str:
    return study_name(params, {"train": "rows", "transformer": state})


def _validation_auc(train: pd.DataFrame, bundle: Any) -> float:
    held = validation_scores(bundle, train)
    assert held is not None
    values, _ = Scorer("binary", {"roc_auc": BINARY["roc_auc"]}, (), 0.5).score(*held)
    return values["roc_auc"]


def test_the_tuned_model_beats_the_untuned_one_on_validation(
    rows: tuple[pd.DataFrame, dict[str, Any]],
) -> None:
    train, state = rows
    params = search_params()
    record, timings = tune(train, state, params, name=_name(params, state))
    assert record["finished"] == 10 and record["stopped"] == "trials"
    assert {t["state"] for t in record["trials"]} <= {"complete", "pruned"}
    assert set(record["best"]["params"]) == set(SPACE)

    _, tuned = train_model(train, state, params, tuning=record)
    untuned_params = model_params(
        "binary",
        "is_delayed",
        params={**FIXED, **UNTUNED},
        num_boost_round=300,
        early_stopping_rounds=20,
    )
    _, untuned = train_model(train, state, untuned_params)
    # the model retrained with the best trial's parameters is that trial's model
    assert _validation_auc(train, tuned) == record["best"]["value"]
    assert _validation_auc(train, tuned) > _validation_auc(train, untuned)
    assert tuned.meta["tuning"]["params"] == record["best"]["params"]
    assert tuned.meta["params"]["num_leaves"] == record["best"]["params"]["num_leaves"]
    assert 0 < timings["lightgbm_seconds"] <= timings["seconds"]


def test_two_searches_give_the_same_trials_and_a_byte_identical_model(
    rows: tuple[pd.DataFrame, dict[str, Any]],
) -> None:
    train, state = rows
    params = search_params(trials=6)
    one, _ = tune(train, state, params, name=_name(params, state))
    two, _ = tune(train, state, params, name=_name(params, state))
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True)
    assert train_model(train, state, params, tuning=one)[1].text == (
        train_model(train, state, params, tuning=two)[1].text
    )
    # another seed draws other trials
    other, _ = tune(train, state, {**params, "tune_seed": 8}, name="other")
    assert other["trials"][0]["params"] != one["trials"][0]["params"]


def test_pruning_stops_trials_that_trail_the_median(
    rows: tuple[pd.DataFrame, dict[str, Any]],
) -> None:
    train, state = rows
    pruned, _ = tune(train, state, search_params(trials=10), name="pruned")
    unpruned, _ = tune(train, state, search_params(trials=10, pruning=False), name="unpruned")
    assert [t for t in pruned["trials"] if t["state"] == "pruned"]
    assert all(t.get("pruned", "").startswith("pruned at round") for t in pruned["trials"]
               if t["state"] == "pruned")  # fmt: skip
    assert {t["state"] for t in unpruned["trials"]} == {"complete"}


CHILD = """\
import json, sys
import pandas as pd
from pathlib import Path
from mlcompile.runtime.tune import tune
folder = Path(sys.argv[1])
params = json.loads((folder / "params.json").read_text())
state = json.loads((folder / "state.json").read_text())
rows = pd.read_parquet(folder / "rows.parquet")
tune(rows, state, params, name=sys.argv[2], storage=folder / "study.db")
"""


def _finished(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as connection:
            found = connection.execute(
                "SELECT count(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')"
            ).fetchone()
    except sqlite3.OperationalError:  # the child is still creating the tables
        return 0
    return int(found[0])


def test_a_killed_study_resumes_with_its_finished_trials(
    rows: tuple[pd.DataFrame, dict[str, Any]], tmp_path: Path
) -> None:
    train, state = rows
    params = search_params(trials=8, pruning=False)
    name = _name(params, state)
    train.to_parquet(tmp_path / "rows.parquet")
    (tmp_path / "params.json").write_text(json.dumps(params))
    (tmp_path / "state.json").write_text(json.dumps(state))
    db = tmp_path / "study.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), name])
    deadline = time.monotonic() + 240
    while _finished(db) < 3 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL, "the study ended before it was killed"
    before = _finished(db)
    assert 3 <= before < 8

    resumed, _ = tune(train, state, params, name=name, storage=db)
    assert resumed["resumed_from"] == before
    assert resumed["finished"] == 8 == _finished(db)
    # the trial the kill cut short is drawn again, by the sampler it would have had
    fresh, _ = tune(train, state, params, name=name)
    kept = [t for t in resumed["trials"] if t["state"] != "failed"]
    assert [t["params"] for t in kept] == [t["params"] for t in fresh["trials"]]
    assert resumed["best"]["params"] == fresh["best"]["params"]
    assert train_model(train, state, params, tuning=resumed)[1].text == (
        train_model(train, state, params, tuning=fresh)[1].text
    )
    # once done, the study runs no more trials
    again, _ = tune(train, state, params, name=name, storage=db)
    assert again["resumed_from"] == 8 and again["trials"] == resumed["trials"]
