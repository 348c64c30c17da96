"""step: run one plan node on artifact folders, for path-based orchestrators."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mlcompile.cli.output import Output, handles_errors
from mlcompile.cli.params import format_option, trust_options
from mlcompile.errors import UsageError


def _pairs(values: tuple[str, ...], what: str) -> dict[str, Path]:
    pairs = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"{what} must be NAME=PATH, got '{value}'")
        pairs[name] = Path(path)
    return pairs


@click.command("step")
@click.argument("plan_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--node", "node_id", help="The node's id.")
@click.option("--index", type=int, help="The node's position in plan.json (no spec text needed).")
@click.option("--in", "inputs", multiple=True, help="NAME=DIR of an input artifact.")
@click.option("--out", "outputs", multiple=True, help="NAME=DIR for an output artifact.")
@click.option(
    "--artifacts",
    type=click.Path(path_type=Path, file_okay=False),
    help="Instead of --in/--out: artifacts live in DIR/n<index>/<output> for every node.",
)
@click.option("--project-root", type=click.Path(path_type=Path, file_okay=False), default=Path("."))
@click.option("--threads", type=int, default=1, show_default=True)
@click.option(
    "--run",
    "run_id",
    default=None,
    help="The pipeline run this step belongs to: its lineage events and any model it "
    "registers name it (default: $MLCOMPILE_RUN_ID; without either, no events are sent).",
)
@click.option(
    "--backend",
    "backend_name",
    default="step",
    show_default=True,
    help="The backend the run's records name.",
)
@format_option
@trust_options
@handles_errors
def step(
    plan_file: Path,
    node_id: str | None,
    index: int | None,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    artifacts: Path | None,
    project_root: Path,
    threads: int,
    run_id: str | None,
    backend_name: str,
    fmt: str,
    output: Output,
) -> None:
    """Run one plan node on artifact folders: the primitive any orchestrator can call."""
    from mlcompile.plan import Plan
    from mlcompile.runtime.steps import StepContext, run_step

    plan = Plan.from_json(plan_file.read_text(encoding="utf-8"))
    nodes = sorted(plan.nodes, key=lambda n: n.id)
    if (node_id is None) == (index is None):
        raise UsageError("give exactly one of --node and --index")
    if index is not None:
        if not 0 <= index < len(nodes):
            raise UsageError(f"--index must be 0..{len(nodes) - 1}")
        node = nodes[index]
    else:
        try:
            node = plan.node(str(node_id))
        except KeyError:
            raise UsageError(f"no node '{node_id}' in {plan_file}") from None
    if artifacts is not None:
        position = {n.id: i for i, n in enumerate(nodes)}
        given_in = {
            k: artifacts / f"n{position[r.node]}" / r.output for k, r in node.inputs.items()
        }
        given_out = {k: artifacts / f"n{position[node.id]}" / k for k in node.outputs}
    else:
        given_in, given_out = _pairs(inputs, "--in"), _pairs(outputs, "--out")
    if set(given_in) != set(node.inputs) or set(given_out) != set(node.outputs):
        raise UsageError(
            f"node '{node.id}' reads {sorted(node.inputs)} and writes {sorted(node.outputs)}; "
            f"got --in {sorted(given_in)} --out {sorted(given_out)}"
        )
    run_id = run_id or os.environ.get("MLCOMPILE_RUN_ID") or None
    trail = None
    if run_id:
        from mlcompile.runtime.trail.events import PipelineRun, StepTrail

        trail = StepTrail.of(PipelineRun.of(plan, run_id, backend_name), node)
    context = StepContext(
        project_root.resolve(),
        num_threads=threads,
        fingerprint=node.fingerprint,
        run_id=run_id,
        trail=trail,
    )
    result = run_step(node.kind, dict(node.params), given_in, given_out, context)
    output.result({"node": node.id, "summary": result.summary}, f"{node.id}: done")
