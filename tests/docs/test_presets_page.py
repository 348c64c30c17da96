"""docs/presets.md lists every shipped preset with every value it sets."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.conftest import REPO

PAGE = REPO / "docs" / "presets.md"


def _leaves(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        return [leaf for k, v in data.items() for leaf in _leaves(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), data)]


def _shown(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return ["null" if value is None else str(value)]


def test_every_shipped_preset_is_listed_with_what_it_sets() -> None:
    page = PAGE.read_text()
    sections = dict(re.findall(r"^## `(\w+)`.*?\n(.*?)(?=^## |\Z)", page, re.M | re.S))
    groups = sorted(p for p in (REPO / "conf").iterdir() if p.is_dir())
    assert {g.name for g in groups} == set(sections)
    for group in groups:
        for preset in sorted(group.glob("*.yaml")):
            row = re.search(rf"^\| `{preset.stem}` \|(.*)$", sections[group.name], re.M)
            assert row, f"docs/presets.md lists no {group.name} '{preset.stem}'"
            for key, value in _leaves(yaml.safe_load(preset.read_text())):
                last = key.rsplit(".", 1)[-1]
                assert last in row[1], f"{preset.stem}: {key} is not shown"
                for shown in _shown(value):
                    assert shown in row[1], f"{preset.stem}: {key}={shown} is not shown"
