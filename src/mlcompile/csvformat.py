"""How a CSV file is read: one definition of the read options, for both readers.

`ingest` reads a CSV with pandas; `validate` types a bounded prefix of it with DuckDB and
`ingest` checks its structure (every row with as many fields as the header) with DuckDB as
well. Both readers get their arguments from here, from the same spec options, so that the
columns and kinds `validate` sees are the ones a run gets.

Stdlib only: the spec, the plan and the runtime all import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The logical dtypes a schema column and a CSV `dtypes` entry may name.
DTYPES = ("int", "float", "str", "bool", "datetime", "category")
# The encodings both readers know: DuckDB reads cp1252 text as latin-1, which splits rows
# and fields the same way (they differ only in printable characters).
ENCODINGS = {"utf-8": "utf-8", "utf-16": "utf-16", "latin-1": "latin-1", "cp1252": "latin-1"}
# pandas' default missing-value markers (pandas.io.parsers.STR_NA_VALUES), so a column
# pandas reads as numbers with gaps is numeric to DuckDB too.
PANDAS_NA = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
    "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip
# What each `dtypes` entry reads as: pandas' dtype (None: parsed as a date) and DuckDB's.
_PANDAS_DTYPE = {
    "int": "Int64",
    "float": "float64",
    "str": "str",
    "bool": "boolean",
    "datetime": None,
    "category": "category",
}
SQL_DTYPE = {
    "int": "BIGINT",
    "float": "DOUBLE",
    "str": "VARCHAR",
    "bool": "BOOLEAN",
    "datetime": "TIMESTAMP",
    "category": "VARCHAR",
}


def delimiter(options: Mapping[str, Any]) -> str:
    return str(options.get("delimiter") or ",")


def na_values(options: Mapping[str, Any]) -> list[str]:
    """pandas' own markers and the spec's: the spec's add to them, as in pandas."""
    extra = [str(v) for v in options.get("na_values") or []]
    return [*PANDAS_NA, *(v for v in extra if v not in PANDAS_NA)]


def dtypes(options: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (options.get("dtypes") or {}).items()}


def pandas_kwargs(options: Mapping[str, Any]) -> dict[str, Any]:
    """`pandas.read_csv` keyword arguments; none when the spec sets no option, so a plain
    CSV is read exactly as before."""
    kwargs: dict[str, Any] = {}
    if options.get("delimiter"):
        kwargs["sep"] = delimiter(options)
    if options.get("na_values"):
        kwargs["na_values"] = [str(v) for v in options["na_values"]]
    if options.get("encoding"):
        kwargs["encoding"] = str(options["encoding"])
    declared = dtypes(options)
    typed = {c: _PANDAS_DTYPE[d] for c, d in declared.items() if _PANDAS_DTYPE[d] is not None}
    if typed:
        kwargs["dtype"] = typed
    dates = [c for c, d in declared.items() if d == "datetime"]
    if dates:
        kwargs["parse_dates"] = dates
    return kwargs


def header_kwargs(options: Mapping[str, Any]) -> dict[str, Any]:
    """`pandas.read_csv` arguments that read the header row as text, as it is written."""
    kwargs = {k: v for k, v in pandas_kwargs(options).items() if k in ("sep", "encoding")}
    return {**kwargs, "header": None, "nrows": 1, "dtype": str, "keep_default_na": False}


def duckdb_read(options: Mapping[str, Any], extra: str = "") -> tuple[str, dict[str, Any]]:
    """A DuckDB `read_csv(...)` call reading the file at `$path` as pandas would, and its
    parameters. pandas' defaults: a header row, double quotes doubled to escape them; a
    row pandas would refuse, or fill up with missing values, DuckDB refuses (strict mode)."""
    encoding = ENCODINGS.get(str(options.get("encoding") or "utf-8"), "utf-8")
    call = (
        "read_csv($path, header = true, delim = $delim, quote = '\"', escape = '\"', "
        f"nullstr = $na, encoding = $encoding, strict_mode = true{extra})"
    )
    params = {"delim": delimiter(options), "na": na_values(options), "encoding": encoding}
    return call, params
