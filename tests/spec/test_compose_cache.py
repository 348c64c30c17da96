"""The composition cache never serves a stale result."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlcompile.spec import load_spec
from mlcompile.spec.cache import CACHE_DIR

BROKEN = Path(__file__).parent / "broken"


def _project(tmp_path: Path, preset_rounds: int) -> Path:
    shutil.copytree(BROKEN / "data", tmp_path / "data")
    (tmp_path / "conf" / "model_preset").mkdir(parents=True)
    (tmp_path / "conf" / "model_preset" / "mine.yaml").write_text(
        f"num_boost_round: {preset_rounds}\n"
    )
    spec = (BROKEN / "base.yaml").read_text()
    spec = spec.replace(
        "name: base", "name: base\ndefaults:\n  - model_preset@models.delayed: mine\n  - _self_"
    )
    (tmp_path / "spec.yaml").write_text(spec)
    return tmp_path / "spec.yaml"


def test_editing_a_config_group_file_invalidates_the_cache(tmp_path: Path) -> None:
    spec = _project(tmp_path, 11)
    assert load_spec(spec).resolved.spec.models["delayed"].num_boost_round == 11
    assert len(list((tmp_path / CACHE_DIR).glob("*.json"))) == 1
    assert load_spec(spec).resolved.spec.models["delayed"].num_boost_round == 11
    (tmp_path / "conf" / "model_preset" / "mine.yaml").write_text("num_boost_round: 22\n")
    assert load_spec(spec).resolved.spec.models["delayed"].num_boost_round == 22
    assert (
        load_spec(spec, ["models.delayed.num_boost_round=33"])
        .resolved.spec.models["delayed"]
        .num_boost_round
        == 33
    )


def test_specs_calling_resolvers_are_never_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _project(tmp_path, 11)
    spec.write_text(spec.read_text().replace("name: base", "name: ${oc.env:SPEC_NAME}"))
    monkeypatch.setenv("SPEC_NAME", "first")
    assert load_spec(spec).resolved.spec.name == "first"
    monkeypatch.setenv("SPEC_NAME", "second")
    assert load_spec(spec).resolved.spec.name == "second"
    assert not (tmp_path / CACHE_DIR).exists()
