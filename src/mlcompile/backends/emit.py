"""Write rendered artifacts atomically, with a sha256 index, and compare them with disk."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

INDEX_FILE = "SHA256SUMS.json"


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def with_index(files: Mapping[str, str]) -> dict[str, str]:
    """The files plus an index of their hashes, so anyone can verify a build."""
    index = {
        path: hashlib.sha256(text.encode("utf-8")).hexdigest()
        for path, text in sorted(files.items())
    }
    return {**files, INDEX_FILE: json.dumps(index, indent=2, sort_keys=True) + "\n"}


def write_tree(target: Path, files: Mapping[str, str]) -> None:
    """Replace the folder `target` with exactly `files`: all of it, or none of it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new.", dir=target.parent))
    try:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.old.{os.getpid()}"
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def stale_files(target: Path, files: Mapping[str, str]) -> list[str]:
    """Files that differ from, are missing from, or are extra on disk (like `black --check`)."""
    stale = []
    for rel, text in sorted(files.items()):
        path = target / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(rel)
    if target.is_dir():
        on_disk = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
        stale += sorted(on_disk - set(files))
    return stale
