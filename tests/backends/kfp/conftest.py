"""Fixtures for the KFP backend: compiled plans and a small, fast copy of the flights project."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mlcompile.compiler import Compiled, compile_spec
from tests.backends.kfp.helpers import MINI_SPEC
from tests.conftest import EXAMPLE


@pytest.fixture(scope="session")
def mini_flights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 flights sampled from the example's data, written once per session."""
    import pandas as pd

    target = tmp_path_factory.mktemp("mini-data") / "flights.parquet"
    frame = pd.read_parquet(EXAMPLE / "data" / "flights.parquet")
    sample = frame.sample(n=3000, random_state=13)
    sample.sort_values(["time_hour", "carrier", "flight"]).reset_index(drop=True).to_parquet(
        target, index=False
    )
    return target


@pytest.fixture
def make_project(tmp_path: Path, mini_flights: Path) -> Callable[..., Path]:
    """A project folder with the mini data and a spec: MINI_SPEC by default."""

    def make(name: str = "project", spec: str | None = None, bound: float = 0.5) -> Path:
        root = tmp_path / name
        (root / "data").mkdir(parents=True)
        shutil.copyfile(mini_flights, root / "data" / "flights.parquet")
        text = spec if spec is not None else MINI_SPEC.replace("__BOUND__", str(bound))
        (root / "mlcompile.yaml").write_text(text, encoding="utf-8")
        return root

    return make


@pytest.fixture(scope="session")
def flights_compiled() -> Compiled:
    return compile_spec(EXAMPLE / "mlcompile.yaml", [])
