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
from dataclasses import dataclass
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped]

from mlcompile.errors import WriteError
from mlcompile.runtime.artifacts import atomic_write_bytes, parquet_bytes

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


def _dtypes(frame: pd.DataFrame) -> tuple[tuple[str, str], ...]:
    return tuple((str(column), str(dtype)) for column, dtype in frame.dtypes.items())


def _serialized(frames: list[pd.DataFrame]) -> tuple[int, bytes]:
    """The Parquet bytes of the longest run of `frames` from the first that one file can
    hold, and how many frames that is. Frames of two model versions may disagree on a
    column's dtype, and one Parquet column has one type: such runs end up in separate files."""
    schema = _dtypes(frames[0])
    run = 1
    while run < len(frames) and _dtypes(frames[run]) == schema:
        run += 1
    try:
        return run, parquet_bytes(pd.concat(frames[:run], ignore_index=True))
    except (ValueError, TypeError):  # pyarrow's ArrowInvalid and ArrowTypeError
        # object or category columns whose values mix types across requests
        if run == 1:
            raise
        return 1, parquet_bytes(frames[0])


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
        self._frames: list[pd.DataFrame] = []
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

    def append(self, frame: pd.DataFrame) -> None:
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

    def _take(self) -> list[pd.DataFrame]:
        with self._wake:
            frames, self._frames, self._rows = self._frames, [], 0
        return frames

    def _put_back(self, frames: list[pd.DataFrame]) -> None:
        with self._wake:
            self._frames[:0] = frames  # before rows appended meanwhile: order is kept
            self._rows += sum(len(f) for f in frames)

    def flush(self) -> list[Path]:
        """Write what is buffered to new files. Raises what the write raised, with the rows
        not written back in the buffer."""
        with self._write_lock:
            pending = self._take()
            written: list[Path] = []
            try:
                while pending:
                    count, data = _serialized(pending)
                    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
                    path = self.log_dir / f"part-{stamp}-{self._count + 1:06d}.parquet"
                    atomic_write_bytes(path, data)
                    self._count += 1
                    written.append(path)
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
