"""The flights pipeline written by hand: what `mlcompile run` is measured against.

    python baseline_flights.py PROJECT_DIR [--threads N]

The same work as `mlcompile run PROJECT_DIR/mlcompile.yaml`, the way a data scientist would
write it with pandas + pandera + LightGBM and no framework: read the four files, validate them
with the spec's rules, join, fit the features on the training rows, train both models with the
same LightGBM params, early stopping carve and seed, evaluate overall and per origin, check the
gates, register both models in a folder registry, score December, write the KServe manifest.

Deliberate differences, as a hand-written script would have them: the joins are pandas merges
(the spec's SQL gives the same rows), the time split and the feature statistics are computed
once for both models (they share the rows and the split column, so the results are the same),
and nothing intermediate is written to disk. Both LightGBM models are trained one after the
other with `--threads` threads each (default: every CPU; runtime_speed.py passes what each of
mlcompile's two parallel training steps gets, so both sides train with the same thread count).

Outputs go to PROJECT_DIR/baseline_out/; the metrics are printed and written as metrics.json,
the seconds of each phase as timings.json (so the benchmark can say where the time goes).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pandera.pandas as pa
import yaml
from pandera.errors import SchemaErrors
from sklearn import metrics as skm

SEED = 13
TEST_SIZE = 0.2
VALIDATION_SIZE = 0.1
NUM_BOOST_ROUND = 1000
EARLY_STOPPING_ROUNDS = 50
MIN_SLICE_ROWS = 30
OTHER = "__other__"
SEATS_BINS = [0.0, 50.0, 100.0, 150.0, 200.0, 500.0]

# LightGBM params of the spec's model presets (conf/model_preset/lgbm_*.yaml) plus what
# mlcompile forces for reproducibility.
COMMON = {"verbosity": -1, "seed": SEED, "deterministic": True, "force_col_wise": True}
DELAYED_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    **COMMON,
}
ARRIVAL_PARAMS = {
    "objective": "regression",
    "learning_rate": 0.05,
    "num_leaves": 63,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    **COMMON,
}
DELAYED_FEATURES = [
    "dep_hour", "day_of_week", "day_of_year", "month", "log_distance", "carrier_code",
    "origin_code", "dest_code", "temp_filled", "wind", "visibility", "precip", "humidity",
    "plane_age", "seats_bucket",
]  # fmt: skip
ARRIVAL_FEATURES = [
    "dep_delay", "dep_hour", "day_of_week", "log_distance", "carrier_code", "origin_code",
    "dest_code", "temp_filled", "wind", "visibility", "precip",
]  # fmt: skip

Metric = Callable[[Any, Any], float]


def label(p: np.ndarray) -> np.ndarray:
    return (p >= 0.5).astype(int)


BINARY_METRICS: dict[str, Metric] = {
    "roc_auc": skm.roc_auc_score,
    "pr_auc": skm.average_precision_score,
    "logloss": lambda y, p: skm.log_loss(y, p, labels=[0, 1]),
    "accuracy": lambda y, p: skm.accuracy_score(y, label(p)),
    "f1": lambda y, p: skm.f1_score(y, p >= 0.5, zero_division=np.nan),
    "precision": lambda y, p: skm.precision_score(y, p >= 0.5, zero_division=np.nan),
    "recall": lambda y, p: skm.recall_score(y, p >= 0.5, zero_division=np.nan),
}
REGRESSION_METRICS: dict[str, Metric] = {
    "rmse": skm.root_mean_squared_error,
    "mae": skm.mean_absolute_error,
    "r2": skm.r2_score,
    "mape": skm.mean_absolute_percentage_error,
}


# ---- validation: the spec's schemas, written as pandera schemas ---------------------------

FLIGHTS_RAW = pa.DataFrameSchema(
    {
        "year": pa.Column(int, pa.Check.in_range(2013, 2013)),
        "month": pa.Column(int, pa.Check.in_range(1, 12)),
        "day": pa.Column(int, pa.Check.in_range(1, 31)),
        "sched_dep_time": pa.Column(int, [pa.Check.ge(0), pa.Check.le(2359)]),
        "dep_delay": pa.Column(float, [pa.Check.ge(-120), pa.Check.le(1800)], nullable=True),
        "arr_delay": pa.Column(float, [pa.Check.ge(-120), pa.Check.le(1800)], nullable=True),
        "carrier": pa.Column(str, pa.Check.str_matches(r"^[A-Z0-9]{2}$")),
        "origin": pa.Column(str, pa.Check.isin(["EWR", "JFK", "LGA"])),
        "dest": pa.Column(str, pa.Check.str_length(3, 3)),
        "tailnum": pa.Column(str, pa.Check.str_matches(r"^N[0-9A-Z]+$"), nullable=True),
        "distance": pa.Column(int, pa.Check.gt(0)),
        "time_hour": pa.Column("datetime64[us]"),
    },
    name="flights_raw",
)
PLANES = pa.DataFrameSchema(
    {
        "tailnum": pa.Column(str, unique=True),
        "year": pa.Column(float, [pa.Check.ge(1950), pa.Check.le(2014)], nullable=True),
        "seats": pa.Column(int, pa.Check.gt(0)),
    },
    name="planes",
)
TRAINING = pa.DataFrameSchema(
    {
        "month": pa.Column(int),
        "sched_dep_time": pa.Column(int),
        "dep_delay": pa.Column(float),
        "arr_delay": pa.Column(float),
        "carrier": pa.Column(str),
        "origin": pa.Column(str),
        "dest": pa.Column(str),
        "distance": pa.Column(int),
        "time_hour": pa.Column("datetime64[us]"),
        **{
            name: pa.Column(float, nullable=True)
            for name in ("temp", "humid", "wind_speed", "precip", "visib", "plane_year", "seats")
        },
        "is_delayed": pa.Column(int, pa.Check.isin([0, 1])),
    },
    name="training",
)


def validate(df: pd.DataFrame, schema: pa.DataFrameSchema, warn_only: bool = False) -> None:
    try:
        schema.validate(df, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases.groupby(["column", "check"]).size()
        print(f"{schema.name}: {len(exc.failure_cases)} failure cases\n{cases.to_string()}")
        if not warn_only:
            raise


# ---- the joins (the spec's SQL) ---------------------------------------------------------


def join(flights: pd.DataFrame, weather: pd.DataFrame, planes: pd.DataFrame) -> pd.DataFrame:
    conditions = weather[["origin", "time_hour", "temp", "humid", "wind_speed", "precip", "visib"]]
    aircraft = planes[["tailnum", "year", "seats"]].rename(columns={"year": "plane_year"})
    joined = flights.merge(conditions, on=["origin", "time_hour"], how="left", validate="m:1")
    return joined.merge(aircraft, on="tailnum", how="left", validate="m:1")


# ---- features: fitted on the training rows only -----------------------------------------


def kept_categories(series: pd.Series, limit: int | None = None) -> list[str]:
    counts = series.dropna().value_counts()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return sorted(value for value, _ in (ranked[:limit] if limit else ranked))


def fit_features(train: pd.DataFrame) -> dict[str, Any]:
    dest = kept_categories(train["dest"], 60)
    folded = train["dest"].nunique() > 60
    return {
        "carrier": kept_categories(train["carrier"]),
        "origin": kept_categories(train["origin"]),
        "dest": [*dest, OTHER] if folded else dest,
        "temp": float(train["temp"].median()),
        "wind_speed": float(train["wind_speed"].median()),
        "humid_mean": float(train["humid"].mean()),
        "humid_std": float(train["humid"].std(ddof=0)),
    }


def features(df: pd.DataFrame, state: dict[str, Any]) -> pd.DataFrame:
    dest = df["dest"]
    if OTHER in state["dest"]:
        dest = dest.where(dest.isin(state["dest"]) | dest.isna(), OTHER)
    distance = df["distance"].astype("float64")
    seats = df["seats"].astype("float64")
    seats_bucket = np.searchsorted(SEATS_BINS, seats.to_numpy(), side="right")
    return pd.DataFrame(
        {
            "dep_delay": df["dep_delay"],
            "dep_hour": df["sched_dep_time"] // 100,
            "day_of_week": df["time_hour"].dt.day_of_week.astype("float64"),
            "day_of_year": df["time_hour"].dt.day_of_year.astype("float64"),
            "month": df["month"],
            "log_distance": np.log1p(distance.where(distance >= 0)),
            "carrier_code": pd.Categorical(df["carrier"], categories=state["carrier"]),
            "origin_code": pd.Categorical(df["origin"], categories=state["origin"]),
            "dest_code": pd.Categorical(dest, categories=state["dest"]),
            "temp_filled": df["temp"].fillna(state["temp"]),
            "wind": df["wind_speed"].fillna(state["wind_speed"]),
            "visibility": df["visib"].fillna(10),
            "precip": df["precip"],
            "humidity": (df["humid"] - state["humid_mean"]) / (state["humid_std"] or 1.0),
            "plane_age": 2013 - df["plane_year"],
            "seats_bucket": pd.Series(seats_bucket, index=df.index, dtype="float64").where(
                seats.notna()
            ),
        },
        index=df.index,
    )


# ---- training and evaluation ------------------------------------------------------------


def train(x: pd.DataFrame, y: np.ndarray, params: dict[str, Any]) -> lgb.Booster:
    # The same carve as mlcompile: a seeded 10% of the training rows decides when to stop.
    held = np.zeros(len(y), dtype=bool)
    count = math.ceil(len(y) * VALIDATION_SIZE)
    held[np.random.default_rng(SEED).permutation(len(y))[:count]] = True
    fit = lgb.Dataset(x[~held], y[~held])
    check = lgb.Dataset(x[held], y[held], reference=fit)
    return lgb.train(
        params,
        fit,
        num_boost_round=NUM_BOOST_ROUND,
        valid_sets=[check],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )


def score(metrics: dict[str, Metric], y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    values = {name: float(metric(y, p)) for name, metric in metrics.items()}
    return {name: value for name, value in values.items() if math.isfinite(value)}


def evaluate(
    metrics: dict[str, Metric], y: np.ndarray, p: np.ndarray, origin: pd.Series
) -> dict[str, Any]:
    slices = {}
    for value, index in origin.groupby(origin, sort=True).indices.items():
        if len(index) >= MIN_SLICE_ROWS:
            slices[str(value)] = {**score(metrics, y[index], p[index]), "rows": len(index)}
    return {"rows": len(y), "overall": score(metrics, y, p), "slices": {"origin": slices}}


# ---- gates and the registry -------------------------------------------------------------


def production_metrics(registry: Path, name: str) -> dict[str, Any] | None:
    alias = registry / name / "production.json"
    if not alias.exists():
        return None
    version = json.loads(alias.read_text())["version"]
    metrics: dict[str, Any] = json.loads(
        (registry / name / str(version) / "metrics.json").read_text()
    )
    return metrics


def gate_delayed(metrics: dict[str, Any], production: dict[str, Any] | None) -> list[str]:
    failed = []
    if metrics["overall"]["roc_auc"] < 0.65:
        failed.append("roc_auc >= 0.65")
    for origin, values in metrics["slices"]["origin"].items():
        if values.get("roc_auc", -math.inf) < 0.6:
            failed.append(f"roc_auc[origin={origin}] >= 0.6")
    if production and metrics["overall"]["roc_auc"] < production["overall"]["roc_auc"] - 0.02:
        failed.append("roc_auc >= production - 0.02")
    return failed


def gate_arrival(metrics: dict[str, Any], production: dict[str, Any] | None) -> list[str]:
    failed = []
    if metrics["overall"]["r2"] < 0.7:
        failed.append("r2 >= 0.7")
    if metrics["overall"]["rmse"] > 25:
        failed.append("rmse <= 25")
    if production and metrics["overall"]["rmse"] > production["overall"]["rmse"] + 1.0:
        failed.append("rmse <= production + 1.0")
    return failed


def register(registry: Path, name: str, booster: lgb.Booster, metrics: dict[str, Any]) -> int:
    folder = registry / name
    folder.mkdir(parents=True, exist_ok=True)
    version = 1 + max((int(p.name) for p in folder.iterdir() if p.name.isdigit()), default=0)
    target = folder / str(version)
    target.mkdir()
    booster.save_model(target / "model.txt", num_iteration=booster.best_iteration)
    (target / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    (folder / "production.json").write_text(json.dumps({"version": version}))
    return version


def kserve_manifest(version: int) -> str:
    resources = {"cpu": "1", "memory": "2Gi"}
    manifest = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "delayed-kserve",
            "namespace": "flights",
            "labels": {
                "mlcompile.io/registered-name": "flights.delayed",
                "mlcompile.io/model-version": str(version),
            },
        },
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "lightgbm"},
                    "storageUri": f"s3://ml-models/flights/flights.delayed/{version}",
                    "resources": {"requests": dict(resources), "limits": dict(resources)},
                }
            }
        },
    }
    text: str = yaml.safe_dump(manifest, sort_keys=True, default_flow_style=False)
    return text


class Laps:
    """Seconds per phase of the pipeline, a phase's laps summed."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self.last
        self.last = now


# ---- the pipeline -----------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    laps = Laps()
    data, out = args.project / "data", args.project / "baseline_out"
    out.mkdir(parents=True, exist_ok=True)

    flights = pd.read_parquet(data / "flights.parquet")
    december_flights = pd.read_parquet(data / "flights_december.parquet")
    weather = pd.read_csv(data / "weather.csv")
    planes = pd.read_csv(data / "planes.csv")
    weather_schema = pa.DataFrameSchema.from_yaml(
        (args.project / "schemas" / "weather.pandera.yaml").read_text()
    )
    # The same policies as the benchmark's spec: weather and flights glitches are reported only.
    validate(flights, FLIGHTS_RAW, warn_only=True)
    validate(december_flights, FLIGHTS_RAW)
    validate(weather, weather_schema, warn_only=True)
    validate(planes, PLANES)
    weather["time_hour"] = pd.to_datetime(weather["time_hour"]).astype("datetime64[us]")

    rows = join(flights, weather, planes)
    rows = rows[rows["dep_delay"].notna() & rows["arr_delay"].notna()].reset_index(drop=True)
    rows["is_delayed"] = (rows["dep_delay"] > 15).astype("int64")
    validate(rows, TRAINING)
    laps.lap("read, validate, join")

    # Time split: the latest 20% of the rows (stable on ties) are the test set.
    order = np.argsort(rows["time_hour"].to_numpy(), kind="stable")
    in_test = np.zeros(len(rows), dtype=bool)
    in_test[order[len(order) - math.ceil(len(order) * TEST_SIZE) :]] = True
    train_rows, test_rows = rows[~in_test], rows[in_test].reset_index(drop=True)
    state = fit_features(train_rows)
    x_train, x_test = features(train_rows, state), features(test_rows, state)
    laps.lap("split, features")

    registry = out / "registry"
    models = {
        "delayed": ("is_delayed", DELAYED_FEATURES, DELAYED_PARAMS, BINARY_METRICS, gate_delayed),
        "arrival": (
            "arr_delay",
            ARRIVAL_FEATURES,
            ARRIVAL_PARAMS,
            REGRESSION_METRICS,
            gate_arrival,
        ),
    }
    results, boosters, versions = {}, {}, {}
    for name, (target, columns, params, metrics, gate) in models.items():
        y = train_rows[target].to_numpy(dtype="float64")
        booster = train(x_train[columns], y, {**params, "num_threads": args.threads})
        laps.lap("train")
        predictions = booster.predict(x_test[columns], num_iteration=booster.best_iteration)
        y_test = test_rows[target].to_numpy(dtype="float64")
        result = evaluate(metrics, y_test, predictions, test_rows["origin"])
        failed = gate(result, production_metrics(registry, f"flights.{name}"))
        if failed:
            raise SystemExit(f"gate on {name} failed: {failed}")
        boosters[name], results[name] = booster, result
        versions[name] = register(registry, f"flights.{name}", booster, result)
        print(f"{name}: best iteration {booster.best_iteration}, {result['overall']}")
        laps.lap("evaluate, gate, register")

    december = join(december_flights, weather, planes).reset_index(drop=True)
    delayed = boosters["delayed"]
    probability = delayed.predict(
        features(december, state)[DELAYED_FEATURES], num_iteration=delayed.best_iteration
    )
    scores = december[["carrier", "flight", "time_hour"]].assign(
        probability=probability, label=(probability >= 0.5).astype("int64")
    )
    scores.to_parquet(out / "december_delay_scores.parquet", index=False, compression="zstd")
    (out / "delayed_kserve.yaml").write_text(kserve_manifest(versions["delayed"]))
    laps.lap("score, deploy")
    (out / "metrics.json").write_text(json.dumps(results, indent=2, sort_keys=True))
    (out / "timings.json").write_text(json.dumps(laps.seconds, indent=2))


if __name__ == "__main__":
    main()
