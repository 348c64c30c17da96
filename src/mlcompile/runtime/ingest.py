"""Reading sources: CSV and Parquet files, and DuckDB SQL over other sources.

SQL comes from a spec, so it runs in a sandbox: a fresh in-memory DuckDB that sees only the
registered tables and may not touch the file system, the network or its own configuration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa

from mlcompile import csvformat
from mlcompile.errors import DataValidationError, StepError, UsageError

FORMATS = ("csv", "parquet")


def load_file(
    path: Path, fmt: str, source: str, csv: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """One file as a DataFrame; `source` names the spec's source in error messages and
    `csv` holds the spec's CSV read options (csvformat)."""
    if fmt not in FORMATS:
        raise UsageError(f"source '{source}': unknown format '{fmt}' (use csv or parquet)")
    if not path.is_file():
        raise StepError(f"source '{source}': file not found: {path}")
    if path.stat().st_size == 0:
        raise DataValidationError(f"source '{source}': the file {path.name} is empty (0 bytes)")
    try:
        if fmt == "csv":
            df = _read_csv(path, path.name, csv or {}, source)
        else:
            import pyarrow.parquet as pq

            _refuse_duplicate_columns(list(pq.read_schema(path).names), path.name, source)
            df = pd.read_parquet(path)
    except (ValueError, pa.ArrowException, OSError) as exc:
        # pyarrow's invalid-file errors are ValueError subclasses.
        raise StepError(f"source '{source}': cannot read {fmt} file {path}: {exc}") from None
    return _refuse_no_rows(df, path.name, source)


def load_uri(
    uri: str, fmt: str, source: str, csv: Mapping[str, Any] | None = None
) -> tuple[pd.DataFrame, str]:
    """A source in object storage as a DataFrame, with the sha256 of the bytes read."""
    import io
    import tempfile

    from mlcompile import uris

    if fmt not in FORMATS:
        raise UsageError(f"source '{source}': unknown format '{fmt}' (use csv or parquet)")
    try:
        data, digest = uris.read_bytes(uri)
    except (OSError, ImportError, ValueError) as exc:
        raise StepError(f"source '{source}': cannot read {uri}: {exc}") from None
    if not data:
        raise DataValidationError(f"source '{source}': the object {uri} is empty (0 bytes)")
    try:
        if fmt == "csv":
            # DuckDB checks the rows' shape in a file: the bytes are one, briefly
            with tempfile.TemporaryDirectory() as folder:
                local = Path(folder) / "object.csv"
                local.write_bytes(data)
                df = _read_csv(local, uri, csv or {}, source)
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(io.BytesIO(data))
            _refuse_duplicate_columns(list(table.schema.names), uri, source)
            df = table.to_pandas()
    except (ValueError, pa.ArrowException) as exc:
        raise StepError(f"source '{source}': cannot read {fmt} object {uri}: {exc}") from None
    return _refuse_no_rows(df, uri, source), digest


def _read_csv(path: Path, shown: str, options: Mapping[str, Any], source: str) -> pd.DataFrame:
    """pandas' read with the spec's options, once the header and the rows' shape are
    checked; what pandas still refuses then is a value (the declared dtype's or the
    encoding's). `shown` names the file in messages."""
    try:
        header = pd.read_csv(path, **csvformat.header_kwargs(options))
    except UnicodeDecodeError as exc:
        raise DataValidationError(
            f"source '{source}': {shown} is not {options.get('encoding') or 'utf-8'} text: "
            f"{exc} (set the source's csv.encoding)"
        ) from None
    names = [str(name) for name in header.iloc[0].tolist()] if len(header) else []
    _refuse_duplicate_columns(names, shown, source)
    _refuse_ragged_rows(path, shown, names, options, source)
    try:
        return pd.read_csv(path, **csvformat.pandas_kwargs(options))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = (
            "set the source's csv.encoding"
            if isinstance(exc, UnicodeDecodeError)
            else "fix the value, or change the column's entry under csv.dtypes"
        )
        raise DataValidationError(
            f"source '{source}': {shown} cannot be read: {first} ({hint})"
        ) from None


# DuckDB's words for a row that does not have the header's shape.
_ROW_ERROR = re.compile(r"CSV Error on Line: (\d+)")
_FIELDS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _refuse_ragged_rows(
    path: Path, shown: str, names: list[str], options: Mapping[str, Any], source: str
) -> None:
    """A row with too many or too few fields, or a quote never closed, is refused with its
    line number. pandas would fill a short row up with missing values, and each of them
    would come back as a failure of some column's check instead."""
    call, params = csvformat.duckdb_read(
        options, ", all_varchar = true, auto_detect = false, columns = $columns"
    )
    columns = {name: "VARCHAR" for name in names}
    con = duckdb.connect(":memory:")
    try:
        con.execute(
            f"SELECT count(*) FROM {call}", {**params, "path": str(path), "columns": columns}
        )
    except duckdb.Error as exc:
        text = str(exc)
        line = _ROW_ERROR.search(text) if isinstance(exc, duckdb.InvalidInputException) else None
        if line is None:
            return  # not about a row's shape: pandas' read reports it in its own words
        fields = _FIELDS.search(text)
        if fields:
            expected, found = int(fields[1]), int(fields[2])
            what = f"has {found} field{'s' if found != 1 else ''}; the header has {expected}"
            kind = "a truncated row" if found < expected else "a row with extra fields"
        elif "unterminated quote" in text:
            what, kind = (
                "opens a quoted value that is never closed",
                "a truncated file, or a stray quote",
            )
        else:
            what, kind = text.splitlines()[0].removeprefix("Invalid Input Error: "), "a bad row"
        raise DataValidationError(
            f"source '{source}': {shown} line {line[1]} {what} ({kind}; check the "
            f"delimiter {csvformat.delimiter(options)!r} and the quoting)"
        ) from None
    finally:
        con.close()


def _refuse_no_rows(df: pd.DataFrame, shown: str, source: str) -> pd.DataFrame:
    if df.empty:
        raise DataValidationError(
            f"source '{source}': {shown} has no rows"
            + (
                f" (only the header: {', '.join(map(str, df.columns[:10]))})"
                if len(df.columns)
                else ""
            )
        )
    return df


def _refuse_duplicate_columns(names: list[str], shown: str, source: str) -> None:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        listed = ", ".join(f"'{name}' ({names.count(name)} times)" for name in repeated[:10])
        raise DataValidationError(
            f"source '{source}': {shown} has repeated column names: {listed}; each column "
            "must have its own name, or a model may read the wrong one"
        )


def sample_rows(df: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most `rows` rows, drawn with `seed`, in their original order."""
    if len(df) <= rows:
        return df
    chosen = np.sort(np.random.default_rng(seed).choice(len(df), size=rows, replace=False))
    return df.iloc[chosen].reset_index(drop=True)


def isolated_connection(tables: Mapping[str, pd.DataFrame]) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that sees `tables` and nothing else, locked before any user SQL."""
    con = duckdb.connect(":memory:")
    # One thread keeps the row order of un-ORDERed queries stable, so the same inputs give the
    # same dataset bytes; replacement scans would let SQL read any DataFrame in Python scope.
    con.execute("SET threads = 1")
    con.execute("SET python_enable_replacements = false")
    for name, frame in tables.items():
        con.register(name, frame)
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


# PIVOT parses as a statement that expands into several; it is still one query.
QUERY_TYPES = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.MULTI})


def run_sql(sql: str, tables: Mapping[str, pd.DataFrame], source: str) -> pd.DataFrame:
    """The result of one DuckDB query over `tables`, each registered under its source name."""
    con = isolated_connection(tables)
    try:
        statements = duckdb.extract_statements(sql)
        if len(statements) != 1 or statements[0].type not in QUERY_TYPES:
            raise StepError(f"source '{source}': the SQL must be a single query (SELECT ...)")
        return con.sql(sql).df()
    except duckdb.Error as exc:
        raise StepError(f"source '{source}': SQL failed: {exc}") from None
    finally:
        con.close()
