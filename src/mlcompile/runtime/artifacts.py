"""Artifacts on disk: every artifact is a directory, published atomically.

A reader never sees a half-written artifact: files are assembled in a temporary directory next
to the target, fsynced, and renamed into place. Datasets are Parquet written so that the same
DataFrame gives the same bytes, which is what makes content hashes and caching meaningful.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcompile.errors import StepError
from mlcompile.trust import HOW_TO_ALLOW_PATHS, grants

from .killpoints import boundary

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

# pandas and pyarrow are imported where datasets are read or written: the executor's cache
# checks (hashes, JSON records) must not pay for them on a run where everything is cached.

DATA_FILE = "data.parquet"
META_FILE = "meta.json"
MODEL_TEXT = "model.txt"
MODEL_META = "model.json"

# Artifact types made of a single JSON document, and the file that holds it.
RECORD_FILES = {
    "transformer": "transformer.json",
    "metrics": "metrics.json",
    "report": "report.json",
    "decision": "decision.json",
    "registration": "registration.json",
    "file": "file.json",
    "drift": "drift.json",
    "diagnosis": "diagnosis.json",
    "tuning": "tuning.json",
}


# ---- JSON ------------------------------------------------------------------------------


def json_safe(value: Any) -> Any:
    """Plain JSON types only: numpy scalars unwrapped, NaN and infinities become null."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return json_safe(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, str | int | bool):
        return value
    raise TypeError(f"cannot write {type(value).__name__} to JSON: {value!r}")


def json_scalar(value: Any) -> Any:
    """A data value for a report: JSON-safe when it can be, its text otherwise."""
    try:
        return json_safe(value)
    except TypeError:
        return str(value)


def dumps_json(value: Any) -> str:
    return json.dumps(json_safe(value), sort_keys=True, indent=2, allow_nan=False) + "\n"


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StepError(f"missing artifact file {path}") from None
    except json.JSONDecodeError as exc:
        raise StepError(f"corrupt JSON in {path}: {exc}") from None


# ---- atomic writes ---------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# mkstemp and mkdtemp create private entries (0600, 0700); what is published is shared.
FILE_MODE, DIR_MODE = 0o644, 0o755


def atomic_write_bytes(path: Path, data: bytes) -> str:
    """Write `data` to `path` atomically; returns its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _write_synced(tmp, data)
        tmp.chmod(FILE_MODE)
        boundary("artifact.file")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return hashlib.sha256(data).hexdigest()


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_bytes(path, dumps_json(value).encode("utf-8"))


@contextlib.contextmanager
def artifact_dir(target: Path) -> Iterator[Path]:
    """Yield an empty staging directory that replaces `target` when the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        staging.chmod(DIR_MODE)
        yield staging
        _fsync_dir(staging)
        boundary("artifact.dir")
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_dir(target.parent)


def _swap_in(staging: Path, target: Path) -> None:
    # rename(2) replaces a missing or empty directory in one step; a non-empty one (a re-run)
    # must move aside first, so readers may briefly find nothing but never a mix of both.
    try:
        os.replace(staging, target)
        return
    except OSError:
        if not target.is_dir():
            raise
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
    os.replace(target, old / "previous")
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def write_files(target: Path, files: Mapping[str, bytes]) -> None:
    with artifact_dir(target) as staging:
        for name, data in files.items():
            _write_synced(staging / name, data)


# ---- datasets --------------------------------------------------------------------------


def parquet_bytes(df: pd.DataFrame) -> bytes:
    """Parquet without the pandas index; identical frames give identical bytes."""
    import pyarrow as pa

    return table_parquet_bytes(pa.Table.from_pandas(df, preserve_index=False))


def table_parquet_bytes(table: Any) -> bytes:
    """Parquet of an Arrow table, written as `parquet_bytes` writes a frame's."""
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def dataset_meta(df: pd.DataFrame, data_sha256: str, sources: Mapping[str, str]) -> dict[str, Any]:
    return {
        "rows": len(df),
        "columns": {str(name): str(dtype) for name, dtype in df.dtypes.items()},
        "sha256": data_sha256,
        "sources": dict(sources),
    }


def write_dataset(target: Path, df: pd.DataFrame, sources: Mapping[str, str]) -> dict[str, Any]:
    data = parquet_bytes(df)
    meta = dataset_meta(df, hashlib.sha256(data).hexdigest(), sources)
    write_files(target, {DATA_FILE: data, META_FILE: dumps_json(meta).encode("utf-8")})
    return meta


def read_dataset(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    meta = read_json(path / META_FILE)
    data_path = path / DATA_FILE
    if not data_path.is_file():
        raise StepError(f"missing artifact file {data_path}")
    if sha256_file(data_path) != meta.get("sha256"):
        raise StepError(f"{data_path} does not match the sha256 in its meta.json")
    import pandas as pd

    return pd.read_parquet(data_path), meta


# ---- models and JSON records -----------------------------------------------------------


@dataclass(frozen=True)
class ModelBundle:
    """A trained model: LightGBM's text model plus everything needed to use it on raw rows."""

    text: str
    meta: dict[str, Any]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def write_model(target: Path, bundle: ModelBundle) -> None:
    write_files(
        target,
        {
            MODEL_TEXT: bundle.text.encode("utf-8"),
            MODEL_META: dumps_json(bundle.meta).encode("utf-8"),
        },
    )


def read_model(path: Path) -> ModelBundle:
    try:
        text = (path / MODEL_TEXT).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StepError(f"missing artifact file {path / MODEL_TEXT}") from None
    return ModelBundle(text=text, meta=read_json(path / MODEL_META))


def write_record(target: Path, kind: str, value: Any) -> None:
    write_files(target, {RECORD_FILES[kind]: dumps_json(value).encode("utf-8")})


def read_record(path: Path, kind: str) -> Any:
    return read_json(path / RECORD_FILES[kind])


# ---- project paths ---------------------------------------------------------------------


def resolve_project_path(
    project_root: Path, relative: str, what: str, *, outside_allowed: bool = False
) -> Path:
    """A path from the spec, resolved against the project root. Escaping the root needs a
    plan built with the operator's grant (`outside_allowed`) and that grant where the step
    runs: the plan alone cannot carry it."""
    root = project_root.resolve()
    resolved = (root / relative).resolve()
    if not resolved.is_relative_to(root) and not (
        outside_allowed and grants(root).paths_outside_project
    ):
        raise StepError(
            f"{what} '{relative}' points outside the project folder {root} ({HOW_TO_ALLOW_PATHS})"
        )
    return resolved
