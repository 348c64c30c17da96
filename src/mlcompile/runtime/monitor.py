"""The monitor step: how far a current window has drifted from a registered model's
reference data, how the model performs on outcomes that arrived later, and whether the
monitor's retrain policy asks for a new model.

With a `challenger` (the alias of a version served beside the watched one, with `serve
--shadow` or `--canary`), checks written `m[challenger] op m[production] + d` compare the two
versions on the prediction log's labelled rows: the rows the watched version answered and
the challenger shadowed, both scoring each one; without such rows, each version on the rows
it answered itself (a canary). `promotion` reads the decision back for `registry promote
--if-monitor`.

It writes two records:
- drift.json: per model input (in the model's order) and for the predictions, the drift
  measures and a histogram of both sides; performance on labelled rows next to the version's
  own test metrics.
- decision.json: every check, judged like a gate check, and `retrain`.

The reference is the version's training rows as the registry keeps them (a seeded sample,
written at registration), or a source the spec names.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped]

from mlcompile.errors import GateFailed, StepError, UsageError
from mlcompile.tasks import DRIFT_METRICS, PREDICTION

from .drift import column_drift
from .evaluate import evaluate
from .features import feature_frame
from .gate import OPERATORS, compare_versions, evaluate_gate
from .predlog import read_log
from .registry import ModelRegistry, ModelVersion
from .score import prediction_columns
from .train import predict

REFERENCE_ROWS = 20_000
REFERENCE_SEED = 0
# the log's model_version beside a window's inputs, under a name no input column can have
ANSWERED = "\x00answered_version"


def reference_sample(rows: pd.DataFrame, meta: Mapping[str, Any]) -> pd.DataFrame:
    """What the registry keeps of a model's training rows: the columns its features read,
    its target and slices, at most REFERENCE_ROWS rows, seeded so a rerun keeps the same."""
    state = meta["feature_state"]
    wanted = [*state["input_signature"], state.get("target"), *state.get("carry", [])]
    columns = [c for c in dict.fromkeys(wanted) if c is not None and c in rows.columns]
    kept = rows[columns]
    if len(kept) > REFERENCE_ROWS:
        kept = kept.sample(n=REFERENCE_ROWS, random_state=REFERENCE_SEED).sort_index()
    return kept.reset_index(drop=True)


def _reference(version: ModelVersion, inputs: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    if "reference" in inputs:
        return inputs["reference"]
    if not version.reference_path.is_file():
        raise StepError(
            f"version {version.version} of '{version.name}' keeps no reference rows (it was "
            "registered by an older mlcompile): retrain it, or name a reference source"
        )
    return pd.read_parquet(version.reference_path)


def _current(
    params: Mapping[str, Any],
    version: ModelVersion,
    meta: Mapping[str, Any],
    inputs: Mapping[str, pd.DataFrame],
    log_dir: Path | None,
) -> pd.DataFrame:
    if "current" in inputs:
        return inputs["current"]
    window = params["current"]["prediction_log"]
    if log_dir is None:
        raise StepError("a prediction-log window needs the log folder")
    return read_log(
        log_dir,
        meta["feature_state"]["input_signature"],
        prediction_columns(meta),
        version=None if window.get("all_versions") else version.version,
        max_rows=window.get("max_rows"),
    )


def _measured(work: pd.DataFrame, state: Mapping[str, Any], name: str) -> pd.Series:
    """The values a model input is measured on: an encoded feature on what it encodes."""
    spec = next((f for f in state["features"] if f["name"] == name), None)
    if spec is not None and spec["op"] == "encode" and spec.get("column") in work.columns:
        return work[spec["column"]]
    return work[name]


def _prediction(bundle: Any, rows: pd.DataFrame, num_threads: int) -> pd.Series:
    raw = predict(bundle, rows, num_threads)
    if bundle.meta["task"] == "multiclass":
        classes = bundle.meta["classes"]
        return pd.Series([str(classes[i]) for i in raw.argmax(axis=1)], dtype="object")
    return pd.Series(raw, dtype="float64")


def _performance(
    bundle: Any,
    params: Mapping[str, Any],
    current: pd.DataFrame,
    labels: pd.DataFrame,
    num_threads: int,
) -> tuple[dict[str, Any] | None, int]:
    """Metrics on the current rows that have an outcome, and how many rows that is."""
    spec = params["labels"]
    key, label, target = list(spec["key"]), str(spec["target"]), str(params["target"])
    for side, frame, columns in (("current rows", current, key), ("labels", labels, [*key, label])):
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise StepError(f"monitor '{params['monitor']}': the {side} lack columns {absent}")
    outcomes = labels[[*key, label]].dropna(subset=[label])
    if outcomes.duplicated(subset=key).any():
        raise StepError(
            f"monitor '{params['monitor']}': several labels share a key {key}; "
            "a key must name one row"
        )
    outcomes = outcomes.rename(columns={label: target})
    try:
        joined = current.drop(columns=[target], errors="ignore").merge(outcomes, on=key)
    except ValueError as exc:  # keys of different types on the two sides
        raise StepError(
            f"monitor '{params['monitor']}': cannot join labels on {key}: {exc}"
        ) from None
    if joined.empty:
        return None, 0
    slices = [s for s in params.get("slices") or [] if s in joined.columns]
    metrics = evaluate(
        bundle,
        joined,
        {
            "metrics": params.get("metrics"),
            "custom_metrics": params.get("custom_metrics"),
            "slices": slices,
            "min_slice_rows": params.get("min_slice_rows"),
        },
        num_threads=num_threads,
    )
    return metrics, int(metrics["rows"])


def _side(
    alias: str, version: ModelVersion, scored: tuple[dict[str, Any] | None, int]
) -> dict[str, Any]:
    return {"alias": alias, "version": version.version, "rows": scored[1], "metrics": scored[0]}


def _rollout(
    params: Mapping[str, Any],
    registry: ModelRegistry,
    champion: ModelVersion,
    labels: pd.DataFrame,
    log_dir: Path,
    num_threads: int,
) -> dict[str, Any]:
    """Both versions' metrics on the labelled rows of the log they scored, and on which
    rows: `basis` "shadow" (the same rows, both scored each), "canary" (each version the
    rows it answered) or None (no labelled row was scored by both)."""
    name, alias = str(params["registered_name"]), str(params["challenger"])
    challenger = registry.get(name, alias)
    bundles = {v.version: v.bundle() for v in (champion, challenger)}
    first = bundles[champion.version].meta
    signature = {
        **first["feature_state"]["input_signature"],
        **bundles[challenger.version].meta["feature_state"]["input_signature"],
    }
    window = params["current"]["prediction_log"]
    rows = read_log(
        log_dir,
        signature,
        prediction_columns(first),
        version=None,
        max_rows=window.get("max_rows"),
        version_as=ANSWERED,
    )
    answered = rows[ANSWERED] if len(rows) else pd.Series(dtype="float64")
    shadowed = rows["shadow_version"] if "shadow_version" in rows else pd.Series(pd.NA, rows.index)

    def scored(version: ModelVersion, where: Any) -> tuple[dict[str, Any] | None, int]:
        frame = rows[where].drop(columns=[ANSWERED]).reset_index(drop=True)
        if frame.empty:
            return None, 0
        return _performance(bundles[version.version], params, frame, labels, num_threads)

    both = (answered == champion.version) & (shadowed == challenger.version)
    basis: str | None = "shadow"
    sides = scored(champion, both), scored(challenger, both)
    if not sides[0][1]:
        basis = "canary"
        sides = (
            scored(champion, answered == champion.version),
            scored(challenger, answered == challenger.version),
        )
    if not (sides[0][1] and sides[1][1]):
        basis = None
    return {
        "basis": basis,
        "champion": _side(str(params["alias"]), champion, sides[0]),
        "challenger": _side(alias, challenger, sides[1]),
    }


def _comparison_entry(
    raw: Mapping[str, Any], rollout: Mapping[str, Any], min_rows: int
) -> dict[str, Any]:
    """A comparison check judged like a gate check, with both versions' values and rows.
    Too few compared rows judge nothing: the check passes (like a performance check without
    labels) and says so, and `judged` false keeps `registry promote --if-monitor` away."""
    champion, challenger = rollout["champion"], rollout["challenger"]
    basis = rollout["basis"]
    fewest = min(champion["rows"], challenger["rows"])
    entry = {
        "check": raw.get("text"),
        "text": raw.get("text"),
        "kind": "comparison",
        "basis": basis,
        "judged": basis is not None and fewest >= min_rows,
        **compare_versions(raw, challenger["metrics"] or {}, champion["metrics"] or {}),
    }
    entry["versions"] = {
        role: {
            "alias": side["alias"],
            "version": side["version"],
            "rows": side["rows"],
            "value": entry["value" if role == "challenger" else "against"],
        }
        for role, side in (("challenger", challenger), ("champion", champion))
    }
    if basis is None:
        entry.update(passed=True, note="no labelled row scored by both versions yet")
    elif fewest < min_rows:
        entry.update(
            passed=True,
            note=f"only {fewest} labelled rows of one version, fewer than min_rows "
            f"{min_rows}: not judged",
        )
    return entry


def _drift_entry(
    raw: Mapping[str, Any], feature: str, measures: Mapping[str, Any], every: bool
) -> dict[str, Any]:
    metric, op, bound = str(raw["metric"]), str(raw["op"]), float(raw["value"])
    value = measures.get(metric)
    note = None
    if value is None:
        kind = measures.get("type", "this")
        note = f"'{metric}' is not measured on a {kind} column"
    passed = value is not None and OPERATORS[op](value, bound)
    return {
        "check": f"{metric}[{feature}] {op} {bound:g}",
        "text": raw.get("text"),
        "kind": "drift",
        "metric": metric,
        "feature": feature,
        "value": value,
        "bound": bound,
        "op": op,
        # a check on every feature judges only the features the measure applies to
        "passed": passed or (every and value is None),
        "note": note,
    }


def judge(
    params: Mapping[str, Any],
    features: Mapping[str, Mapping[str, Any]],
    performance: Mapping[str, Any] | None,
    production: Mapping[str, Any],
    rollout: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every check, in the spec's order: drift checks once per feature they cover,
    performance checks as a gate judges them (against the version's own test metrics),
    comparisons of two versions on the rows `rollout` says."""
    entries: list[dict[str, Any]] = []
    for raw in params.get("checks") or []:
        if raw.get("versions"):
            assert rollout is not None, "validate lets no comparison into a monitor without one"
            entries.append(_comparison_entry(raw, rollout, int(params.get("min_rows") or 1)))
            continue
        if raw["metric"] in DRIFT_METRICS:
            if raw.get("slice"):
                entries.append(_drift_entry(raw, raw["slice"], features[raw["slice"]], False))
            else:
                inputs = [f for f in features if f != PREDICTION]
                entries += [
                    e
                    for e in (_drift_entry(raw, f, features[f], True) for f in inputs)
                    if e["value"] is not None
                ]
            continue
        if performance is None:
            entries.append(
                {
                    "check": raw.get("text"),
                    "text": raw.get("text"),
                    "kind": "performance",
                    "metric": raw["metric"],
                    "value": None,
                    "bound": None,
                    "passed": True,
                    "note": "no current row has a label yet",
                }
            )
            continue
        gate = evaluate_gate(performance, {"checks": [raw]}, production)
        entries += [{**e, "text": raw.get("text"), "kind": "performance"} for e in gate["checks"]]
    return entries


def monitor(
    params: Mapping[str, Any],
    registry: ModelRegistry,
    inputs: Mapping[str, pd.DataFrame],
    log_dir: Path | None,
    num_threads: int = 1,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(drift report, decision) for one monitor."""
    name, alias = str(params["registered_name"]), str(params["alias"])
    version = registry.get(name, alias)
    bundle = version.bundle()
    meta = bundle.meta
    state = meta["feature_state"]
    reference = _reference(version, inputs)
    current = _current(params, version, meta, inputs, log_dir)
    ref_work, cur_work = feature_frame(reference, state), feature_frame(current, state)
    bins = int(params.get("bins") or 10)
    features: dict[str, dict[str, Any]] = {}
    for feature in state["model_inputs"]:
        features[feature] = column_drift(
            _measured(ref_work, state, feature), _measured(cur_work, state, feature), bins
        )
    if len(current):
        features[PREDICTION] = column_drift(
            _prediction(bundle, reference, num_threads),
            _prediction(bundle, current, num_threads),
            bins,
        )
    performance, labelled = None, 0
    if params.get("labels") and "labels" in inputs and len(current):
        performance, labelled = _performance(bundle, params, current, inputs["labels"], num_threads)
    rollout = None
    if params.get("challenger") and "labels" in inputs and log_dir is not None:
        rollout = _rollout(params, registry, version, inputs["labels"], log_dir, num_threads)
    production = version.metrics()
    rows, min_rows = len(current), int(params.get("min_rows") or 1)
    judged = rows >= min_rows
    checks = judge(params, features, performance, production, rollout) if judged else []
    failed = {
        kind: sum(1 for c in checks if c["kind"] == kind and not c["passed"])
        for kind in ("drift", "performance", "comparison")
    }
    retrain_on = list(params.get("retrain_on") or [])
    retrain = judged and any(failed[kind] for kind in retrain_on)
    if not judged:
        reason = f"only {rows} current rows, fewer than min_rows {min_rows}: nothing judged"
    elif retrain:
        reason = "failing " + " and ".join(k for k in retrain_on if failed[k]) + " checks"
    elif any(failed.values()):
        reason = "checks failed; the monitor's retrain policy does not retrain on them"
    else:
        reason = "every check passed"
    drift = {
        "monitor": params.get("monitor"),
        "model": params.get("model"),
        "registered_name": name,
        "version": version.version,
        "alias": alias,
        "reference": {"from": params.get("reference") or "registry", "rows": len(reference)},
        "current": {"rows": rows, "labelled_rows": labelled},
        "features": features,
        "performance": performance,
        "production_performance": production,
    }
    if rollout is not None:
        drift["comparison"] = rollout
    decision = {
        "monitor": params.get("monitor"),
        "model": params.get("model"),
        "registered_name": name,
        "version": version.version,
        "alias": alias,
        "rows": rows,
        "judged": judged,
        "passed": not any(failed.values()),
        "failed": failed,
        "retrain": retrain,
        "reason": reason,
        "checks": checks,
    }
    if rollout is not None:
        decision["challenger"] = {
            "alias": rollout["challenger"]["alias"],
            "version": rollout["challenger"]["version"],
        }
    return drift, decision


def promotion(decision: Mapping[str, Any], name: str, alias: str) -> tuple[int, dict[str, int]]:
    """(the challenger's version, where each alias pointed when compared) when the monitor's
    decision lets the challenger take `alias` of model `name`: every comparison judged on
    rows, and passed. UsageError for a decision about something else, GateFailed when the
    challenger did not win."""
    monitor = decision.get("monitor")
    about = f"the report of monitor '{monitor}'"
    challenger = decision.get("challenger")
    if decision.get("registered_name") != name or not isinstance(challenger, Mapping):
        raise UsageError(
            f"{about} compares no challenger of '{name}' (it watches "
            f"'{decision.get('registered_name')}'): name the report of a monitor with "
            "'challenger: <alias>' on this model"
        )
    if decision.get("alias") != alias:
        raise UsageError(
            f"{about} compares the challenger with '{decision.get('alias')}', not '{alias}': "
            f"promote with --alias {decision.get('alias')}"
        )
    compared = [c for c in decision.get("checks") or [] if c.get("kind") == "comparison"]
    shown = f"v{challenger['version']} ('{challenger['alias']}') against v{decision['version']}"
    if not decision.get("judged") or not compared:
        why = decision.get("reason") if not decision.get("judged") else "it has no comparison"
        raise GateFailed(f"{about} judged no comparison of {shown}: {why}")
    unjudged = [c for c in compared if not c.get("judged")]
    if unjudged:
        raise GateFailed(
            f"{about} could not judge {unjudged[0]['check']} for {shown}: {unjudged[0]['note']}"
        )
    lost = [c for c in compared if not c.get("passed")]
    if lost:
        said = "; ".join(
            f"{c['check']}: {c['value']} against {c['bound']}"
            if c.get("note") is None
            else f"{c['check']}: {c['note']}"
            for c in lost
        )
        raise GateFailed(f"{about}: the challenger {shown} failed {said}")
    expected = {
        alias: int(decision["version"]),
        str(challenger["alias"]): int(challenger["version"]),
    }
    return int(challenger["version"]), expected
