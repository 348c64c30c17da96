"""A cache of composed specs, so unchanged input skips Hydra entirely.

Composition depends only on the spec's text, the overrides, the config-group files and
mlcompile's version — unless an interpolation calls a resolver (`${oc.env:HOME}`), whose
value can change under us: such specs are never cached. The key hashes all of it, so an
entry is either exactly right or never found. Writing is best effort: a read-only project
just composes every time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from mlcompile import __version__, paths

_RESOLVER = re.compile(r"\$\{\s*[\w.]+\s*:")
CACHE_DIR = Path(paths.cache_dir("compose"))


def cache_key(spec_text: str, overrides: list[str], search_dirs: list[Path]) -> str | None:
    """The entry's name, or None when the result may depend on more than the inputs."""
    digest = hashlib.sha256()
    digest.update(__version__.encode())
    digest.update(json.dumps(overrides).encode())
    texts = [spec_text, *overrides]
    digest.update(spec_text.encode())
    for index, folder in enumerate(search_dirs):
        for path in sorted(folder.rglob("*.yaml")):
            data = path.read_bytes()
            digest.update(f"{index}:{path.relative_to(folder).as_posix()}:{len(data)}".encode())
            digest.update(data)
            texts.append(data.decode("utf-8", errors="replace"))
    if any(_RESOLVER.search(text) for text in texts):
        return None
    return digest.hexdigest()


def load(project_root: Path, key: str, folder: Path = CACHE_DIR) -> dict[str, Any] | None:
    try:
        entry: dict[str, Any] = json.loads((project_root / folder / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    return entry


def store(project_root: Path, key: str, entry: dict[str, Any], folder: Path = CACHE_DIR) -> None:
    where = project_root / folder
    with contextlib.suppress(OSError):
        where.mkdir(parents=True, exist_ok=True)
        tmp = where / f".{key}.{os.getpid()}"
        tmp.write_text(json.dumps(entry, sort_keys=True), encoding="utf-8")
        os.replace(tmp, where / f"{key}.json")
