"""The OpenLineage facets mlcompile adds to the standard ones, and its producer URI.

This module imports the OpenLineage client at import time; the rest of `mlcompile.lineage`
imports it inside functions, so commands that never emit lineage do not pay for it (build
lineage, `mlcompile.lineage.build`, writes the same facets without it).
Custom facet names follow OpenLineage's rule for custom facets: a prefix (`mlcompile_`)
so they never collide with a future standard facet. Field names are camelCase because
they are the JSON keys, as in OpenLineage's own facets.
"""

from __future__ import annotations

from typing import Any

import attr
from openlineage.client.facet_v2 import DatasetFacet, JobFacet, RunFacet

# re-exported: the producer beside the facets it goes with
from mlcompile.runtime.trail.producer import PRODUCER as PRODUCER
from mlcompile.runtime.trail.producer import facet_schema


class _Named:
    """A facet whose schema URL is named after its class."""

    @classmethod
    def _get_schema(cls) -> str:
        return facet_schema(cls.__name__)


@attr.define
class MlcompileJobFacet(_Named, JobFacet):
    """What the plan says about a step: enough to tell two versions of a job apart."""

    kind: str
    fingerprint: str
    params: dict[str, Any]
    plan: str
    specFile: str
    mlcompileVersion: str
    # the pipeline's job carries the spec's hash; a step's own fingerprint already covers
    # everything that shapes it, so editing one model leaves other steps' lineage unchanged
    specSha256: str | None = None
    gitCommit: str | None = None


@attr.define
class MlcompileArtifactFacet(_Named, DatasetFacet):
    """A dataset's place in mlcompile: the artifact type and, once run, its content hashes."""

    artifactType: str
    sha256: str | None = None
    rows: int | None = None
    sources: dict[str, str] | None = None
    # where the step wrote it, as that machine saw the path (an orchestrator's task folder)
    location: str | None = None


@attr.define
class MlcompileStepRunFacet(_Named, RunFacet):
    """How the step went: on which backend, in which run, ran or reused from the cache (and
    under which key), its summary and, when it failed, its exit code."""

    status: str
    runRecord: str
    backend: str | None = None
    kind: str | None = None
    cacheKey: str | None = None
    seconds: float | None = None
    summary: dict[str, Any] | None = None
    exitCode: int | None = None


@attr.define
class MlcompileMetricsRunFacet(_Named, RunFacet):
    """An evaluate step's metrics, overall and per slice value."""

    model: str
    task: str | None
    rows: int | None
    overall: dict[str, Any]
    slices: dict[str, Any]


@attr.define
class MlcompileGateRunFacet(_Named, RunFacet):
    """A gate's decision: every check with its value, bound and verdict."""

    gate: str
    model: str
    passed: bool
    checks: list[dict[str, Any]]


@attr.define
class MlcompileMonitorRunFacet(_Named, RunFacet):
    """A monitor's verdict on the version it watches: every check, the retrain decision, and
    the drift measures per input (without the histograms the report draws)."""

    monitor: str
    model: str
    version: int
    rows: int
    passed: bool
    retrain: bool
    reason: str
    checks: list[dict[str, Any]]
    drift: dict[str, Any] | None = None


@attr.define
class MlcompileRegistrationRunFacet(_Named, RunFacet):
    """Which registry version a register step created or reused."""

    modelName: str
    version: int
    modelSha256: str | None = None
    alias: str | None = None


@attr.define
class MlcompilePipelineRunFacet(_Named, RunFacet):
    """The whole run's outcome, as in its run record."""

    runRecord: str
    status: str
    exitCode: int
    specSha256: str | None = None
    error: dict[str, Any] | None = None
    gitCommit: str | None = None
    backend: str | None = None
