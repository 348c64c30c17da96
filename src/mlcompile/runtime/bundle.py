"""Fetching the project bundle a step runs from, instead of a project folder in its image.

A bundle is one JSON document, `{"format": ..., "files": {relative path: text}}`: the project
files steps read (pandera schema files, custom modules, the operator's pyproject.toml) and
the plans. The build writes it as `bundle/<sha256>.json` and uploads it to
`<pipeline root>/mlcompile/bundles/<sha256>.json`; the pipeline names the sha256, so a
step runs only the bundle it was built with, whoever can write to the bucket.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path, PurePosixPath

from mlcompile.errors import StepError

from .artifacts import atomic_write_bytes

FORMAT = "mlcompile-bundle/1"
BUNDLES = "mlcompile/bundles"


def bundle_uri(root: str, sha256: str) -> str:
    """Where the bundle of that hash lives under a pipeline root."""
    return f"{root.rstrip('/')}/{BUNDLES}/{sha256}.json"


def safe_relative(path: str) -> bool:
    """A path that stays inside the folder it is written under."""
    pure = PurePosixPath(path)
    return bool(path) and "\\" not in path and not pure.is_absolute() and ".." not in pure.parts


@functools.cache
def fetch_project(root: str, sha256: str) -> Path:
    """A fresh folder holding the bundle `sha256` from the pipeline root `root`, after
    checking the bytes hash to it. Once per process: the steps one process runs share it."""
    from mlcompile.uris import read_bytes

    uri = bundle_uri(root, sha256)
    try:
        data, digest = read_bytes(uri)
    except (OSError, ValueError, ImportError) as exc:
        raise StepError(
            f"cannot fetch the project bundle {uri}: {type(exc).__name__}: {exc} "
            "(the build uploads it: run `mlcompile build` with the pipeline's settings)"
        ) from None
    if digest != sha256:
        raise StepError(
            f"the project bundle {uri} has sha256 {digest}, not the {sha256} this pipeline "
            "was built with: build and upload again"
        )
    document = json.loads(data)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise StepError(f"{uri} is not a {FORMAT} document")
    folder = Path(tempfile.mkdtemp(prefix="mlcompile-project-"))
    for relative, text in sorted(document["files"].items()):
        if not safe_relative(relative):
            raise StepError(f"the project bundle {uri} names an unsafe path: {relative!r}")
        atomic_write_bytes(folder / relative, text.encode("utf-8"))
    return folder


def enter_project(root: str, sha256: str) -> Path:
    """`fetch_project`, made the working folder: a KFP step, one per process, then runs where
    there is nothing but the bundle."""
    folder = fetch_project(root, sha256)
    os.chdir(folder)
    return folder
