"""The Backend contract: what a backend is given, what it must return, how it is found.

A backend turns a Plan into text files (`render`, pure and deterministic) and may run them
(`Runner.run`). It never reads the spec: everything it needs is in the Plan and its own
validated settings. Third-party backends register under the `mlcompile.backends` entry
point group exactly like the built-in ones; see docs/backends/writing-a-backend.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from mlcompile.errors import BackendError, Diagnostic
from mlcompile.runtime.runrecord import RunStatus, StepOutcome

if TYPE_CHECKING:
    # pydantic only for the annotations: a no-op run on the local backend never loads it
    from pydantic import BaseModel

    from mlcompile.backends.bundle import ProjectBundle
    from mlcompile.plan import Plan

ENTRY_POINT_GROUP = "mlcompile.backends"


class ArtifactSet(Mapping[str, str]):
    """Relative POSIX path -> file text. Refuses anything that could escape the output folder."""

    def __init__(self, files: Mapping[str, str]) -> None:
        for path in files:
            check_relative(path)
        self._files = dict(sorted(files.items()))

    def __getitem__(self, key: str) -> str:
        return self._files[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)


def check_relative(path: str) -> None:
    pure = PurePosixPath(path)
    if (
        not path
        or "\\" in path
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise BackendError(f"a backend produced an unsafe artifact path: {path!r}")


@dataclass(frozen=True)
class RunOptions:
    """What the user asked of a run, for any backend's runner."""

    project_root: Path
    jobs: int = 1
    force: bool = False
    use_cache: bool = True
    keep_going: bool = False
    on_event: Callable[[dict[str, Any]], None] | None = None
    # the build's project bundle, which a `Bundled` backend's steps run from
    bundle: ProjectBundle | None = None


@dataclass
class RunResult:
    status: RunStatus
    steps: dict[str, StepOutcome] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    decisions: dict[str, Any] = field(default_factory=dict)
    exit_code: int = 0
    error: str | None = None
    run_id: str | None = None


@runtime_checkable
class Backend(Protocol):
    name: ClassVar[str]
    settings_model: ClassVar[type[BaseModel]]

    def check(self, plan: Plan, settings: BaseModel) -> list[Diagnostic]: ...

    def render(self, plan: Plan, settings: BaseModel) -> ArtifactSet: ...


@runtime_checkable
class FileChecks(Protocol):
    """Optional: what a backend finds wrong with its rendered files (an IR over a size limit).

    Diagnostics carry the spec `path` they concern; the compiler locates them in the spec.
    """

    def check_files(self, files: ArtifactSet) -> list[Diagnostic]: ...


@runtime_checkable
class DefaultSettings(Protocol):
    """Optional: the settings a backend's check, render and run are given for a spec with no
    section for it, in place of validating an empty section through `settings_model`.

    The built-in backend answers with a plain object, so that a no-op run (answered from
    the plan cache) never loads pydantic; its methods accept either form.
    """

    def default_settings(self) -> Any: ...


@runtime_checkable
class Bundled(Protocol):
    """Optional: a backend whose steps can run from the project bundle, with no project folder.

    `bundle_root` is the URI its settings name for the bundle (None: steps read the project
    folder). The compiler then makes the bundle, and `render` gets it to name in the pipeline
    (`mlcompile.backends.bundle`).
    """

    def bundle_root(self, settings: BaseModel) -> str | None: ...

    def render(
        self, plan: Plan, settings: BaseModel, bundle: ProjectBundle | None = None
    ) -> ArtifactSet: ...


@runtime_checkable
class Runner(Protocol):
    def run(
        self, built_dir: Path, plan: Plan, settings: BaseModel, options: RunOptions
    ) -> RunResult: ...
