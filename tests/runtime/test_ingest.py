from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from mlcompile.errors import DataValidationError, StepError, UsageError
from mlcompile.runtime.ingest import isolated_connection, load_file, run_sql, sample_rows

from .helpers import nycflights_dir


def test_load_csv_and_parquet(tmp_path: Path, flights: pd.DataFrame) -> None:
    airlines = load_file(nycflights_dir() / "airlines.csv", "csv", "airlines")
    assert list(airlines.columns) == ["carrier", "name"]
    assert "UA" in set(airlines["carrier"])
    flights.head(100).to_parquet(tmp_path / "f.parquet", index=False)
    back = load_file(tmp_path / "f.parquet", "parquet", "flights")
    pd.testing.assert_frame_equal(back, flights.head(100))


def test_file_errors_name_the_source(tmp_path: Path) -> None:
    with pytest.raises(StepError, match="source 'planes': file not found"):
        load_file(tmp_path / "missing.csv", "csv", "planes")
    (tmp_path / "bad.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(StepError, match="source 'planes': cannot read parquet file"):
        load_file(tmp_path / "bad.parquet", "parquet", "planes")
    (tmp_path / "empty.csv").write_text("")
    # no rows is the data's failure (exit 3), not the step's
    with pytest.raises(DataValidationError, match=r"source 'planes': the file empty\.csv is empty"):
        load_file(tmp_path / "empty.csv", "csv", "planes")
    with pytest.raises(UsageError, match="unknown format 'xlsx'"):
        load_file(tmp_path / "bad.parquet", "xlsx", "planes")


def test_sql_joins_flights_and_weather(flights: pd.DataFrame, weather: pd.DataFrame) -> None:
    sql = """
        SELECT f.flight, f.origin, f.time_hour, f.dep_delay, w.temp, w.wind_speed
        FROM flights f JOIN weather w USING (origin, time_hour)
        WHERE f.origin = 'JFK'
    """
    joined = run_sql(sql, {"flights": flights, "weather": weather}, "flights_weather")
    assert set(joined["origin"]) == {"JFK"}
    assert len(joined) > 1000
    # Every joined row carries the temperature measured at that airport in that hour.
    expected = weather.set_index(["origin", "time_hour"])["temp"]
    looked_up = expected.loc[list(zip(joined["origin"], joined["time_hour"], strict=True))]
    assert joined["temp"].tolist() == pytest.approx(looked_up.tolist(), nan_ok=True)


def test_sql_result_order_is_reproducible(flights: pd.DataFrame, weather: pd.DataFrame) -> None:
    sql = "SELECT * FROM flights LEFT JOIN weather USING (origin, time_hour)"
    tables = {"flights": flights.head(3000), "weather": weather}
    pd.testing.assert_frame_equal(run_sql(sql, tables, "j"), run_sql(sql, tables, "j"))


def test_sql_cannot_read_files() -> None:
    with pytest.raises(StepError, match=r"source 'evil': SQL failed: .*disabled by configuration"):
        run_sql("SELECT * FROM read_csv('/etc/passwd')", {}, "evil")
    with pytest.raises(StepError, match="source 'evil': SQL failed"):
        run_sql("SELECT * FROM '/etc/passwd'", {}, "evil")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_parquet('/etc/passwd') UNION ALL SELECT 1",
        "SELECT 1; COPY (SELECT 1) TO '/tmp/mlcompile-leak.csv'",
        "COPY (SELECT 1) TO '/tmp/mlcompile-leak.csv'",
        "ATTACH '/tmp/mlcompile-leak.db'",
        "INSTALL httpfs",
    ],
)
def test_sql_cannot_write_files_or_load_extensions(sql: str) -> None:
    with pytest.raises(StepError, match="source 'evil': "):
        run_sql(sql, {}, "evil")
    assert not Path("/tmp/mlcompile-leak.csv").exists()
    assert not Path("/tmp/mlcompile-leak.db").exists()


def test_the_sandbox_cannot_be_unlocked() -> None:
    with pytest.raises(StepError, match="must be a single query"):
        run_sql("SET enable_external_access = true", {}, "evil")
    con = isolated_connection({})
    with pytest.raises(duckdb.Error, match="configuration has been locked"):
        con.execute("SET enable_external_access = true")
    con.close()


def test_sql_sees_only_the_registered_tables(flights: pd.DataFrame) -> None:
    secret = pd.DataFrame({"password": ["hunter2"]})  # noqa: F841 - a DataFrame in scope
    with pytest.raises(StepError, match="Table with name secret does not exist"):
        run_sql("SELECT * FROM secret", {"flights": flights}, "nosy")


def test_sql_errors_carry_duckdb_message(flights: pd.DataFrame) -> None:
    with pytest.raises(StepError, match=r"source 'q': SQL failed: .*no_such_column"):
        run_sql("SELECT no_such_column FROM flights", {"flights": flights}, "q")
    with pytest.raises(StepError, match="must be a single query"):
        run_sql("CREATE TABLE t AS SELECT 1 AS x", {}, "q")
    with pytest.raises(StepError, match="source 'q': SQL failed: Parser Error"):
        run_sql("SELEC 1", {}, "q")


def test_sample_rows_is_seeded_and_keeps_file_order(flights: pd.DataFrame) -> None:
    flights = flights.assign(position=range(len(flights)))
    sample = sample_rows(flights, 500, seed=4)
    assert len(sample) == 500
    assert sample["position"].is_monotonic_increasing
    pd.testing.assert_frame_equal(sample, sample_rows(flights, 500, seed=4))
    assert not sample.equals(sample_rows(flights, 500, seed=5))
    assert sample_rows(flights.head(10), 500, seed=4).equals(flights.head(10))


def test_repeated_csv_header_names_are_a_data_failure(tmp_path: Path) -> None:
    """pandas would read the second 'seats' as 'seats.1', and a model using 'seats' would
    train on whichever column came first: the file is refused, naming the column."""
    planes = (nycflights_dir() / "planes.csv").read_text().splitlines()
    header = planes[0].split(",")
    assert "seats" in header and "engines" in header
    header[header.index("engines")] = "seats"
    path = tmp_path / "planes.csv"
    path.write_text("\n".join([",".join(header), *planes[1:200]]) + "\n")
    with pytest.raises(
        DataValidationError,
        match=r"source 'planes': planes\.csv has repeated column names: 'seats' \(2 times\)",
    ):
        load_file(path, "csv", "planes")


def test_repeated_parquet_column_names_are_a_data_failure(
    tmp_path: Path, flights: pd.DataFrame
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(flights.head(100)[["origin", "dest", "distance"]])
    table = table.rename_columns(["origin", "origin", "distance"])
    pq.write_table(table, tmp_path / "f.parquet")
    with pytest.raises(
        DataValidationError, match=r"f\.parquet has repeated column names: 'origin' \(2 times\)"
    ):
        load_file(tmp_path / "f.parquet", "parquet", "flights")
