"""Who writes mlcompile's lineage, and where the schemas of its own facets are.

Without the OpenLineage client: the run events (built through the client) and the build
events (written as plain JSON, `mlcompile.lineage.build`) share these.
"""

from __future__ import annotations

from mlcompile import __version__

PRODUCER = f"https://pypi.org/project/mlcompile/{__version__}/"
_SCHEMA = "https://mlcompile.dev/spec/facets/1-0-0/{0}.json#/$defs/{0}"


def facet_schema(name: str) -> str:
    """The schema URL of the mlcompile facet class `name`."""
    return _SCHEMA.format(name)
