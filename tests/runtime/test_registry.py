from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mlcompile.errors import UsageError
from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.registry import Registry

METRICS = {"task": "binary", "rows": 10, "overall": {"roc_auc": 0.8}, "slices": {}}


def bundle(text: str) -> ModelBundle:
    return ModelBundle(text=text, meta={"model": "delayed", "training_data": {"sha256": "d" * 64}})


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "registry")


def test_register_writes_a_complete_version(registry: Registry, delay_bundle: ModelBundle) -> None:
    decision = {"gate": "quality", "passed": True, "checks": []}
    version = registry.register(
        "flights.delayed", delay_bundle, METRICS, decisions=[decision], plan_fingerprint="abc"
    )
    assert version.version == 1
    files = sorted(p.name for p in version.path.iterdir())
    assert files == ["metrics.json", "model.bst", "model.json", "model.txt", "registration.json"]
    assert version.bundle() == delay_bundle
    assert version.metrics() == METRICS
    registration = version.registration
    assert registration["model_sha256"] == delay_bundle.sha256
    assert registration["plan_fingerprint"] == "abc"
    assert registration["gates"] == [decision]
    assert registration["training_data"] == delay_bundle.meta["training_data"]
    assert registration["user"] and registration["created_at"].endswith("+00:00")
    assert registry.list_models() == ["flights.delayed"]


def test_registering_the_same_model_twice_is_idempotent(registry: Registry) -> None:
    first = registry.register("m", bundle("model one"), METRICS)
    again = registry.register("m", bundle("model one"), {**METRICS, "rows": 99})
    other = registry.register("m", bundle("model two"), METRICS)
    assert (first.version, again.version, other.version) == (1, 1, 2)
    assert registry.versions("m") == [1, 2]
    assert [e["event"] for e in registry.history("m")] == ["register", "register"]


def test_promote_rollback_and_the_event_log(registry: Registry) -> None:
    for text in ("v1", "v2", "v3"):
        registry.register("m", bundle(text), METRICS, alias="production")
    assert registry.aliases("m") == {"production": 3}
    assert registry.get("m", "production").version == 3
    assert registry.rollback("m", "production").version == 2
    assert registry.rollback("m", "production").version == 1
    with pytest.raises(UsageError, match="alias 'production' of model 'm' has no previous version"):
        registry.rollback("m", "production")
    registry.promote("m", 3, "production")
    registry.promote("m", "2", "staging")
    assert registry.aliases("m") == {"production": 3, "staging": 2}
    assert registry.rollback("m", "production").version == 1
    moves = [
        (e["event"], e.get("alias"), e.get("from_version"), e.get("to_version"))
        for e in registry.history("m")
        if e["event"] != "register"
    ]
    assert moves == [
        ("promote", "production", None, 1),
        ("promote", "production", 1, 2),
        ("promote", "production", 2, 3),
        ("rollback", "production", 3, 2),
        ("rollback", "production", 2, 1),
        ("promote", "production", 1, 3),
        ("promote", "staging", None, 2),
        ("rollback", "production", 3, 1),
    ]
    for event in registry.history("m"):
        assert event["user"] and event["timestamp"] and event["model"] == "m"
    log = (registry.root / "m" / "events.jsonl").read_text().splitlines()
    assert len(log) == 3 + len(moves) and all(json.loads(line) for line in log)


def test_unknown_names_get_a_hint(registry: Registry) -> None:
    registry.register("flights.delayed", bundle("x"), METRICS, alias="production")
    with pytest.raises(
        UsageError, match=r"no registered model 'flights.delay' .*did you mean 'flights.delayed'"
    ):
        registry.versions("flights.delay")
    with pytest.raises(
        UsageError, match=r"no version or alias 'prodution' .*did you mean 'production'"
    ):
        registry.get("flights.delayed", "prodution")
    with pytest.raises(UsageError, match="known names: '1', 'production'"):
        registry.get("flights.delayed", "live")
    with pytest.raises(UsageError, match="no version or alias '7'"):
        registry.promote("flights.delayed", 7, "production")
    with pytest.raises(UsageError, match="no registered model 'other'"):
        registry.rollback("other", "production")
    assert registry.list_models() == ["flights.delayed"]
    for bad in ("../escape", ".hidden", "a/b", ""):
        with pytest.raises(UsageError, match="cannot be a registered model name"):
            registry.register(bad, bundle("x"), METRICS)


def test_concurrent_registrations_get_distinct_versions(registry: Registry) -> None:
    texts = [f"model {i}" for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = list(
            pool.map(lambda t: registry.register("m", bundle(t), METRICS).version, texts)
        )
    assert sorted(versions) == list(range(1, 9))
    for version, text in zip(versions, texts, strict=True):
        assert registry.get("m", version).bundle().text == text
    leftovers = [
        p.name for p in (registry.root / "m" / "versions").iterdir() if not p.name.isdigit()
    ]
    assert leftovers == []
