from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mlcompile.errors import StepError, UsageError
from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.registry import Registry

from .helpers import killed_at_each_boundary

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


# ---- kills and torn states --------------------------------------------------------------

# One registry change, in a process of its own: argv is the registry root and the operation.
CHANGE = """
import sys
from pathlib import Path
from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.registry import Registry

registry, operation = Registry(Path(sys.argv[1])), sys.argv[2]
metrics = {"task": "binary", "rows": 10, "overall": {"roc_auc": 0.8}, "slices": {}}
if operation == "register":
    bundle = ModelBundle("model v4", {"model": "m", "training_data": {}})
    registry.register("m", bundle, metrics, alias="production", reference=b"PAR1 rows")
elif operation == "promote":
    registry.promote("m", 1, "production")
else:
    registry.rollback("m", "production")
"""


def three_versions(root: Path) -> Registry:
    """m v1, v2, v3, promoted in turn: production -> 3 (history 1, 2, 3); staging -> 1."""
    registry = Registry(root)
    for text in ("model v1", "model v2", "model v3"):
        registry.register("m", bundle(text), METRICS, alias="production")
    registry.promote("m", 1, "staging")
    return registry


VERSION_FILES = {"metrics.json", "model.bst", "model.json", "model.txt", "registration.json"}


def assert_consistent(registry: Registry) -> None:
    """What every reader may rely on, after the repair the next change does first."""
    folder = registry.root / "m"
    history = registry.history("m")
    registry.recover("m")
    assert registry.recover("m") == [], "a second repair found more to do"
    assert registry.history("m")[: len(history)] == history, "the repair rewrote history"
    history = registry.history("m")
    aliases = json.loads((folder / "aliases.json").read_text())
    assert aliases == registry.aliases("m"), "aliases.json disagrees with the log"
    registered = [e["version"] for e in history if e["event"] == "register"]
    versions = registry.versions("m")
    assert sorted(registered) == versions, "a version without exactly one register line"
    shas = []
    for version in versions:
        path = folder / "versions" / str(version)
        files = {p.name for p in path.iterdir()}
        with_reference = {"reference.parquet"} if version == 4 else set()
        assert files == VERSION_FILES | with_reference, f"v{version} is incomplete: {files}"
        version_info = registry.get("m", version)
        assert version_info.registration["model_sha256"] == version_info.bundle().sha256
        shas.append(version_info.bundle().sha256)
    assert len(set(shas)) == len(shas), "a model registered twice"
    for alias, version in aliases.items():
        assert version in versions, f"{alias} points at a missing version"
    leftovers = [p.name for p in [*folder.iterdir(), *(folder / "versions").iterdir()]]
    assert [n for n in leftovers if n.startswith(".") and n != ".lock"] == []


def kill_each_boundary(tmp_path: Path, operation: str) -> Iterator[Registry]:
    template = three_versions(tmp_path / "template").root

    def fresh(n: int) -> list[str]:
        root = tmp_path / f"killed-at-{n}"
        shutil.copytree(template, root)
        return [str(root), operation]

    for _, (root, _operation) in killed_at_each_boundary(CHANGE, fresh):
        yield Registry(Path(root))


def test_a_register_killed_at_any_write_boundary_is_repaired(tmp_path: Path) -> None:
    kills = 0
    for registry in kill_each_boundary(tmp_path, "register"):
        kills += 1
        assert_consistent(registry)
        assert registry.versions("m") in ([1, 2, 3], [1, 2, 3, 4])
        assert registry.aliases("m")["production"] in (3, registry.versions("m")[-1])
        # the re-run that follows a killed run registers the same model: once, and promotes it
        again = registry.register(
            "m",
            ModelBundle("model v4", {"model": "m", "training_data": {}}),
            METRICS,
            alias="production",
            reference=b"PAR1 rows",
        )
        assert again.version == 4 and registry.aliases("m") == {"production": 4, "staging": 1}
        assert_consistent(registry)
        assert registry.rollback("m", "production").version == 3
    # version files, their rename, the register line, the promote line, aliases.json
    assert kills >= 4


@pytest.mark.parametrize(
    ("operation", "one_step_back"),
    [
        # production 3 -> 1 (history 1, 2, 3, 1): back to 3 if it happened, else to 2
        ("promote", {3: 2, 1: 3}),
        # production 3 -> 2: back to 1 if it happened, else to 2; never a jump or a refusal
        ("rollback", {3: 2, 2: 1}),
    ],
)
def test_an_alias_move_killed_at_any_write_boundary_is_repaired(
    tmp_path: Path, operation: str, one_step_back: dict[int, int]
) -> None:
    kills = 0
    for registry in kill_each_boundary(tmp_path, operation):
        kills += 1
        assert_consistent(registry)
        production = registry.aliases("m")["production"]
        assert production in one_step_back, f"a killed {operation} moved production elsewhere"
        assert registry.rollback("m", "production").version == one_step_back[production]
        assert_consistent(registry)
    assert kills >= 2  # the log line, aliases.json


def test_an_unfinished_last_log_line_is_dropped(tmp_path: Path) -> None:
    registry = three_versions(tmp_path / "registry")
    log = registry.root / "m" / "events.jsonl"
    committed = log.read_bytes()
    cut = b'{"alias": "production", "event": "promote", "from_ver'
    log.write_bytes(committed + cut)
    assert registry.aliases("m") == {"production": 3, "staging": 1}  # readers skip it
    assert registry.promote("m", 2, "production").version == 2
    assert any("unfinished last line" in note for note in registry.repairs)
    assert log.read_bytes().startswith(committed)
    assert all(json.loads(line) for line in log.read_bytes()[len(committed) :].splitlines())
    assert_consistent(registry)
    assert registry.aliases("m")["production"] == 2


def test_a_corrupt_log_line_is_a_clear_error(tmp_path: Path) -> None:
    registry = three_versions(tmp_path / "registry")
    log = registry.root / "m" / "events.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join([lines[0], "not json\n", *lines[1:]]))
    with pytest.raises(StepError, match=r"events.jsonl:2: corrupt registry event"):
        registry.aliases("m")


def test_a_version_folder_without_registration_is_not_a_version(tmp_path: Path) -> None:
    """A version is published by one rename; a folder without its registration.json (a copy
    cut short) is not listed, and the next version does not reuse a listed number."""
    registry = three_versions(tmp_path / "registry")
    partial = registry.root / "m" / "versions" / "4"
    partial.mkdir()
    (partial / "model.txt").write_text("half a copy")
    assert registry.versions("m") == [1, 2, 3]
    with pytest.raises(UsageError, match="no version or alias '4'"):
        registry.get("m", 4)


@pytest.mark.parametrize(
    "alias", ["", "../../evil", "a" * 5000, "3", ".hidden", "prod uction", "prod\u2028", "é"]
)
def test_bad_aliases_are_refused(registry: Registry, alias: str) -> None:
    registry.register("m", bundle("v1"), METRICS, alias="production")
    for change in (
        lambda: registry.promote("m", 1, alias),
        lambda: registry.rollback("m", alias),
        lambda: registry.register("m", bundle("v2"), METRICS, alias=alias),
    ):
        with pytest.raises(UsageError, match="cannot be a registry alias") as raised:
            change()
        assert len(raised.value.message) < 300
    assert registry.aliases("m") == {"production": 1}
    assert registry.versions("m") == [1]
    assert [p.name for p in registry.root.rglob("*evil*")] == []
