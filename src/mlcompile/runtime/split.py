"""Train/test splits: random, stratified by the target, by time, or by group.

Every method is a pure function of the rows and the seed. Both sides keep the input's row
order, so a split of sorted data stays sorted.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from mlcompile.errors import DataValidationError, StepError, UsageError, did_you_mean

METHODS = ("random", "stratified", "time", "group")
IntArray = np.ndarray[Any, np.dtype[np.int64]]


def _column(df: pd.DataFrame, params: Mapping[str, Any], key: str) -> Any:
    name = params.get(key)
    model, method = params.get("model"), params.get("method")
    if name is None:
        raise UsageError(f"model '{model}': a '{method}' split needs '{key}'")
    if name not in df.columns:
        hint = did_you_mean(str(name), map(str, df.columns))
        raise StepError(
            f"model '{model}': split column '{name}' is not in the data"
            + (f" ({hint})" if hint else "")
        )
    return df[name]


def _test_count(n: int, test_size: float) -> int:
    return math.ceil(n * test_size)


def _random(n: int, test_size: float, rng: np.random.Generator) -> IntArray:
    return rng.permutation(n)[: _test_count(n, test_size)]


def _stratified(target: Any, test_size: float, rng: np.random.Generator, model: Any) -> IntArray:
    # Missing targets form their own stratum rather than vanishing from both sides.
    codes, values = pd.factorize(target, sort=True, use_na_sentinel=False)
    picked = []
    for code in range(codes.max() + 1 if len(codes) else 0):
        members = np.flatnonzero(codes == code)
        count = round(len(members) * test_size)
        if not 0 < count < len(members) and not pd.isna(values[code]):
            # the class would be missing from one side: trained on but never tested, or
            # tested but never learnt
            needed = next(n for n in range(1, 10**6) if 0 < round(n * test_size) < n)
            value = values[code].item() if hasattr(values[code], "item") else values[code]
            raise DataValidationError(
                f"model '{model}': class {value!r} of '{target.name}' has "
                f"{len(members)} row{'s' if len(members) != 1 else ''}; a stratified split "
                f"with test_size={test_size} needs at least {needed} rows of every class to "
                "put some on both sides (merge rare classes in the source's SQL, or use "
                "method: random)"
            )
        picked.append(rng.permutation(members)[:count])
    return np.concatenate(picked) if picked else np.array([], dtype=np.int64)


def _time(column: Any, test_size: float, model: Any) -> IntArray:
    if not (
        pd.api.types.is_numeric_dtype(column.dtype)
        or pd.api.types.is_datetime64_any_dtype(column.dtype)
    ):
        try:
            column = pd.to_datetime(column, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise StepError(
                f"model '{model}': time split column '{column.name}' is neither numeric "
                f"nor parseable as dates: {exc}"
            ) from None
    missing = int(column.isna().sum())
    if missing:
        raise StepError(
            f"model '{model}': time split column '{column.name}' has {missing} missing "
            "values; a row without a time cannot be placed before or after the cut"
        )
    # pandas sorts datetimes by their integer representation; numpy would get Timestamp objects.
    order: IntArray = column.argsort(kind="stable").to_numpy(dtype=np.int64)
    return order[len(order) - _test_count(len(order), test_size) :]


def _group_draw(value: Any, seed: int) -> float:
    """A uniform draw in [0, 1) fixed by the group value and the seed, in any process."""
    key = f"{seed}\x00{value!s}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64


def _group(column: Any, test_size: float, seed: int) -> IntArray:
    codes, groups = pd.factorize(column, use_na_sentinel=False)
    draws = np.array([_group_draw(g, seed) for g in groups], dtype=float)
    return np.flatnonzero(draws[codes] < test_size)


def split_frame(df: pd.DataFrame, params: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) per the split params; both sides keep the input order, index reset."""
    method, model = params.get("method", "random"), params.get("model")
    test_size = float(params.get("test_size", 0.2))
    # A missing seed must not mean an irreproducible split.
    seed = int(params.get("seed") or 0)
    if method not in METHODS:
        raise UsageError(f"model '{model}': unknown split method '{method}' (known: {METHODS})")
    if not 0 < test_size < 1:
        raise UsageError(f"model '{model}': test_size must be between 0 and 1, got {test_size}")
    rng = np.random.default_rng(seed)
    if method == "random":
        test_idx = _random(len(df), test_size, rng)
    elif method == "stratified":
        test_idx = _stratified(_column(df, params, "target"), test_size, rng, model)
    elif method == "time":
        test_idx = _time(_column(df, params, "column"), test_size, model)
    else:
        test_idx = _group(_column(df, params, "column"), test_size, seed)
    in_test = np.zeros(len(df), dtype=bool)
    in_test[test_idx] = True
    train, test = df[~in_test], df[in_test]
    for side, rows in (("train", train), ("test", test)):
        if rows.empty:
            raise DataValidationError(
                f"model '{model}': the {method} split with test_size={test_size} leaves the "
                f"{side} side empty ({len(df)} rows in total)"
            )
    return train.reset_index(drop=True), test.reset_index(drop=True)
