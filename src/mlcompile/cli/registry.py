"""registry: the model registry's versions and aliases, promote and rollback, in a local
folder or on object storage (`--registry s3://bucket/prefix`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlcompile.cli.output import F, Output, handles_errors
from mlcompile.cli.params import format_option, in_project, registry_option
from mlcompile.cli.summary import registry_event_text
from mlcompile.errors import UsageError

if TYPE_CHECKING:
    from mlcompile.runtime.registry import ModelRegistry


@click.group()
def registry() -> None:
    """The model registry: versions, aliases, promote and rollback."""


def _registry_options(func: F) -> F:
    """What every registry command takes: the folder, the output format, located errors and
    the project's default folders."""
    return registry_option(format_option(handles_errors(in_project(func))))


def _describe(reg: ModelRegistry, name: str) -> dict[str, Any]:
    return {
        "versions": [reg.get(name, v).registration for v in reg.versions(name)],
        "aliases": reg.aliases(name),
    }


def _split_ref(ref: str) -> tuple[str, str | None]:
    name, _, version = ref.partition("@")
    return name, version or None


@registry.command("list")
@_registry_options
def registry_list(registry: Path | str, fmt: str, output: Output) -> None:
    from mlcompile.runtime.registry import open_registry

    reg = open_registry(registry)
    models = {name: _describe(reg, name) for name in reg.list_models()}
    lines = []
    for name, info in models.items():
        aliases = (
            ", ".join(f"{a}->v{v}" for a, v in sorted(info["aliases"].items())) or "no aliases"
        )
        lines.append(f"{name}: {len(info['versions'])} versions ({aliases})")
    output.result({"models": models}, "\n".join(lines) or f"no models in {registry}")


@registry.command("show")
@click.argument("ref")
@_registry_options
def registry_show(ref: str, registry: Path | str, fmt: str, output: Output) -> None:
    """MODEL or MODEL@VERSION or MODEL@ALIAS."""
    from mlcompile.runtime.registry import open_registry

    name, version = _split_ref(ref)
    reg = open_registry(registry)
    if version is None:
        info = _describe(reg, name)
        lines = [f"{name}"]
        for v in info["versions"]:
            tags = [a for a, n in info["aliases"].items() if n == v["version"]]
            lines.append(f"  v{v['version']} {v.get('created_at', '')} {' '.join(tags)}")
        for event in reg.history(name)[-10:]:
            lines.append(f"  {registry_event_text(event)}")
        output.result(info, "\n".join(lines))
        return
    entry = reg.get(name, version)
    shown = {**entry.registration, "metrics": entry.metrics(), "path": str(entry.path)}
    output.result(shown, json.dumps(shown, indent=2, sort_keys=True, default=str))


@registry.command("promote")
@click.argument("ref")
@click.option("--alias", default="production", show_default=True)
@click.option(
    "--if-monitor",
    "report",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A monitor's report (.mlcompile/monitoring/<monitor>.json): promote its challenger, "
    "only if it passed every comparison with the version at ALIAS.",
)
@_registry_options
def registry_promote(
    ref: str, alias: str, report: Path | None, registry: Path | str, fmt: str, output: Output
) -> None:
    """Point ALIAS at MODEL@VERSION; with --if-monitor, at the challenger a monitor compared
    (MODEL alone), if it won (exit 4 otherwise, nothing moved)."""
    from mlcompile.runtime.registry import open_registry

    name, version = _split_ref(ref)
    reason, expected = None, None
    if report is not None:
        challenger, expected, reason = _monitor_verdict(report, name, alias)
        if version is not None and version != str(challenger):
            raise UsageError(
                f"the monitor compared v{challenger} of '{name}', not {version}: "
                f"promote {name}@{challenger}, or {name} alone"
            )
        version = str(challenger)
    if version is None:
        raise UsageError("say which version to promote: MODEL@VERSION, or --if-monitor REPORT")
    reg = open_registry(registry)
    moved = reg.promote(name, version, alias, reason=reason, expected=expected).version
    _report_repairs(reg)
    _moved(name, alias, moved, output)


def _monitor_verdict(
    report: Path, name: str, alias: str
) -> tuple[int, dict[str, int], dict[str, Any]]:
    """(the challenger's version, where the compared aliases pointed, the event's reason)
    from a monitor's report; GateFailed when the challenger did not win."""
    import hashlib

    from mlcompile.runtime.monitor import promotion

    try:
        data = report.read_bytes()
        decision = json.loads(data)["decision"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"cannot read the monitor report {report}: {exc}; `mlcompile monitor` writes it "
            "(.mlcompile/monitoring/<monitor>.json by default)"
        ) from None
    if not isinstance(decision, dict):
        raise UsageError(f"{report} is not a monitor report: its 'decision' is not an object")
    challenger, expected = promotion(decision, name, alias)
    reason = {
        "monitor": decision.get("monitor"),
        "report": str(report),
        "report_sha256": hashlib.sha256(data).hexdigest(),
        "passed": [c["check"] for c in decision["checks"] if c.get("kind") == "comparison"],
        "compared": expected,
    }
    return challenger, expected, reason


@registry.command("rollback")
@click.argument("name")
@click.option("--alias", default="production", show_default=True)
@_registry_options
def registry_rollback(
    name: str, alias: str, registry: Path | str, fmt: str, output: Output
) -> None:
    """Move ALIAS back to the version it pointed at before."""
    from mlcompile.runtime.registry import open_registry

    reg = open_registry(registry)
    moved = reg.rollback(name, alias).version
    _report_repairs(reg)
    _moved(name, alias, moved, output)


def _moved(name: str, alias: str, version: int, output: Output) -> None:
    """Report an alias move, mirrored to MLflow's registry when MLFLOW_TRACKING_URI is set."""
    payload: dict[str, Any] = {"model": name, "alias": alias, "version": version}
    lines = [f"{name}: {alias} -> v{version}"]
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        from mlcompile.cli.track import mirror

        payload["mlflow_version"], note = mirror(uri, name, alias, version)
        lines.append(note)
    output.result(payload, "\n".join(lines))


def _report_repairs(reg: ModelRegistry) -> None:
    """What the change had to repair first (a change an earlier process did not finish)."""
    for note in reg.repairs:
        click.echo(f"mlcompile: repaired the registry {reg.location} first: {note}", err=True)
