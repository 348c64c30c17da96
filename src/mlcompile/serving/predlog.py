"""The prediction log: every served row and its prediction, as Parquet files (the feedback
store that later joins predictions with outcomes).

    <log_dir>/part-<UTC time>-<n>.parquet     one file per flush, written atomically

Requests only append to an in-memory buffer; a background thread writes it out every
`flush_rows` rows or `flush_seconds` seconds, whichever comes first, and once more at close,
so a request never waits for the disk.

Nothing is dropped quietly. A flush that fails (folder not writable, disk full) keeps its rows
in memory, logs an error, and is tried again every `flush_seconds`; `state()` says so to
/health. A buffer holding `max_buffered_rows` refuses more (LogFull), so the server stops
answering rather than answer without logging. `close` reports the rows it could not write.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, repeat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa

from mlcompile.errors import WriteError
from mlcompile.runtime.artifacts import atomic_write_bytes, parquet_bytes, table_parquet_bytes
from mlcompile.runtime.predlog import log_frame, stored_inputs

from .inputs import InputColumn, columns_frame

logger = logging.getLogger("mlcompile.serving")


class LogFull(Exception):
    """The buffer is full of rows the log could not write yet."""


@dataclass(frozen=True)
class LogState:
    path: str
    buffered_rows: int
    written_files: int
    error: str | None  # why the last flush failed; None while writes succeed
    failing_since: dt.datetime | None


@dataclass(frozen=True)
class Entry:
    """One answered request's rows, kept as the values the request was read into: the frame
    is built at flush, once for a run of requests, not once per request while it waits."""

    request_id: str
    received_at: dt.datetime
    version: int
    inputs: tuple[InputColumn, ...]
    values: dict[str, list[Any]]
    predictions: dict[str, list[Any]]
    rows: int
    warnings: list[int]  # per row: values outside the training domain
    answered_by: str  # the alias (or version number) that answered
    shadow: dict[str, list[Any]]  # the shadow's version and prediction columns, if one ran

    def __len__(self) -> int:
        return self.rows

    def joins(self, other: Entry) -> bool:
        """Whether one frame can hold both: the same version, and category values of the
        same kind (strings or numbers; a Parquet column holds one type)."""
        return (
            self.version == other.version
            and self.inputs is other.inputs
            and self.shadow.keys() == other.shadow.keys()
            and self._kinds() == other._kinds()
        )

    def _kinds(self) -> tuple[bool, ...]:
        return tuple(
            any(isinstance(v, str) for v in self.values[c.name]) for c in self.inputs if c.uniform
        )


Item = Any  # a pd.DataFrame (pandas has no types) or an Entry
Part = Any  # what a flush writes: a pd.DataFrame or a pa.Table


# chain and repeat join the entries' lists in C loops, not a Python step per row


def _joined(lists: list[list[Any]]) -> list[Any]:
    return lists[0] if len(lists) == 1 else list(chain.from_iterable(lists))


def _columns(run: list[Entry]) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """The input values of a run of joinable entries, and its predictions then the
    shadow's, each column as one list."""
    first = run[0]
    values = {c.name: _joined([e.values[c.name] for e in run]) for c in first.inputs}
    predicted = {k: _joined([e.predictions[k] for e in run]) for k in first.predictions}
    predicted.update({k: _joined([e.shadow[k] for e in run]) for k in first.shadow})
    return values, predicted


def entries_frame(run: list[Entry]) -> pd.DataFrame:
    """The log rows of joinable entries, as one frame."""
    rows = [e.rows for e in run]

    def repeated(each: list[Any]) -> list[Any]:
        return list(chain.from_iterable(map(repeat, each, rows)))

    meta: dict[str, list[Any]] = {
        "request_id": repeated([e.request_id for e in run]),
        "received_at": repeated([e.received_at for e in run]),
        "model_version": repeated([e.version for e in run]),
        "warnings": _joined([e.warnings for e in run]),
        "answered_by": repeated([e.answered_by for e in run]),
    }
    values, predicted = _columns(run)
    frame = columns_frame(values, run[0].inputs)
    return log_frame(meta, frame, pd.DataFrame(predicted))


# ---- the same rows as an Arrow table, without a pandas frame on the way ----------------------
# For the dtypes below, pandas' frame and Arrow's conversion hold the same values, so the file
# is the frame's byte for byte (tests/serving/test_predlog.py checks it); a run holding any
# other column is written through the frame.

_META_DTYPES = (
    ("request_id", "str"),
    ("received_at", "datetime64[us, UTC]"),
    ("model_version", "int64"),
    ("warnings", "int64"),
    ("answered_by", "str"),
)
_DIRECT_INPUTS = {"float64", "Int64", "str", "bool", "boolean", "datetime64[us]"}
# the dtype pandas infers for a prediction column of Python values of one type
_INFERRED = {float: "float64", int: "int64", str: "str", bool: "bool"}


def _inferred(values: list[Any]) -> str | None:
    kinds = set(map(type, values))
    return _INFERRED.get(kinds.pop()) if len(kinds) == 1 else None


def _input_dtype(dtype: str, values: list[Any]) -> str | None:
    if dtype == "int64":
        return None if None in values else dtype  # a missing value makes the column float64
    return dtype if dtype in _DIRECT_INPUTS else None


@lru_cache(maxsize=64)
def _schema(columns: tuple[tuple[str, str], ...]) -> Any:
    """The Arrow schema, with its pandas metadata, of a frame of these (name, dtype)."""
    empty = pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns})
    return pa.Schema.from_pandas(empty, preserve_index=False)


def _utc(time: dt.datetime) -> dt.datetime:
    return time.astimezone(dt.UTC).replace(tzinfo=None)


def entries_table(run: list[Entry]) -> Any:
    """The log rows of joinable entries as the Arrow table of `entries_frame`, or None when
    one of its columns is not of the dtypes converted directly."""
    values, predicted = _columns(run)
    inputs = run[0].inputs
    dtypes = [_input_dtype(c.dtype, values[c.name]) for c in inputs]
    inferred = [_inferred(v) for v in predicted.values()]
    if None in dtypes or None in inferred:
        return None
    names = stored_inputs([c.name for c in inputs], list(predicted))
    schema = _schema(
        (*_META_DTYPES, *zip(names, dtypes, strict=True), *zip(predicted, inferred, strict=True))
    )
    types = iter(schema.types)
    # a request's own values, one an entry, repeated for its rows by Arrow's take
    each = pa.array(np.repeat(np.arange(len(run)), [e.rows for e in run]))
    arrays = [
        pa.array([e.request_id for e in run], next(types)).take(each),
        # as naive UTC times: NumPy warns of a timezone, and Arrow reads its times as UTC
        pa.array(np.array([_utc(e.received_at) for e in run], "datetime64[us]"), next(types)).take(
            each
        ),
        pa.array([e.version for e in run], next(types)).take(each),
        pa.array(_joined([e.warnings for e in run]), next(types)),
        pa.array([e.answered_by for e in run], next(types)).take(each),
    ]
    # from_pandas: a NaN is a missing value, as in the frame's conversion
    arrays += [
        pa.array(column, kind, from_pandas=True)
        for column, kind in zip([*values.values(), *predicted.values()], types, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _parts(items: list[Item]) -> list[Part]:
    """The buffered items as tables or frames, each run of joinable entries as one."""
    parts: list[Part] = []
    run: list[Entry] = []
    for item in [*items, None]:
        if run and not (isinstance(item, Entry) and run[-1].joins(item)):
            table = entries_table(run)
            parts.append(entries_frame(run) if table is None else table)
            run = []
        if isinstance(item, Entry):
            run.append(item)
        elif item is not None:
            parts.append(item)
    return parts


def _kind(part: Part) -> Any:
    """Parts of one kind share a file: tables of one schema, frames of the same dtypes."""
    if isinstance(part, pd.DataFrame):
        return tuple((str(column), str(dtype)) for column, dtype in part.dtypes.items())
    return part.schema, part.schema.metadata  # Schema's == leaves the metadata out


def _serialized(parts: list[Part]) -> tuple[int, bytes]:
    """The Parquet bytes of the longest run of `parts` from the first that one file can
    hold, and how many parts that is. Frames of two model versions may disagree on a
    column's dtype, and one Parquet column has one type: such runs end up in separate files."""
    kind = _kind(parts[0])
    run = 1
    while run < len(parts) and type(parts[run]) is type(parts[0]) and _kind(parts[run]) == kind:
        run += 1
    if not isinstance(parts[0], pd.DataFrame):
        return run, table_parquet_bytes(pa.concat_tables(parts[:run]))
    try:
        return run, parquet_bytes(pd.concat(parts[:run], ignore_index=True))
    except (ValueError, TypeError):  # pyarrow's ArrowInvalid and ArrowTypeError
        # object or category columns whose values mix types across requests
        if run == 1:
            raise
        return 1, parquet_bytes(parts[0])


class PredictionLog:
    def __init__(
        self,
        log_dir: Path,
        *,
        flush_rows: int = 1000,
        flush_seconds: float = 5.0,
        max_buffered_rows: int = 100_000,
    ) -> None:
        self.log_dir = log_dir
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_buffered_rows = max_buffered_rows
        self._frames: list[Item] = []
        self._rows = 0
        self._count = 0
        self._error: str | None = None
        self._failing_since: dt.datetime | None = None
        self._closed = False
        self._wake = threading.Condition()
        # one writer at a time keeps the counter and the file names in order
        self._write_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    def check_writable(self) -> None:
        """Raise WriteError, naming the folder, unless a file can be created in it now."""
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.log_dir, prefix=".write-check-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise WriteError(self.log_dir, exc) from None

    def start(self) -> None:
        self._thread.start()

    def append(self, frame: Item) -> None:
        with self._wake:
            if self._rows + len(frame) > self.max_buffered_rows:
                raise LogFull(
                    f"the prediction log holds {self._rows:,} rows not yet written to "
                    f"'{self.log_dir}', and takes at most {self.max_buffered_rows:,} "
                    f"(--max-buffered-rows): {self._error or 'writes are too slow'}"
                )
            self._frames.append(frame)
            self._rows += len(frame)
            if self._rows >= self.flush_rows:
                self._wake.notify()

    def state(self) -> LogState:
        with self._wake:
            return LogState(
                str(self.log_dir), self._rows, self._count, self._error, self._failing_since
            )

    # Rows count as buffered until their file is written, so a request arriving during a
    # flush that fails still finds the buffer full.
    def _take(self) -> list[Item]:
        with self._wake:
            frames, self._frames = self._frames, []
        return frames

    def _put_back(self, frames: Sequence[Item]) -> None:
        with self._wake:
            self._frames[:0] = frames  # before rows appended meanwhile: order is kept

    def _written(self, frames: Sequence[Item]) -> None:
        with self._wake:
            self._rows -= sum(len(f) for f in frames)

    def flush(self) -> list[Path]:
        """Write what is buffered to new files. Raises what the write raised, with the rows
        not written back in the buffer."""
        with self._write_lock:
            taken = self._take()
            written: list[Path] = []
            try:
                pending = _parts(taken)
            except Exception:
                self._put_back(taken)
                raise
            try:
                while pending:
                    count, data = _serialized(pending)
                    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
                    path = self.log_dir / f"part-{stamp}-{self._count + 1:06d}.parquet"
                    atomic_write_bytes(path, data)
                    self._count += 1
                    written.append(path)
                    self._written(pending[:count])
                    pending = pending[count:]
            finally:
                if pending:
                    self._put_back(pending)
            return written

    def _attempt(self) -> bool:
        """Flush, and log loudly when that fails and when it works again."""
        try:
            written = self.flush()
        except Exception as exc:  # the writer thread must outlive a bad flush
            error = f"{type(exc).__name__}: {exc}"
            with self._wake:
                self._error = error
                self._failing_since = self._failing_since or dt.datetime.now(dt.UTC)
                rows = self._rows
            logger.error(
                "prediction log: cannot write to %s (%s); %d rows kept in memory, next try in %g s",
                self.log_dir,
                error,
                rows,
                self.flush_seconds,
            )
            return False
        with self._wake:
            recovered, self._error, self._failing_since = self._error, None, None
        if recovered:
            logger.warning(
                "prediction log: writing to %s works again (%d files written)",
                self.log_dir,
                len(written),
            )
        return True

    def _run(self) -> None:
        while True:
            with self._wake:
                # after a failure, wait the full interval: no tight loop of failing writes
                self._wake.wait_for(
                    lambda: self._closed or (self._error is None and self._rows >= self.flush_rows),
                    self.flush_seconds,
                )
                if self._closed:
                    return
            self._attempt()

    def close(self) -> int:
        """Stop the writer and write what is buffered; returns the number of rows that could
        not be written (logged as an error). Safe to call again."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join()
        self._attempt()
        with self._wake:
            left, error = self._rows, self._error
        if left:
            logger.error(
                "prediction log: %d rows could not be written to %s and are lost when the "
                "server exits (%s)",
                left,
                self.log_dir,
                error,
            )
        return left
