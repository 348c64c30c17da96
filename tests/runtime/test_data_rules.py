"""Data rules, end to end on real data: a schema's rules on the whole table, the CSV read
options both readers share, ragged and empty files, and degenerate training data. Each
failure is a data failure (exit 3) with its reason, and nothing reaches the registry."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlcompile.errors import DataValidationError, SpecError
from mlcompile.featureops import Kind
from mlcompile.runtime.ingest import load_file
from mlcompile.runtime.validate import raise_if_invalid, validate_frame
from mlcompile.spec import load_spec
from mlcompile.spec.tables import file_type

from .helpers import nycflights_dir

WEATHER = nycflights_dir() / "weather.csv"
FEATURES = "[temp, humid, dewp]"


def _bikes(weather: pd.DataFrame, rows: int = 1500) -> pd.DataFrame:
    """A bike-rental-like table from real weather rows: riders counted as casual and
    registered, and their total, for every hour."""
    real = weather.dropna(subset=["temp", "humid", "dewp"]).head(rows).reset_index(drop=True)
    casual = real["temp"].round().astype(int)
    registered = real["humid"].round().astype(int)
    return real[["origin", "year", "month", "day", "hour", "temp", "humid", "dewp"]].assign(
        casual=casual, registered=registered, bikers=casual + registered
    )


def _registry_is_empty(root: Path) -> bool:
    registry = root / ".mlcompile" / "registry"
    return not registry.exists() or not any(registry.iterdir())


def _spec(root: Path, sources: str, schemas: str = "", target: str = "temp") -> Path:
    spec = root / "mlcompile.yaml"
    spec.write_text(
        f"name: rules\nsources:\n{sources}"
        + (f"schemas:\n{schemas}" if schemas else "")
        + f"models:\n  m: {{task: regression, data: bikes, target: {target}, "
        "features: [humid, dewp], num_boost_round: 5}\n"
        "gates:\n  g: {model: m, checks: ['r2 >= -100']}\n"
        "deployments:\n  reg: {kind: registry, model: m}\n",
        encoding="utf-8",
    )
    return spec


RULES = """\
  hourly:
    columns: {bikers: {dtype: int}}
    min_rows: 100
    unique: [[origin, year, month, day, hour]]
    checks: ["casual + registered = bikers", "temp > dewp - 1"]
"""


def test_the_rules_pass_on_real_rows_and_fail_on_the_rows_that_break_them(
    weather: pd.DataFrame,
) -> None:
    bikes = _bikes(weather)
    params = {"name": "hourly", "columns": {}, "min_rows": 100,
              "unique": [["origin", "year", "month", "day", "hour"]],
              "checks": ["casual + registered = bikers"]}  # fmt: skip
    _, report = validate_frame(bikes, params, "bikes", "fail")
    assert report["passed"], report["failures"]
    broken = bikes.copy()
    broken.loc[[3, 40, 41], "bikers"] += 1
    broken.loc[7, "casual"] = np.nan  # NULL: passes, as in a SQL CHECK constraint
    broken = pd.concat([broken, broken.iloc[[10, 11]]], ignore_index=True)
    _, report = validate_frame(broken, {**params, "min_rows": 10_000}, "bikes", "fail")
    by_check = {f["check"]: f for f in report["failures"]}
    condition = by_check["check(casual + registered = bikers)"]
    assert condition["failing_rows"] == 3
    assert condition["examples"][0] == {
        "casual": broken.loc[3, "casual"],
        "registered": broken.loc[3, "registered"],
        "bikers": broken.loc[3, "bikers"],
    }
    repeated = broken.duplicated(subset=params["unique"][0], keep=False).sum()
    assert by_check["unique(origin, year, month, day, hour)"]["failing_rows"] == repeated == 4
    assert by_check["min_rows(10000)"]["examples"] == [f"{len(broken)} rows"]
    with pytest.raises(DataValidationError, match=r"<table>: min_rows\(10000\)"):
        raise_if_invalid(report)


def test_a_pandera_yaml_schema_gets_the_rules_too(tmp_path: Path, weather: pd.DataFrame) -> None:
    import pandera.pandas as pa

    bikes = _bikes(weather, 200)
    (tmp_path / "hourly.yaml").write_text(
        pa.DataFrameSchema({"bikers": pa.Column(int)}).to_yaml(), encoding="utf-8"
    )
    params = {"name": "hourly", "file": "hourly.yaml", "checks": ["temp > 32"]}
    _, report = validate_frame(bikes, params, "bikes", "fail", tmp_path)
    freezing = (bikes["temp"] <= 32).sum()
    assert 0 < freezing < len(bikes)  # January at the three airports
    [failure] = report["failures"]
    assert (failure["check"], failure["failing_rows"]) == ("check(temp > 32)", freezing)


def test_a_run_stops_at_a_broken_row_check(cli: Any, tmp_path: Path, weather: pd.DataFrame) -> None:
    bikes = _bikes(weather)
    bikes.loc[[5, 500], "bikers"] = 0
    bikes.to_csv(tmp_path / "bikes.csv", index=False)
    spec = _spec(tmp_path, "  bikes: {path: bikes.csv, schema: hourly}\n", RULES)
    result = cli("run", spec, "-q", cwd=tmp_path)
    assert result.exit_code == 3, result.output
    assert "<table>: check(casual + registered = bikers) (2 rows)" in result.output
    assert _registry_is_empty(tmp_path)


def test_a_misspelt_column_in_a_rule_is_a_located_error(tmp_path: Path) -> None:
    shutil.copy(WEATHER, tmp_path / "bikes.csv")
    text = RULES.replace("[origin, year", "[origin, yaer").replace("temp > dewp", "temp > dwep")
    spec = _spec(tmp_path, "  bikes: {path: bikes.csv, schema: hourly}\n", text)
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    found = {(d.code, d.hint) for d in caught.value.diagnostics}
    # bikers, casual, registered are not in the weather table: each is reported too
    assert ("E301", "did you mean 'year'?") in found
    assert ("E311", "did you mean 'dewp'?") in found
    lines = spec.read_text().splitlines()
    unique = next(d for d in caught.value.diagnostics if d.hint == "did you mean 'year'?")
    assert unique.span is not None and lines[unique.span.line - 1].find("yaer") + 1 == (
        unique.span.column
    )


# ---- CSV read options ----------------------------------------------------------------------


def _european(weather: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Real weather rows written the way a European spreadsheet exports them: semicolons,
    '?' for a missing value, latin-1 text."""
    rows = weather.head(3000).assign(origin=weather["origin"].head(3000).map({
        "EWR": "Newark Liberty", "JFK": "John F. Kennedy", "LGA": "La Guardia Aéroport"}))  # fmt: skip
    rows.to_csv(path, sep=";", na_rep="?", index=False, encoding="latin-1")
    return rows


def test_read_options_are_the_same_for_validate_and_ingest(
    tmp_path: Path, weather: pd.DataFrame
) -> None:
    written = _european(weather, tmp_path / "w.csv")
    assert written["wind_gust"].isna().any()
    options = {"delimiter": ";", "na_values": ["?"], "encoding": "latin-1",
               "dtypes": {"year": "str", "hour": "float"}}  # fmt: skip
    static = file_type(tmp_path, tmp_path / "w.csv", "csv", options)
    read = load_file(tmp_path / "w.csv", "csv", "w", options)
    assert static is not None and list(static) == list(read.columns) == list(written.columns)
    assert static["wind_gust"][1] is Kind.NUMERIC and read["wind_gust"].dtype == "float64"
    assert static["year"] == ("VARCHAR", Kind.STRING) and read["year"].iloc[0] == "2013"
    assert read["hour"].dtype == "float64"
    assert set(read["origin"]) == set(written["origin"])  # 'Aéroport' decoded as latin-1
    # without the options, neither reader sees numbers in a column with '?' in it
    plain = file_type(
        tmp_path, tmp_path / "w.csv", "csv", {"delimiter": ";", "encoding": "latin-1"}
    )
    assert plain is not None and plain["wind_gust"][1] is Kind.STRING


def test_read_options_decide_the_types_validate_checks(
    tmp_path: Path, weather: pd.DataFrame
) -> None:
    _european(weather, tmp_path / "w.csv")
    source = '  bikes:\n    path: w.csv\n    csv: {delimiter: ";", encoding: latin-1%s}\n'
    spec = tmp_path / "mlcompile.yaml"
    model = (
        "features:\n  gust: {scale: wind_gust}\n"
        "models:\n  m: {task: regression, data: bikes, target: temp, features: [gust]}\n"
    )
    spec.write_text(f"name: x\nsources:\n{source % ''}{model}", encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    [error] = caught.value.diagnostics
    assert error.code == "E312" and "'wind_gust' of source 'bikes' is string" in error.message
    with_na = source % ", na_values: ['?']"
    spec.write_text(f"name: x\nsources:\n{with_na}{model}", encoding="utf-8")
    assert load_spec(spec).resolved.spec.sources["bikes"].csv is not None


# ---- ragged and empty files ------------------------------------------------------------------


def _weather_lines(count: int = 400) -> list[str]:
    return WEATHER.read_text(encoding="utf-8").splitlines()[:count]


RAGGED: list[tuple[str, Callable[[str], str], str]] = [
    ("short", lambda line: line.rsplit(",", 2)[0], "line 57 has 13 fields; the header has 15"),
    ("long", lambda line: line + ",7", "line 57 has 16 fields; the header has 15"),
    ("quote", lambda line: line.replace(",", ',"', 1), "line 57 opens a quoted value that is never closed"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "damage", "said"), RAGGED, ids=[r[0] for r in RAGGED])
def test_a_ragged_csv_names_the_line(
    cli: Any, tmp_path: Path, kind: str, damage: Callable[[str], str], said: str
) -> None:
    lines = _weather_lines()
    lines[56] = damage(lines[56])  # line 57 of the file
    (tmp_path / "bikes.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = _spec(tmp_path, "  bikes: {path: bikes.csv}\n")
    result = cli("run", spec, "-q", cwd=tmp_path)
    assert result.exit_code == 3, result.output
    assert f"source 'bikes': bikes.csv {said}" in result.output
    assert "not_nullable" not in result.output
    assert _registry_is_empty(tmp_path)


@pytest.mark.parametrize(
    ("text", "said"),
    [("", "the file bikes.csv is empty (0 bytes)"), (None, "bikes.csv has no rows (only the header")],
    ids=["zero-bytes", "header-only"],
)  # fmt: skip
def test_an_empty_file_is_a_data_failure(
    cli: Any, tmp_path: Path, text: str | None, said: str
) -> None:
    body = _weather_lines(1)[0] + "\n" if text is None else text
    (tmp_path / "bikes.csv").write_text(body, encoding="utf-8")
    spec = _spec(tmp_path, "  bikes: {path: bikes.csv}\n")
    result = cli("run", spec, "-q", cwd=tmp_path)
    assert result.exit_code == 3, result.output
    assert said in result.output
    assert _registry_is_empty(tmp_path)


# ---- degenerate training data ---------------------------------------------------------------------


def _weather_project(root: Path, sql: str, model: str, gate: str) -> Path:
    shutil.copy(WEATHER, root / "weather.csv")
    spec = root / "mlcompile.yaml"
    spec.write_text(
        "name: degenerate\n"
        "sources:\n  weather: {path: weather.csv}\n"
        f'  rows: {{sql: "{sql}"}}\n'
        f"models:\n  m: {{{model}, data: rows, features: [humid, dewp], num_boost_round: 5}}\n"
        f"gates:\n  g: {{model: m, checks: ['{gate}']}}\n"
        "deployments:\n  reg: {kind: registry, model: m}\n",
        encoding="utf-8",
    )
    return spec


def test_a_binary_target_with_one_class_registers_nothing(cli: Any, tmp_path: Path) -> None:
    # real hours, labelled 'freezing'; none in July is
    sql = "SELECT humid, dewp, CAST(temp < 32 AS INTEGER) AS freezing FROM weather WHERE month = 7"
    spec = _weather_project(tmp_path, sql, "task: binary, target: freezing", "roc_auc >= 0")
    result = cli("run", spec, "-q", cwd=tmp_path)
    assert result.exit_code == 3, result.output
    assert "every training row has freezing = 0; a binary model needs at least two classes" in (
        result.output
    )
    assert _registry_is_empty(tmp_path)


def test_a_class_too_small_to_stratify_registers_nothing(cli: Any, tmp_path: Path) -> None:
    # one real row of LGA among a month of EWR and JFK rows
    sql = (
        "SELECT humid, dewp, origin FROM weather WHERE month = 2 AND origin <> 'LGA' "
        "UNION ALL (SELECT humid, dewp, origin FROM weather WHERE origin = 'LGA' LIMIT 1)"
    )
    model = "task: multiclass, target: origin, split: {method: stratified}"
    spec = _weather_project(tmp_path, sql, model, "accuracy >= 0")
    result = cli("run", spec, "-q", cwd=tmp_path)
    assert result.exit_code == 3, result.output
    assert "class 'LGA' of 'origin' has 1 row; a stratified split with test_size=0.2" in (
        result.output
    )
    assert _registry_is_empty(tmp_path)
