"""Start-up: what a warm `validate` and a no-op `run` import, and the plan cache behind them.

The import budget is checked in `sys.modules` of a real process, not timed: a heavy library
that slips onto the start-up path fails here on any machine, however loaded.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mlcompile import compiler, plancache
from mlcompile.errors import SpecError

HEAVY = (
    "pandas",
    "pyarrow",
    "duckdb",
    "_duckdb",  # DuckDB's compiled engine, which the checks use without the package
    "lightgbm",
    "pandera",
    "sklearn",
    "kfp",
    "zenml",
    "openlineage",
    "optuna",
    "mlflow",
)
FAST = ["models.delayed.num_boost_round=40", "models.arrival.num_boost_round=40"]
# runs one command in this interpreter, then names the heavy libraries it imported
_PROBE = """
import json, sys
from mlcompile.cli import main
sys.argv = ["mlcompile", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = {heavy!r}
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))
print(json.dumps({{"code": code, "heavy": loaded}}))
"""


def _mlcompile(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCOMPILE_ALLOW")}
    return subprocess.run(
        [str(Path(sys.executable).parent / "mlcompile"), *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def _probe(project: Path, *args: str, heavy: tuple[str, ...] = HEAVY) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=heavy), *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    result["stdout"] = done.stdout
    return result


@pytest.mark.slow
def test_warm_validate_and_no_op_run_import_no_heavy_library(flights_project: Path) -> None:
    first = _mlcompile(flights_project, "run", "mlcompile.yaml", *FAST, "--quiet")
    assert first.returncode == 0, first.stderr
    assert _mlcompile(flights_project, "validate", "mlcompile.yaml").returncode == 0
    validate = _probe(flights_project, "validate", "mlcompile.yaml")
    assert validate["code"] == 0
    assert validate["heavy"] == []
    run = _probe(flights_project, "run", "mlcompile.yaml", *FAST, "--quiet")
    assert run["code"] == 0
    assert "nothing to do: all 25 steps cached" in str(run["stdout"])
    assert run["heavy"] == []


def test_cold_validate_composes_without_hydra_and_types_data_with_duckdb_engine_alone(
    flights_project: Path,
) -> None:
    """No cache at all: the example's defaults list is plain (spec/compose_plain.py) and
    its tables are typed from Parquet footers and CSV prefixes, by DuckDB's engine alone
    (the `duckdb` package's Python layer over it takes longer to import than the typing)."""
    cold = _probe(
        flights_project, "validate", "mlcompile.yaml", heavy=(*HEAVY, "hydra", "omegaconf")
    )
    assert cold["code"] == 0
    assert cold["heavy"] == ["_duckdb"]


# ---- the plan cache --------------------------------------------------------------------


class Counted:
    """compile_cached on the copy of the example, counting how often it really compiled."""

    def __init__(self, project: Path) -> None:
        self.spec = project / "mlcompile.yaml"
        self.calls = 0

    def __call__(self, overrides: list[str] | None = None) -> compiler.Compiled:
        return compiler.compile_cached(self.spec, overrides or [])


@pytest.fixture
def counted(flights_project: Path, monkeypatch: pytest.MonkeyPatch) -> Counted:
    counter = Counted(flights_project)
    real = compiler.compile_spec

    def compile_spec(spec_path: Path, overrides: list[str]) -> compiler.Compiled:
        counter.calls += 1
        return real(spec_path, overrides)

    monkeypatch.setattr(compiler, "compile_spec", compile_spec)
    monkeypatch.chdir(flights_project)
    return counter


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# Each change to one input of the plan, made to a project that was just compiled.
Change = Callable[[Path, pytest.MonkeyPatch, list[str]], object]
CHANGES: dict[str, Change] = {
    "spec text": lambda p, m, o: _edit(p / "mlcompile.yaml", "seed: 13", "seed: 14"),
    "override": lambda p, m, o: o.append("models.arrival.params.num_leaves=7"),
    "backend settings": lambda p, m, o: _edit(
        p / "mlcompile.yaml", "\nsettings:", "\nbackends:\n  local: {runs: .mlcompile/r}\nsettings:"
    ),
    "profile in the project": lambda p, m, o: _project_preset(p),
    "preset shipped with mlcompile": lambda p, m, o: m.setattr(
        importlib.import_module("mlcompile.spec.compose"), "PRESETS_DIR", _presets_copy(p)
    ),
    "trust in pyproject.toml": lambda p, m, o: (p / "pyproject.toml").write_text(
        "[tool.mlcompile]\nallow_modules = ['json']\n", encoding="utf-8"
    ),
    "trust in the environment": lambda p, m, o: m.setenv("MLCOMPILE_ALLOW_MODULES", "json"),
    "mlcompile's version": lambda p, m, o: m.setattr(plancache, "__version__", "99.0"),
    "mlcompile's code": lambda p, m, o: m.setattr(plancache, "_code_identity", lambda: "edited"),
    "data file": lambda p, m, o: _edit(p / "data" / "planes.csv", "\n", "\n\n"),
    "data file touched": lambda p, m, o: os.utime(p / "data" / "planes.csv", ns=(10**9, 10**9)),
    "schema file": lambda p, m, o: _edit(
        p / "schemas" / "weather.pandera.yaml", "columns:", "# edited\ncolumns:"
    ),
    "working directory": lambda p, m, o: m.chdir(p / "data"),
}


def _project_preset(project: Path) -> None:
    """The project's own copy of a shipped preset, which composition prefers."""
    from mlcompile.spec.compose import PRESETS_DIR

    shipped = PRESETS_DIR / "model_preset" / "lgbm_binary.yaml"
    (project / "conf" / "model_preset").mkdir(parents=True)
    text = shipped.read_text(encoding="utf-8") + "\n# the project's copy\n"
    (project / "conf" / "model_preset" / "lgbm_binary.yaml").write_text(text, encoding="utf-8")


def _presets_copy(project: Path) -> Path:
    from mlcompile.spec.compose import PRESETS_DIR

    copy = project.parent / "presets"
    shutil.copytree(PRESETS_DIR, copy)
    preset = copy / "model_preset" / "lgbm_regression.yaml"
    preset.write_text(preset.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    return copy


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_each_input_of_the_plan_rebuilds_it(
    change: str, flights_project: Path, counted: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh, again = counted(), counted()
    assert counted.calls == 1, "an unchanged spec must come from the cache"
    assert again.plan.to_json() == fresh.plan.to_json()
    assert (again.counts, again.warnings) == (fresh.counts, fresh.warnings)

    overrides: list[str] = []
    CHANGES[change](flights_project, monkeypatch, overrides)
    counted(overrides)
    assert counted.calls == 2, f"changing the {change} must rebuild the plan"
    counted(overrides)
    assert counted.calls == 2, "and the rebuilt plan is cached in turn"


def _entry(project: Path) -> Path:
    (entry,) = (project / plancache.CACHE_DIR).glob("*.json")
    return entry


DAMAGE: dict[str, Callable[[str], str]] = {
    "truncated": lambda text: text[: len(text) // 2],
    "empty": lambda text: "",
    "not JSON": lambda text: "\x00garbage",
    "a list": lambda text: "[]",
    "tampered plan": lambda text: text.replace('"train"', '"score"', 1),
    "no digest": lambda text: text.partition("\n")[2],
    "a field missing": lambda text: _without(text, "counts"),
}


def _without(text: str, field: str) -> str:
    """The entry without `field`, sealed with a digest that matches: only the check of the
    fields can catch it."""
    body = json.loads(text.partition("\n")[2])
    del body[field]
    from mlcompile.plan import sha256_text

    rest = json.dumps(body)
    return f"{sha256_text(rest)}\n{rest}"


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_entry_is_ignored_and_replaced(
    damage: str, flights_project: Path, counted: Counted
) -> None:
    fresh = counted()
    entry = _entry(flights_project)
    entry.write_text(DAMAGE[damage](entry.read_text(encoding="utf-8")), encoding="utf-8")

    rebuilt = counted()
    assert counted.calls == 2
    assert rebuilt.plan.to_json() == fresh.plan.to_json()
    # the entry was written again, whole, and no temporary file is left beside it
    assert plancache.load(flights_project, entry.stem) is not None
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]


def test_a_failing_spec_is_never_cached(flights_project: Path, counted: Counted) -> None:
    for _ in range(2):
        with pytest.raises(SpecError):
            counted(["gates.delayed_quality.model=nothing"])
    assert counted.calls == 2
    assert not (flights_project / plancache.CACHE_DIR).exists()


def test_a_resolver_in_the_spec_is_never_cached(
    flights_project: Path, counted: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLIGHTS_DESCRIPTION", "from the environment")
    _edit(
        flights_project / "mlcompile.yaml",
        "description: Departure",
        "description: ${oc.env:FLIGHTS_DESCRIPTION} Departure",
    )
    for _ in range(2):
        counted()
    assert counted.calls == 2


def test_the_cached_path_prints_the_same_warnings(flights_project: Path) -> None:
    _edit(flights_project / "mlcompile.yaml", "seed: 13", "seed: 13\n  custom_modules: [scripts]")
    for command in (["validate", "mlcompile.yaml"], ["build", "mlcompile.yaml"]):
        shutil.rmtree(flights_project / plancache.CACHE_DIR, ignore_errors=True)
        fresh = _mlcompile(flights_project, *command)
        entry = _entry(flights_project)
        written = entry.stat().st_mtime_ns
        cached = _mlcompile(flights_project, *command)
        assert entry.stat().st_mtime_ns == written, "the second answer came from the cache"
        assert "W102" in fresh.stderr and "settings.custom_modules" in fresh.stderr
        assert (cached.returncode, cached.stdout, cached.stderr) == (
            fresh.returncode,
            fresh.stdout,
            fresh.stderr,
        )


def test_installed_backends_matter_to_a_spec_with_backend_sections(
    flights_project: Path, counted: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    _edit(flights_project / "mlcompile.yaml", "\nsettings:", "\nbackends:\n  local: {}\nsettings:")
    counted()
    counted()
    assert counted.calls == 1
    monkeypatch.setattr(plancache, "installed_backends", lambda: [["local", "elsewhere", "9"]])
    counted()
    assert counted.calls == 2
