"""monitor: run the monitoring job, and the training pipeline when a retrain policy asks."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlcompile.cli.compiling import compile_and_render
from mlcompile.cli.output import Output, handles_errors
from mlcompile.cli.params import format_option, runner_options
from mlcompile.cli.run import result_payload, run_plan
from mlcompile.cli.summary import summary_text
from mlcompile.compiler import MONITORING_DIR, emitted_files, publish_bundle, write
from mlcompile.errors import ExitCode

if TYPE_CHECKING:
    from mlcompile.compiler import Compiled

SHOWN_FAILURES = 8


@click.command()
@runner_options
@click.option("--no-retrain", is_flag=True, help="Report only: never start the training pipeline.")
@format_option
@handles_errors
def monitor(
    spec: Path,
    overrides: tuple[str, ...],
    backend: str,
    out: Path | None,
    jobs: int,
    no_retrain: bool,
    quiet: bool,
    fmt: str,
    output: Output,
) -> None:
    """Run the spec's monitors: drift and late-label performance of the watched models.

    When a monitor's retrain policy says so, run the training pipeline too: the new model
    passes the same gates, the comparison with production included, before it deploys.
    Exit 0 when every check passed or a retrained model replaced the watched one, 7 when
    checks failed and nothing replaced it, 4 when the retrained model failed its gates.
    """
    from mlcompile.backends import RunOptions

    compiled, rendered, out_dir = compile_and_render(spec, overrides, backend, out, output)
    job = compiled.monitoring()
    write(out_dir, emitted_files(compiled, rendered))
    publish_bundle(rendered)
    options = RunOptions(project_root=compiled.project_root, jobs=jobs)
    hush = quiet or fmt == "json"
    watched = run_plan(compiled, rendered, job, out_dir / MONITORING_DIR / backend, options, hush)
    monitors = [n for n in job.nodes if n.kind == "monitor"]
    payload: dict[str, Any] = {
        "monitoring": result_payload(watched),
        "reports": {n.name: n.params["report"] for n in monitors},
        "retrain": None,
        "replaced": {},
    }
    # a monitor that failed before deciding (no version at its alias, say) left no decision
    decisions = {name: d for name, d in watched.decisions.items() if d}
    exit_code = watched.exit_code
    asks = sorted(n for n, d in decisions.items() if d.get("retrain"))
    if exit_code == 0 and asks and not no_retrain:
        # every model retrains and faces its own gates: one failing gate must not stop the
        # watched model from being replaced
        each_gated = dataclasses.replace(options, keep_going=True)
        retrained = run_plan(compiled, rendered, compiled.plan, out_dir / backend, each_gated, hush)
        payload["retrain"] = {**result_payload(retrained), "asked_by": asks}
        payload["replaced"] = _replaced(compiled, {n: decisions[n] for n in asks})
        # a failing monitor whose policy does not retrain still needs someone's attention
        unresolved = any(not d.get("passed") for n, d in decisions.items() if n not in asks)
        settled = all(payload["replaced"].values()) and not unresolved
        exit_code = retrained.exit_code or (0 if settled else int(ExitCode.DRIFT))
    elif exit_code == 0 and not all(d.get("passed") for d in decisions.values()):
        exit_code = int(ExitCode.DRIFT)
    payload.update(status="ok" if exit_code == 0 else "attention", exit_code=exit_code)
    output.result(payload, _summary(payload, no_retrain))
    if exit_code:
        raise SystemExit(exit_code)


def _replaced(compiled: Compiled, asked: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per monitor that asked for a retrain: the version now at its alias when that is a
    new one, else None (the gates refused it, or training made the same model again)."""
    from mlcompile.runtime.registry import open_registry

    registry = open_registry(
        compiled.plan.settings["registry"], compiled.project_root, outside_allowed=True
    )
    out: dict[str, Any] = {}
    for name, decision in asked.items():
        model = str(decision["registered_name"])
        now = registry.aliases(model).get(str(decision["alias"]))
        out[name] = now if now is not None and now != decision["version"] else None
    return out


def _comparison_line(check: dict[str, Any]) -> str:
    """`  PASS roc_auc[challenger] >= roc_auc[production]: v2 0.7012, v1 0.6954 (3861 shadow
    rows)`: both versions' values and the rows each was measured on."""
    sides = check["versions"]
    values = ", ".join(
        f"v{s['version']} " + (f"{s['value']:.4f}" if isinstance(s["value"], float) else "-")
        for s in (sides["challenger"], sides["champion"])
    )
    rows = [sides[role]["rows"] for role in ("challenger", "champion")]
    basis = check.get("basis")
    on = (
        f"{rows[0]} shadow rows"
        if basis == "shadow"
        else f"{rows[0]} and {rows[1]} rows each answered"
        if basis == "canary"
        else "no rows"
    )
    verdict = (
        "PASS"
        if check["passed"] and check.get("judged")
        else "FAIL"
        if not check["passed"]
        else "NOT JUDGED"
    )
    note = f"; {check['note']}" if check.get("note") else ""
    return f"  {verdict} {check['check']}: {values} ({on}){note}"


def _summary(payload: dict[str, Any], no_retrain: bool) -> str:
    lines = []
    for name, decision in sorted(payload["monitoring"]["decisions"].items()):
        if not decision:
            continue
        verdict = "passed" if decision.get("passed") else "FAILED"
        lines.append(
            f"monitor {name}: {verdict} - {decision.get('registered_name')} "
            f"v{decision.get('version')}, {decision.get('rows')} rows; {decision.get('reason')}"
        )
        lines += [
            _comparison_line(c) for c in decision.get("checks", []) if c.get("kind") == "comparison"
        ]
        failing = [
            c
            for c in decision.get("checks", [])
            if not c.get("passed") and c.get("kind") != "comparison"
        ]
        for check in failing[:SHOWN_FAILURES]:
            value = check.get("value")
            shown = f"{value:.4f}" if isinstance(value, float) else check.get("note") or "-"
            lines.append(f"  FAIL {check.get('check')}: {shown}")
        if len(failing) > SHOWN_FAILURES:
            lines.append(f"  ... and {len(failing) - SHOWN_FAILURES} more failing checks")
        if decision.get("retrain") and no_retrain:
            lines.append("  a retrain is due; not started (--no-retrain)")
        lines.append(f"  report: {payload['reports'][name]}")
    if payload["monitoring"]["error"]:
        lines.append(f"error: {payload['monitoring']['error']}")
    retrain = payload["retrain"]
    if retrain is not None:
        lines.append(f"retrain (asked by {', '.join(retrain['asked_by'])}):")
        lines += ["  " + line for line in summary_text(retrain).splitlines()]
        for name, version in sorted(payload["replaced"].items()):
            lines.append(
                f"monitor {name}: the watched model is now v{version}"
                if version is not None
                else f"monitor {name}: the watched model was not replaced"
            )
    return "\n".join(lines)
