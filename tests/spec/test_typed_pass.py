"""The typed pass: column references and types checked against the real data at validate.

Each broken spec runs against the flights example's real Parquet and CSV files and a SQL
source over them, and names the code, the file:line:col of the YAML node that names the
column, and the suggestion.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcompile.errors import Diagnostic, SpecError
from mlcompile.spec import load_spec

DATA = Path(__file__).resolve().parents[2] / "examples" / "flights" / "data"

SOURCES = """\
sources:
  flights: {path: data/flights.parquet}
  weather: {path: data/weather.csv}
  training:
    sql: |
      SELECT f.*, w.temp, w.humid, CAST(f.dep_delay > 15 AS INTEGER) AS late
      FROM flights f
      LEFT JOIN weather w
        ON f.origin = w.origin AND f.time_hour = CAST(w.time_hour AS TIMESTAMP)
"""
FEATURES = """\
features:
  dep_hour: {expr: "sched_dep_time // 100"}
  carrier_code: {encode: carrier}
  temp_filled: {impute: temp}
"""
MODEL = """\
models:
  m:
    task: binary
    data: training
    target: late
    features: [dep_hour, carrier_code, temp_filled, distance]
    split: {method: time, column: time_hour}
"""


def _project(tmp: Path, text: str) -> Path:
    (tmp / "data").mkdir(exist_ok=True)
    for name in ("flights.parquet", "weather.csv"):
        if not (tmp / "data" / name).exists():
            shutil.copy(DATA / name, tmp / "data" / name)
    spec = tmp / "mlcompile.yaml"
    spec.write_text(text, encoding="utf-8")
    return spec


def _errors(spec: Path) -> list[Diagnostic]:
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    return [d for d in caught.value.diagnostics if d.severity == "error"]


def _at(text: str, needle: str) -> str:
    index = text.rindex(needle)  # the last: the model and additions come last
    line = text.count("\n", 0, index) + 1
    return f"{line}:{index - text.rfind(chr(10), 0, index)}"


def _the_one_error(tmp: Path, text: str, code: str, needle: str, hint: str | None) -> None:
    """The spec `text` has one error: `code`, at the last `needle`, with `hint`."""
    [error] = _errors(_project(tmp, text))
    assert (error.code, f"{error.span.line}:{error.span.column}" if error.span else "") == (
        code,
        _at(text, needle),
    ), error
    assert error.hint == hint


def test_the_base_spec_is_valid(tmp_path: Path) -> None:
    loaded = load_spec(_project(tmp_path, "name: typed\n" + SOURCES + FEATURES + MODEL))
    assert "humid" in (loaded.resolved.source_columns["training"] or [])


CASES = {
    "encode a missing column": (
        FEATURES.replace("encode: carrier", "encode: carier"),
        MODEL,
        "",
        "E301",
        "carier",
        "did you mean 'carrier'?",
    ),
    "a missing split column": (
        FEATURES,
        MODEL.replace("column: time_hour", "column: time_hr"),
        "",
        "E301",
        "time_hr",
        "did you mean 'time_hour'?",
    ),
    "a time split on text": (
        FEATURES,
        MODEL.replace("column: time_hour", "column: carrier"),
        "",
        "E312",
        "carrier}",
        "split on a date/time or numeric column, or parse it in the source's SQL",
    ),
    "impute median on text": (
        FEATURES.replace("impute: temp", "impute: {column: origin, strategy: median}"),
        MODEL,
        "",
        "E312",
        "origin",
        "encode text first, or use an operation that takes it",
    ),
    "scale on text": (
        FEATURES + "  dest_scaled: {scale: dest}\n",
        MODEL.replace("distance]", "distance, dest_scaled]"),
        "",
        "E312",
        "dest}",
        "encode text first, or use an operation that takes it",
    ),
    "an undefined feature": (
        FEATURES,
        MODEL.replace("distance]", "temp_filed]"),
        "",
        "E301",
        "temp_filed",
        "did you mean 'temp_filled'?",
    ),
    "an expression on a missing column": (
        FEATURES.replace("sched_dep_time // 100", "sched_dep_tim // 100"),
        MODEL,
        "",
        "E311",
        "sched_dep_tim //",
        "did you mean 'sched_dep_time'?",
    ),
    "a misspelled table in SQL": (
        FEATURES,
        MODEL,
        "  late_flights: {sql: 'SELECT * FROM flight WHERE dep_delay > 60', inputs: [flights]}\n",
        "E311",
        "flight WHERE",
        "did you mean 'flights'?",
    ),
    "a reserved word as a column": (
        FEATURES,
        MODEL,
        "  odd: {sql: 'SELECT default FROM flights'}\n",
        "E311",
        "default FROM",
        "'default' is a reserved word in SQL: quote the column as \"default\"",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_data_mistake_is_located_with_a_suggestion(tmp_path: Path, case: str) -> None:
    features, model, more_sources, code, needle, hint = CASES[case]
    text = "name: typed\n" + SOURCES + more_sources + features + model
    _the_one_error(tmp_path, text, code, needle, hint)


def test_scoring_and_monitoring_sources_are_checked(tmp_path: Path) -> None:
    text = (
        "name: typed\n"
        + SOURCES
        + "  to_score: {sql: 'SELECT month, day, carrier, origin FROM flights'}\n"
        + FEATURES
        + MODEL
        + "gates:\n  g: {model: m, checks: ['roc_auc >= 0.5']}\n"
        + "deployments:\n"
        + "  reg: {kind: registry, model: m}\n"
        + "  batch: {kind: batch, model: m, source: to_score, output: out.parquet,"
        + " id_columns: [flight_no]}\n"
        + "monitoring:\n"
        + "  watch:\n"
        + "    model: m\n"
        + "    current: {source: training}\n"
        + "    labels: {source: training, key: [month, dy]}\n"
        + "    checks: ['psi <= 0.2']\n"
    )
    errors = _errors(_project(tmp_path, text))
    got = {(e.code, f"{e.span.line}:{e.span.column}" if e.span else "", e.hint) for e in errors}
    lacks = {e.message for e in errors if "lacks column" in e.message}
    assert lacks == {
        "source 'to_score' lacks column 'sched_dep_time', which model 'm' reads "
        "(feature 'dep_hour')",
        "source 'to_score' lacks column 'temp', which model 'm' reads (feature 'temp_filled')",
        "source 'to_score' lacks column 'distance', which model 'm' reads (as a feature)",
    }
    assert (
        "E301",
        _at(text, "flight_no"),
        "known names: 'carrier', 'day', 'month', 'origin'",
    ) in got
    assert ("E301", _at(text, "dy]"), "did you mean 'day'?") in got
    assert len(errors) == 6


def test_text_values_for_a_numeric_column_are_refused(tmp_path: Path) -> None:
    text = (
        "name: typed\n"
        + SOURCES.replace("{path: data/flights.parquet}", "{path: data/flights.parquet, schema: f}")
        + "schemas:\n  f:\n    columns:\n      year: {isin: ['2013', 2014]}\n"
        + FEATURES
        + MODEL
    )
    _the_one_error(tmp_path, text, "E312", "'2013'", "write the number without quotes: 2013")


def test_a_partial_non_strict_schema_gives_no_false_errors(tmp_path: Path) -> None:
    """Regression: a schema naming some columns made every other column 'unknown'."""
    text = (
        "name: typed\n"
        + "sources:\n  weather: {path: data/weather.csv, schema: w}\n"
        + "schemas:\n  w:\n    columns:\n      origin: {dtype: str}\n"
        + "features:\n  wind: {impute: wind_speed}\n"
        + "models:\n  m:\n    task: regression\n    data: weather\n    target: temp\n"
        + "    features: [wind, humid]\n    slices: [origin]\n"
    )
    loaded = load_spec(_project(tmp_path, text))
    assert "humid" in (loaded.resolved.source_columns["weather"] or [])


def test_a_warm_validate_imports_no_data_library(tmp_path: Path) -> None:
    spec = _project(tmp_path, "name: typed\n" + SOURCES + FEATURES + MODEL)
    script = (
        "import sys\nfrom mlcompile.spec import load_spec\n"
        f"load_spec(__import__('pathlib').Path({str(spec)!r}))\n"
        "print(sorted({'duckdb', '_duckdb', 'pandas', 'pyarrow', 'numpy'} & set(sys.modules)))\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    assert runs[0].stdout.strip() == "['_duckdb']"  # DuckDB's engine, not the package
    assert runs[1].stdout.strip() == "[]"


RICH = (
    SOURCES
    + FEATURES
    + MODEL
    + "    slices: [origin]\n"
    + "gates:\n  g: {model: m, checks: ['roc_auc >= 0.5']}\n"
    + "deployments:\n"
    + "  reg: {kind: registry, model: m}\n"
    + "  batch: {kind: batch, model: m, source: training, output: out.parquet,"
    + " id_columns: [flight]}\n"
    + "monitoring:\n"
    + "  watch:\n"
    + "    model: m\n"
    + "    current: {source: training}\n"
    + "    labels: {source: training, key: [month, day]}\n"
    + "    checks: ['psi <= 0.2']\n"
)
# every kind of column reference: (what comes before the column, the column)
_REFERENCES = (
    ("encode: ", "carrier"),
    ("impute: ", "temp"),
    ("column: ", "time_hour"),
    ("target: ", "late"),
    ("slices: [", "origin"),
    ("id_columns: [", "flight"),
    ("key: [", "month"),
    ("temp_filled, ", "distance"),
    ('{expr: "', "sched_dep_time"),
    ("w.", "humid"),
)


def test_the_rich_base_spec_is_valid(tmp_path: Path) -> None:
    assert all(RICH.count(before + column) == 1 for before, column in _REFERENCES)
    load_spec(_project(tmp_path, "name: typed\n" + RICH))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    reference=st.sampled_from(_REFERENCES),
    typo=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12),
)
def test_a_typo_in_any_column_reference_is_located(
    tmp_path: Path, reference: tuple[str, str], typo: str
) -> None:
    """Never a traceback, never silence: an error at the line of the misspelt name."""
    before, column = reference
    text = "name: typed\n" + RICH.replace(before + column, before + column + typo)
    spec = _project(tmp_path, text)
    try:
        load_spec(spec)
    except SpecError as caught:
        errors = [d for d in caught.diagnostics if d.severity == "error"]
        assert errors and all(d.span is not None and d.span.line > 0 for d in errors)
        line = int(_at(text, before + column + typo).split(":")[0])
        assert any(d.span is not None and d.span.line == line for d in errors), errors
    else:
        pytest.fail(f"'{column}{typo}' is not a column, yet the spec validated")


def test_csv_kinds_follow_pandas_not_the_sniffer(tmp_path: Path) -> None:
    """pandas reads 'inf' as a number, which DuckDB's sniffer takes for text: an `impute`
    on such a column is no type error."""
    spec = _project(
        tmp_path,
        "name: typed\nsources:\n  weather: {path: data/weather.csv}\n"
        "features:\n  t: {impute: {column: temp, strategy: median}}\n"
        "models:\n  m: {task: regression, data: weather, target: humid, features: [t]}\n",
    )
    lines = (tmp_path / "data" / "weather.csv").read_text().splitlines()
    column = lines[0].split(",").index("temp")
    for number in range(1, 41):
        cells = lines[number].split(",")
        cells[column] = "inf"
        lines[number] = ",".join(cells)
    (tmp_path / "data" / "weather.csv").write_text("\n".join(lines) + "\n")
    load_spec(spec)


# ---- targets by type -----------------------------------------------------------------------

CREDIT = "id,balance,income,student,default\n" + "".join(
    f"{i},{(i * 37) % 2500}.5,{20000 + (i * 131) % 40000},{'Yes' if i % 3 else 'No'},"
    f"{'Yes' if i % 10 == 0 else 'No'}\n"
    for i in range(1, 301)
)


def _credit(tmp: Path, model: str) -> tuple[Path, str]:
    """A credit-default table with Yes/No text, and a spec with the given model."""
    (tmp / "data").mkdir(exist_ok=True)
    (tmp / "data" / "credit.csv").write_text(CREDIT, encoding="utf-8")
    text = "name: credit\nsources:\n  raw: {path: data/credit.csv}\nmodels:\n  m:\n" + model
    spec = tmp / "mlcompile.yaml"
    spec.write_text(text, encoding="utf-8")
    return spec, text


def test_a_binary_model_on_a_text_target_needs_its_positive_class(tmp_path: Path) -> None:
    model = (
        "    task: binary\n    data: raw\n    target: default\n    features: [balance, income]\n"
    )
    spec, text = _credit(tmp_path, model)
    [error] = _errors(spec)
    assert (error.code, f"{error.span.line}:{error.span.column}") == ("E312", _at(text, "default"))
    assert error.hint == "add positive_class to model 'm', e.g. positive_class: \"Yes\""
    spec.write_text(text + '    positive_class: "Yes"\n', encoding="utf-8")
    loaded = load_spec(spec)
    assert loaded.resolved.spec.models["m"].positive_class == "Yes"


def test_a_text_positive_class_on_a_numeric_target_is_refused(tmp_path: Path) -> None:
    model = (
        "    task: binary\n    data: training\n    target: late\n    features: [distance]\n"
        "    positive_class: '1'\n"
    )
    text = "name: typed\n" + SOURCES + "models:\n  m:\n" + model
    _the_one_error(tmp_path, text, "E312", "'1'", "write it without quotes: 1")


def test_positive_class_is_for_binary_models_only(tmp_path: Path) -> None:
    model = (
        "    task: regression\n    data: raw\n    target: balance\n    features: [income]\n"
        "    positive_class: 'Yes'\n"
    )
    spec, text = _credit(tmp_path, model)
    at_model = _at(text, "task: regression").split(":")[0]  # the model's mapping
    [error] = _errors(spec)
    assert error.code.startswith("E2") and "'positive_class' applies to binary models" in (
        error.message
    )
    assert error.span is not None and str(error.span.line) == at_model


def test_a_regression_on_a_text_target_is_refused(tmp_path: Path) -> None:
    model = "    task: regression\n    data: raw\n    target: student\n    features: [balance]\n"
    spec, text = _credit(tmp_path, model)
    [error] = _errors(spec)
    assert (error.code, f"{error.span.line}:{error.span.column}") == ("E312", _at(text, "student"))
    assert error.hint == "use task: binary or multiclass, or a numeric column"


# ---- SQL errors inside the block -----------------------------------------------------------

BLOCK_CASES = {
    "a misspelled column on the block's third line": (
        "  late:\n    sql: |\n      SELECT origin, dep_delay\n      FROM flights\n"
        "      WHERE dep_dely > 60\n",
        "E311",
        "dep_dely >",
        "did you mean 'dep_delay'?",
    ),
    "a misspelled table in a block": (
        "  late:\n    sql: |\n      SELECT origin, dep_delay\n      FROM raws\n",
        "E301",
        "raws",
        "did you mean 'raw'?",
    ),
    "a syntax error in a block": (
        "  late:\n    sql: |\n      SELECT origin,\n        CASE WHEN dep_delay > 15 THEN 1 ELS 0 END\n"
        "      FROM flights\n",
        "E311",
        "ELS 0 END",
        None,
    ),
}


@pytest.mark.parametrize("case", list(BLOCK_CASES))
def test_a_sql_error_is_located_inside_the_block(tmp_path: Path, case: str) -> None:
    source, code, needle, hint = BLOCK_CASES[case]
    text = "name: typed\nsources:\n  raw: {path: data/flights.parquet}\n" + source.replace(
        "FROM flights", "FROM raw"
    )
    _the_one_error(tmp_path, text, code, needle, hint)


def test_an_expression_error_is_located_inside_the_expression(tmp_path: Path) -> None:
    features = FEATURES.replace(
        '  dep_hour: {expr: "sched_dep_time // 100"}\n',
        "  dep_hour:\n    expr: |\n      CASE WHEN sched_dep_time > 1200\n"
        "      THEN sched_dep_tim // 100 ELSE 0 END\n",
    )
    text = "name: typed\n" + SOURCES + features + MODEL
    [error] = _errors(_project(tmp_path, text))
    assert (error.code, f"{error.span.line}:{error.span.column}") == (
        "E311",
        _at(text, "sched_dep_tim //"),
    )
    assert error.hint == "did you mean 'sched_dep_time'?"
    syntax = features.replace("THEN sched_dep_tim", "THEN sched_dep_time").replace(
        "ELSE 0 END", "ELS 0 END"
    )
    text = "name: typed\n" + SOURCES + syntax + MODEL
    [error] = _errors(_project(tmp_path, text))
    assert (error.code, f"{error.span.line}:{error.span.column}") == ("E310", _at(text, "ELS 0"))


# ---- feature selectors ---------------------------------------------------------------------


def _plan_json(spec: Path) -> str:
    from mlcompile.compiler import compile_spec

    return compile_spec(spec, []).plan.to_json()


def test_a_selector_compiles_to_the_plan_of_the_list_written_out(tmp_path: Path) -> None:
    def spec(features: str) -> Path:
        folder = tmp_path / str(abs(hash(features)))
        folder.mkdir()
        return _project(
            folder,
            "name: typed\nsources:\n  weather: {path: data/weather.csv}\n"
            "features:\n  wind: {impute: wind_speed}\n"
            "models:\n  m:\n    task: regression\n    data: weather\n    target: temp\n"
            f"    features: {features}\n",
        )

    header = (DATA / "weather.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    left_out = {"origin", "time_hour", "temp"}
    written = ["wind", *[c for c in header if c not in left_out]]
    explicit = _plan_json(spec(json.dumps(written)))
    selected = _plan_json(spec("[wind, {all_except: [origin, time_hour]}]"))
    assert selected == explicit
    w_columns = [c for c in header if c.startswith("w")]
    assert _plan_json(spec("['w*']")) == _plan_json(spec(json.dumps(w_columns)))


def test_a_selector_that_selects_nothing_is_located(tmp_path: Path) -> None:
    text = (
        "name: typed\nsources:\n  weather: {path: data/weather.csv}\n"
        "models:\n  m:\n    task: regression\n    data: weather\n    target: temp\n"
        "    features: [humid, 'X*', {all_except: [orign]}]\n"
    )
    errors = _errors(_project(tmp_path, text))
    got = {(e.code, f"{e.span.line}:{e.span.column}" if e.span else "", e.hint) for e in errors}
    assert got == {
        ("E316", _at(text, "'X*'"), "patterns match column names case-sensitively"),
        ("E301", _at(text, "orign"), "did you mean 'origin'?"),
    }
