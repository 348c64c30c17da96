"""A local model registry on disk: numbered versions, movable aliases, an append-only log.

    <root>/<name>/versions/<n>/   model.txt, model.json, metrics.json, registration.json,
                                  reference.parquet (a sample of the training rows, for
                                  drift monitoring), diagnosis.json (the data of its
                                  pictures in the report)
    <root>/<name>/aliases.json    {"production": 3, ...}
    <root>/<name>/events.jsonl    one JSON object per register / promote / rollback
    <root>/<name>/.lock           held (flock) by every change

A version directory is assembled elsewhere and renamed into place, so it is either complete
or absent; aliases.json is replaced atomically; readers take no lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getpass
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcompile.errors import UsageError, did_you_mean

from .artifacts import (
    MODEL_META,
    MODEL_TEXT,
    RECORD_FILES,
    ModelBundle,
    atomic_write_json,
    dumps_json,
    read_json,
    read_model,
    write_files,
)

REGISTRATION = RECORD_FILES["registration"]
METRICS = RECORD_FILES["metrics"]
DIAGNOSIS = RECORD_FILES["diagnosis"]
SERVING_FILE = "model.bst"
REFERENCE_FILE = "reference.parquet"


def current_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment nor in the password database
        return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    path: Path
    registration: dict[str, Any]

    def bundle(self) -> ModelBundle:
        return read_model(self.path)

    def metrics(self) -> dict[str, Any]:
        return dict(read_json(self.path / METRICS))

    def diagnosis(self) -> dict[str, Any] | None:
        """The pictures' data of this version; None for versions registered without it."""
        path = self.path / DIAGNOSIS
        return dict(read_json(path)) if path.is_file() else None

    @property
    def reference_path(self) -> Path:
        return self.path / REFERENCE_FILE


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = root

    # ---- reading -----------------------------------------------------------------------

    def list_models(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "versions").is_dir())

    def _model_dir(self, name: str) -> Path:
        if (
            not name
            or name in (".", "..")
            or name.startswith(".")
            or any(c in name for c in "/\\\0")
        ):
            raise UsageError(f"'{name}' cannot be a registered model name")
        return self.root / name

    def _known(self, name: str) -> Path:
        path = self._model_dir(name)
        if not (path / "versions").is_dir():
            hint = did_you_mean(name, self.list_models())
            raise UsageError(
                f"no registered model '{name}' in {self.root}" + (f" ({hint})" if hint else "")
            )
        return path

    def versions(self, name: str) -> list[int]:
        versions = self._known(name) / "versions"
        return sorted(int(p.name) for p in versions.iterdir() if p.name.isdigit())

    def aliases(self, name: str) -> dict[str, int]:
        path = self._known(name) / "aliases.json"
        return {str(k): int(v) for k, v in read_json(path).items()} if path.exists() else {}

    def get(self, name: str, version_or_alias: int | str) -> ModelVersion:
        aliases = self.aliases(name)
        versions = self.versions(name)
        key = str(version_or_alias)
        version = int(key) if key.isdigit() else aliases.get(key)
        if version is None or version not in versions:
            hint = did_you_mean(key, [*aliases, *map(str, versions)])
            raise UsageError(
                f"model '{name}' has no version or alias '{key}'" + (f" ({hint})" if hint else "")
            )
        path = self.root / name / "versions" / str(version)
        return ModelVersion(name, version, path, dict(read_json(path / REGISTRATION)))

    def history(self, name: str) -> list[dict[str, Any]]:
        path = self._known(name) / "events.jsonl"
        if not path.exists():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def production_metrics(self, name: str, alias: str) -> dict[str, Any] | None:
        """The metrics of the version `alias` points at; None if there is no such model or
        alias yet (the first run of a pipeline has nothing to compare with)."""
        if name not in self.list_models() or alias not in self.aliases(name):
            return None
        return self.get(name, alias).metrics()

    # ---- changing ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, name: str, *, create: bool = False) -> Iterator[Path]:
        path = self._model_dir(name)
        if create:
            (path / "versions").mkdir(parents=True, exist_ok=True)
        else:
            self._known(name)
        with (path / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield path
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _log(self, path: Path, event: dict[str, Any]) -> None:
        record = {
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
            "user": current_user(),
            **event,
        }
        with (path / "events.jsonl").open("a", encoding="utf-8") as log:
            log.write(json.dumps(record, sort_keys=True) + "\n")
            log.flush()
            os.fsync(log.fileno())

    def _move_alias(self, path: Path, name: str, alias: str, version: int, event: str) -> None:
        aliases = self.aliases(name)
        previous = aliases.get(alias)
        if previous == version:
            return
        atomic_write_json(path / "aliases.json", {**aliases, alias: version})
        self._log(
            path,
            {
                "event": event,
                "model": name,
                "alias": alias,
                "from_version": previous,
                "to_version": version,
            },
        )

    def register(
        self,
        name: str,
        bundle: ModelBundle,
        metrics: Mapping[str, Any],
        *,
        decisions: Sequence[Mapping[str, Any]] = (),
        plan_fingerprint: str | None = None,
        alias: str | None = None,
        reference: bytes | None = None,
        diagnosis: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """A new version for `bundle`, or the existing version with the same model.txt.
        `reference` (Parquet) is kept with a new version as its monitoring baseline."""
        with self._locked(name, create=True) as path:
            existing = self._find(name, bundle.sha256)
            if existing is None:
                extra = {} if diagnosis is None else {DIAGNOSIS: dumps_json(diagnosis).encode()}
                if reference is not None:
                    extra[REFERENCE_FILE] = reference
                existing = self._add_version(
                    path, name, bundle, metrics, decisions, plan_fingerprint, extra
                )
            if alias:
                self._move_alias(path, name, alias, existing.version, "promote")
            return existing

    def _find(self, name: str, model_sha256: str) -> ModelVersion | None:
        for version in self.versions(name):
            found = self.get(name, version)
            if found.registration.get("model_sha256") == model_sha256:
                return found
        return None

    def _add_version(
        self,
        path: Path,
        name: str,
        bundle: ModelBundle,
        metrics: Mapping[str, Any],
        decisions: Sequence[Mapping[str, Any]],
        plan_fingerprint: str | None,
        extra: Mapping[str, bytes],
    ) -> ModelVersion:
        version = max(self.versions(name), default=0) + 1
        registration = {
            "model_name": name,
            "version": version,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "user": current_user(),
            "plan_fingerprint": plan_fingerprint,
            "model_sha256": bundle.sha256,
            "training_data": bundle.meta.get("training_data", {}),
            "gates": [dict(d) for d in decisions],
        }
        target = path / "versions" / str(version)
        files = {
            MODEL_TEXT: bundle.text,
            # KServe's LightGBM server and MLServer load the well-known name model.bst
            SERVING_FILE: bundle.text,
            MODEL_META: dumps_json(bundle.meta),
            METRICS: dumps_json(metrics),
            REGISTRATION: dumps_json(registration),
        }
        blobs = {file: text.encode("utf-8") for file, text in files.items()}
        write_files(target, {**blobs, **extra})
        self._log(path, {"event": "register", "model": name, "version": version})
        return ModelVersion(name, version, target, registration)

    def promote(self, name: str, version: int | str, alias: str) -> ModelVersion:
        chosen = self.get(name, version)
        with self._locked(name) as path:
            self._move_alias(path, name, alias, chosen.version, "promote")
        return chosen

    def rollback(self, name: str, alias: str) -> ModelVersion:
        """Point `alias` back at the version it pointed at before its latest move."""
        with self._locked(name) as path:
            stack: list[int] = []
            for event in self.history(name):
                if event.get("alias") != alias:
                    continue
                if event["event"] == "promote":
                    stack.append(int(event["to_version"]))
                elif event["event"] == "rollback":
                    stack.pop()
            if len(stack) < 2:
                raise UsageError(
                    f"alias '{alias}' of model '{name}' has no previous version to roll back to"
                )
            self._move_alias(path, name, alias, stack[-2], "rollback")
        return self.get(name, alias)
