"""Static table types of sources: what `validate` knows of the data without loading it.

A type is, per column in file order, its DuckDB type name (None when unknown) and its
logical kind (`featureops.Kind`). Parquet files give theirs in the footer; CSV files from a
bounded prefix, read with pandas' own missing-value markers so that the kinds are the ones
`ingest` (pandas' `read_csv`) ends up with. DuckDB reads both, binding a read without
running it; SQL
sources by binding the query with DuckDB over empty tables of their inputs' types, which
plans it without running it.

Every answer is cached under `.mlcompile/cache/tables/`, keyed by the file's identity
(path, size, modification time, inode) or by the SQL text and its inputs' types, so an
unchanged project validates without importing duckdb. Without a cache, the spec's plain
file sources are typed in a thread while pydantic validates the spec (`type_ahead`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcompile import __version__, csvformat
from mlcompile.expressions import engine, sandbox
from mlcompile.featureops import Kind

CACHE_DIR = Path(".mlcompile") / "cache" / "tables"
# DuckDB's sniffer reads this many rows of a CSV for its header and the kinds of its
# columns; no file is read whole.
CSV_SAMPLE_ROWS = 20_480
# The text pandas' read_csv reads as booleans (its default true_values and false_values).
PANDAS_BOOLEANS = "('True', 'TRUE', 'true', 'False', 'FALSE', 'false')"

Column = tuple[str | None, Kind]  # (DuckDB type, logical kind)
TableType = dict[str, Column]


@dataclass(frozen=True)
class Bound:
    """A SQL source's type, or DuckDB's reason it does not bind."""

    table: TableType | None
    problem: str | None = None
    kind: str | None = None  # DuckDB's error class: Parser, Catalog, Binder, ...
    position: int | None = None  # where in the SQL text DuckDB stopped, when it says


def kind_of(sql_type: str | None) -> Kind:
    if sql_type is None:
        return Kind.UNKNOWN
    name = sql_type.upper()
    if name == "BOOLEAN":
        return Kind.BOOLEAN
    if any(t in name for t in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL", "NUMERIC")):
        return Kind.NUMERIC
    if any(t in name for t in ("TIMESTAMP", "DATE", "TIME")):
        return Kind.TEMPORAL
    if name in ("VARCHAR", "ENUM") or name.startswith("ENUM("):
        return Kind.STRING
    return Kind.UNKNOWN


# ---- DuckDB ------------------------------------------------------------------------------

_LOCAL = threading.local()


def _reader() -> Any:
    """This thread's DuckDB connection for reading the project's files. Opening one costs
    30 ms, more than typing a source does, so a process keeps one per thread. SQL from the
    spec is bound elsewhere, on a connection that reads no file (`expressions.sandbox`)."""
    con = getattr(_LOCAL, "reader", None)
    if con is None:
        con = _LOCAL.reader = engine().connect(":memory:")
    return con


# ---- the cache ---------------------------------------------------------------------------


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps([__version__, *parts], default=str).encode()).hexdigest()


def _load(root: Path, key: str) -> Any:
    with contextlib.suppress(OSError, ValueError):
        return json.loads((root / CACHE_DIR / f"{key}.json").read_text(encoding="utf-8"))
    return None


def _store(root: Path, key: str, entry: Any) -> None:
    folder = root / CACHE_DIR
    with contextlib.suppress(OSError):  # best effort: a read-only project infers every time
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.{os.getpid()}"
        tmp.write_text(json.dumps(entry, sort_keys=True), encoding="utf-8")
        os.replace(tmp, folder / f"{key}.json")


def _as_table(entry: Any) -> TableType | None:
    if entry is None:
        return None
    return {name: (sql, Kind(kind)) for name, sql, kind in entry}


def _as_entry(table: TableType | None) -> Any:
    return None if table is None else [[n, sql, kind.value] for n, (sql, kind) in table.items()]


# ---- files --------------------------------------------------------------------------------


def file_type(
    root: Path, path: Path, fmt: str, csv: Mapping[str, Any] | None = None
) -> TableType | None:
    """The file's table type, or None when it cannot be read (the run reports why). `csv`:
    the source's CSV read options, as `ingest` gets them."""
    _typed_ahead()
    found = _identity(path, fmt, csv)
    if found is None:
        return None
    key, size = found
    cached = _load(root, key)
    if cached is not None:
        return _as_table(cached["table"])
    if size == 0:
        return None
    return _type_file(root, key, path, fmt, csv)


def _identity(path: Path, fmt: str, csv: Mapping[str, Any] | None) -> tuple[str, int] | None:
    """The file's cache key as it is now, and its size; None when it cannot be read."""
    try:
        stat = path.stat()
    except OSError:
        return None
    identity = (str(path.resolve()), fmt, stat.st_size, stat.st_mtime_ns, stat.st_ino)
    return _key("file/3", *identity, dict(csv or {})), stat.st_size


def _type_file(
    root: Path, key: str, path: Path, fmt: str, csv: Mapping[str, Any] | None
) -> TableType | None:
    options = dict(csv or {})
    try:
        table = _read(path, fmt, options)
    except Exception:  # any unreadable file: a run gives the reader's own error
        table = None
    _store(root, key, {"table": _as_entry(table)})
    return table


# ---- typing ahead ------------------------------------------------------------------------

FILE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_AHEAD: list[threading.Thread] = []
_AHEAD_LOCK = threading.Lock()


def type_ahead(root: Path, data: dict[str, Any]) -> None:
    """Start typing the spec's file sources in a thread while the spec is validated: DuckDB
    opens connections and reads files without holding the GIL, so its part of a cold
    `validate` overlaps pydantic's. `data` is the composed spec, not yet validated: only
    files inside the project `root`, with no `format` or `csv` options and not in the cache,
    are typed ahead, each as the typed pass types it (`file_type` waits for the thread,
    then finds the answer in the cache)."""
    root = root.resolve()
    files = []
    for path, fmt in _plain_files(root, data.get("sources")):
        found = _identity(path, fmt, None)
        if found is not None and found[1] > 0 and _load(root, found[0]) is None:
            files.append((path, fmt, found[0]))
    if not files:
        return
    # imported here, not in the thread: importing is Python work, which holds the GIL and
    # would only take turns with pydantic's import; DuckDB's own work, which overlaps it,
    # then starts as soon as it can
    engine()
    thread = threading.Thread(
        target=_type_all, args=(root, files, _binds_sql(data)), name="mlcompile-type-ahead"
    )
    with _AHEAD_LOCK:
        _AHEAD.append(thread)
    thread.start()


def _binds_sql(data: dict[str, Any]) -> bool:
    """Whether the typed pass will bind SQL: a SQL source, or an `expr` feature."""
    sections = [data.get("sources"), data.get("features")]
    entries = [e for s in sections if isinstance(s, dict) for e in s.values()]
    return any(isinstance(e, dict) and e.keys() & {"sql", "expr"} for e in entries)


def _plain_files(root: Path, sources: Any) -> list[tuple[Path, str]]:
    from mlcompile.uris import is_uri

    found = []
    for source in (sources or {}).values() if isinstance(sources, dict) else []:
        if not isinstance(source, dict) or source.keys() & {"format", "csv", "sql"}:
            continue
        written = source.get("path")
        if not isinstance(written, str) or is_uri(written):
            continue
        target = root / written
        fmt = FILE_FORMATS.get(target.suffix.lower())
        resolved = target.resolve()
        if fmt and resolved != root and resolved.is_relative_to(root) and target.is_file():
            found.append((target, fmt))
    return found


def _type_all(root: Path, files: list[tuple[Path, str, str]], binds_sql: bool) -> None:
    from mlcompile.expressions import open_sandbox_ahead

    with contextlib.suppress(Exception):  # the typed pass types whatever is left, and says why
        for path, fmt, key in files:
            _type_file(root, key, path, fmt, None)
        if binds_sql:
            # the reader becomes the sandbox: opening a connection costs more than a file
            open_sandbox_ahead(vars(_LOCAL).pop("reader", None))


def _typed_ahead() -> None:
    """Wait for the files being typed ahead, if any."""
    with _AHEAD_LOCK:
        threads, _AHEAD[:] = list(_AHEAD), []
    for thread in threads:
        thread.join()


def _read(path: Path, fmt: str, options: Mapping[str, Any]) -> TableType | None:
    """The file's columns as DuckDB binds a read of it: a Parquet footer, a CSV prefix
    (a row pandas would refuse makes DuckDB refuse the sample too)."""
    con = _reader()
    if fmt == "parquet":  # the footer: LIMIT 0 reads no row
        read = con.execute("SELECT * FROM read_parquet($path) LIMIT 0", {"path": str(path)})
        return {str(n): (str(t), kind_of(str(t))) for n, t, *_ in read.description}
    read, params = csvformat.duckdb_read(options, ", sample_size = $rows")
    params = {**params, "path": str(path), "rows": CSV_SAMPLE_ROWS}
    # one read (DuckDB sniffs the sample for each): the columns, and whether a row follows
    first = con.execute(f"SELECT * FROM {read} LIMIT 1", params)
    columns = [(str(name), str(sql)) for name, sql, *_ in first.description]
    if not first.fetchall():
        # a header and no rows: the names are known, the types only a run with rows has
        return {name: (None, Kind.UNKNOWN) for name, _ in columns}
    table: TableType = {}
    for name, sql in columns:
        # pandas keeps dates in a CSV as text; the runtime parses ISO 8601 text as times
        kind = kind_of(sql)
        table[name] = ("VARCHAR", kind) if kind is Kind.TEMPORAL else (sql, kind)
    # DuckDB's sniffer reads 'inf' or '1e400' as text where pandas reads numbers, and
    # yes/no or t/f as booleans where pandas reads text: each is asked of the sample
    text = [name for name, (sql, _) in table.items() if sql == "VARCHAR"]
    flags = [name for name, (sql, _) in table.items() if sql == "BOOLEAN"]
    checks = [
        *(f"bool_and(TRY_CAST({_quoted(n)} AS DOUBLE) IS NOT NULL OR {_quoted(n)} IS NULL)"
          for n in text),
        *(f"bool_and({_quoted(n)} IN {PANDAS_BOOLEANS} OR {_quoted(n)} IS NULL)"
          for n in flags),
    ]  # fmt: skip
    if checks:
        text_read, _ = csvformat.duckdb_read(options, ", sample_size = $rows, all_varchar = true")
        sample = f"(SELECT * FROM {text_read} LIMIT $rows)"
        query = f"SELECT {', '.join(checks)} FROM {sample}"
        answers = con.execute(query, params).fetchone() or ()
        for name, holds in zip([*text, *flags], answers, strict=True):
            if name in text and holds:
                table[name] = ("DOUBLE", Kind.NUMERIC)
            elif name in flags and not holds:
                table[name] = ("VARCHAR", Kind.STRING)
    return {**table, **_declared(table, csvformat.dtypes(options))}


def _declared(table: TableType, dtypes: dict[str, str]) -> TableType:
    """The columns the source's `csv.dtypes` declares, as `ingest` reads them; a name not
    in the file is reported by the typed pass, not added."""
    # pandas parses declared dates; a category is text to every operation
    sql = {name: csvformat.SQL_DTYPE[dtype] for name, dtype in dtypes.items() if name in table}
    return {name: (t, kind_of(t)) for name, t in sql.items()}


# ---- SQL ----------------------------------------------------------------------------------


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_type(root: Path, sql: str, inputs: dict[str, TableType]) -> Bound:
    """The SQL's result type over inputs of the given types, found by binding it."""
    # "sql/2": entries since they record DuckDB's error position
    key = _key("sql/2", sql, {n: _as_entry(t) for n, t in sorted(inputs.items())})
    cached = _load(root, key)
    if cached is not None:
        return Bound(
            _as_table(cached["table"]), cached["problem"], cached["kind"], cached.get("position")
        )
    bound = _bind(sql, inputs)
    entry = {"table": _as_entry(bound.table), "problem": bound.problem, "kind": bound.kind}
    _store(root, key, {**entry, "position": bound.position})
    return bound


def _bind(sql: str, inputs: dict[str, TableType]) -> Bound:
    duckdb = engine()
    con = sandbox()
    # the inputs' tables, and whatever the SQL may create, live only for this binding
    con.begin()
    try:
        for name, table in inputs.items():
            # a column of unknown type is VARCHAR here; _bind's caller ignores type errors then
            columns = ", ".join(f"{_quoted(c)} {sql or 'VARCHAR'}" for c, (sql, _) in table.items())
            con.execute(f"CREATE TABLE {_quoted(name)} ({columns or 'unknown_ INTEGER'})")
        statements = con.extract_statements(sql)
        if len(statements) != 1 or statements[0].type not in (
            duckdb.StatementType.SELECT,
            duckdb.StatementType.MULTI,
        ):
            return Bound(None, "the SQL must be a single query (SELECT ...)", "Parser")
        try:
            described = con.execute(_DESCRIBE + sql).fetchall()
        except duckdb.Error as exc:
            return _refusal(exc, len(_DESCRIBE))
    except duckdb.Error as exc:  # a parser error, from extract_statements
        return _refusal(exc, 0)
    finally:
        con.rollback()
    return Bound({str(n): (str(t), kind_of(str(t))) for n, t, *_ in described})


# DESCRIBE binds and plans the query, without running it, and gives its columns' names and
# types (the types as DuckDB writes them, as a relation's types print).
_DESCRIBE = "DESCRIBE "


def _refusal(exc: Exception, shift: int) -> Bound:
    """DuckDB's error as a Bound: its message as DuckDB prints it ("Binder Error: ..."),
    its class, and where in the SQL text it stopped, when DuckDB says (`shift`: the length
    of what came before the SQL in the statement that failed)."""
    kind = type(exc).__name__.removesuffix("Exception")
    text, info = str(exc), _as_json(exc)
    message = text if info is None else text[: text.index("{")] + info["exception_message"]
    position = str((info or {}).get("position", ""))
    at = int(position) - shift if position.isdigit() and int(position) >= shift else None
    return Bound(None, message, kind, at)


def _as_json(exc: Exception) -> dict[str, Any] | None:
    """The JSON form of a DuckDB error (`errors_as_json`), after its "<Class> Error: "."""
    text = str(exc)
    try:
        info = json.loads(text[text.index("{") :])
    except ValueError:
        return None
    return info if isinstance(info, dict) and "exception_message" in info else None
