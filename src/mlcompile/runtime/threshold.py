"""The decision threshold of a binary model: the score from which it predicts the positive
class. A spec sets it (`threshold: 0.3`) or has it chosen on the validation split
(`threshold: {maximize: f1}`, `{min_precision: 0.8}`); training stores it with the model,
and evaluate, diagnosis, batch scoring, `serve` and monitors all read it from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mlcompile.errors import StepError

THRESHOLD = 0.5
RULES = ("maximize", "min_precision", "min_recall")


def model_threshold(meta: Mapping[str, Any]) -> float:
    """The threshold stored with a binary model; 0.5 for models trained before there was one."""
    chosen = meta.get("threshold")
    return THRESHOLD if chosen is None else float(chosen["value"])


def _counts(labels: Any, scores: Any) -> tuple[Any, Any, Any, Any]:
    """(candidate thresholds, true positives, false positives, positives) at every distinct
    score, highest first: predicting positive from each candidate down."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order].astype(float)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last row of each score
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return s[last], tp, fp, y.sum()


def choose_threshold(rule: float | Mapping[str, Any], labels: Any, scores: Any) -> dict[str, Any]:
    """{"value", "rule", "rows"}: the threshold `rule` picks on these validation rows. Ties go
    to the highest threshold, so the choice does not depend on anything but the rows."""
    if isinstance(rule, int | float):
        return {"value": float(rule), "rule": None, "rows": 0}
    candidates, tp, fp, positives = _counts(np.asarray(labels), np.asarray(scores))
    negatives = len(labels) - positives
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(positives > 0, tp / positives, 0.0)
        if "maximize" in rule:
            target = str(rule["maximize"])
            if target == "f1":
                objective = np.where(tp > 0, 2 * tp / (2 * tp + fp + (positives - tp)), 0.0)
            elif target == "balanced_accuracy":
                specificity = np.where(negatives > 0, (negatives - fp) / negatives, 0.0)
                objective = (recall + specificity) / 2
            else:  # accuracy
                objective = (tp + (negatives - fp)) / len(labels)
            pick = int(np.argmax(objective))
        elif "min_precision" in rule:
            meets = np.flatnonzero(precision >= float(rule["min_precision"]))
            # the most recall the precision allows
            pick = int(meets[np.argmax(recall[meets])]) if len(meets) else -1
        else:
            meets = np.flatnonzero(recall >= float(rule["min_recall"]))
            pick = int(meets[np.argmax(precision[meets])]) if len(meets) else -1
    if pick < 0:
        raise StepError(
            f"no threshold reaches {dict(rule)} on the {len(labels)} validation rows; "
            "relax the rule or set a threshold outright"
        )
    return {"value": float(candidates[pick]), "rule": dict(rule), "rows": len(labels)}
