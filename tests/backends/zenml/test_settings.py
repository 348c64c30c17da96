"""The `backends.zenml` settings: what validation refuses, what `check` reports."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from mlcompile_zenml.backend import ZenmlBackend
from mlcompile_zenml.settings import ZenmlSettings
from pydantic import ValidationError

from mlcompile.backends import get_backend
from mlcompile.plan import Plan
from tests.backends.zenml.conftest import flights_plan


@pytest.fixture(scope="module")
def plan() -> Plan:
    return flights_plan()


def codes(plan: Plan, raw: dict[str, Any]) -> list[str]:
    settings = ZenmlSettings.model_validate(raw)
    return [d.code for d in ZenmlBackend().check(plan, settings)]


def test_discovered_by_entry_point() -> None:
    backend = get_backend("zenml")
    assert isinstance(backend, ZenmlBackend)
    assert backend.settings_model is ZenmlSettings


def test_defaults_cache_everything_but_gates_monitors_and_deploys() -> None:
    settings = ZenmlSettings()
    cached = {kind: settings.caches(kind) for kind in ("ingest", "train", "evaluate", "gate")}
    assert cached == {"ingest": True, "train": True, "evaluate": True, "gate": False}
    assert not any(settings.caches(kind) for kind in ("monitor", "register", "score", "kserve"))


def test_per_kind_cache_overrides_the_pipeline_default() -> None:
    settings = ZenmlSettings.model_validate(
        {"enable_cache": False, "steps": {"train": {"enable_cache": True}}}
    )
    assert settings.caches("train")
    assert not settings.caches("ingest")


@pytest.mark.parametrize(
    "raw",
    [
        {"steps": {"trian": {"cpu_count": 2}}},  # unknown step kind
        {"steps": {"train": {"cpu_count": 0}}},
        {"steps": {"train": {"memory": "4 gigs"}}},
        {"steps": {"train": {"gpu_count": -1}}},
        {"model": {"version": "latest"}},
        {"execution_mode": "sometimes"},
        {"enable_cach": True},  # unknown keys are errors, not silently ignored
    ],
)
def test_invalid_settings_are_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ZenmlSettings.model_validate(raw)


def test_valid_settings_check_clean(plan: Plan) -> None:
    raw = {
        "steps": {"train": {"cpu_count": 2, "memory": "4GB"}},
        "model": {"version": "fingerprint", "tags": ["flights"]},
        "run_config": {"settings": {"docker": {"requirements": ["mlcompile"]}}},
    }
    assert codes(plan, raw) == []


def test_run_config_keys_the_backend_writes_are_errors(plan: Plan) -> None:
    assert codes(plan, {"run_config": {"enable_cache": False, "steps": {}}}) == ["Z101", "Z101"]


def test_unknown_run_config_keys_are_errors_with_a_hint(plan: Plan) -> None:
    settings = ZenmlSettings.model_validate({"run_config": {"enviroment": {"A": "1"}}})
    (diagnostic,) = ZenmlBackend().check(plan, settings)
    assert diagnostic.code == "Z102"
    assert diagnostic.hint == "did you mean 'environment'?"
    assert diagnostic.path == "backends.zenml.run_config.enviroment"


def test_options_for_absent_kinds_and_cached_gates_warn(plan: Plan) -> None:
    found = ZenmlBackend().check(
        plan, ZenmlSettings.model_validate({"steps": {"gate": {"enable_cache": True}}})
    )
    assert [(d.code, d.severity) for d in found] == [("Z112", "warning")]


def test_zenml_model_names_must_stay_distinct(plan: Plan) -> None:
    renamed = {"flights.arrival": "flights delayed", "flights.delayed": "flights_delayed"}
    nodes = []
    for node in plan.nodes:
        params = dict(node.params)
        if "registered_name" in params:
            params["registered_name"] = renamed[params["registered_name"]]
        nodes.append(replace(node, params=params))
    clashing = replace(plan, nodes=tuple(nodes), _by_id={})
    assert codes(clashing, {}) == ["Z103"]
    assert codes(clashing, {"model": {"enabled": False}}) == []


@pytest.mark.parametrize("home", ["/abs/zenml", "../outside", ""])
def test_zenml_home_must_be_inside_the_project(plan: Plan, home: str) -> None:
    assert codes(plan, {"zenml_home": home}) == ["Z104"]
