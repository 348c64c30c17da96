from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcompile.errors import DataValidationError, StepError, UsageError
from mlcompile.runtime.split import split_frame


def params(method: str, **more: Any) -> dict[str, Any]:
    return {"model": "delays", "method": method, "test_size": 0.2, "seed": 11, **more}


def ids(frame: pd.DataFrame) -> set[tuple[Any, ...]]:
    return set(zip(frame["flight"], frame["time_hour"], frame["tailnum"], strict=True))


def test_random_split_sizes_and_determinism(delays: pd.DataFrame) -> None:
    train, test = split_frame(delays, params("random"))
    assert len(test) == math.ceil(0.2 * len(delays))
    assert len(train) + len(test) == len(delays)
    assert list(train.index) == list(range(len(train)))
    assert ids(train).isdisjoint(ids(test))
    assert ids(train) | ids(test) == ids(delays)
    again_train, again_test = split_frame(delays, params("random"))
    pd.testing.assert_frame_equal(test, again_test)
    pd.testing.assert_frame_equal(train, again_train)
    _, other_test = split_frame(delays, params("random", seed=12))
    assert not test.equals(other_test)


def test_sides_keep_the_input_order(delays: pd.DataFrame) -> None:
    delays = delays.assign(position=range(len(delays)))
    for method, extra in [("random", {}), ("group", {"column": "tailnum"})]:
        train, test = split_frame(delays, params(method, **extra))
        assert train["position"].is_monotonic_increasing
        assert test["position"].is_monotonic_increasing


def test_stratified_keeps_class_balance(delays: pd.DataFrame) -> None:
    train, test = split_frame(delays, params("stratified", target="delayed"))
    overall = delays["delayed"].mean()
    assert test["delayed"].mean() == pytest.approx(overall, abs=0.002)
    assert train["delayed"].mean() == pytest.approx(overall, abs=0.002)
    assert len(train) + len(test) == len(delays)


def test_time_split_puts_the_latest_rows_in_test(delays: pd.DataFrame) -> None:
    train, test = split_frame(delays, params("time", column="time_hour"))
    assert pd.to_datetime(train["time_hour"]).max() <= pd.to_datetime(test["time_hour"]).min()
    assert len(test) == math.ceil(0.2 * len(delays))


def test_time_split_is_stable_for_ties() -> None:
    frame = pd.DataFrame({"t": [3, 1, 2, 2, 2, 5], "row": range(6)})
    train, test = split_frame(frame, params("time", column="t", test_size=0.5))
    # Among equal times, the earlier row in the file counts as earlier.
    assert train["row"].tolist() == [1, 2, 3]
    assert test["row"].tolist() == [0, 4, 5]


def test_group_split_never_straddles_a_group(delays: pd.DataFrame) -> None:
    train, test = split_frame(delays, params("group", column="tailnum"))
    assert not set(train["tailnum"].dropna()) & set(test["tailnum"].dropna())
    assert 0.1 < len(test) / len(delays) < 0.3
    assert ids(split_frame(delays, params("group", column="tailnum"))[1]) == ids(test)


@settings(max_examples=40, deadline=None)
@given(
    groups=st.lists(st.integers(0, 30), min_size=20, max_size=200),
    seed=st.integers(0, 10_000),
    test_size=st.floats(0.2, 0.8),
)
def test_group_assignment_depends_only_on_group_and_seed(
    groups: list[int], seed: int, test_size: float
) -> None:
    frame = pd.DataFrame({"g": groups, "row": range(len(groups))})
    try:
        train, test = split_frame(
            frame, params("group", column="g", seed=seed, test_size=test_size)
        )
    except DataValidationError:
        return  # too few groups for both sides: reported, not silently wrong
    assert not set(train["g"]) & set(test["g"])
    # Adding rows never moves an existing group to the other side.
    bigger = pd.concat([frame, frame.assign(row=frame["row"] + len(frame))])
    _, bigger_test = split_frame(
        bigger, params("group", column="g", seed=seed, test_size=test_size)
    )
    assert set(bigger_test["g"]) == set(test["g"])


def test_missing_group_values_form_one_group() -> None:
    frame = pd.DataFrame({"g": [*"abcdefghijkl", None] * 10})
    sides = set()
    for seed in range(10):
        train, test = split_frame(frame, params("group", column="g", seed=seed, test_size=0.5))
        assert {train["g"].isna().sum(), test["g"].isna().sum()} == {0, 10}
        sides.add(test["g"].isna().any())
    assert sides == {True, False}  # the seed decides where they go, like any group


def test_split_errors_name_the_model_and_column(delays: pd.DataFrame) -> None:
    with pytest.raises(StepError, match=r"model 'delays': split column 'tail_num' .*'tailnum'"):
        split_frame(delays, params("group", column="tail_num"))
    with pytest.raises(UsageError, match="a 'time' split needs 'column'"):
        split_frame(delays, params("time"))
    # too few rows is the data's failure (exit 3)
    with pytest.raises(DataValidationError, match="leaves the train side empty"):
        split_frame(delays.head(3), params("random", test_size=0.9))
    with pytest.raises(DataValidationError, match=r"leaves the (train|test) side empty"):
        split_frame(delays.head(10).assign(g="one"), params("group", column="g"))
    with pytest.raises(UsageError, match="unknown split method 'kfold'"):
        split_frame(delays, params("kfold"))
    with_gap = delays.head(10).assign(t=[1.0, None] * 5)
    with pytest.raises(StepError, match="has 5 missing values"):
        split_frame(with_gap, params("time", column="t"))


def test_a_class_too_small_for_a_stratified_split_is_refused(delays: pd.DataFrame) -> None:
    """A class with too few rows would be on one side only: trained on but never tested."""
    rows = delays.head(40).assign(delayed=[0] * 20 + [1] * 19 + [2])
    with pytest.raises(
        DataValidationError,
        match=r"model 'delays': class 2 of 'delayed' has 1 row; a stratified split with "
        r"test_size=0.2 needs at least 3 rows of every class",
    ):
        split_frame(rows, params("stratified", target="delayed"))
    train, test = split_frame(rows.head(39), params("stratified", target="delayed"))
    assert set(train["delayed"]) == set(test["delayed"]) == {0, 1}
