"""The prediction log: every served row and its prediction, as Parquet files (the feedback
store that later joins predictions with outcomes).

    <log_dir>/part-<UTC time>-<n>.parquet     one file per flush, written atomically

Requests only append to an in-memory buffer; a background thread writes it out every
`flush_rows` rows or `flush_seconds` seconds, whichever comes first, and once more at close,
so a request never waits for the disk.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped]

from mlcompile.runtime.artifacts import atomic_write_bytes, parquet_bytes

logger = logging.getLogger("mlcompile.serving")


class PredictionLog:
    def __init__(self, log_dir: Path, *, flush_rows: int = 1000, flush_seconds: float = 5.0):
        self.log_dir = log_dir
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self._frames: list[pd.DataFrame] = []
        self._rows = 0
        self._count = 0
        self._closed = False
        self._wake = threading.Condition()
        # one writer at a time keeps the counter and the file names in order
        self._write_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def append(self, frame: pd.DataFrame) -> None:
        with self._wake:
            self._frames.append(frame)
            self._rows += len(frame)
            if self._rows >= self.flush_rows:
                self._wake.notify()

    def _take(self) -> list[pd.DataFrame]:
        with self._wake:
            frames, self._frames, self._rows = self._frames, [], 0
        return frames

    def flush(self) -> Path | None:
        """Write what is buffered to a new file; None when there was nothing."""
        with self._write_lock:
            frames = self._take()
            if not frames:
                return None
            self._count += 1
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            path = self.log_dir / f"part-{stamp}-{self._count:06d}.parquet"
            try:
                atomic_write_bytes(path, parquet_bytes(pd.concat(frames, ignore_index=True)))
            except BaseException:
                # keep the rows for the next flush rather than lose the feedback they carry
                with self._wake:
                    self._frames[:0] = frames
                    self._rows += sum(len(f) for f in frames)
                raise
            return path

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(
                    lambda: self._closed or self._rows >= self.flush_rows, self.flush_seconds
                )
                closed = self._closed
            try:
                self.flush()
            except Exception:  # the writer thread must outlive a bad flush
                logger.exception("prediction log: flush to %s failed; will retry", self.log_dir)
            if closed:
                return

    def close(self) -> None:
        """Stop the writer after a last flush of everything appended before the call."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()
