"""mlcompile registry promote / rollback: bad aliases are refused before anything is written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from mlcompile.names import ALIAS_RULE
from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.registry import Registry

Cli = Callable[..., Result]
METRICS = {"task": "binary", "rows": 10, "overall": {"roc_auc": 0.8}, "slices": {}}


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    root = tmp_path / "registry"
    for text in ("model v1", "model v2"):
        Registry(root).register(
            "m", ModelBundle(text, {"training_data": {}}), METRICS, alias="production"
        )
    return root


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("alias", "shown"),
    [
        ("", "''"),
        ("../../evil", "'../../evil'"),
        ("x" * 5000, "(5000 characters)"),
        ("7", "'7'"),
        ("-production", "'-production'"),
    ],
    ids=["empty", "path", "5000-chars", "a-number", "option-like"],
)
def test_bad_aliases_exit_2_and_change_nothing(
    cli: Cli, registry: Path, alias: str, shown: str
) -> None:
    before = files(registry)
    for command in (["promote", "m@1"], ["rollback", "m"]):
        result = cli("registry", *command, f"--alias={alias}", "--registry", registry)
        assert result.exit_code == 2, result.output
        message = result.stderr
        assert "cannot be a registry alias" in message and shown in message, message
        assert ALIAS_RULE in message
        assert len(message) < 400 and "Traceback" not in message
    assert files(registry) == before
    assert not (registry.parent / "evil").exists()


def test_good_aliases_move_and_report_repairs(cli: Cli, registry: Path) -> None:
    moved = cli("registry", "promote", "m@1", "--alias", "staging-2", "--registry", registry)
    assert moved.exit_code == 0 and "m: staging-2 -> v1" in moved.output
    # a kill left aliases.json behind the log: the next change repairs it first, and says so
    (registry / "m" / "aliases.json").write_text('{"production": 1}\n')
    back = cli("registry", "rollback", "m", "--registry", registry, "--format", "json")
    assert back.exit_code == 0, back.output
    assert json.loads(back.stdout) == {"model": "m", "alias": "production", "version": 1}
    assert "repaired" in back.stderr and "rewrote aliases.json from the log" in back.stderr
    aliases = json.loads((registry / "m" / "aliases.json").read_text())
    assert aliases == {"production": 1, "staging-2": 1}
