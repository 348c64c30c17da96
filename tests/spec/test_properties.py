"""Random and mutated specs always end in success or located diagnostics, never a crash."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcompile.errors import SpecError
from mlcompile.spec import load_spec

BROKEN = Path(__file__).parent / "broken"
BASE = yaml.safe_load((BROKEN / "base.yaml").read_text())

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


def _check(tmp: Path, text: str) -> None:
    spec = tmp / "spec.yaml"
    spec.write_text(text, encoding="utf-8")
    try:
        load_spec(spec)
    except SpecError as exc:
        assert exc.diagnostics
        for diagnostic in exc.diagnostics:
            assert diagnostic.span is not None, diagnostic
            assert diagnostic.span.file in (
                "spec.yaml",
                str(spec),
            ) or diagnostic.span.file.endswith("spec.yaml")
            assert diagnostic.span.line >= 1, diagnostic


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_specs_give_located_errors(tmp_path: Path, data: st.DataObject) -> None:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "flights.csv").write_text((BROKEN / "data" / "flights.csv").read_text())
    spec = copy.deepcopy(BASE)
    path = data.draw(st.sampled_from(_paths(spec)[1:]))
    parent = spec
    for part in path[:-1]:
        parent = parent[part]
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "delete":
        del parent[path[-1]]
    elif action == "replace":
        parent[path[-1]] = data.draw(values)
    elif isinstance(parent, dict):
        parent[data.draw(st.text(min_size=1, max_size=8))] = data.draw(values)
    _check(tmp_path, yaml.safe_dump(spec, allow_unicode=True))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=200))
def test_arbitrary_text_gives_located_errors(tmp_path: Path, text: str) -> None:
    _check(tmp_path, text)


CORPUS = Path(__file__).parent / "corpus"


@pytest.mark.parametrize("path", sorted(CORPUS.iterdir()), ids=lambda p: p.name)
def test_corpus_of_found_cases(tmp_path: Path, path: Path) -> None:
    """Inputs that once crashed a parser somewhere: each must stay a located error."""
    target = tmp_path / "spec.yaml"
    target.write_bytes(path.read_bytes())
    with pytest.raises(SpecError) as caught:
        load_spec(target)
    for diagnostic in caught.value.diagnostics:
        assert diagnostic.span is not None and diagnostic.span.line >= 1, diagnostic


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_give_located_errors(tmp_path: Path, data: bytes) -> None:
    target = tmp_path / "spec.yaml"
    target.write_bytes(data)
    try:
        load_spec(target)
    except SpecError as exc:
        for diagnostic in exc.diagnostics:
            assert diagnostic.span is not None and diagnostic.span.line >= 1, diagnostic
