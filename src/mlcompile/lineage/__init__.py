"""Lineage and audit: OpenLineage events for plans and runs, model traces, HTML reports.

Reads plans (`mlcompile.plan`) and what the runtime left on disk (run records, store
entries, the registry) as plain JSON; never imports the spec layer. The OpenLineage client
is imported inside the functions that build events.
"""

from mlcompile.lineage.build import build_event_time, build_lineage, git_commit
from mlcompile.lineage.runs import append_run_events, run_events

__all__ = ["append_run_events", "build_event_time", "build_lineage", "git_commit", "run_events"]
