"""The content-addressed artifact store behind the local executor.

An entry is a folder named by the step's cache key, holding one sub-folder per output and
`entry.json`. Entries are assembled in a staging folder and renamed into place, so a killed
run leaves either a whole entry or none (and staging leftovers, removed by the next run).
Data files are hashed once and re-hashed only when their size or modification time change.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlcompile.runtime.artifacts import atomic_write_bytes, sha256_file
from mlcompile.runtime.killpoints import boundary

_HASHES = "file-hashes.json"


def code_version(packages: Iterable[Path]) -> str:
    """A hash of the runtime's own source: editing a step invalidates what it computed."""
    digest = hashlib.sha256()
    for root in packages:
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._hashes: dict[str, Any] | None = None
        self._hashes_changed = False  # a run that hashed nothing new writes nothing

    def entry(self, key: str) -> Path:
        return self.root / "entries" / key[:2] / key

    def has(self, key: str) -> bool:
        return (self.entry(key) / "entry.json").is_file()

    def record(self, key: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.entry(key) / "entry.json").read_text("utf-8"))
        return data

    def staging(self) -> Path:
        base = self.root / "staging"
        base.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=base))

    def commit(self, key: str, staged: Path, record: dict[str, Any]) -> None:
        """Publish a staged entry: after this returns the entry is complete and durable."""
        boundary("store.record")
        (staged / "entry.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        target = self.entry(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        boundary("store.commit")
        try:
            os.rename(staged, target)
        except OSError:
            # Another run published the same key first: its entry is as good as ours.
            shutil.rmtree(staged, ignore_errors=True)
            if not self.has(key):
                raise

    def discard(self, staged: Path) -> None:
        shutil.rmtree(staged, ignore_errors=True)

    def clean_staging(self) -> None:
        """Leftovers of killed runs; called under the project lock, so none are in use."""
        shutil.rmtree(self.root / "staging", ignore_errors=True)
        for leftover in self.root.glob(f".{_HASHES}.*"):
            leftover.unlink(missing_ok=True)

    # ---- data file hashes -------------------------------------------------------------

    def file_hash(self, path: Path) -> str:
        stat = path.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
        with self._lock:
            hashes = self._load_hashes()
            known = hashes.get(str(path))
            if known and known["stamp"] == stamp:
                return str(known["sha256"])
        digest = sha256_file(path)
        with self._lock:
            self._load_hashes()[str(path)] = {"stamp": stamp, "sha256": digest}
            self._hashes_changed = True
        return digest

    def _load_hashes(self) -> dict[str, Any]:
        if self._hashes is None:
            try:
                self._hashes = json.loads((self.root / _HASHES).read_text("utf-8"))
            except (OSError, ValueError):
                self._hashes = {}
        return self._hashes

    def save_hashes(self) -> None:
        if self._hashes is None or not self._hashes_changed:
            return
        data = json.dumps(self._hashes, indent=1, sort_keys=True).encode("utf-8")
        atomic_write_bytes(self.root / _HASHES, data)
        self._hashes_changed = False
