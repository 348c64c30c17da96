"""The audit trail a run leaves wherever it runs: OpenLineage events emitted by the steps.

Each step emits its own START and COMPLETE (or FAIL) run event as it runs, on every backend,
through the OpenLineage client (`sink`), with the facts of what it read and wrote
(`events`). One pipeline run id, the ParentRunFacet of every step event, ties a run's steps
together. `mlcompile.lineage` reads the events back.
"""
