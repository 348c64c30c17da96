"""Run a plan on this machine: cached by content, independent steps in parallel.

A step's cache key hashes its fingerprint (kind, params, upstream fingerprints), the cache
keys of its inputs, the runtime's code, and what the plan cannot know: the content of data
files, and for gates the production model they compare with. Changing one model's params
therefore re-runs that model's train, evaluate, gate and deploy steps and nothing else.

After a failure no new step starts (unless keep_going); running ones finish; the store only
ever holds complete entries. Steps run in threads: LightGBM, DuckDB, Arrow and most of
pandas release the GIL, and threads share the already-imported libraries.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcompile.errors import ExitCode, MlcompileError, StepError
from mlcompile.plan import (
    DECISION_KINDS,
    STEP_DEFS,
    Effect,
    Node,
    OutsideState,
    Plan,
    StepKind,
    canonical_json,
    make_node_id,
    sha256_text,
)
from mlcompile.runtime.artifacts import sha256_file
from mlcompile.runtime.locking import project_lock
from mlcompile.runtime.runrecord import (
    DONE,
    RUN_FORMAT,
    Failure,
    RunLog,
    RunRecord,
    RunStatus,
    StepOutcome,
    StepStatus,
)
from mlcompile.runtime.store import Store, code_version
from mlcompile.runtime.trail.events import PipelineRun
from mlcompile.runtime.trail.run import RunTrail
from mlcompile.uris import is_uri

if TYPE_CHECKING:
    from mlcompile.runtime.registry import ModelRegistry

EventSink = Callable[[dict[str, Any]], None]
_RUNTIME_DIR = Path(__file__).resolve().parent


@dataclass
class Execution:
    """What a run did: the run record, also written to runs/<id>/run.json."""

    record: RunRecord
    exit_code: int
    run_dir: Path

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class _State:
    log: RunLog
    trail: RunTrail
    keys: dict[str, str] = field(default_factory=dict)
    steps: dict[str, StepOutcome] = field(default_factory=dict)
    failure: Failure | None = None

    def step(self, node_id: str, outcome: StepOutcome) -> None:
        """Record a step's outcome, in the run record and, at once, in the run's log."""
        self.steps[node_id] = outcome
        self.log.step(node_id, outcome)


def new_run_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    # os.urandom is what secrets.token_hex reads; neither secrets nor socket (for the host
    # name) is imported on a no-op run's path
    return f"{stamp}-{os.urandom(3).hex()}"


class Executor:
    def __init__(
        self,
        plan: Plan,
        project_root: Path,
        store_dir: Path,
        runs_dir: Path,
        *,
        jobs: int = 0,
        force: bool = False,
        use_cache: bool = True,
        keep_going: bool = False,
        on_event: EventSink | None = None,
    ) -> None:
        self.plan = plan
        self.root = project_root.resolve()
        self.store = Store(store_dir)
        self.runs_dir = runs_dir
        self.jobs = jobs if jobs > 0 else (os.cpu_count() or 1)
        self.force = force
        self.use_cache = use_cache
        self.keep_going = keep_going
        self.emit: EventSink = on_event or (lambda event: None)
        self.threads = max(1, (os.cpu_count() or 1) // self.jobs)
        self.code = code_version([_RUNTIME_DIR])
        self.clock = time.perf_counter()

    # ---- cache keys ---------------------------------------------------------------------

    def cache_key(self, node: Node, keys: dict[str, str]) -> str:
        payload = {
            "fingerprint": node.fingerprint,
            "inputs": {n: f"{keys[r.node]}/{r.output}" for n, r in sorted(node.inputs.items())},
            "code": self.code,
            "outside": self._outside_state(node, keys),
        }
        return sha256_text(canonical_json(payload))

    def _outside_state(self, node: Node, keys: dict[str, str]) -> Any:
        """What a step reads that is not in the plan (its kind's StepDef says which)."""
        return _OUTSIDE_STATE[STEP_DEFS[node.kind].outside](self, node, keys)

    def _data_file(self, node: Node, keys: dict[str, str]) -> str | None:
        if node.params.get("format") == "sql":
            return None  # a query reads other sources, whose own keys this key covers
        if is_uri(str(node.params["path"])):
            return uri_version(str(node.params["path"]), node.id)
        return self.store.file_hash(self._path(node.params["path"], node))

    def _schema_file(self, node: Node, keys: dict[str, str]) -> str | None:
        schema_file = node.params.get("schema", {}).get("file")
        return self.store.file_hash(self._path(schema_file, node)) if schema_file else None

    def _custom_code(self, node: Node, keys: dict[str, str]) -> dict[str, str]:
        return _custom_code(node, self.root)

    def _effect_in_place(self, node: Node, key: str, record: dict[str, Any]) -> bool:
        """A cached deploy step counts only if what it did outside the store is still there."""
        return _EFFECT_IN_PLACE[STEP_DEFS[node.kind].effect](self, node, key, record)

    def _file_in_place(self, node: Node, key: str, record: dict[str, Any]) -> bool:
        from mlcompile.runtime.artifacts import read_record

        written = read_record(self.store.entry(key) / "file", "file")
        path = self._path(written["path"], node)
        return path.is_file() and sha256_file(path) == written["sha256"]

    def _report_in_place(self, node: Node, key: str, record: dict[str, Any]) -> bool:
        summary = record.get("summary", {})
        path = self._path(summary.get("report", node.params["report"]), node)
        return path.is_file() and sha256_file(path) == summary.get("report_sha256")

    def _registration_in_place(self, node: Node, key: str, record: dict[str, Any]) -> bool:
        registry, name = self._registry(node)
        version = record.get("summary", {}).get("version")
        return name in registry.list_models() and version in registry.versions(name)

    def _baseline(self, node: Node, keys: dict[str, str]) -> int | None:
        """The registry version a gate compares with; None when there is none, or when it is
        this very model (a re-run after registering compares the model with itself)."""
        registry, name = self._registry(node)
        if name not in registry.list_models():
            return None
        version = registry.aliases(name).get(node.params["compare_alias"])
        trained = keys.get(make_node_id(StepKind.TRAIN, node.params["model"]))
        if version is None or trained is None:
            return version
        model_file = self.store.entry(trained) / "model" / "model.txt"
        current = registry.get(name, version).registration.get("model_sha256")
        if model_file.is_file() and sha256_file(model_file) == current:
            return None
        return version

    def _watched(self, node: Node, keys: dict[str, str]) -> dict[str, Any]:
        """A monitor's result changes with the version its alias points at and, for a
        prediction-log window, with the log's files (parts are only ever added)."""
        registry, name = self._registry(node)
        known = name in registry.list_models()
        state: dict[str, Any] = {
            "version": registry.aliases(name).get(node.params["alias"]) if known else None
        }
        window = node.params["current"].get("prediction_log")
        if window:
            log_dir = self._path(window["path"], node)
            from mlcompile.runtime.predlog import PART_GLOB

            parts = sorted(log_dir.glob(PART_GLOB)) if log_dir.is_dir() else []
            state["log"] = [[p.name, p.stat().st_size] for p in parts]
        return state

    def _path(self, relative: str, node: Node) -> Path:
        from mlcompile.runtime.artifacts import resolve_project_path

        allowed = bool(node.params.get("outside_project"))
        return resolve_project_path(self.root, relative, node.id, outside_allowed=allowed)

    def _registry(self, node: Node) -> tuple[ModelRegistry, str]:
        from mlcompile.runtime.registry import open_registry

        location = node.params["registry"]
        allowed = bool(node.params.get("outside_project"))
        registry = open_registry(location, self.root, outside_allowed=allowed, what=node.id)
        return registry, node.params["registered_name"]

    # ---- running ------------------------------------------------------------------------

    def run(self) -> Execution:
        run_id = new_run_id()
        run_dir = self.runs_dir / run_id
        lock_dir = self.store.root
        if not self.use_cache:
            # the run's artifacts live with its record, so the shared cache is neither read
            # nor written, and lineage can still find what each step wrote
            self.store = Store(run_dir / "artifacts")
        with (
            project_lock(lock_dir, on_wait=lambda: self.emit({"event": "waiting"})),
            RunLog(run_dir) as log,
        ):
            started = time.time()
            state = _State(log, RunTrail(PipelineRun.of(self.plan, run_id, "local"), self.root))
            # written before any step runs: a run killed at any point leaves its record
            log.start(self._record(run_id, state, started, None), self.plan.to_json())
            self.store.clean_staging()
            interrupted = False
            try:
                self._schedule(state, run_id)
            except KeyboardInterrupt:
                interrupted = True
            finally:
                self.store.save_hashes()
            exit_code = (
                130
                if interrupted
                else state.failure.exit_code
                if state.failure
                else int(ExitCode.OK)
            )
            record = self._record(run_id, state, started, exit_code, interrupted=interrupted)
            log.finish(record)
            state.trail.finished(
                record["status"], exit_code, record["error"], self.plan.spec_sha256
            )
        if interrupted:
            raise KeyboardInterrupt
        return Execution(record, exit_code, run_dir)

    def _schedule(self, state: _State, run_id: str) -> None:
        order = self.plan.topological()
        waiting = {n.id: set(self.plan.dependencies(n.id)) for n in order}
        users: dict[str, list[str]] = {n.id: [] for n in order}
        for node_id, deps in waiting.items():
            for dep in deps:
                users[dep].append(node_id)
        ready = [n.id for n in order if not waiting[n.id]]
        running: dict[Future[StepOutcome], str] = {}
        blocked: set[str] = set()

        def finish(node_id: str, ok: bool) -> None:
            for user in users[node_id]:
                if not ok:
                    self._skip(user, state, users, blocked)
                    continue
                waiting[user].discard(node_id)
                if not waiting[user] and user not in blocked:
                    ready.append(user)

        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="mlcompile") as pool:
            try:
                while ready or running:
                    stop = state.failure is not None and not self.keep_going
                    while ready and len(running) < self.jobs and not stop:
                        node = self.plan.node(ready.pop(0))
                        key = self.cache_key(node, state.keys)
                        state.keys[node.id] = key
                        if self._cached(node, key, state):
                            finish(node.id, True)
                            continue
                        state.trail.started()
                        self.emit({"event": "started", "node": node.id, "kind": node.kind})
                        state.log.step(node.id, {"status": StepStatus.STARTED, "key": key})
                        inputs = {
                            name: self.store.entry(state.keys[ref.node]) / ref.output
                            for name, ref in node.inputs.items()
                        }
                        future = pool.submit(self._execute, node, key, inputs, state)
                        running[future] = node.id
                    if stop:
                        ready.clear()
                    if not running:
                        continue
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        node_id = running.pop(future)
                        outcome = future.result()
                        state.step(node_id, outcome)
                        ok = outcome["status"] == StepStatus.RAN
                        if not ok and state.failure is None:
                            state.failure = Failure(
                                node_id, outcome.get("exit_code", 1), outcome.get("error", "")
                            )
                        self.emit(
                            {"event": "finished" if ok else "failed", "node": node_id, **outcome}
                        )
                        finish(node_id, ok)
            except KeyboardInterrupt:
                for future in running:
                    future.cancel()
                raise
        for node in order:
            if node.id not in state.steps:
                state.step(node.id, {"status": StepStatus.NOT_RUN})

    def _skip(
        self, node_id: str, state: _State, users: dict[str, list[str]], blocked: set[str]
    ) -> None:
        if node_id in blocked:
            return
        blocked.add(node_id)
        state.step(node_id, {"status": StepStatus.SKIPPED, "reason": "an upstream step failed"})
        self.emit({"event": "skipped", "node": node_id})
        for user in users[node_id]:
            self._skip(user, state, users, blocked)

    def _cached(self, node: Node, key: str, state: _State) -> bool:
        if self.force or not self.use_cache or not self.store.has(key):
            return False
        record = self.store.record(key)
        if not self._effect_in_place(node, key, record):
            return False
        outcome: StepOutcome = {
            "status": StepStatus.CACHED,
            "seconds": 0.0,
            "key": key,
            "summary": record["summary"],
        }
        state.step(node.id, outcome)
        entry = self.store.entry(key)
        inputs = {
            name: self.store.entry(state.keys[ref.node]) / ref.output
            for name, ref in node.inputs.items()
        }
        state.trail.cached(node, inputs, {name: entry / name for name in node.outputs}, outcome)
        self.emit({"event": "cached", "node": node.id, "kind": node.kind})
        return True

    def _execute(self, node: Node, key: str, inputs: dict[str, Path], state: _State) -> StepOutcome:
        from mlcompile.runtime.steps import StepContext, run_step

        run_id = state.trail.run.id
        run_dir = self.runs_dir / run_id
        staged = self.store.staging()
        outputs = {name: staged / name for name in node.outputs}
        started = time.perf_counter()
        begun = round(started - self.clock, 3)
        try:
            result = run_step(
                node.kind,
                dict(node.params),
                inputs,
                outputs,
                StepContext(
                    self.root,
                    num_threads=self.threads,
                    fingerprint=node.fingerprint,
                    run_id=run_id,
                    trail=state.trail.step(node),
                ),
            )
        except BaseException as exc:
            seconds = round(time.perf_counter() - started, 3)
            kept = self._keep_failed(node, staged, run_dir, exc)
            self.store.discard(staged)
            if isinstance(exc, MlcompileError):
                code, message = int(exc.exit_code), exc.message
            elif isinstance(exc, Exception):
                code, message = int(ExitCode.BACKEND_FAILED), f"{type(exc).__name__}: {exc}"
            else:
                raise
            return {
                "status": StepStatus.FAILED,
                "seconds": seconds,
                "key": key,
                "exit_code": code,
                "error": message,
                "artifacts": kept,
                "start": begun,
            }
        seconds = round(time.perf_counter() - started, 3)
        summary = result.summary
        self.store.commit(key, staged, {"node": node.id, "kind": node.kind, "summary": summary})
        return {
            "status": StepStatus.RAN,
            "seconds": seconds,
            "key": key,
            "summary": summary,
            "start": begun,
            "end": round(time.perf_counter() - self.clock, 3),
        }

    def _keep_failed(
        self, node: Node, staged: Path, run_dir: Path, exc: BaseException
    ) -> str | None:
        """Keep what a failed step wrote (a validation report, a gate decision) for the user."""
        target = run_dir / "failed" / _safe(node.id)
        target.mkdir(parents=True, exist_ok=True)
        for item in staged.iterdir():
            shutil.copytree(item, target / item.name, dirs_exist_ok=True)
        (target / "error.txt").write_text(
            "".join(traceback.format_exception(exc)), encoding="utf-8"
        )
        return str(target)

    def _record(
        self,
        run_id: str,
        state: _State,
        started: float,
        exit_code: int | None,
        *,
        interrupted: bool = False,
    ) -> RunRecord:
        """The run record; with no exit code yet, the one a run starts with (status running)."""
        metrics, decisions = {}, {}
        for node in self.plan.nodes:
            step = state.steps.get(node.id)
            outputs = self._output_dirs(node, step) if step else {}
            if node.kind == "evaluate" and "metrics" in outputs:
                metrics[node.name] = _read_json(outputs["metrics"] / "metrics.json")
            if node.kind in DECISION_KINDS and "decision" in outputs:
                decisions[node.name] = _read_json(outputs["decision"] / "decision.json")
        if exit_code is None:
            status = RunStatus.RUNNING
        elif interrupted:
            status = RunStatus.INTERRUPTED
        else:
            status = RunStatus.SUCCEEDED if exit_code == 0 else RunStatus.FAILED
        failure = state.failure
        return {
            "format": RUN_FORMAT,
            "id": run_id,
            "backend": "local",
            "plan": self.plan.name,
            "spec_sha256": self.plan.spec_sha256,
            "project_root": str(self.root),
            "pid": os.getpid(),
            "host": os.uname().nodename,
            "started_at": datetime.fromtimestamp(started, UTC).isoformat(),
            "finished_at": None if exit_code is None else datetime.now(UTC).isoformat(),
            "seconds": round(time.time() - started, 3),
            "status": status,
            "exit_code": exit_code,
            "error": {"node": failure.node, "message": failure.message} if failure else None,
            "jobs": self.jobs,
            "store": str(self.store.root),
            "steps": {k: state.steps[k] for k in sorted(state.steps)},
            "metrics": metrics,
            "decisions": decisions,
        }

    def _output_dirs(self, node: Node, step: StepOutcome) -> dict[str, Path]:
        if step["status"] in DONE:
            entry = self.store.entry(step["key"])
            return {name: entry / name for name in node.outputs}
        kept = step.get("artifacts")
        if step["status"] == StepStatus.FAILED and kept:
            return {name: Path(kept) / name for name in node.outputs}
        return {}


# How the cache key covers each kind of outside state, and how a cached step's effect is
# found still in place; tests check that every member has its entry.
_OUTSIDE_STATE: dict[OutsideState, Callable[[Executor, Node, dict[str, str]], Any]] = {
    OutsideState.NONE: lambda executor, node, keys: None,
    OutsideState.DATA_FILE: Executor._data_file,
    OutsideState.SCHEMA_FILE: Executor._schema_file,
    OutsideState.BASELINE: Executor._baseline,
    OutsideState.CUSTOM_CODE: Executor._custom_code,
    OutsideState.WATCHED_MODEL: Executor._watched,
}
_EFFECT_IN_PLACE: dict[Effect, Callable[[Executor, Node, str, dict[str, Any]], bool]] = {
    Effect.NONE: lambda executor, node, key, record: True,
    Effect.FILE: Executor._file_in_place,
    Effect.REPORT: Executor._report_in_place,
    Effect.REGISTRATION: Executor._registration_in_place,
}


def _custom_code(node: Node, root: Path) -> dict[str, str]:
    """Hashes of the files behind custom transforms, so editing one re-fits the features."""
    hashes = {}
    for feature in node.params.get("features", []):
        if feature.get("op") != "custom":
            continue
        module = feature["function"].split(":", 1)[0]
        relative = Path(*module.split("."))
        for candidate in (root / f"{relative}.py", root / relative / "__init__.py"):
            if candidate.is_file():
                hashes[module] = sha256_file(candidate)
                break
    return hashes


def _safe(node_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in node_id)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def uri_version(uri: str, what: str) -> str:
    """The object's ETag (or a streamed hash): a changed object is a cache miss."""
    from mlcompile import uris

    try:
        return uris.version(uri)
    except (OSError, ImportError, ValueError) as exc:
        raise StepError(f"{what}: cannot read {uri}: {exc}") from None
