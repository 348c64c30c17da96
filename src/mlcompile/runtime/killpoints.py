"""Write boundaries: the points where a kill must leave every store consistent.

Every durable write of the store, the registry, artifacts and run records passes a boundary
first. The fault tests set MLCOMPILE_KILL_AT to make the process SIGKILL itself at one of
them, and then check what the next process finds:

    MLCOMPILE_KILL_AT=N          the Nth boundary the process reaches
    MLCOMPILE_KILL_AT=LABEL:N    the Nth boundary with that label (LABEL alone: the first)

Unset, which it always is outside the tests, a boundary costs one comparison.
"""

from __future__ import annotations

import os
import signal
import threading

_WANTED = os.environ.get("MLCOMPILE_KILL_AT", "")
_counts: dict[str, int] = {}
_lock = threading.Lock()


def _target(wanted: str) -> tuple[str, int]:
    label, _, count = wanted.rpartition(":")
    if not label and not count.isdigit():
        return count, 1  # a label alone
    return label, int(count)


def boundary(label: str) -> None:
    """Mark a write boundary: the process may die here, before the write that follows."""
    if not _WANTED:
        return
    wanted_label, wanted_count = _target(_WANTED)
    if wanted_label not in ("", label):
        return
    with _lock:
        seen = _counts[wanted_label] = _counts.get(wanted_label, 0) + 1
    if seen == wanted_count:
        os.kill(os.getpid(), signal.SIGKILL)
