"""Lineage and audit: OpenLineage events for plans and runs, model traces, HTML reports.

Reads plans (`mlcompile.plan`) and what the runtime left on disk (run records, store
entries, the registry) as plain JSON; never imports the spec layer. The OpenLineage client
is imported inside the functions that read or send run events; build events are
written without it.
"""

from mlcompile.lineage.build import build_event_time, build_lineage
from mlcompile.lineage.runs import all_runs, read_events, runs_from_events
from mlcompile.runtime.trail.git import git_commit

__all__ = [
    "all_runs",
    "build_event_time",
    "build_lineage",
    "git_commit",
    "read_events",
    "runs_from_events",
]
