"""Drift measures between a reference sample and a current window of one column.

- PSI (population stability index) over bins of the reference: quantile bins for numbers,
  the most frequent categories for categories; missing values, other and unseen categories
  get bins of their own. Empty bins count as a share of 1e-4 so the log stays finite.
- KS: the two-sample Kolmogorov-Smirnov statistic on the non-missing numbers (with its
  p-value, reported but not judged: on thousands of rows every small shift is significant).
- unseen: the share of current rows whose category never occurs in the reference.

Each result also carries a histogram of both sides for the report's pictures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

EMPTY_SHARE = 1e-4
TOP_CATEGORIES = 20
PICTURE_BINS = 20
PICTURE_CATEGORIES = 12
OTHER, UNSEEN, MISSING = "(other)", "(unseen)", "(missing)"


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI of two count vectors over the same bins."""
    r = np.maximum(reference / max(reference.sum(), 1), EMPTY_SHARE)
    c = np.maximum(current / max(current.sum(), 1), EMPTY_SHARE)
    return float(np.sum((c - r) * np.log(c / r)))


def _shares(counts: np.ndarray) -> list[float]:
    total = max(int(counts.sum()), 1)
    return [round(float(n) / total, 6) for n in counts]


def is_categorical(series: pd.Series) -> bool:
    dtype = series.dtype
    return bool(
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
    )


def _numbers(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        series = series.astype("int64").where(series.notna())
    numbers: np.ndarray = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
    return numbers


def numeric_drift(reference: pd.Series, current: pd.Series, bins: int) -> dict[str, Any]:
    from scipy.stats import ks_2samp  # type: ignore[import-untyped]

    ref_all, cur_all = _numbers(reference), _numbers(current)
    ref, cur = ref_all[~np.isnan(ref_all)], cur_all[~np.isnan(cur_all)]
    cuts = np.linspace(0, 1, bins + 1)[1:-1]
    inner: np.ndarray = np.unique(np.quantile(ref, cuts)) if len(ref) else np.array([])

    def counts(values: np.ndarray, all_values: np.ndarray) -> np.ndarray:
        binned = np.bincount(np.searchsorted(inner, values, side="right"), minlength=len(inner) + 1)
        return np.append(binned, np.isnan(all_values).sum())

    ks = pvalue = None
    if len(ref) and len(cur):
        test = ks_2samp(ref, cur)
        ks, pvalue = float(test.statistic), float(test.pvalue)
    return {
        "type": "numeric",
        "psi": psi(counts(ref, ref_all), counts(cur, cur_all)),
        "ks": ks,
        "ks_pvalue": pvalue,
        "unseen": None,
        "missing": {
            "reference": _missing_share(ref_all),
            "current": _missing_share(cur_all),
        },
        "mean": {
            "reference": float(ref.mean()) if len(ref) else None,
            "current": float(cur.mean()) if len(cur) else None,
        },
        "histogram": _numeric_picture(ref, cur),
    }


def _missing_share(values: np.ndarray) -> float:
    return round(float(np.isnan(values).mean()), 6) if len(values) else 0.0


def _numeric_picture(ref: np.ndarray, cur: np.ndarray) -> dict[str, Any]:
    """Equal-width bins over both sides' 1st to 99th percentiles (outliers in the end bins)."""
    both = np.concatenate([ref, cur])
    if not len(both):
        return {"edges": [], "reference": [], "current": []}
    low, high = (float(v) for v in np.quantile(both, [0.01, 0.99]))
    if high <= low:
        low, high = float(both.min()), float(both.max())
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, PICTURE_BINS + 1)

    def shares(values: np.ndarray) -> list[float]:
        index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, PICTURE_BINS - 1)
        return _shares(np.bincount(index, minlength=PICTURE_BINS))

    return {
        "edges": [round(float(e), 6) for e in edges],
        "reference": shares(ref),
        "current": shares(cur),
    }


def _labels(series: pd.Series) -> pd.Series:
    """Category values as text, so 3 and '3' from two files compare equal; None when missing."""
    text = series.astype("object").map(str)
    return text.where(series.notna().to_numpy(), None)


def categorical_drift(reference: pd.Series, current: pd.Series) -> dict[str, Any]:
    ref, cur = _labels(reference), _labels(current)
    ref_counts = ref.value_counts(dropna=True)
    # most frequent first, ties by value, so the bins do not depend on row order
    ordered = sorted(ref_counts.items(), key=lambda item: (-item[1], item[0]))
    kept = [value for value, _ in ordered[:TOP_CATEGORIES]]
    seen = set(ref_counts.index)

    def bucket(values: pd.Series) -> pd.Series:
        out = values.where(values.isin(kept), OTHER)
        out = out.where(values.isin(seen) | values.isna(), UNSEEN)
        return out.where(values.notna(), MISSING)

    buckets = [*kept, OTHER, UNSEEN, MISSING]
    ref_b = bucket(ref).value_counts().reindex(buckets, fill_value=0).to_numpy()
    cur_b = bucket(cur).value_counts().reindex(buckets, fill_value=0).to_numpy()
    unseen = float((~cur.isin(seen) & cur.notna()).mean()) if len(cur) else 0.0
    return {
        "type": "categorical",
        "psi": psi(ref_b, cur_b),
        "ks": None,
        "ks_pvalue": None,
        "unseen": unseen,
        "missing": {
            "reference": round(float(ref.isna().mean()), 6) if len(ref) else 0.0,
            "current": round(float(cur.isna().mean()), 6) if len(cur) else 0.0,
        },
        "histogram": _categorical_picture(buckets, ref_b, cur_b),
    }


def _categorical_picture(buckets: list[str], ref: np.ndarray, cur: np.ndarray) -> dict[str, Any]:
    """The categories with the most rows on either side, the rest summed into '(other)'."""
    ref_s, cur_s = np.array(_shares(ref)), np.array(_shares(cur))
    named = [i for i, b in enumerate(buckets) if b not in (OTHER, UNSEEN, MISSING)]
    named.sort(key=lambda i: (-max(ref_s[i], cur_s[i]), buckets[i]))
    shown = named[:PICTURE_CATEGORIES]
    rest = [i for i in range(len(buckets)) if i not in shown and buckets[i] != UNSEEN]
    order = [*shown, buckets.index(UNSEEN)]
    categories = [buckets[i] for i in order]
    ref_out = [float(ref_s[i]) for i in order]
    cur_out = [float(cur_s[i]) for i in order]
    if rest:
        categories.append(OTHER)
        ref_out.append(round(float(ref_s[rest].sum()), 6))
        cur_out.append(round(float(cur_s[rest].sum()), 6))
    return {"categories": categories, "reference": ref_out, "current": cur_out}


def column_drift(reference: pd.Series, current: pd.Series, bins: int) -> dict[str, Any]:
    if is_categorical(reference) or is_categorical(current):
        return categorical_drift(reference, current)
    return numeric_drift(reference, current, bins)
