"""Batch scoring: raw rows in, predictions (plus id columns) out, written atomically.

Prediction columns: binary `probability` (of class 1) and `label` (at the model's threshold,
runtime/threshold.py); multiclass
`class` and one `probability_<class>` per class; regression `prediction`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped]

from mlcompile.errors import StepError, UsageError

from .artifacts import ModelBundle, atomic_write_bytes, parquet_bytes
from .features import UNSAFE_NAME
from .threshold import model_threshold
from .train import predict

OUTPUT_FORMATS = ("parquet", "csv")


def _class_column(value: Any) -> str:
    return UNSAFE_NAME.sub("_", f"probability_{value}")


def prediction_columns(meta: Mapping[str, Any]) -> list[str]:
    """The columns scoring adds for a model with this metadata."""
    if meta["task"] == "binary":
        return ["probability", "label"]
    if meta["task"] == "regression":
        return ["prediction"]
    return ["class", *(_class_column(value) for value in meta["classes"])]


def prediction_values(bundle: ModelBundle, raw: Any) -> dict[str, Any]:
    """The prediction columns of raw model output."""
    task = bundle.meta["task"]
    if task == "binary":
        threshold = model_threshold(bundle.meta)
        return {"probability": raw, "label": (raw >= threshold).astype("int64")}
    if task == "regression":
        return {"prediction": raw}
    classes = bundle.meta["classes"]
    out: dict[str, Any] = {"class": [classes[i] for i in raw.argmax(axis=1)]}
    for i, value in enumerate(classes):
        out[_class_column(value)] = raw[:, i]
    return out


def score_frame(
    bundle: ModelBundle, df: pd.DataFrame, id_columns: Sequence[str], num_threads: int = 1
) -> pd.DataFrame:
    """The id columns followed by the prediction columns, one row per input row."""
    model = bundle.meta.get("model")
    missing = [c for c in id_columns if c not in df.columns]
    if missing:
        raise StepError(f"model '{model}': id columns {missing} are not in the scored rows")
    predictions = prediction_values(bundle, predict(bundle, df, num_threads))
    clashing = sorted(set(id_columns) & set(predictions))
    if clashing:
        raise UsageError(f"model '{model}': id columns {clashing} clash with prediction columns")
    frame = df[list(id_columns)].reset_index(drop=True)
    return frame.assign(**predictions)


def output_format(path: str, fmt: str | None) -> str:
    chosen = fmt or Path(path).suffix.lstrip(".").lower()
    if chosen not in OUTPUT_FORMATS:
        raise UsageError(f"output '{path}': format must be parquet or csv, not '{chosen}'")
    return chosen


def write_table(frame: pd.DataFrame, path: Path, fmt: str) -> str:
    """Write `frame` atomically as Parquet or CSV; returns the file's sha256."""
    data = parquet_bytes(frame) if fmt == "parquet" else frame.to_csv(index=False).encode()
    return atomic_write_bytes(path, data)
