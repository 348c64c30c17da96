"""The model registry on object storage (s3://, and gs:// or az:// where the filesystem
writes create-only objects), safe for pipelines that change it at the same time.

    <prefix>/<name>/events/event-000001.json   one immutable object per event, numbered
    <prefix>/.blobs/<sha256>                   a version's files, by their content

An object store has no lock and no append, but it can create an object only if none has
that key (S3 `PutObject` with `If-None-Match: *`, GCS `ifGenerationMatch=0`). Each event is
such an object, numbered one past the last the writer read: of two writers that read the
same log, one creates the number and the other is refused, reads the log again, decides
again (the version number, the alias's previous version) and tries the next number. No
move is lost and every change saw all the events before its own. Aliases are replayed from
the events, as for the local folder.

A version's files go up under their content hashes before the register event names them,
so an event never names a missing file: a kill in between leaves only blobs no event names.
Objects are never changed after they are written, so a reader caches every event it has
read and every file it has fetched (in a local folder keyed by the files' hashes, where the
model, its metrics and its reference rows are read like a local version's).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlcompile import paths, uris
from mlcompile.errors import StepError, UsageError

from .artifacts import write_files
from .killpoints import boundary
from .registry import (
    REGISTRATION,
    Change,
    ModelRegistry,
    ModelVersion,
    T,
    check_model_name,
    stamped,
)

EVENTS = "events"
BLOBS = ".blobs"  # a model name never starts with a dot, so it cannot clash with one
_EVENT_KEY = re.compile(r"^event-(\d+)\.json$")
# a writer refused this many times in a row gives up: far more than concurrent pipelines
# promoting the same model need, and a bound on a store that refuses every write
MAX_ATTEMPTS = 64


def event_key(number: int) -> str:
    return f"event-{number:06d}.json"


class ObjectRegistry(ModelRegistry):
    def __init__(self, uri: str, cache_dir: Path | None = None) -> None:
        super().__init__(uri.rstrip("/"))
        self.fs, path = uris.filesystem(self.location)
        self.prefix = path.rstrip("/")
        if not _writes_create_only(type(self.fs)):
            raise UsageError(
                f"the filesystem of '{uri}' cannot write create-only objects, which the "
                "registry's concurrent changes need (s3:// can; upgrade gcsfs or adlfs)"
            )
        self.cache_dir = cache_dir or paths.user_cache_dir("registry")
        self._events: dict[str, dict[str, Any]] = {}  # key -> event: objects never change
        self._pinned: dict[str, list[dict[str, Any]]] = {}  # the log a change decides from
        self._registrations: dict[str, dict[str, Any]] = {}  # by the blob's sha256

    # ---- reading -----------------------------------------------------------------------

    def list_models(self) -> list[str]:
        try:
            found = self.fs.ls(self.prefix, detail=True, refresh=True)
        except FileNotFoundError:
            return []
        names = (str(entry["name"]).rstrip("/").rsplit("/", 1)[-1] for entry in found)
        # a model's folder exists once its first event does (its files are with the blobs)
        return sorted(
            n for n, e in zip(names, found, strict=True) if e["type"] == "directory" and n[0] != "."
        )

    def _read_events(self, name: str) -> list[dict[str, Any]]:
        folder = f"{self.prefix}/{check_model_name(name)}/{EVENTS}"
        try:
            keys = self.fs.ls(folder, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        numbered = sorted(
            (int(m.group(1)), str(key))
            for key in keys
            if (m := _EVENT_KEY.match(str(key).rsplit("/", 1)[-1]))
        )
        for expected, (number, key) in enumerate(numbered, start=1):
            if number != expected:
                raise StepError(
                    f"{self.location}/{name}/{EVENTS}: event {expected} is missing before "
                    f"{key.rsplit('/', 1)[-1]}; events are only ever added, so something other "
                    "than mlcompile removed it"
                )
        missing = [key for _, key in numbered if key not in self._events]
        if missing:
            # fetched together (s3fs asks for them concurrently), on the first read only
            fetched = self.fs.cat(missing, on_error="raise")
            for key in missing:
                data = fetched[key]
                try:
                    self._events[key] = json.loads(data)
                except (TypeError, ValueError):
                    raise StepError(
                        f"{self.location}/{key.removeprefix(self.prefix + '/')}: corrupt "
                        "registry event (not JSON); events are never rewritten, so this one was "
                        "written by something other than mlcompile"
                    ) from None
        return [self._events[key] for _, key in numbered]

    def _cat(self, key: str) -> bytes:
        return bytes(self.fs.cat_file(key))

    def history(self, name: str) -> list[dict[str, Any]]:
        if name in self._pinned:
            return list(self._pinned[name])
        events = self._read_events(name)
        if not events:
            raise self._unknown(name)
        return events

    def versions(self, name: str) -> list[int]:
        return sorted(int(e["version"]) for e in self.history(name) if e["event"] == "register")

    def _files(self, name: str, version: int) -> dict[str, str]:
        for event in self.history(name):
            if event["event"] == "register" and int(event["version"]) == version:
                return dict(event["files"])
        raise self._unknown(f"{name}@{version}")

    def _blob(self, sha256: str) -> bytes:
        data = self._cat(f"{self.prefix}/{BLOBS}/{sha256}")
        if hashlib.sha256(data).hexdigest() != sha256:
            raise StepError(
                f"{self.location}/{BLOBS}/{sha256} does not hold the bytes its name says "
                "(changed by something other than mlcompile)"
            )
        return data

    def _registration(self, name: str, version: int) -> dict[str, Any]:
        sha = self._files(name, version)[REGISTRATION]
        if sha not in self._registrations:
            self._registrations[sha] = json.loads(self._blob(sha))
        return dict(self._registrations[sha])

    def _local(self, files: Mapping[str, str]) -> Path:
        """The local folder holding these files, fetched on first use."""
        digest = hashlib.sha256(json.dumps(dict(files), sort_keys=True).encode()).hexdigest()
        folder = self.cache_dir / digest
        if not (folder / REGISTRATION).is_file():
            write_files(folder, {file: self._blob(sha) for file, sha in files.items()})
        return folder

    def _version(self, name: str, version: int) -> ModelVersion:
        folder = self._local(self._files(name, version))
        registration = json.loads((folder / REGISTRATION).read_text(encoding="utf-8"))
        return ModelVersion(name, version, folder, registration)

    # ---- changing ----------------------------------------------------------------------

    def _publish(self, name: str, version: int, files: Mapping[str, bytes]) -> dict[str, Any]:
        located = {file: hashlib.sha256(data).hexdigest() for file, data in files.items()}
        for file, sha in located.items():
            key = f"{self.prefix}/{BLOBS}/{sha}"
            if not self.fs.exists(key):  # the same bytes, written already by any version
                boundary("registry.blob")
                self.fs.pipe_file(key, files[file])
        # the reader that registered it reads it from here, not back from the store
        digest = hashlib.sha256(json.dumps(located, sort_keys=True).encode()).hexdigest()
        if not (self.cache_dir / digest / REGISTRATION).is_file():
            write_files(self.cache_dir / digest, files)
        return {"files": located}

    def _commit(self, name: str, change: Change[T], *, create: bool = False) -> T:
        for attempt in range(MAX_ATTEMPTS):
            events = self._read_events(name)
            if not events and not create:
                raise self._unknown(name)
            self._pinned[name] = events
            try:
                event, result = change()
            finally:
                del self._pinned[name]
            if event is None:
                return result
            key = f"{self.prefix}/{name}/{EVENTS}/{event_key(len(events) + 1)}"
            record = stamped(event)
            boundary("registry.event")
            try:
                self.fs.pipe_file(key, json.dumps(record, sort_keys=True).encode(), mode="create")
            except FileExistsError:
                # another writer took the number: read what it did, decide again
                time.sleep(random.uniform(0, min(1.0, 0.01 * 2**attempt)))
                continue
            self._events[key] = record
            return result
        raise StepError(
            f"{self.location}/{name}: {MAX_ATTEMPTS} attempts to add an event were all refused "
            "(others kept writing first); try again"
        )


def _writes_create_only(fs_type: type) -> bool:
    """Whether the filesystem writes an object only if it is absent, in one request: its own
    pipe_file takes mode='create' (s3fs: If-None-Match; gcsfs: ifGenerationMatch). fsspec's
    fallback checks and then writes, which two writers can both pass."""
    import inspect

    for klass in fs_type.__mro__:
        if klass.__module__.startswith("fsspec."):
            return False
        for attr in ("_pipe_file", "pipe_file"):
            method = klass.__dict__.get(attr)
            if method is not None:
                return "mode" in inspect.signature(method).parameters
    return False
