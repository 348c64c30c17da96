"""Random and mutated specs always end in success or located diagnostics, never a crash.

Every test here is derandomized (the same examples on every run, no example database) and
each example has a deadline, so `make test` runs a fixed, time-bounded fuzz. The hostile
cases are the ones a probe once found ending in an internal error or hanging: malformed
`defaults:`, integers past 64 bits or 4,300 digits, gate checks with long runs of spaces,
NaN and infinite bounds, hostile aliases, paths, expressions and custom modules. Those are
run through the command line: exit 0, or exit 2 with every diagnostic located.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcompile.errors import SpecError
from mlcompile.spec import load_spec
from mlcompile.spec.checks.gates import CHECK_PATTERN, parse_check

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

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


@settings(FUZZ, max_examples=150)
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


@settings(FUZZ, max_examples=150)
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


@settings(FUZZ, max_examples=100)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_give_located_errors(tmp_path: Path, data: bytes) -> None:
    target = tmp_path / "spec.yaml"
    target.write_bytes(data)
    try:
        load_spec(target)
    except SpecError as exc:
        for diagnostic in exc.diagnostics:
            assert diagnostic.span is not None and diagnostic.span.line >= 1, diagnostic


# ---- hostile specs, through the command line --------------------------------------------

Cli = Callable[..., Result]
BIG = "__BIG_NUMBER__"  # replaced in the YAML text: PyYAML cannot write such integers


def _defaults_entries() -> st.SearchStrategy[Any]:
    names = st.sampled_from(["_self_", "model_preset@models.delayed", "split", "", "tiny"])
    return st.one_of(
        st.none(),
        names,
        st.integers(),
        st.lists(names, max_size=2),
        st.dictionaries(
            names, st.one_of(names, st.none(), st.lists(names, max_size=2)), max_size=3
        ),
        st.dictionaries(names, st.dictionaries(names, names, max_size=2), max_size=2),
    )


_DEFAULTS = st.one_of(
    st.integers(),
    st.text(max_size=10),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    st.lists(_defaults_entries(), max_size=4),
)
_BIG_INTEGERS = st.one_of(
    st.integers(min_value=19, max_value=5000).map(lambda n: "9" * n),
    st.integers(min_value=17, max_value=300).map(lambda n: "0x" + "f" * n),
    st.integers(min_value=19, max_value=5000).map(lambda n: "-" + "1" * n),
)
_SPACES = st.integers(min_value=0, max_value=40_000).map(lambda n: " " * n)
_CHECKS = st.one_of(
    st.tuples(st.sampled_from(["rmse", "rmse[", "rmse[origin", "rmse <=", " rmse"]), _SPACES).map(
        "".join
    ),
    st.tuples(_SPACES, st.sampled_from(["rmse <= 30", "x", "]", "rmse[origin] <= 3"])).map("".join),
    st.text(max_size=40),
)
_BOUNDS = st.sampled_from([float("nan"), float("inf"), float("-inf"), 1.0])
_ALIASES = st.one_of(
    st.sampled_from(["", "../../evil", "3", "a" * 5000, "prod\n", "prod uction", "production"]),
    st.text(max_size=70),
)
_PATHS = st.one_of(
    st.sampled_from(["/etc/passwd", "../outside", ".", "data/../..", "/", "~", ""]),
    st.text(max_size=30),
)
_EXPRS = st.one_of(
    st.sampled_from(
        [
            "distance) AS value FROM feature_rows ORDER BY distance DESC --",
            "(FROM feature_rows SELECT max(distance))",
            "avg(distance) OVER ()",
            "distance; SELECT 1",
            "distance /* open",
            "distance -- fine",
            "COLUMNS(*)",
        ]
    ),
    st.text(max_size=40),
)
_MODULES = st.one_of(
    st.sampled_from(sorted(sys.stdlib_module_names)).map(lambda m: f"{m}:f"), st.text(max_size=20)
)


def _hostile(spec: dict[str, Any], data: st.DataObject) -> str:
    """One hostile edit of the base spec, as YAML text."""
    big: str | None = None
    kind = data.draw(
        st.sampled_from(
            ["defaults", "integer", "check", "bound", "alias", "path", "expr", "custom"]
        )
    )
    if kind == "defaults":
        spec = {"defaults": data.draw(_DEFAULTS), **spec}
    elif kind == "integer":
        big = data.draw(_BIG_INTEGERS)
        where = data.draw(st.sampled_from(["seed", "version", "rounds", "key"]))
        if where == "seed":
            spec["settings"] = {"seed": BIG}
        elif where == "version":
            spec["version"] = BIG
        elif where == "rounds":
            spec["models"]["delayed"]["num_boost_round"] = BIG
        else:
            spec["features"][BIG] = {"log": "distance"}
    elif kind == "check":
        spec["gates"]["quality"]["checks"] = [data.draw(_CHECKS)]
    elif kind == "bound":
        rule = data.draw(st.sampled_from(["gt", "ge", "lt", "le", "in_range"]))
        value = data.draw(_BOUNDS)
        column = spec["schemas"]["flights"]["columns"]["distance"]
        column[rule] = {"min": value, "max": data.draw(_BOUNDS)} if rule == "in_range" else value
    elif kind == "alias":
        where = data.draw(st.sampled_from(["deployment", "gate"]))
        if where == "deployment":
            spec["deployments"]["registry"]["alias"] = data.draw(_ALIASES)
        else:
            spec["gates"]["quality"]["compare_to"] = data.draw(_ALIASES)
    elif kind == "path":
        key = data.draw(st.sampled_from(["store", "registry"]))
        value = data.draw(_PATHS)
        if data.draw(st.booleans()):
            spec["settings"] = {key: value}
        else:
            spec["sources"]["flights"]["path"] = value
    elif kind == "expr":
        spec["features"]["hostile"] = {"expr": data.draw(_EXPRS)}
        spec["models"]["delayed"]["features"].append("hostile")
    else:
        spec["features"]["hostile"] = {"custom": data.draw(_MODULES)}
    text = yaml.safe_dump(spec, allow_unicode=True, sort_keys=False)
    return text.replace(BIG, big) if big is not None else text


def _project(tmp: Path) -> Path:
    (tmp / "data").mkdir(exist_ok=True)
    (tmp / "data" / "flights.csv").write_text((BROKEN / "data" / "flights.csv").read_text())
    return tmp / "spec.yaml"


def _located_or_ok(result: Result) -> None:
    assert "Traceback" not in result.output and "internal error" not in result.output, (
        result.output[-2000:]
    )
    assert result.exit_code in (0, 2), result.output[-2000:]
    if result.exit_code == 2:
        diagnostics = json.loads(result.stdout)["diagnostics"]
        assert diagnostics, result.output[-2000:]
        for diagnostic in diagnostics:
            span = diagnostic["span"]
            assert span is not None and span["line"] >= 1, diagnostic
            assert span["file"].endswith("spec.yaml") or span["file"] == "<command line>"


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_hostile_specs_exit_0_or_2_with_located_errors(
    cli: Cli, tmp_path: Path, data: st.DataObject
) -> None:
    spec = _project(tmp_path)
    spec.write_text(_hostile(copy.deepcopy(BASE), data), encoding="utf-8")
    _located_or_ok(cli("validate", spec, "--format", "json"))


@settings(FUZZ, max_examples=40)
@given(value=st.one_of(_BIG_INTEGERS, st.text(max_size=20)))
def test_hostile_overrides_exit_0_or_2_with_located_errors(
    cli: Cli, tmp_path: Path, value: str
) -> None:
    spec = _project(tmp_path)
    spec.write_text((BROKEN / "base.yaml").read_text(), encoding="utf-8")
    _located_or_ok(cli("validate", spec, f"settings.seed={value}", "--format", "json"))


def test_gate_checks_are_read_in_linear_time() -> None:
    """A run of spaces made the check pattern backtrack (40,000 took 34 s). The text is
    bounded now, and the pattern itself is linear even past the bound."""
    for text in (
        "roc_auc[" + " " * 40_000,
        "roc_auc" + " " * 40_000 + "x",
        "roc_auc[origin" + " " * 40_000 + "] >= ",
        " " * 40_000 + "roc_auc >= 0.5 x",
        "roc_auc[" + " a" * 20_000,
        "roc_auc[a] >= roc_auc[" + " " * 40_000,
        "roc_auc[a] >= roc_auc" + " " * 40_000 + "x",
        "roc_auc[a] >= roc_auc[b]" + " " * 40_000 + "- x",
    ):
        started = time.perf_counter()
        assert parse_check(text) is None
        assert CHECK_PATTERN.fullmatch(text) is None
        assert time.perf_counter() - started < 0.5, text[:20]
    spaces = " " * 40_000
    started = time.perf_counter()
    assert CHECK_PATTERN.fullmatch(f"roc_auc[{spaces}origin{spaces}] >={spaces}0.5") is not None
    assert time.perf_counter() - started < 0.5
    assert parse_check(f"roc_auc[{spaces[:100]}origin] >= 0.5") is not None


def test_gate_checks_keep_their_forms() -> None:
    parsed = parse_check(" roc_auc [ origin ] >= production - 0.02 ")
    assert parsed is not None
    assert (parsed.metric, parsed.slice, parsed.max_drop) == ("roc_auc", "origin", 0.02)
    assert parse_check("rmse <= 1.") is not None
    assert parse_check("rmse <= .5e-3") is not None
    assert parse_check("rmse[] <= 3") is None
    assert parse_check("rmse[  ] <= 3") is None


@pytest.mark.parametrize(
    ("text", "versions", "op", "margin"),
    [
        ("roc_auc[challenger] >= roc_auc[production]", ("challenger", "production"), ">=", 0.0),
        (" rmse [ b ]<=rmse[ a ]- 0.5 ", ("b", "a"), "<=", -0.5),
        ("logloss[b] < logloss[a] + 1e-2", ("b", "a"), "<", 0.01),
    ],
)
def test_comparisons_of_two_versions_are_one_grammar(
    text: str, versions: tuple[str, str], op: str, margin: float
) -> None:
    parsed = parse_check(text)
    assert parsed is not None
    assert (parsed.versions, parsed.op, parsed.value, parsed.slice) == (versions, op, margin, None)


@pytest.mark.parametrize(
    "text",
    [
        "roc_auc[b] >= accuracy[a]",  # two metrics
        "roc_auc >= roc_auc[a]",  # one side without a version
        "roc_auc[b] >= roc_auc",
        "roc_auc[b] >= roc_auc[]",
        "roc_auc[b] >= roc_auc[a] 0.1",
    ],
)
def test_half_comparisons_are_unreadable(text: str) -> None:
    assert parse_check(text) is None


def test_a_comparison_the_wrong_way_round_has_no_bound() -> None:
    parsed = parse_check("rmse[b] >= rmse[a]")
    assert parsed is not None and parsed.op is None and parsed.value is None
