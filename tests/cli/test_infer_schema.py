"""infer-schema on the flights example's real CSV and SQL sources: the starting schema it
prints, the pandera file it writes, and its errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import yaml
from click.testing import Result

from mlcompile.runtime.ingest import run_sql
from mlcompile.spec import load_spec

Cli = Callable[..., Result]


def test_the_schema_of_a_csv_source(
    cli: Cli, flights_project: Path, golden: Callable[[str, str], None]
) -> None:
    result = cli("infer-schema", flights_project / "mlcompile.yaml", "weather")
    assert result.exit_code == 0, result.output
    golden("infer_schema/weather.yaml", result.stdout)
    again = cli("infer-schema", flights_project / "mlcompile.yaml", "weather")
    assert again.stdout == result.stdout  # the same data, the same schema
    columns = yaml.safe_load(result.stdout)["schemas"]["weather"]["columns"]
    assert columns["origin"] == {"dtype": "str", "isin": ["EWR", "JFK", "LGA"]}
    assert columns["temp"]["nullable"] is True


def test_the_printed_schema_is_one_the_data_passes(cli: Cli, flights_project: Path) -> None:
    """Pasted into a spec, the schema validates, and the data passes its checks."""
    from mlcompile.compiler import compile_spec
    from mlcompile.plan import StepKind
    from mlcompile.runtime.validate import validate_frame

    printed = cli("infer-schema", flights_project / "mlcompile.yaml", "weather").stdout
    spec = flights_project / "pasted.yaml"
    spec.write_text(
        "name: pasted\nsources:\n  weather: {path: data/weather.csv, schema: weather}\n" + printed,
        encoding="utf-8",
    )
    [node] = [n for n in compile_spec(spec, []).plan.nodes if n.kind is StepKind.VALIDATE]
    frame = pd.read_csv(flights_project / "data" / "weather.csv")
    _, report = validate_frame(frame, node.params["schema"], "weather", "fail", flights_project)
    assert report["passed"] is True, report["failures"]


def test_a_pandera_file_of_a_sql_source_passes_its_data(
    cli: Cli, flights_project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "outcomes.yaml"
    spec = flights_project / "mlcompile.yaml"
    result = cli("infer-schema", spec, "december_outcomes", "--pandera", "--out", out)
    assert result.exit_code == 0, result.output
    schema = pa.DataFrameSchema.from_yaml(out.read_text(encoding="utf-8"))
    assert list(schema.columns) == ["month", "day", "carrier", "flight", "is_delayed"]
    assert schema.columns["day"].checks  # the range observed on the data
    december = pd.read_parquet(flights_project / "data" / "flights_december.parquet")
    sql = load_spec(spec).resolved.spec.sources["december_outcomes"].sql
    assert sql is not None
    schema.validate(run_sql(sql, {"december_flights": december}, "december_outcomes"))


def test_an_unknown_source_is_named_with_the_closest_one(cli: Cli, flights_project: Path) -> None:
    result = cli("infer-schema", flights_project / "mlcompile.yaml", "wether")
    assert result.exit_code == 2
    assert "'wether' is neither a source of the spec nor a CSV or Parquet file" in result.output
    assert "did you mean 'weather'?" in result.output
    assert "Traceback" not in result.output
