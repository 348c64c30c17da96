"""The built-in local backend: runs the plan on this machine, cached and in parallel.

What it emits is an execution manifest: the steps in waves that may run side by side. The
runner hands the plan to the runtime's executor.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mlcompile import paths
from mlcompile.backends.base import ArtifactSet, RunOptions, RunResult
from mlcompile.backends.executors import Executor
from mlcompile.errors import Diagnostic
from mlcompile.plan import Plan

if TYPE_CHECKING:
    from pydantic import BaseModel

MANIFEST = "pipeline.json"


@dataclass(frozen=True)
class LocalDefaults:
    """The settings of a spec without a `backends.local` section: the defaults of
    LocalSettings (which takes them from here), known without loading pydantic, which a
    no-op run then never does."""

    store: str | None = None
    runs: str = paths.RUNS

    def model_dump(self, mode: str = "json") -> dict[str, Any]:
        return asdict(self)


def local_folders(
    settings: BaseModel | LocalDefaults, plan: Plan, project_root: Path
) -> tuple[Path, Path]:
    """The artifact store and the run-record folder a local run uses."""
    if not isinstance(settings, LocalDefaults):
        from mlcompile.backends.local_settings import LocalSettings

        assert isinstance(settings, LocalSettings)
    return project_root / (
        settings.store or str(plan.settings["store"])
    ), project_root / settings.runs


class _SettingsModel:
    """LocalSettings, imported when first asked for: only a spec with a `backends.local`
    section (or `mlcompile schema`) needs the pydantic model."""

    def __get__(self, instance: object, owner: type) -> type[BaseModel]:
        from mlcompile.backends.local_settings import LocalSettings

        return LocalSettings


class LocalBackend:
    name: ClassVar[str] = "local"
    if TYPE_CHECKING:
        settings_model: ClassVar[type[BaseModel]]
    else:
        settings_model = _SettingsModel()

    def default_settings(self) -> LocalDefaults:
        """For a spec without a `backends.local` section (see DefaultSettings)."""
        return LocalDefaults()

    def check(self, plan: Plan, settings: BaseModel | LocalDefaults) -> list[Diagnostic]:
        return []

    def render(self, plan: Plan, settings: BaseModel | LocalDefaults) -> ArtifactSet:
        manifest = {
            "backend": self.name,
            "plan": plan.name,
            "settings": settings.model_dump(mode="json"),
            "waves": plan.waves(),
            "fingerprints": {n.id: n.fingerprint for n in sorted(plan.nodes, key=lambda n: n.id)},
        }
        return ArtifactSet({MANIFEST: json.dumps(manifest, indent=2, sort_keys=True) + "\n"})

    def executors(self, files: Mapping[str, str], plan: Plan) -> list[Executor]:
        """The executor runs plan nodes themselves; the manifest must list each one once, in
        the waves, under its own fingerprint."""
        manifest = json.loads(files[MANIFEST])
        owner = {node.fingerprint: node.id for node in plan.nodes}
        listed = Counter(node for wave in manifest["waves"] for node in wave)
        found = []
        for node, fingerprint in sorted(manifest["fingerprints"].items()):
            invokes = [owner.get(fingerprint, f"the fingerprint {fingerprint} of no plan node")]
            if listed[node] != 1:
                invokes.append(f"{listed[node]} places in the waves")
            found.append(Executor(node, node, tuple(invokes)))
        return found

    def run_folders(
        self, settings: BaseModel | LocalDefaults, plan: Plan, project_root: Path
    ) -> tuple[Path, Path]:
        return local_folders(settings, plan, project_root)

    def run(
        self, built_dir: Path, plan: Plan, settings: BaseModel | LocalDefaults, options: RunOptions
    ) -> RunResult:
        from mlcompile.runtime.executor import Executor

        store_dir, runs_dir = self.run_folders(settings, plan, options.project_root)
        execution = Executor(
            plan,
            project_root=options.project_root,
            store_dir=store_dir,
            runs_dir=runs_dir,
            jobs=options.jobs,
            force=options.force,
            use_cache=options.use_cache,
            keep_going=options.keep_going,
            on_event=options.on_event,
        ).run()
        record = execution.record
        error = record["error"]
        return RunResult(
            status=record["status"],
            steps=record["steps"],
            metrics=record["metrics"],
            decisions=record["decisions"],
            exit_code=execution.exit_code,
            error=f"{error['node']}: {error['message']}" if error else None,
            run_id=record["id"],
        )
