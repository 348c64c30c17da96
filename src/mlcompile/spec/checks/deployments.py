"""Deployments: the model exists and is gated, batch outputs and KServe prerequisites."""

from __future__ import annotations

from pathlib import Path

from mlcompile import codes
from mlcompile.errors import Diagnostic
from mlcompile.spec.checks.context import Context
from mlcompile.spec.models import BatchDeployment, KServeDeployment, RegistryDeployment
from mlcompile.spec.yaml_loader import KeyPath


def check(ctx: Context) -> None:
    spec = ctx.spec
    registered = {d.model for d in spec.deployments.values() if isinstance(d, RegistryDeployment)}
    gated = {g.model for g in spec.gates.values()}
    for name, deployment in spec.deployments.items():
        at: KeyPath = ("deployments", name)
        if not ctx.ref(deployment.model, spec.models, "model", (*at, "model")):
            continue
        if deployment.model not in gated:
            # Not an error: some teams deploy ungated models to staging. Say so loudly.
            ctx.diagnostics.append(
                Diagnostic(
                    codes.UNGATED_DEPLOYMENT,
                    f"deployment '{name}' has no gate on model '{deployment.model}'",
                    ctx.composed.span((*at, "model")),
                    "add a gate so a bad model cannot deploy",
                )
            )
        if isinstance(deployment, BatchDeployment):
            if deployment.model not in registered:
                _unregistered_batch(ctx, name, deployment.model, at)
            ctx.ref(deployment.source, spec.sources, "source", (*at, "source"))
            if Path(deployment.output).suffix.lower() not in (".parquet", ".csv"):
                ctx.error(
                    codes.INVALID_VALUE, "the output must end in .parquet or .csv", (*at, "output")
                )
        elif (
            isinstance(deployment, KServeDeployment)
            and deployment.model not in registered
            and not ctx.broken.get("deployments")
        ):
            ctx.error(
                codes.UNKNOWN_NAME,
                f"KServe deployment '{name}' needs a registry deployment of model '{deployment.model}'",
                (*at, "model"),
                "add a deployment with kind: registry for that model",
            )


def _unregistered_batch(ctx: Context, name: str, model: str, at: KeyPath) -> None:
    """Batch scores from a model no registry deployment records: the output then comes
    from whatever the run trained, with no version anyone can promote, roll back or audit."""
    ctx.diagnostics.append(
        Diagnostic(
            codes.UNREGISTERED_BATCH,
            f"batch deployment '{name}' scores with model '{model}', which no registry "
            "deployment registers",
            ctx.composed.span((*at, "model")),
            f"add a deployment with kind: registry for model '{model}', so the scores come "
            "from a registered version",
        )
    )
