"""The prediction log's layout: the one place that writes its rows and reads them back.

`mlcompile serve` appends rows; `mlcompile monitor` reads them as a current window. A row is
the request's columns (`LOG_COLUMNS`; `warnings` counts the row's values outside the training
domain, `answered_by` the alias that answered; both absent from older logs), the model's
inputs, and its predictions (with a shadow, also `shadow_version` and its `shadow_<column>`
predictions). An input named
like a request or prediction column is stored as `input_<name>`, so no column hides another.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped]

from mlcompile.errors import StepError

LOG_COLUMNS = ("request_id", "received_at", "model_version", "warnings", "answered_by")
PART_GLOB = "part-*.parquet"


def _stored_name(column: str, taken: set[str]) -> str:
    return f"input_{column}" if column in taken else column


def stored_inputs(inputs: list[str], predictions: list[str]) -> list[str]:
    """The names the log stores `inputs` under, beside `predictions`."""
    taken = {*LOG_COLUMNS, *predictions}
    return [_stored_name(c, taken) for c in inputs]


def log_frame(
    meta: Mapping[str, list[Any]], inputs: pd.DataFrame, predictions: pd.DataFrame
) -> pd.DataFrame:
    """Log rows from their request columns (`meta`, one value per row), inputs and
    predictions."""
    names = stored_inputs(list(inputs.columns), list(predictions.columns))
    inputs = inputs.set_axis(names, axis=1)
    return pd.concat([pd.DataFrame(dict(meta)), inputs, predictions], axis=1)


def read_log(
    log_dir: Path,
    signature: Mapping[str, Any],
    prediction_columns: list[str],
    *,
    version: int | None,
    max_rows: int | None,
    version_as: str | None = None,
) -> pd.DataFrame:
    """The logged input rows, oldest first: only those `version` answered (all when None),
    the newest `max_rows` of them. Columns are named as the model's signature names them;
    with `version_as`, the version that answered each row is kept under that name."""
    parts = sorted(log_dir.glob(PART_GLOB)) if log_dir.is_dir() else []
    if not parts:
        return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in signature.items()})
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    if version is not None:
        frame = frame[frame["model_version"] == version]
    frame = frame.sort_values("received_at", kind="stable")
    if max_rows is not None:
        frame = frame.tail(max_rows)
    taken = {*LOG_COLUMNS, *prediction_columns}
    stored = {_stored_name(c, taken): c for c in signature}
    missing = sorted(set(stored) - set(frame.columns))
    if missing:
        raise StepError(
            f"the prediction log in '{log_dir.name}' lacks the model's input columns {missing}: "
            "was it written for another model?"
        )
    kept = [*stored, *(c for c in frame.columns if c not in stored and c not in taken)]
    rows = frame[kept].rename(columns=stored).reset_index(drop=True)
    if version_as is not None:
        rows[version_as] = frame["model_version"].to_numpy()
    return rows
