"""Reading sources: CSV and Parquet files, and DuckDB SQL over other sources.

SQL comes from a spec, so it runs in a sandbox: a fresh in-memory DuckDB that sees only the
registered tables and may not touch the file system, the network or its own configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa

from mlcompile.errors import DataValidationError, StepError, UsageError

FORMATS = ("csv", "parquet")


def load_file(path: Path, fmt: str, source: str) -> pd.DataFrame:
    """One file as a DataFrame; `source` names the spec's source in error messages."""
    if fmt not in FORMATS:
        raise UsageError(f"source '{source}': unknown format '{fmt}' (use csv or parquet)")
    if not path.is_file():
        raise StepError(f"source '{source}': file not found: {path}")
    if path.stat().st_size == 0:
        raise StepError(f"source '{source}': the file {path.name} is empty")
    try:
        _refuse_duplicate_columns(_column_names(path, fmt), path, source)
        if fmt == "csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except (ValueError, UnicodeDecodeError, pa.ArrowException, OSError) as exc:
        # pandas' parser errors and pyarrow's invalid-file errors are ValueError subclasses.
        raise StepError(f"source '{source}': cannot read {fmt} file {path}: {exc}") from None


def load_uri(uri: str, fmt: str, source: str) -> tuple[pd.DataFrame, str]:
    """A source in object storage as a DataFrame, with the sha256 of the bytes read."""
    import io

    from mlcompile import uris

    if fmt not in FORMATS:
        raise UsageError(f"source '{source}': unknown format '{fmt}' (use csv or parquet)")
    try:
        data, digest = uris.read_bytes(uri)
    except (OSError, ImportError, ValueError) as exc:
        raise StepError(f"source '{source}': cannot read {uri}: {exc}") from None
    if not data:
        raise StepError(f"source '{source}': the object {uri} is empty")
    try:
        if fmt == "csv":
            header = pd.read_csv(io.BytesIO(data), header=None, nrows=1, dtype=str)
            names = [str(name) for name in header.iloc[0].tolist()] if len(header) else []
            _refuse_duplicate_columns(names, Path(uri), source)
            return pd.read_csv(io.BytesIO(data)), digest
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        _refuse_duplicate_columns(list(table.schema.names), Path(uri), source)
        return table.to_pandas(), digest
    except (ValueError, UnicodeDecodeError, pa.ArrowException) as exc:
        raise StepError(f"source '{source}': cannot read {fmt} object {uri}: {exc}") from None


def _column_names(path: Path, fmt: str) -> list[str]:
    """The column names as the file writes them: pandas renames a repeated CSV header
    ('seats', 'seats.1'), and pyarrow refuses to read a repeated Parquet name."""
    if fmt == "csv":
        header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
        return [str(name) for name in header.iloc[0].tolist()] if len(header) else []
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


def _refuse_duplicate_columns(names: list[str], path: Path, source: str) -> None:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        shown = ", ".join(f"'{name}' ({names.count(name)} times)" for name in repeated[:10])
        raise DataValidationError(
            f"source '{source}': {path.name} has repeated column names: {shown}; each column "
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
