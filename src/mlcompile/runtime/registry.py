"""Model registries: numbered versions, movable aliases, an append-only log of events.

One interface (`ModelRegistry`) and two places to keep a registry: a local folder
(`Registry`, below) and an object store's prefix (`ObjectRegistry`, in `objregistry.py`);
`open_registry` picks one by the location. Everything but how an event is committed and
where a version's files go is shared: the log is the truth, aliases are replayed from it,
and every change is a function of the log as it stood, committed as one event.

The local folder:

    <root>/<name>/versions/<n>/   model.txt, model.json, metrics.json, registration.json,
                                  reference.parquet (a sample of the training rows, for
                                  drift monitoring), diagnosis.json (the data of its
                                  pictures in the report)
    <root>/<name>/events.jsonl    one JSON line per register / promote / rollback: the truth
    <root>/<name>/aliases.json    {"production": 3, ...}: the log's aliases, for quick reading
    <root>/<name>/.lock           held (flock) by every change

Each change has one commit point. A version directory is assembled elsewhere and renamed
into place, so it is complete or absent; its "register" line follows. An alias move is
committed by its log line, and aliases.json is rewritten after it. A kill between two writes
therefore leaves a state the log explains, and the next change (under the lock) repairs the
rest first: it drops an unfinished last line, logs a version that was published but not yet
logged, removes staging leftovers and rewrites aliases.json from the log. Readers take no
lock and read aliases from the log, so they never see a torn state either.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import fcntl
import getpass
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from mlcompile import uris
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
    resolve_project_path,
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

T = TypeVar("T")
# what a change decides from the log as it stands: the event to commit (None: nothing to
# do) and what the change returns once that event is committed
Change = Callable[[], tuple[dict[str, Any] | None, T]]


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


def check_model_name(name: str) -> str:
    """`name` if it can name a registered model (a folder, or a key prefix); a UsageError."""
    if not name or name in (".", "..") or name.startswith(".") or any(c in name for c in "/\\\0"):
        raise UsageError(f"'{name}' cannot be a registered model name")
    return name


def stamped(event: Mapping[str, Any]) -> dict[str, Any]:
    """An event as the log keeps it: when, and by whom."""
    return {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        "user": current_user(),
        **event,
    }


def rollback_target(history: Iterable[Mapping[str, Any]], alias: str) -> int | None:
    """The version `alias` pointed at before its latest move, as a stack of its promotes
    unwound by its rollbacks; None when there is none."""
    stack: list[int] = []
    for event in history:
        if event.get("alias") != alias:
            continue
        if event["event"] == "promote":
            stack.append(int(event["to_version"]))
        elif event["event"] == "rollback":
            stack.pop()
    return stack[-2] if len(stack) >= 2 else None


class ModelRegistry(abc.ABC):
    """What every registry does, over what each keeps differently: the committed events
    (`history`), the published versions and their files, and one way to commit an event
    (`_commit`) that runs a change against the log as it stands and appends its event
    without losing a concurrent one."""

    def __init__(self, location: str) -> None:
        self.location = location  # shown in messages
        # what the latest change had to repair first (a change cut off earlier), in words
        self.repairs: list[str] = []

    # ---- what each keeps differently -----------------------------------------------------

    @abc.abstractmethod
    def list_models(self) -> list[str]: ...

    @abc.abstractmethod
    def versions(self, name: str) -> list[int]:
        """The published versions, in order."""

    @abc.abstractmethod
    def history(self, name: str) -> list[dict[str, Any]]:
        """The committed events, in order; a UsageError for an unknown model."""

    @abc.abstractmethod
    def _registration(self, name: str, version: int) -> dict[str, Any]: ...

    @abc.abstractmethod
    def _version(self, name: str, version: int) -> ModelVersion:
        """A published version, its files in a local folder."""

    @abc.abstractmethod
    def _publish(self, name: str, version: int, files: Mapping[str, bytes]) -> dict[str, Any]:
        """Make a version's files durable before its register event names them; what the
        event must carry to find them again."""

    @abc.abstractmethod
    def _commit(self, name: str, change: Change[T], *, create: bool = False) -> T:
        """Run `change` against the log as it stands and commit its event, so no concurrent
        change is lost: the change sees every event committed before its own."""

    # ---- reading -----------------------------------------------------------------------

    def _unknown(self, name: str) -> UsageError:
        hint = did_you_mean(name, self.list_models())
        return UsageError(
            f"no registered model '{name}' in {self.location}" + (f" ({hint})" if hint else "")
        )

    def aliases(self, name: str) -> dict[str, int]:
        return replay_aliases(self.history(name))

    def get(self, name: str, version_or_alias: int | str) -> ModelVersion:
        return self._version(name, self._resolve(name, version_or_alias))

    def _resolve(self, name: str, version_or_alias: int | str) -> int:
        """The published version a version number or an alias names."""
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
        return version

    def production_metrics(self, name: str, alias: str) -> dict[str, Any] | None:
        """The metrics of the version `alias` points at; None if there is no such model or
        alias yet (the first run of a pipeline has nothing to compare with)."""
        if name not in self.list_models() or alias not in self.aliases(name):
            return None
        return self.get(name, alias).metrics()

    def _find(self, name: str, model_sha256: str) -> int | None:
        for version in self.versions(name):
            if self._registration(name, version).get("model_sha256") == model_sha256:
                return version
        return None

    # ---- changing ----------------------------------------------------------------------

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
        check_model_name(name)
        if alias is not None:
            check_alias(alias)
        self.repairs = []
        texts = {
            MODEL_TEXT: bundle.text,
            # KServe's LightGBM server and MLServer load the well-known name model.bst
            SERVING_FILE: bundle.text,
            MODEL_META: dumps_json(bundle.meta),
            METRICS: dumps_json(metrics),
        }
        files = {file: text.encode("utf-8") for file, text in texts.items()}
        if diagnosis is not None:
            files[DIAGNOSIS] = dumps_json(diagnosis).encode("utf-8")
        if reference is not None:
            files[REFERENCE_FILE] = reference

        def add() -> tuple[dict[str, Any] | None, tuple[int, bool]]:
            existing = self._find(name, bundle.sha256)
            if existing is not None:
                return None, (existing, False)
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
            found = {**files, REGISTRATION: dumps_json(registration).encode("utf-8")}
            located = self._publish(name, version, found)
            event = {"event": "register", "model": name, "version": version, **located}
            return event, (version, True)

        version, created = self._commit(name, add, create=True)
        if alias:
            self._commit(name, self._alias_change(name, alias, version, "promote"))
        return replace(self._version(name, version), created=created)

    def _alias_change(
        self,
        name: str,
        alias: str,
        version: int,
        kind: str,
        reason: Mapping[str, Any] | None = None,
    ) -> Change[int]:
        def move() -> tuple[dict[str, Any] | None, int]:
            previous = self.aliases(name).get(alias)
            if previous == version:
                return None, version
            event = {
                "event": kind,
                "model": name,
                "alias": alias,
                "from_version": previous,
                "to_version": version,
            }
            return (event if reason is None else {**event, "reason": dict(reason)}), version

        return move

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
        (checked against the log the move commits after, so no move slips in between)."""
        check_alias(alias)
        self.repairs = []

        def move() -> tuple[dict[str, Any] | None, int]:
            chosen = self._resolve(name, version)
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
            return self._alias_change(name, alias, chosen, "promote", reason)()

        return self._version(name, self._commit(name, move))

    def rollback(self, name: str, alias: str) -> ModelVersion:
        """Point `alias` back at the version it pointed at before its latest move."""
        check_alias(alias)
        self.repairs = []

        def move() -> tuple[dict[str, Any] | None, int]:
            target = rollback_target(self.history(name), alias)
            if target is None:
                raise UsageError(
                    f"alias '{alias}' of model '{name}' has no previous version to roll back to"
                )
            return self._alias_change(name, alias, target, "rollback")()

        return self._version(name, self._commit(name, move))


class Registry(ModelRegistry):
    """The registry in a local folder (the layout in the module docstring)."""

    def __init__(self, root: Path) -> None:
        super().__init__(str(root))
        self.root = root

    # ---- reading -----------------------------------------------------------------------

    def list_models(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "versions").is_dir())

    def _known(self, name: str) -> Path:
        path = self.root / check_model_name(name)
        if not (path / "versions").is_dir():
            raise self._unknown(name)
        return path

    def versions(self, name: str) -> list[int]:
        """The published versions (a version is published by renaming its complete folder)."""
        versions = self._known(name) / "versions"
        return sorted(
            int(p.name)
            for p in versions.iterdir()
            if p.name.isdigit() and (p / REGISTRATION).is_file()
        )

    def _version(self, name: str, version: int) -> ModelVersion:
        path = self.root / name / "versions" / str(version)
        return ModelVersion(name, version, path, dict(read_json(path / REGISTRATION)))

    def _registration(self, name: str, version: int) -> dict[str, Any]:
        return self._version(name, version).registration

    def history(self, name: str) -> list[dict[str, Any]]:
        return read_events(self._known(name) / EVENTS_FILE)

    # ---- changing ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, name: str, *, create: bool = False) -> Iterator[Path]:
        path = self.root / check_model_name(name)
        if create:
            (path / "versions").mkdir(parents=True, exist_ok=True)
        else:
            self._known(name)
        with (path / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self.repairs += self._recover(path, name)
                yield path
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _commit(self, name: str, change: Change[T], *, create: bool = False) -> T:
        # under the lock the log cannot move between the change's reading and its line
        with self._locked(name, create=create) as path:
            event, result = change()
            if event is not None:
                self._log(path, event)
                if event["event"] in ALIAS_MOVES:
                    # committed by the line above; rewritten on recovery if lost
                    atomic_write_json(path / ALIASES_FILE, self.aliases(name))
            return result

    def _publish(self, name: str, version: int, files: Mapping[str, bytes]) -> dict[str, Any]:
        write_files(self.root / name / "versions" / str(version), files)
        return {}

    def recover(self, name: str) -> list[str]:
        """Repair what a killed change left behind, and say what was repaired. Every change
        does this first; reading needs no repair (and takes no lock)."""
        self.repairs = []
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
                registration = self._registration(name, version)
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
        line = (json.dumps(stamped(event), sort_keys=True) + "\n").encode("utf-8")
        boundary("registry.event")
        fd = os.open(path / EVENTS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(line)
            while view:  # a short write continues rather than leave half a line
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)


def open_registry(
    location: str | Path,
    project_root: Path | None = None,
    *,
    outside_allowed: bool = False,
    what: str = "registry",
) -> ModelRegistry:
    """The registry at `location`: an object store's prefix (s3://, gs://, az://), a folder
    named by a file:// URI, or a path (relative to `project_root` when given, and kept
    inside it unless the operator allowed otherwise)."""
    text = str(location)
    found = uris.scheme(text) if isinstance(location, str) else None
    if found in uris.OBJECT_STORES:
        from .objregistry import ObjectRegistry

        return ObjectRegistry(text)
    if found == "file":
        try:
            return Registry(Path(uris.local_path(text)))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if found is not None:
        raise UsageError(
            f"a registry cannot live at '{text}': use a folder, file://, "
            + ", ".join(f"{s}://" for s in uris.OBJECT_STORES)
        )
    if project_root is None:
        return Registry(Path(text))
    return Registry(resolve_project_path(project_root, text, what, outside_allowed=outside_allowed))
