"""requirements.txt beside the pipeline: what a step imports, at the versions that built it.

`make dist` builds the mlcompile wheel these pins name, so an image (or `packages_to_install`)
installs exactly the runtime that compiled the pipeline, with the filesystem extras the
plan's URIs need.
"""

from __future__ import annotations

from importlib.metadata import version

from mlcompile.backends.bundle import ProjectBundle
from mlcompile.plan import Plan
from mlcompile.uris import extra, is_uri

REQUIREMENTS_FILE = "requirements.txt"


def requirements(plan: Plan, bundle: ProjectBundle | None) -> str:
    uris = [bundle.root] if bundle is not None else []
    for node in plan.nodes:
        uris += [str(node.params[key]) for key in ("path", "registry") if node.params.get(key)]
    extras = sorted({extra(uri) for uri in uris if is_uri(uri)})
    named = f"mlcompile[{','.join(extras)}]" if extras else "mlcompile"
    return (
        "# What every step of this pipeline imports, at the versions that built it: the\n"
        "# mlcompile wheel is in dist/ after `make dist`. In the image:\n"
        "#   pip install --find-links dist -r requirements.txt\n"
        f"{named}=={version('mlcompile')}\n"
        f"kfp=={version('kfp')}\n"
    )
