"""A tuned model's plan: a tune node between features and train, whose fingerprint covers
the search and the data, and whose result train reads."""

from __future__ import annotations

from mlcompile.compiler import compile_spec
from mlcompile.plan import Plan
from tests.conftest import EXAMPLE, TUNED


def _plan(*overrides: str) -> Plan:
    return compile_spec(EXAMPLE / "mlcompile.yaml", [*TUNED, *overrides]).plan


def test_the_search_sits_between_features_and_train() -> None:
    plan = _plan()
    tune = plan.node("tune:delayed")
    assert {k: r.node for k, r in tune.inputs.items()} == {
        "train": "features:delayed",
        "transformer": "features:delayed",
    }
    assert tune.outputs == {"tuning": "tuning"}
    train = plan.node("train:delayed")
    assert train.inputs["tuning"].node == "tune:delayed"
    assert train.inputs["tuning"].type == "tuning"
    # the untuned model keeps its plan
    assert "tune:arrival" not in {n.id for n in plan.nodes}
    untuned = compile_spec(EXAMPLE / "mlcompile.yaml", []).plan
    assert plan.node("train:arrival") == untuned.node("train:arrival")


def test_the_search_params_say_what_each_trial_trains_and_how_it_is_judged() -> None:
    params = _plan().node("tune:delayed").params
    assert params["metric"] == "roc_auc" and params["greater_is_better"] is True
    assert params["space"] == {
        "learning_rate": {"float": [0.02, 0.3], "log": True},
        "min_data_in_leaf": {"int": [10, 200]},
        "num_leaves": {"int": [7, 127], "log": True},
    }
    assert params["trials"] == 8 and params["sampler"] == "tpe" and params["pruning"] is True
    # the model's seed when the search names none; every trial trains as train does
    assert params["tune_seed"] == params["seed"] == 13
    train = _plan().node("train:delayed").params
    assert {k: params[k] for k in train} == train
    assert "num_leaves" not in params["params"]
    lower = _plan("models.delayed.tune.metric=logloss").node("tune:delayed").params
    assert lower["greater_is_better"] is False


def test_the_fingerprint_covers_the_search_and_flows_into_training() -> None:
    base = _plan()
    for change in (
        "models.delayed.tune.trials=9",
        "+models.delayed.tune.seed=3",
        "models.delayed.tune.space.num_leaves.int=[7,63]",
        "+models.delayed.tune.sampler=random",
    ):
        changed = _plan(change)
        assert changed.node("tune:delayed").fingerprint != base.node("tune:delayed").fingerprint
        assert changed.node("train:delayed").fingerprint != base.node("train:delayed").fingerprint
    assert _plan().to_json() == base.to_json()
