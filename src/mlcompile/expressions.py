"""Feature expressions: one DuckDB SQL value per row, as DuckDB's own parser reads them.

An `expr` feature runs as `SELECT (<expr>) AS value FROM feature_rows`. Text that closes
the parenthesis (`a) AS value FROM feature_rows ORDER BY a DESC --`) would change the
query around it, and a subquery, a window or an aggregate would compute a row's feature
from other rows (the scored rows leaking into their own features). So the spec checks and
the runtime both parse the whole wrapped query with DuckDB (`json_serialize_sql`) and
accept it only when it is exactly the wrapper around one expression built from an
allow-list of expression classes, with no aggregate function anywhere.

duckdb is imported only when an expression must be parsed: the spec checks keep the
verdicts of accepted expressions in the project's cache (`accepted_before`, `remember`),
so an unchanged spec validates without it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from mlcompile import __version__, paths

TABLE = "feature_rows"
MAX_LENGTH = 10_000
CACHE_DIR = Path(paths.cache_dir("expr"))
# Expression classes of DuckDB's parse tree that compute from the row alone.
_ROW_WISE = frozenset(
    {
        "BETWEEN",
        "CASE",
        "CAST",
        "COLLATE",
        "COLUMN_REF",
        "COMPARISON",
        "CONJUNCTION",
        "CONSTANT",
        "FUNCTION",
        "LAMBDA",
        "OPERATOR",
        "TYPE",
    }
)
_WHY_NOT = {
    "SUBQUERY": "a subquery reads other rows",
    "WINDOW": "a window (OVER) computes over other rows",
    "STAR": "'*' and COLUMNS() stand for many columns, not one value",
    "PARAMETER": "a query parameter has no value here",
    "POSITIONAL_REFERENCE": "a positional reference (#n) is not a column name",
}
# Functions that return more or fewer rows than they are given.
_NOT_PER_ROW = frozenset({"unnest", "unlist"})
_LOCAL = threading.local()
_AGGREGATES_LOCK = threading.Lock()


def wrap(expr: str) -> str:
    """The query an expression runs in. The line breaks end a trailing `--` comment, so
    the expression cannot comment out the closing parenthesis."""
    return f"SELECT (\n{expr}\n) AS value FROM {TABLE}"


def expr_offset(expr: str, position: int | None) -> int | None:
    """The offset in `expr` of a position DuckDB gives in the query `wrap` makes; None
    when it is in the wrapper's own text (the expression broke out of it)."""
    if position is None:
        return None
    offset = position - len(wrap("").split("\n", 1)[0]) - 1
    return offset if 0 <= offset < len(expr) else None


def problem_offset(expr: str) -> int | None:
    """Where in `expr` DuckDB's parser stopped, when `expression_problem` refuses it for
    not parsing and DuckDB says where."""
    position = str(_parse(expr).get("position", ""))
    return expr_offset(expr, int(position)) if position.isdigit() else None


@functools.lru_cache(maxsize=1024)
def expression_problem(expr: str) -> str | None:
    """Why `expr` is not one row-wise SQL expression, or None when it is."""
    if len(expr) > MAX_LENGTH:
        return f"the expression has {len(expr)} characters, more than {MAX_LENGTH}"
    if not expr.strip():
        return "the expression is empty"
    tree = _parse(expr)
    if tree.get("error"):
        return f"DuckDB cannot read it as an expression: {tree.get('error_message')}"
    statements = tree.get("statements") or []
    node = statements[0].get("node", {}) if len(statements) == 1 else {}
    if not _is_the_wrapper(node):
        return "it is not one expression: it changes the query it runs in"
    (value,) = node["select_list"]
    if value.get("class") == "FUNCTION" and value.get("function_name") == "row":
        return "it is several values; a feature is one value per row"
    return _inner_problem(value)


def _parse(expr: str) -> dict[str, Any]:
    (text,) = sandbox().execute("SELECT json_serialize_sql(?)", [wrap(expr)]).fetchone()
    tree: dict[str, Any] = json.loads(text)
    return tree


def expression_tree(expr: str) -> dict[str, Any] | None:
    """DuckDB's parse tree of an accepted expression (its one select value), or None when
    `expression_problem` refuses it."""
    if expression_problem(expr) is not None:
        return None
    value: dict[str, Any] = _parse(expr)["statements"][0]["node"]["select_list"][0]
    return value


def _is_the_wrapper(node: dict[str, Any]) -> bool:
    source = node.get("from_table") or {}
    return (
        node.get("type") == "SELECT_NODE"
        and len(node.get("select_list") or []) == 1
        and (node["select_list"][0].get("alias") == "value")
        and source.get("type") == "BASE_TABLE"
        and source.get("table_name") == TABLE
        and not source.get("alias")
        and not source.get("sample")
        and not node.get("modifiers")
        and not (node.get("cte_map") or {}).get("map")
        and not node.get("group_expressions")
        and not node.get("group_sets")
        and node.get("aggregate_handling") == "STANDARD_HANDLING"
        and all(node.get(k) is None for k in ("where_clause", "having", "sample", "qualify"))
    )


def _inner_problem(node: Any) -> str | None:
    """The first part of the parse tree that is not computed from the row alone."""
    if isinstance(node, list):
        for item in node:
            found = _inner_problem(item)
            if found:
                return found
        return None
    if not isinstance(node, dict):
        return None
    kind = node.get("class")
    if kind is not None and kind not in _ROW_WISE:
        return _WHY_NOT.get(kind, f"'{str(kind).lower()}' is not allowed in an expression")
    if node.get("type") == "SELECT_NODE":
        return _WHY_NOT["SUBQUERY"]
    if kind == "FUNCTION":
        name = str(node.get("function_name", "")).lower()
        if _is_aggregate(name):
            return (
                f"'{name}' is an aggregate: it computes over all rows, which would leak the "
                "scored rows into their own features"
            )
        if name in _NOT_PER_ROW:
            return f"'{name}' changes the number of rows; a feature is one value per row"
    return _inner_problem(list(node.values()))


def sandbox() -> Any:
    """This thread's DuckDB connection that reads no file and whose settings cannot change:
    for parsing expressions, and for binding the spec's SQL over made-up tables. Opening one
    costs 30 ms, so a process keeps one per thread (a connection is not shared between
    threads; one opened ahead, by `open_sandbox_ahead`, is handed to one thread only)."""
    connection = getattr(_LOCAL, "sandbox", None)
    if connection is None:
        with _SPARE_LOCK:
            connection = _SPARE.pop() if _SPARE else None
        connection = _LOCAL.sandbox = connection or _open_sandbox()
    return connection


_SPARE: list[Any] = []
_SPARE_LOCK = threading.Lock()


def engine() -> Any:
    """DuckDB's engine: its compiled module `_duckdb`, whose connections, `execute` and
    error classes the `duckdb` package re-exports. The checks need no more; the package's
    Python layer over it (its relational API) costs 0.12 s to import, more than a cold
    `validate`'s DuckDB work. The package itself where the engine module is named
    otherwise."""
    try:
        return importlib.import_module("_duckdb")
    except ImportError:
        return importlib.import_module("duckdb")


def open_sandbox_ahead(connection: Any = None) -> None:
    """Open a sandbox for the next thread that needs one, from a thread with time to spare
    (DuckDB opens it without holding the GIL). `connection`: an in-memory one this thread
    is done with, made the sandbox instead of opening another (it reads no file from then
    on, and holds no table)."""
    connection = _open_sandbox(connection)
    with _SPARE_LOCK:
        _SPARE.append(connection)


def _open_sandbox(connection: Any = None) -> Any:
    if connection is None:
        connection = engine().connect(":memory:")
    connection.execute("SET enable_external_access = false")
    # where in a text an error is comes only in DuckDB's JSON form of errors
    connection.execute("SET errors_as_json = true")
    connection.execute("SET lock_configuration = true")
    return connection


_AGGREGATES: list[frozenset[str]] = []  # filled once per process


def _is_aggregate(name: str) -> bool:
    """Whether DuckDB's function `name` (lower case) is an aggregate. Operators are
    functions in DuckDB's parse tree (`+`, `//`) and no aggregate is named by symbols, so
    DuckDB's list of aggregates, slow to ask for, is asked only for a named function."""
    if not any(c.isalpha() for c in name):
        return False
    with _AGGREGATES_LOCK:
        if not _AGGREGATES:  # the functions are DuckDB's, the same on every connection
            rows = (
                sandbox()
                .execute(
                    "SELECT DISTINCT lower(function_name) FROM duckdb_functions() "
                    "WHERE function_type = 'aggregate'"
                )
                .fetchall()
            )
            _AGGREGATES.append(frozenset(n for (n,) in rows))
        return name in _AGGREGATES[0]


# ---- verdicts kept between validations -------------------------------------------------


def _cache_file(project_root: Path, expr: str) -> Path:
    digest = hashlib.sha256()
    digest.update(json.dumps([__version__, _duckdb_stamp(), expr]).encode("utf-8"))
    return project_root / CACHE_DIR / f"{digest.hexdigest()}.ok"


@functools.lru_cache(maxsize=1)
def _duckdb_stamp() -> list[Any]:
    """Which duckdb is installed, without importing it: a new version may parse
    differently, so its verdicts are kept apart."""
    import importlib.util

    spec = importlib.util.find_spec("duckdb")
    if spec is None or spec.origin is None:
        return []
    stat = os.stat(spec.origin)
    return [spec.origin, stat.st_size, stat.st_mtime_ns]


def accepted_before(project_root: Path, expr: str) -> bool:
    """Whether this mlcompile, with this duckdb, accepted `expr` before. A forged entry
    cannot get past the runtime, which parses every expression again."""
    return _cache_file(project_root, expr).is_file()


def remember(project_root: Path, expr: str) -> None:
    """Keep the verdict of an accepted expression; a read-only project just parses again."""
    target = _cache_file(project_root, expr)
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
