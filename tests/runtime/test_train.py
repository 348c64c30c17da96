from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from mlcompile.errors import DataValidationError, StepError
from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.features import apply_features, fit_features
from mlcompile.runtime.train import encode_target, predict, train_model

from .helpers import features_params, model_params, train_bundle


def test_same_inputs_give_byte_identical_model_text(
    delay_split: tuple[pd.DataFrame, pd.DataFrame], delay_bundle: ModelBundle
) -> None:
    again = train_bundle(delay_split[0], "binary", "delayed")
    assert again.text == delay_bundle.text
    assert again.meta == delay_bundle.meta


def test_thread_count_does_not_change_the_model(
    delay_split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    # Few rounds: two OpenMP threads crawl when the two cores are busy with other tests.
    short = {"num_boost_round": 15, "early_stopping_rounds": None}
    one = train_bundle(delay_split[0], "binary", "delayed", num_threads=1, **short)
    two = train_bundle(delay_split[0], "binary", "delayed", num_threads=2, **short)
    assert two.text == one.text
    assert "[num_threads: 0]" in two.text


def test_model_text_is_cut_at_the_best_iteration(delay_bundle: ModelBundle) -> None:
    booster = lgb.Booster(model_str=delay_bundle.text)
    best = delay_bundle.meta["best_iteration"]
    assert 1 <= best < 60  # early stopping found its best before the last round
    assert booster.current_iteration() == best
    assert delay_bundle.text.count("Tree=") == best


def test_bundle_metadata(
    delay_split: tuple[pd.DataFrame, pd.DataFrame], delay_bundle: ModelBundle
) -> None:
    meta = delay_bundle.meta
    assert (meta["model"], meta["task"], meta["target"]) == ("binary_model", "binary", "delayed")
    assert meta["params"]["objective"] == "binary"
    assert meta["params"]["seed"] == 7 and meta["params"]["deterministic"] is True
    assert "num_threads" not in meta["params"]
    assert meta["feature_names"] == meta["feature_state"]["output_columns"]
    assert meta["feature_names"][:4] == ["dep_delay", "hour", "log_distance", "carrier"]
    assert set(meta["input_signature"]) == {"dep_delay", "hour", "distance", "carrier", "origin"}
    assert meta["training_data"]["rows"] == len(delay_split[0])
    assert meta["validation"]["rows"] == int(np.ceil(0.1 * len(delay_split[0])))
    assert set(meta["validation"]["best_score"]) == {"binary_logloss"}
    assert "classes" not in meta


def test_predictions_from_raw_rows(
    delay_split: tuple[pd.DataFrame, pd.DataFrame], delay_bundle: ModelBundle
) -> None:
    test = delay_split[1]
    scores = predict(delay_bundle, test)
    assert scores.shape == (len(test),)
    assert ((scores >= 0) & (scores <= 1)).all()
    # Departure delay drives arrival delay: the long-delayed departures score higher.
    late = test["dep_delay"] > 60
    assert (
        scores[late.to_numpy()].mean()
        > 0.9
        > 0.2
        > scores[(test["dep_delay"] < 0).to_numpy()].mean()
    )


def test_multiclass_records_its_classes(delays: pd.DataFrame) -> None:
    bundle = train_bundle(delays, "multiclass", "origin", early_stopping_rounds=None)
    assert bundle.meta["classes"] == ["EWR", "JFK", "LGA"]
    assert bundle.meta["params"]["num_class"] == 3
    assert bundle.meta["best_iteration"] == 60
    assert predict(bundle, delays.head(20)).shape == (20, 3)
    with pytest.raises(StepError, match=r"num_class is 4 but .* have 3 classes"):
        train_bundle(delays, "multiclass", "origin", num_class=4)


def test_rows_without_a_target_are_not_trained_on(flights: pd.DataFrame) -> None:
    state = fit_features(flights, features_params("regression", "arr_delay"))
    _, bundle = train_model(
        apply_features(flights, state), state, model_params("regression", "arr_delay")
    )
    assert bundle.meta["training_data"]["rows"] == flights["arr_delay"].notna().sum()


def test_target_errors() -> None:
    target = pd.Series(["yes", "no"], name="late")
    with pytest.raises(StepError, match="target 'late' must be numeric or bool"):
        encode_target(target, "binary", None, "m")
    with pytest.raises(StepError, match="target 'late' must be 0/1 or bool"):
        encode_target(pd.Series([0, 1, 2], name="late"), "binary", None, "m")
    with pytest.raises(StepError, match=r"classes unseen in training: \['maybe'\]"):
        encode_target(pd.Series(["yes", "maybe"], name="late"), "multiclass", ["no", "yes"], "m")
    labels = encode_target(
        pd.Series([True, None, False], dtype="boolean", name="late"), "binary", None, "m"
    )
    assert np.isnan(labels[1]) and labels[[0, 2]].tolist() == [1.0, 0.0]


def test_too_small_validation_is_an_error(delays: pd.DataFrame) -> None:
    with pytest.raises(StepError, match=r"validation_size=0.9 of 2 training rows"):
        train_bundle(delays.head(2), "regression", "arr_delay", validation_size=0.9)


def test_a_target_with_one_class_is_a_clear_error() -> None:
    import pandas as pd
    import pytest

    from mlcompile.runtime.features import fit_features
    from mlcompile.runtime.train import train_model

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [1, 1, 1, 1]})
    features = {
        "model": "m",
        "task": "binary",
        "target": "y",
        "model_inputs": ["x"],
        "carry": [],
        "features": [{"name": "x", "op": "passthrough", "column": "x"}],
    }
    state = fit_features(frame, features)
    params = {
        "model": "m",
        "task": "binary",
        "target": "y",
        "params": {},
        "num_boost_round": 5,
        "seed": 1,
    }
    with pytest.raises(
        DataValidationError,
        match="every training row has y = 1; a binary model needs at least two classes",
    ):
        train_model(frame, state, params)


def test_an_infinite_target_is_a_data_failure(delays: pd.DataFrame) -> None:
    rows = delays.head(2000).copy()
    rows.loc[[10, 20], "arr_delay"] = [np.inf, -np.inf]
    with pytest.raises(
        DataValidationError,
        match=r"model 'm': target 'arr_delay' holds inf or -inf: 'arr_delay' in 2 of 2000 rows",
    ):
        encode_target(rows["arr_delay"], "regression", None, "m")
    state = fit_features(rows, features_params("regression", "arr_delay"))
    with pytest.raises(DataValidationError, match="'arr_delay' in 2 of 2000 rows"):
        train_model(apply_features(rows, state), state, model_params("regression", "arr_delay"))


def test_a_constant_regression_target_is_refused(delays: pd.DataFrame) -> None:
    """A constant target trains to r2 = 1.0 and would pass every gate: refused instead."""
    rows = delays.head(500).assign(arr_delay=7.0)
    state = fit_features(rows, features_params("regression", "arr_delay"))
    with pytest.raises(
        DataValidationError,
        match=r"every training row has arr_delay = 7\.0; a regression model learns nothing "
        "from a constant",
    ):
        train_model(apply_features(rows, state), state, model_params("regression", "arr_delay"))


def test_a_named_positive_class_encodes_a_text_target(delays: pd.DataFrame) -> None:
    rows = delays.head(2000).assign(late=np.where(delays.head(2000)["delayed"] == 1, "Yes", "No"))
    rows.loc[3, "late"] = None
    labels = encode_target(rows["late"], "binary", None, "m", "Yes")
    assert np.isnan(labels[3])
    known = np.delete(np.arange(len(rows)), 3)
    assert (labels[known] == rows["delayed"].to_numpy()[known]).all()
    with pytest.raises(StepError, match="name the positive class with the model's positive_class"):
        encode_target(rows["late"], "binary", None, "m")
    state = fit_features(rows, features_params("binary", "late"))
    params = model_params("binary", "late", positive_class="Yes")
    _, bundle = train_model(apply_features(rows, state), state, params)
    assert bundle.meta["positive_class"] == "Yes"
    from mlcompile.runtime.evaluate import predictions

    tested = predictions(bundle, rows.tail(500), [])
    assert (tested.labels == (rows.tail(500)["late"] == "Yes").to_numpy()).all()
    with pytest.raises(
        DataValidationError, match=r"positive_class 'yes' is not a value of 'late'.*'No'"
    ):
        train_model(apply_features(rows, state), state, {**params, "positive_class": "yes"})
    three = rows.assign(late=rows["late"].where(rows.index % 7 != 0, "Maybe"))
    with pytest.raises(StepError, match="has 3 values"):
        encode_target(three["late"], "binary", None, "m", "Yes")


def test_a_run_on_a_constant_target_registers_nothing(cli: Any, tmp_path: Path) -> None:
    """Through `mlcompile run`: the train step fails with the reason, as a data failure
    (exit 3), and the gate and the registry deployment after it never run."""
    from tests.conftest import EXAMPLE

    (tmp_path / "data").mkdir()
    shutil.copy(EXAMPLE / "data" / "weather.csv", tmp_path / "data" / "weather.csv")
    spec = tmp_path / "mlcompile.yaml"
    spec.write_text(
        "name: constant\n"
        "sources:\n  weather: {path: data/weather.csv}\n"
        "  flat: {sql: 'SELECT humid, dewp, 1.5 AS y FROM weather WHERE humid IS NOT NULL'}\n"
        "models:\n  m: {task: regression, data: flat, target: y, features: [humid, dewp]}\n"
        "gates:\n  g: {model: m, checks: ['r2 >= 0.5']}\n"
        "deployments:\n  reg: {kind: registry, model: m}\n",
        encoding="utf-8",
    )
    result = cli("run", spec, "-q", cwd=tmp_path)
    assert result.exit_code == 3, result.output
    assert "every training row has y = 1.5; a regression model learns nothing" in result.output
    registry = tmp_path / ".mlcompile" / "registry"
    assert not registry.exists() or not any(registry.iterdir())
