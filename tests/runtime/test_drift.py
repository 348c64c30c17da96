"""Drift measures against values worked out by hand, and their invariances."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from mlcompile.runtime.drift import (
    EMPTY_SHARE,
    MISSING,
    UNSEEN,
    categorical_drift,
    column_drift,
    numeric_drift,
    psi,
)


def _psi_by_hand(reference: list[float], current: list[float]) -> float:
    total = 0.0
    for r, c in zip(reference, current, strict=True):
        r, c = max(r, EMPTY_SHARE), max(c, EMPTY_SHARE)
        total += (c - r) * math.log(c / r)
    return total


def test_psi_of_identical_counts_is_zero() -> None:
    counts = np.array([10, 20, 30, 0])
    assert psi(counts, counts * 3) == pytest.approx(0.0, abs=1e-12)


def test_numeric_psi_over_reference_halves() -> None:
    # two quantile bins split the reference 0..99 at its median; every current value lands
    # in the upper bin
    reference = pd.Series(np.arange(100, dtype="float64"))
    current = pd.Series(np.arange(50, 100, dtype="float64"))
    result = numeric_drift(reference, current, bins=2)
    assert result["psi"] == pytest.approx(_psi_by_hand([0.5, 0.5, 0.0], [0.0, 1.0, 0.0]))
    assert result["psi"] > 4


def test_numeric_ks_is_scipys_two_sample_statistic() -> None:
    rng = np.random.default_rng(3)
    reference = pd.Series(rng.normal(0, 1, 2000))
    current = pd.Series(rng.normal(0.5, 1, 1000))
    result = numeric_drift(reference, current, bins=10)
    expected = ks_2samp(reference, current)
    assert result["ks"] == pytest.approx(expected.statistic)
    assert result["ks_pvalue"] == pytest.approx(expected.pvalue)
    assert result["mean"]["current"] == pytest.approx(current.mean())
    assert result["unseen"] is None


def test_missing_values_have_a_bin_of_their_own() -> None:
    reference = pd.Series([1.0, 2.0, 3.0, 4.0])
    current = pd.Series([1.0, 2.0, None, None])
    result = numeric_drift(reference, current, bins=2)
    assert result["missing"] == {"reference": 0.0, "current": 0.5}
    assert result["psi"] == pytest.approx(_psi_by_hand([0.5, 0.5, 0.0], [0.5, 0.0, 0.5]))


def test_numeric_drift_does_not_depend_on_row_order() -> None:
    rng = np.random.default_rng(5)
    reference = pd.Series(rng.gamma(2, 3, 3000))
    current = pd.Series(rng.gamma(2, 4, 800))
    shuffled = current.sample(frac=1, random_state=1).reset_index(drop=True)
    assert numeric_drift(reference, current, 10) == numeric_drift(reference, shuffled, 10)


def test_numeric_picture_has_twenty_bins_whose_shares_sum_to_one() -> None:
    rng = np.random.default_rng(7)
    result = numeric_drift(pd.Series(rng.normal(size=500)), pd.Series(rng.normal(size=300)), 10)
    picture = result["histogram"]
    assert len(picture["edges"]) == 21
    assert len(picture["reference"]) == len(picture["current"]) == 20
    assert sum(picture["reference"]) == pytest.approx(1, abs=1e-5)
    assert sum(picture["current"]) == pytest.approx(1, abs=1e-5)


def test_categorical_unseen_share_and_psi() -> None:
    reference = pd.Series(["a", "a", "b", "b"])
    current = pd.Series(["a", "c", "c", None])
    result = categorical_drift(reference, current)
    # 'c' never occurs in the reference: two of four current rows
    assert result["unseen"] == pytest.approx(0.5)
    # bins: a, b, (other), (unseen), (missing)
    expected = _psi_by_hand([0.5, 0.5, 0, 0, 0], [0.25, 0, 0, 0.5, 0.25])
    assert result["psi"] == pytest.approx(expected)
    assert result["ks"] is None
    assert UNSEEN in result["histogram"]["categories"]


def test_categories_compare_as_text_across_file_types() -> None:
    result = categorical_drift(pd.Series([1, 2, 2]), pd.Series(["1", "2", "2"], dtype="object"))
    assert result["psi"] == pytest.approx(0.0, abs=1e-12)
    assert result["unseen"] == 0.0


def test_rare_categories_fold_into_other_but_are_not_unseen() -> None:
    reference = pd.Series([f"c{i:02d}" for i in range(30)] * 2)
    current = pd.Series(["c29"] * 10)
    result = categorical_drift(reference, current)
    assert result["unseen"] == 0.0
    assert result["psi"] > 1  # all current rows sit in the small '(other)' bin


def test_column_drift_picks_the_measure_by_dtype() -> None:
    numbers = pd.Series([1.0, 2.0, 3.0])
    labels = pd.Series(["x", "y", "x"])
    categories = labels.astype("category")
    assert column_drift(numbers, numbers, 2)["type"] == "numeric"
    assert column_drift(labels, labels, 2)["type"] == "categorical"
    assert column_drift(categories, categories, 2)["type"] == "categorical"
    assert MISSING not in column_drift(labels, labels, 2)["histogram"]["categories"]
