"""Slice values with fewer rows than min_slice_rows are recorded with their row counts and
listed by slice gates as skipped, instead of dropping out without a word."""

from __future__ import annotations

import pandas as pd

from mlcompile.cli.summary import summary_text
from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.evaluate import evaluate
from mlcompile.runtime.gate import evaluate_gate

GATE = {
    "gate": "quality",
    "model": "delayed",
    "checks": [{"metric": "roc_auc", "op": ">=", "value": 0.0, "slice": "carrier"}],
}


def test_small_slices_are_recorded_and_reported_as_skipped(
    delay_bundle: ModelBundle, delays: pd.DataFrame
) -> None:
    rows = delays.head(1000)
    metrics = evaluate(delay_bundle, rows, {"slices": ["carrier"], "min_slice_rows": 100})
    counts = rows["carrier"].value_counts()
    small = {str(k): int(v) for k, v in counts[counts < 100].items()}
    assert small, "the sample must have small carriers for this test"
    assert metrics["skipped_slices"] == {"carrier": small}
    assert metrics["min_slice_rows"] == 100

    decision = evaluate_gate(metrics, GATE, None)
    skipped = [c for c in decision["checks"] if c.get("skipped")]
    assert {c["slice_value"]: c["rows"] for c in skipped} == small
    assert all(c["passed"] and c["value"] is None for c in skipped)
    judged = [c for c in decision["checks"] if not c.get("skipped")]
    assert {c["slice_value"] for c in judged} == set(metrics["slices"]["carrier"])
    value, rows_there = next(iter(sorted(small.items())))
    assert skipped[0]["note"] == f"skipped: {rows_there} rows, fewer than min_slice_rows (100)"

    printed = summary_text(
        {
            "steps": {},
            "metrics": {},
            "decisions": {"quality": decision},
            "error": None,
            "run_id": None,
            "status": "succeeded",
        }
    )
    assert f"  skip roc_auc[carrier={value}] >= 0: skipped: {rows_there} rows" in printed


def test_nothing_is_recorded_when_no_slice_is_small(
    delay_bundle: ModelBundle, delays: pd.DataFrame
) -> None:
    metrics = evaluate(delay_bundle, delays.head(1000), {"slices": ["origin"], "min_slice_rows": 5})
    assert "skipped_slices" not in metrics
