"""The plain defaults list composed without Hydra gives Hydra's answer, or none at all.

Every spec with a defaults list in the repository (the example, the fixtures, the docs'
YAML blocks), hand-made edge cases and random specs and config groups are composed both
ways: where `compose_plain` answers, its data (types and key order included), its config
groups and their source positions are Hydra's; where Hydra refuses a spec, it does not
answer.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcompile.errors import SpecError
from mlcompile.spec.compose import (
    Composed,
    _compose_with_hydra,
    _defaults_problems,
    _needs_hydra,
    config_dirs,
    display_path,
)
from mlcompile.spec.compose_plain import compose_plain
from mlcompile.spec.yaml_loader import load_yaml_file
from tests.conftest import REPO
from tests.docs.doc_commands import blocks, pages


def _typed(value: Any) -> Any:
    """`value` with the type of every scalar and the order of every mapping's keys."""
    if isinstance(value, dict):
        return [(key, _typed(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return (type(value).__name__, value)


def _both_ways(spec: Path) -> bool | None:
    """Compose `spec` with Hydra and without; True when the plain path answered (and
    agreed), False when it left the spec to Hydra, None when neither composes it."""
    located = load_yaml_file(spec, display_path(spec))
    if located.diagnostics or not isinstance(located.data, dict) or "hydra" in located.data:
        return None
    if _defaults_problems(located) or not _needs_hydra(located.data, []):
        return None
    composed = Composed(data=located.data, spec=located, overrides=[])
    dirs = config_dirs(composed.project_root)
    plain = compose_plain(located, [], dirs)
    try:
        data = _compose_with_hydra(composed)
    except SpecError:
        assert plain is None, "Hydra refuses this spec"
        return None
    if plain is None:
        return False
    assert _typed(plain.data) == _typed(data)
    groups = [(g.package, g.path, g.display) for g in composed.groups]
    assert [(g.package, g.path, g.display) for g in plain.groups] == groups
    for group in plain.groups:
        again = load_yaml_file(group.path, group.display)
        assert (plain.loaded[group.path].data, plain.loaded[group.path].spans) == (
            again.data,
            again.spans,
        )
    return True


def _repository_specs() -> list[Path]:
    found = [*sorted((REPO / "examples").glob("*/mlcompile.yaml"))]
    for folder in ("broken", "corpus"):
        found += sorted((REPO / "tests" / "spec" / folder).glob("*.yaml"))
    return [spec for spec in found if b"defaults" in spec.read_bytes()]


@pytest.mark.parametrize("spec", _repository_specs(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_spec_in_the_repository_composes_as_hydra_does(spec: Path) -> None:
    answered = _both_ways(spec)
    if spec.parent.name == "flights":
        assert answered, "the example must compose without Hydra"


def test_every_spec_in_the_docs_composes_as_hydra_does(tmp_path: Path) -> None:
    answered = []
    for page in pages():
        for index, block in enumerate(blocks(page)):
            if not block.info.startswith("yaml") or "defaults:" not in block.body:
                continue
            spec = tmp_path / f"{page.stem}-{index}.yaml"
            spec.write_text(block.body, encoding="utf-8")
            answered.append(_both_ways(spec))
    assert True in answered


def _project(root: Path, spec: str, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    (root / "spec.yaml").write_text(spec, encoding="utf-8")
    return root / "spec.yaml"


GROUPS = {
    "conf/split/time.yaml": "# the project's own split\nmethod: time\ntest_size: 0.3\n",
    "conf/extra/globals.yaml": "# @package _global_\nsettings: {seed: 5}\nname: renamed\n",
    "conf/extra/placed.yaml": "\n# @package deep.place\n# after a blank line\nvalue: [1, 2]\n",
    "conf/extra/lists.yaml": "# @package _global_\nmodels: {m: {features: [z], params: {a: 1}}}\n",
    "conf/odd/exponent.yaml": "rate: 1e3\n",
    "conf/odd/missing.yaml": "rate: ???\n",
    "conf/odd/interpolated.yaml": "rate: ${settings.seed}\n",
    "conf/odd/nested.yaml": "defaults:\n  - /split: time\nrate: 1\n",
    "conf/odd/numeric_key.yaml": "1: one\n",
    "conf/odd/merge_key.yaml": "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n",
    "conf/odd/dated.yaml": "when: !!timestamp 2013-01-01\n",
    "conf/odd/mapping.yaml": "# @package _global_\nmodels: {m: {features: {a: 1}}}\n",
}
SPEC = "name: plain\nsettings: {seed: 1}\nmodels:\n  m: {features: [x, y], split: {column: t}}\n"
CASES = {
    "group and package": ["split@models.m.split: time", "_self_"],
    "presets and the project's conf": ["model_preset@models.m: lgbm_binary", "split: time"],
    "a global header after _self_": ["_self_", "extra: globals"],
    "a header naming a package": ["extra: placed"],
    "no _self_: it goes last": ["extra: globals", "extra@again: lists"],
    "_self_ first": ["_self_", "extra@again: lists"],
    "lists replace lists": ["_self_", "extra@x: lists", "extra: lists"],
    "a profile shipped with mlcompile": ["_self_", "profile: ci"],
}
LEFT_TO_HYDRA = {
    "1e3 is a float to OmegaConf": ["odd: exponent"],
    "??? is missing to OmegaConf": ["odd: missing"],
    "an interpolation": ["_self_", "odd: interpolated"],
    "a nested defaults list": ["odd: nested"],
    "a numeric key": ["odd: numeric_key"],
    "a merge key": ["odd: merge_key"],
    "a tagged timestamp": ["odd: dated"],
    "a mapping onto a list": ["_self_", "odd: mapping"],
    "an unknown option": ["split: nonesuch"],
    "an unknown group": ["nonesuch: time"],
    "the same group twice": ["split: time", "split: random"],
    "two _self_": ["_self_", "_self_"],
    "optional": ["optional split: time"],
    "a list of options": ["extra: [globals, placed]"],
    "a package keyword": ["split@_global_: time"],
}


def _defaults(entries: list[str]) -> str:
    return "defaults:\n" + "".join(f"  - {entry}\n" for entry in entries)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_plain_subset_composes_as_hydra_does(case: str, tmp_path: Path) -> None:
    spec = _project(tmp_path, _defaults(CASES[case]) + SPEC, GROUPS)
    assert _both_ways(spec) is True


@pytest.mark.parametrize("case", sorted(LEFT_TO_HYDRA))
def test_what_hydra_may_read_otherwise_is_left_to_hydra(case: str, tmp_path: Path) -> None:
    spec = _project(tmp_path, _defaults(LEFT_TO_HYDRA[case]) + SPEC, GROUPS)
    assert not _both_ways(spec)


def test_overrides_are_left_to_hydra(tmp_path: Path) -> None:
    spec = _project(tmp_path, _defaults(CASES["group and package"]) + SPEC, GROUPS)
    located = load_yaml_file(spec, "spec.yaml")
    assert compose_plain(located, ["settings.seed=2"], config_dirs(tmp_path)) is None


# ---- random specs and config groups -------------------------------------------------------

_KEYS = st.sampled_from(["a", "b", "models", "m", "settings"])
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["x", "1e3", "???", "${a}", "2013-01-01", ".hidden", "10:30", "yes"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=2), st.dictionaries(_KEYS, inner, max_size=3)),
    max_leaves=6,
)
_HEADERS = st.sampled_from(
    ["", "# @package _global_\n", "# @package _group_\n", "# @package place.here\n", "# x\n"]
)
_ENTRIES = st.sampled_from(
    [
        "_self_",
        {"alpha": "one"},
        {"alpha": "two"},
        {"alpha@models.m": "one"},
        {"beta": "two"},
        {"beta@a.b": "one"},
        {"gamma": "one"},
    ]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.dictionaries(_KEYS, _VALUES, max_size=3),
    defaults=st.lists(_ENTRIES, min_size=1, max_size=4),
    files=st.dictionaries(
        st.sampled_from(["alpha/one", "alpha/two", "beta/one", "beta/two"]),
        st.tuples(_HEADERS, st.dictionaries(_KEYS, _VALUES, max_size=3)),
        max_size=4,
    ),
)
def test_random_specs_compose_as_hydra_does(
    body: dict[str, Any], defaults: list[Any], files: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        texts = {
            f"conf/{name}.yaml": header + yaml.safe_dump(data, sort_keys=False)
            for name, (header, data) in files.items()
        }
        spec = yaml.safe_dump({"defaults": defaults, **body}, sort_keys=False)
        _both_ways(_project(root, spec, texts))
