"""Bootstrap intervals of the test metrics, and gates on their bounds, on the flights data."""

from __future__ import annotations

import pandas as pd

from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.evaluate import evaluate
from mlcompile.runtime.gate import evaluate_gate
from mlcompile.spec.checks.gates import parse_check

BOOTSTRAP = {"resamples": 100, "confidence": 0.95, "seed": 7}


def test_intervals_are_seeded_and_contain_the_estimate(
    delay_split: tuple[pd.DataFrame, pd.DataFrame], delay_bundle: ModelBundle
) -> None:
    test = delay_split[1].head(1500)
    params = {"metrics": ["roc_auc", "recall", "logloss"], "bootstrap": BOOTSTRAP}
    result = evaluate(delay_bundle, test, params)
    again = evaluate(delay_bundle, test, params)
    assert result["intervals"] == again["intervals"]
    other = evaluate(delay_bundle, test, {**params, "bootstrap": {**BOOTSTRAP, "seed": 8}})
    assert other["intervals"] != result["intervals"]
    for name, value in result["overall"].items():
        interval = result["intervals"][name]
        assert interval["lower"] < value < interval["upper"], name
    assert result["bootstrap"] == BOOTSTRAP


def test_a_lower_bound_gate_fails_where_the_estimate_passes(
    delay_split: tuple[pd.DataFrame, pd.DataFrame], delay_bundle: ModelBundle
) -> None:
    # few test rows: a wide interval, as with a gate on a few dozen positives
    test = delay_split[1].head(300)
    metrics = evaluate(delay_bundle, test, {"metrics": ["roc_auc"], "bootstrap": BOOTSTRAP})
    point, lower = metrics["overall"]["roc_auc"], metrics["intervals"]["roc_auc"]["lower"]
    bound = round((point + lower) / 2, 4)
    checks = []
    for text in (f"roc_auc >= {bound}", f"roc_auc.lower >= {bound}"):
        parsed = parse_check(text)
        assert parsed is not None
        checks.append({"metric": parsed.metric, "op": parsed.op, "value": parsed.value})
    decision = evaluate_gate(metrics, {"checks": checks}, None)
    on_point, on_lower = decision["checks"]
    assert on_point["passed"] and on_point["value"] == point
    assert not on_lower["passed"] and on_lower["value"] == lower
    assert on_lower["point"] == point and not decision["passed"]
