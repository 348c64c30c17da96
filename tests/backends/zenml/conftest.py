"""Fixtures for the ZenML backend's tests: compiled plans and small projects to run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlcompile.compiler import compile_spec
from mlcompile.plan import Plan
from tests.conftest import EXAMPLE

# Every kind of text that could break out of a literal, a comment, a template or a name.
HOSTILE = "q'\"\n{{ 7*7 }}{% if x %}\"\"\"'''__import__('os').system('touch PWNED')#"
MARKER = "PWNED"
ROWS = 3000


def flights_plan() -> Plan:
    return compile_spec(EXAMPLE / "mlcompile.yaml", []).plan


def flights_monitor_plan() -> Plan:
    plan = compile_spec(EXAMPLE / "mlcompile.yaml", []).monitor_plan
    assert plan is not None, "the flights example has monitors"
    return plan


def small_spec(*, hostile: bool, gate: str = "roc_auc >= 0.5") -> dict[str, object]:
    """The flights spec cut down to one quick binary model on the flights file alone."""
    model = HOSTILE if hostile else "delayed"
    suffix = HOSTILE if hostile else ""
    return {
        "name": "small_flights",
        "version": 1,
        "description": HOSTILE if hostile else "small flights",
        "settings": {"seed": 13},
        "sources": {
            "flights": {"path": "data/flights.parquet", "schema": "flights_raw"},
            "training": {
                "sql": (f"-- {HOSTILE.replace(chr(10), ' ')}\n" if hostile else "")
                + "SELECT *, CAST(dep_delay > 15 AS INTEGER) AS is_delayed FROM flights\n"
                "WHERE dep_delay IS NOT NULL AND arr_delay IS NOT NULL\n"
            },
        },
        "schemas": {
            "flights_raw": {
                "columns": {
                    "month": {"dtype": "int", "in_range": {"min": 1, "max": 12}},
                    "sched_dep_time": {"dtype": "int", "ge": 0, "le": 2359},
                    "dep_delay": {"dtype": "float", "nullable": True},
                    "carrier": {"dtype": "str"},
                    "origin": {"dtype": "str", "isin": ["EWR", "JFK", "LGA"]},
                    "distance": {"dtype": "int", "gt": 0},
                }
            }
        },
        "features": {
            "dep_hour": {"expr": "sched_dep_time // 100"},
            "log_distance": {"log": "distance"},
            "carrier_code": {"encode": "carrier"},
            "origin_code": {"encode": "origin"},
        },
        "models": {
            model: {
                "task": "binary",
                "data": "training",
                "target": "is_delayed",
                "features": ["dep_hour", "month", "log_distance", "carrier_code", "origin_code"],
                "params": {"num_leaves": 15, "learning_rate": 0.1, "min_data_in_leaf": 20},
                "num_boost_round": 25,
                "early_stopping": None,
                "split": {"method": "random", "test_size": 0.25},
                "slices": ["origin"],
            }
        },
        "gates": {f"quality{suffix}": {"model": model, "checks": [gate]}},
        "deployments": {
            f"registry{suffix}": {"kind": "registry", "model": model, "alias": "production"},
            "serving": {
                "kind": "kserve",
                "model": model,
                "namespace": "flights",
                "storage_uri": "s3://ml-models/flights",
            },
        },
    }


def make_project(root: Path, spec: dict[str, object], name: str = "mlcompile.yaml") -> Path:
    """A project folder with `spec` and the first ROWS flights of the example's data."""
    import pandas as pd

    data = root / "data" / "flights.parquet"
    if not data.is_file():
        data.parent.mkdir(parents=True, exist_ok=True)
        frame = pd.read_parquet(EXAMPLE / "data" / "flights.parquet")
        frame.head(ROWS).to_parquet(data, index=False)
    path = root / name
    path.write_text(yaml.safe_dump(spec, sort_keys=True), encoding="utf-8")
    return path


@pytest.fixture
def small_project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "small", small_spec(hostile=False))
