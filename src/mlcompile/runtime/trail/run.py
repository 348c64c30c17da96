"""The pipeline-level events of a run, sent by the process that drives it (the local
executor, or a backend's runner once its orchestrator's run has ended).

A local run served wholly from the cache read and wrote nothing new: it leaves its run
record but no events (and does not import the OpenLineage client). So the events of cached
steps are held until a step really runs, and dropped if none does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcompile.plan import Node
from mlcompile.runtime.runrecord import RunError, RunStatus, StepStatus
from mlcompile.runtime.trail.events import PipelineRun, StepEvents, StepTrail, pipeline_event
from mlcompile.runtime.trail.sink import emit

if TYPE_CHECKING:
    from openlineage.client.event_v2 import RunEvent

_END = {RunStatus.SUCCEEDED: "COMPLETE", RunStatus.INTERRUPTED: "ABORT"}


class RunTrail:
    def __init__(self, run: PipelineRun, project_root: Path, *, hold: bool = True) -> None:
        """`hold=False`: the run's steps ran elsewhere and have sent their events already."""
        self.run = run
        self.root = project_root
        # the cached steps' events, built only once a step really runs: building one
        # imports the OpenLineage client, which a no-op run never needs
        self._held: list[Callable[[], list[RunEvent]]] | None = [] if hold else None

    @property
    def live(self) -> bool:
        return self._held is None

    def step(self, node: Node) -> StepTrail:
        return StepTrail.of(self.run, node)

    def started(self) -> None:
        """A step is about to run: the run's START goes out, then what was held."""
        if self._held is None:
            return
        held, self._held = self._held, None
        self._send(pipeline_event(self.run, "START", {}))
        for events in held:
            for event in events():
                self._send(event)

    def cached(
        self,
        node: Node,
        inputs: Mapping[str, Path],
        outputs: Mapping[str, Path],
        detail: Mapping[str, Any],
    ) -> None:
        def build() -> list[RunEvent]:
            events = StepEvents(self.step(node), node, self.root, inputs, outputs)
            return [events.start(), events.end(StepStatus.CACHED, detail)]

        if self._held is None:
            for event in build():
                self._send(event)
        else:
            self._held.append(build)

    def finished(
        self,
        status: RunStatus,
        exit_code: int | None,
        error: RunError | None,
        spec_sha256: str | None,
    ) -> None:
        """The run's COMPLETE, FAIL or ABORT, when anything was sent for it."""
        if self._held is not None:
            return
        from mlcompile.runtime.trail.facets import PRODUCER, MlcompilePipelineRunFacet
        from mlcompile.runtime.trail.git import git_commit

        outcome = MlcompilePipelineRunFacet(
            runRecord=self.run.id,
            status=str(status),
            exitCode=int(exit_code or 0),
            specSha256=spec_sha256,
            error=dict(error) if error else None,
            gitCommit=git_commit(self.root),
            backend=self.run.backend,
            producer=PRODUCER,
        )
        state = _END.get(status, "FAIL")
        self._send(pipeline_event(self.run, state, {"mlcompile_run": outcome}))

    def _send(self, event: RunEvent) -> None:
        emit(self.root, event, self.run.transport)
