"""A local model registry on disk: numbered versions, movable aliases, an append-only log.

    <root>/<name>/versions/<n>/   model.txt, model.json, metrics.json, registration.json,
                                  reference.parquet (a sample of the training rows, for
                                  drift monitoring), diagnosis.json (the data of its
                                  pictures in the report)
    <root>/<name>/events.jsonl    one JSON line per register / promote / rollback: the truth
    <root>/<name>/aliases.json    {"production": 3, ...}: the log's aliases, for quick reading
    <root>/<name>/.lock           held (flock) by every change

The log is the source of truth, and each change has one commit point. A version directory
is assembled elsewhere and renamed into place, so it is complete or absent; its "register"
line follows. An alias move is committed by its log line, and aliases.json is rewritten
after it. A kill between two writes therefore leaves a state the log explains, and the next
change (under the lock) repairs the rest first: it drops an unfinished last line, logs a
version that was published but not yet logged, removes staging leftovers and rewrites
aliases.json from the log. Readers take no lock and read aliases from the log, so they never
see a torn state either.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getpass
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcompile.errors import StepError, UsageError, did_you_mean
from mlcompile.names import alias_problem

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
from .killpoints import boundary

REGISTRATION = RECORD_FILES["registration"]
METRICS = RECORD_FILES["metrics"]
DIAGNOSIS = RECORD_FILES["diagnosis"]
SERVING_FILE = "model.bst"
REFERENCE_FILE = "reference.parquet"
EVENTS_FILE = "events.jsonl"
ALIASES_FILE = "aliases.json"
ALIAS_MOVES = ("promote", "rollback")


def check_alias(alias: str) -> str:
    """`alias` if it can name a registry alias; a UsageError saying why not otherwise."""
    problem = alias_problem(alias)
    if problem is None:
        return alias
    shown = alias if len(alias) <= 40 else f"{alias[:40]}... ({len(alias)} characters)"
    raise UsageError(f"{shown!r} cannot be a registry alias: {problem}")


def current_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment nor in the password database
        return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"


def read_events(path: Path) -> list[dict[str, Any]]:
    """The committed events of a log: complete lines only. A last line without its newline
    is a write that was cut off (or is still under way) and never happened."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")[:-1]
    events = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except ValueError:
            raise StepError(
                f"{path}:{number}: corrupt registry event (not JSON); the log is append-only, "
                "so this line was changed by something other than mlcompile"
            ) from None
    return events


def replay_aliases(events: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Where each alias points after these events, in order."""
    aliases: dict[str, int] = {}
    for event in events:
        if event.get("event") in ALIAS_MOVES:
            aliases[str(event["alias"])] = int(event["to_version"])
    return aliases


def _read_aliases_file(path: Path) -> dict[str, Any] | None:
    """aliases.json as written ({} when there is none yet), None when unreadable."""
    if not path.exists():
        return {}
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    path: Path
    registration: dict[str, Any]
    created: bool = False  # by the call that returned it (register)

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
        # what the latest change had to repair first (see the module docstring), in words
        self.repairs: list[str] = []

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
        """The published versions (a version is published by renaming its complete folder)."""
        versions = self._known(name) / "versions"
        return sorted(
            int(p.name)
            for p in versions.iterdir()
            if p.name.isdigit() and (p / REGISTRATION).is_file()
        )

    def aliases(self, name: str) -> dict[str, int]:
        return replay_aliases(self.history(name))

    def get(self, name: str, version_or_alias: int | str) -> ModelVersion:
        aliases = self.aliases(name)
        versions = self.versions(name)
        key = str(version_or_alias)
        version = int(key) if key.isdigit() else aliases.get(key)
        if version is None or version not in versions:
            hint = did_you_mean(key, [*aliases, *map(str, versions)])
            shown = key if len(key) <= 40 else f"{key[:40]}…"
            raise UsageError(
                f"model '{name}' has no version or alias '{shown}'" + (f" ({hint})" if hint else "")
            )
        return self._version(name, version)

    def _version(self, name: str, version: int) -> ModelVersion:
        path = self.root / name / "versions" / str(version)
        return ModelVersion(name, version, path, dict(read_json(path / REGISTRATION)))

    def history(self, name: str) -> list[dict[str, Any]]:
        return read_events(self._known(name) / EVENTS_FILE)

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
                self.repairs = self._recover(path, name)
                yield path
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def recover(self, name: str) -> list[str]:
        """Repair what a killed change left behind, and say what was repaired. Every change
        does this first; reading needs no repair (and takes no lock)."""
        with self._locked(name):
            return self.repairs

    def _recover(self, path: Path, name: str) -> list[str]:
        done: list[str] = []
        log = path / EVENTS_FILE
        if log.is_file():
            data = log.read_bytes()
            if data and not data.endswith(b"\n"):
                kept = data.rfind(b"\n") + 1
                os.truncate(log, kept)
                fragment = data[kept:].decode("utf-8", "replace")
                done.append(f"dropped an unfinished last line of {EVENTS_FILE}: {fragment[:200]}")
        logged = {int(e["version"]) for e in read_events(log) if e.get("event") == "register"}
        for version in self.versions(name):
            if version not in logged:
                registration = self._version(name, version).registration
                self._log(
                    path,
                    {
                        "event": "register",
                        "model": name,
                        "version": version,
                        "recovered": True,
                        "registered_at": registration.get("created_at"),
                    },
                )
                done.append(f"logged version {version}, published by a change that was cut off")
        for leftover in [*(path / "versions").glob(".*.tmp"), *path.glob(f".{ALIASES_FILE}.*")]:
            # staging of a killed change: nothing reads it, and the lock says none is running
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
        aliases = replay_aliases(read_events(log))
        if _read_aliases_file(path / ALIASES_FILE) != aliases:
            atomic_write_json(path / ALIASES_FILE, aliases)
            done.append(f"rewrote {ALIASES_FILE} from the log: {aliases}")
        return done

    def _log(self, path: Path, event: dict[str, Any]) -> None:
        record = {
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
            "user": current_user(),
            **event,
        }
        line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
        boundary("registry.event")
        fd = os.open(path / EVENTS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(line)
            while view:  # a short write continues rather than leave half a line
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    def _move_alias(
        self,
        path: Path,
        name: str,
        alias: str,
        version: int,
        event: str,
        reason: Mapping[str, Any] | None = None,
    ) -> None:
        aliases = self.aliases(name)
        previous = aliases.get(alias)
        if previous == version:
            return
        record = {
            "event": event,
            "model": name,
            "alias": alias,
            "from_version": previous,
            "to_version": version,
        }
        self._log(path, record if reason is None else {**record, "reason": dict(reason)})
        # committed by the line above; this view of the log is rewritten on recovery if lost
        atomic_write_json(path / ALIASES_FILE, {**aliases, alias: version})

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
        run_id: str | None = None,
        diagnosis: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """A new version for `bundle`, or the existing version with the same model.txt.
        `reference` (Parquet) is kept with a new version as its monitoring baseline; `run_id`
        names the run that registers it, for lineage."""
        if alias is not None:
            check_alias(alias)
        with self._locked(name, create=True) as path:
            existing = self._find(name, bundle.sha256)
            if existing is None:
                extra = {} if diagnosis is None else {DIAGNOSIS: dumps_json(diagnosis).encode()}
                if reference is not None:
                    extra[REFERENCE_FILE] = reference
                existing = self._add_version(
                    path, name, bundle, metrics, decisions, plan_fingerprint, extra, run_id
                )
            if alias:
                self._move_alias(path, name, alias, existing.version, "promote")
            return existing

    def _find(self, name: str, model_sha256: str) -> ModelVersion | None:
        for version in self.versions(name):
            found = self._version(name, version)
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
        run_id: str | None,
    ) -> ModelVersion:
        version = max(self.versions(name), default=0) + 1
        registration = {
            "model_name": name,
            "version": version,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "user": current_user(),
            "run_id": run_id,
            "plan_fingerprint": plan_fingerprint,
            "model_sha256": bundle.sha256,
            "training_data": bundle.meta.get("training_data", {}),
            "gates": [dict(d) for d in decisions],
        }
        if bundle.meta.get("tuning"):  # only then: other versions' records keep their keys
            # the search that chose the version's parameters: its metric, best trial, study
            registration["tuning"] = bundle.meta["tuning"]
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
        return ModelVersion(name, version, target, registration, created=True)

    def promote(
        self,
        name: str,
        version: int | str,
        alias: str,
        *,
        reason: Mapping[str, Any] | None = None,
        expected: Mapping[str, int] | None = None,
    ) -> ModelVersion:
        """Point `alias` at `version`; `reason` (why, for the log) is kept in the event.
        With `expected`, only while each of those aliases still points where it says
        (checked under the lock, so no move slips in between)."""
        check_alias(alias)
        with self._locked(name) as path:
            chosen = self.get(name, version)
            now = self.aliases(name)
            moved = {a: v for a, v in (expected or {}).items() if now.get(a) != v}
            if moved:
                said = ", ".join(
                    f"'{a}' pointed at v{v}, now at v{now.get(a)}" for a, v in moved.items()
                )
                raise UsageError(
                    f"aliases of '{name}' moved since they were compared ({said}): "
                    "compare again before promoting"
                )
            self._move_alias(path, name, alias, chosen.version, "promote", reason)
        return chosen

    def rollback(self, name: str, alias: str) -> ModelVersion:
        """Point `alias` back at the version it pointed at before its latest move."""
        check_alias(alias)
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
