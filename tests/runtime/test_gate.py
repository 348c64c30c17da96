from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlcompile.errors import GateFailed, UsageError
from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.evaluate import evaluate
from mlcompile.runtime.gate import evaluate_gate, raise_if_failed
from mlcompile.runtime.registry import Registry

METRICS = {
    "task": "binary",
    "rows": 1000,
    "overall": {"roc_auc": 0.80, "logloss": 0.40},
    "slices": {
        "origin": {
            "EWR": {"roc_auc": 0.75, "logloss": 0.45, "rows": 400},
            "JFK": {"roc_auc": 0.85, "logloss": 0.35, "rows": 350},
            "LGA": {"logloss": 0.30, "rows": 250},  # roc_auc undefined: one class
        }
    },
}


def gate(*checks: dict[str, Any]) -> dict[str, Any]:
    return {
        "gate": "quality",
        "model": "delayed",
        "compare_alias": "production",
        "checks": list(checks),
    }


def test_absolute_checks() -> None:
    decision = evaluate_gate(
        METRICS,
        gate(
            {"metric": "roc_auc", "op": ">=", "value": 0.7},
            {"metric": "logloss", "op": "<", "value": 0.3},
        ),
        None,
    )
    assert decision["gate"] == "quality" and decision["model"] == "delayed"
    assert decision["passed"] is False
    passed, failed = decision["checks"]
    assert passed == {
        "check": "roc_auc >= 0.7",
        "metric": "roc_auc",
        "slice": None,
        "slice_value": None,
        "value": 0.80,
        "bound": 0.7,
        "op": ">=",
        "passed": True,
        "note": None,
    }
    assert (failed["check"], failed["value"], failed["passed"]) == ("logloss < 0.3", 0.40, False)
    with pytest.raises(
        GateFailed, match=r"gate 'quality' on model 'delayed' failed: logloss < 0.3 \(value 0.4\)"
    ):
        raise_if_failed(decision)


def test_slice_checks_expand_per_value() -> None:
    decision = evaluate_gate(
        METRICS, gate({"metric": "roc_auc", "op": ">=", "value": 0.7, "slice": "origin"}), None
    )
    by_value = {c["slice_value"]: c for c in decision["checks"]}
    assert list(by_value) == ["EWR", "JFK", "LGA"]
    assert by_value["EWR"]["check"] == "roc_auc[origin=EWR] >= 0.7"
    assert by_value["EWR"]["passed"] and by_value["JFK"]["passed"]
    # A metric the slice does not have fails: a gate never passes on a number it never saw.
    assert by_value["LGA"]["passed"] is False and "no 'roc_auc'" in by_value["LGA"]["note"]
    assert decision["passed"] is False
    empty = evaluate_gate(
        METRICS, gate({"metric": "roc_auc", "op": ">=", "value": 0.7, "slice": "dest"}), None
    )
    [missing] = empty["checks"]
    assert missing["passed"] is False and "slice 'dest'" in missing["note"]


def test_missing_metric_fails_with_a_note() -> None:
    decision = evaluate_gate(METRICS, gate({"metric": "f1", "op": ">=", "value": 0.5}), None)
    [check] = decision["checks"]
    assert (check["passed"], check["value"]) == (False, None)
    with pytest.raises(GateFailed, match="the model has no 'f1'"):
        raise_if_failed(decision)


def test_max_drop_against_production() -> None:
    production = {
        "overall": {"roc_auc": 0.83, "logloss": 0.38},
        "slices": {"origin": {"EWR": {"roc_auc": 0.76}, "JFK": {"roc_auc": 0.90}}},
    }
    checks = gate(
        {"metric": "roc_auc", "max_drop": 0.05},
        {"metric": "logloss", "max_drop": 0.01},
        {"metric": "roc_auc", "max_drop": 0.02, "slice": "origin"},
    )
    decision = evaluate_gate(METRICS, checks, production)
    texts = {c["check"]: c for c in decision["checks"]}
    auc = texts["roc_auc >= production - 0.05"]
    assert (auc["op"], auc["bound"], auc["passed"]) == (">=", pytest.approx(0.78), True)
    loss = texts["logloss <= production + 0.01"]
    assert (loss["op"], loss["bound"], loss["passed"]) == ("<=", pytest.approx(0.39), False)
    assert texts["roc_auc[origin=EWR] >= production - 0.02"]["passed"] is True
    assert texts["roc_auc[origin=JFK] >= production - 0.02"]["passed"] is False
    lga = texts["roc_auc[origin=LGA] >= production - 0.02"]
    assert lga["passed"] is False  # no roc_auc of its own, whatever production had


def test_without_production_relative_checks_pass_with_a_note() -> None:
    decision = evaluate_gate(METRICS, gate({"metric": "roc_auc", "max_drop": 0.0}), None)
    [check] = decision["checks"]
    assert check["passed"] is True and check["bound"] is None
    assert check["note"] == "no production model to compare with"
    partial = evaluate_gate(METRICS, gate({"metric": "roc_auc", "max_drop": 0.0}), {"overall": {}})
    assert partial["passed"] and "production model has no 'roc_auc'" in partial["checks"][0]["note"]


def test_against_a_registered_production_model(
    tmp_path: Path, delay_split: tuple[pd.DataFrame, pd.DataFrame], delay_bundle: ModelBundle
) -> None:
    metrics = evaluate(delay_bundle, delay_split[1], {"slices": ["origin"]})
    registry = Registry(tmp_path / "registry")
    registry.register("delays", delay_bundle, metrics, alias="production")
    production = registry.production_metrics("delays", "production")
    assert production == metrics
    worse = {
        **metrics,
        "overall": {**metrics["overall"], "roc_auc": metrics["overall"]["roc_auc"] - 0.1},
    }
    checks = gate(
        {"metric": "roc_auc", "max_drop": 0.05},
        {"metric": "roc_auc", "max_drop": 0.0, "slice": "origin"},
    )
    assert evaluate_gate(metrics, checks, production)["passed"] is True
    decision = evaluate_gate(worse, checks, production)
    assert decision["passed"] is False
    assert decision["checks"][0]["bound"] == pytest.approx(metrics["overall"]["roc_auc"] - 0.05)
    assert registry.production_metrics("delays", "staging") is None
    assert registry.production_metrics("other_model", "production") is None


def test_malformed_checks_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="needs 'metric'"):
        evaluate_gate(METRICS, gate({"op": ">=", "value": 1}), None)
    with pytest.raises(UsageError, match="needs 'op'"):
        evaluate_gate(METRICS, gate({"metric": "roc_auc", "op": "=>", "value": 1}), None)
