"""Where events go: the project's event log, and one transport besides: the spec's
`settings.lineage.transport` when the plan has one, otherwise any the OpenLineage client is
configured with (its openlineage.yml or OPENLINEAGE_* environment, the client's way). The
spec's wins: a project that names its backend sends there whatever the machine's defaults.

The project log, `.mlcompile/lineage/runs.jsonl`, is always written where the step runs:
`mlcompile runs`, `report` and `lineage` read it. Each event is one line appended with one
write(2) on an O_APPEND descriptor and fsynced, so steps running side by side (threads,
processes, machines sharing a local disk) interleave whole lines, and a kill leaves at most
a last line without its newline, which readers skip.

Lineage is a record of a run, never a reason for it to fail: a transport that cannot send
is reported on stderr and the step goes on.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcompile.runtime.killpoints import boundary

if TYPE_CHECKING:
    from openlineage.client import OpenLineageClient
    from openlineage.client.client import Event

LINEAGE_DIR = Path(".mlcompile") / "lineage"
RUNS_FILE = "runs.jsonl"
# What makes the OpenLineage client configured by the operator (see OpenLineageClient).
_CLIENT_ENV = ("OPENLINEAGE_CONFIG", "OPENLINEAGE_URL", "OPENLINEAGE_DISABLED")


def log_path(project_root: Path) -> Path:
    return project_root / LINEAGE_DIR / RUNS_FILE


def append_line(path: Path, line: str) -> None:
    """Append one line to `path` in one write(2) with O_APPEND, then fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    view = memoryview((line.rstrip("\n") + "\n").encode("utf-8"))
    boundary("lineage.event")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        while view:  # a short write (signal, full disk) continues rather than cut a line
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def client_configured(cwd: Path | None = None) -> bool:
    """Whether the operator configured the OpenLineage client (file or environment)."""
    if any(os.environ.get(name) for name in _CLIENT_ENV):
        return True
    if any(name.startswith("OPENLINEAGE__TRANSPORT") for name in os.environ):
        return True
    folders = [cwd or Path.cwd(), Path.home() / ".openlineage"]
    return any((folder / "openlineage.yml").is_file() for folder in folders)


@functools.cache
def _project_client(project_root: Path) -> OpenLineageClient:
    """A client whose transport is the project log."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.serde import Serde
    from openlineage.client.transport.transport import Config, Transport

    class ProjectLog(Transport):
        kind = "mlcompile_log"
        config_class = Config

        def __init__(self, path: Path) -> None:
            self.path = path
            self.name = self.kind
            self.priority = 0

        def emit(self, event: Event) -> None:
            append_line(self.path, Serde.to_json(event))

    return OpenLineageClient(transport=ProjectLog(log_path(project_root)))


@functools.cache
def _operator_client() -> OpenLineageClient:
    """The client as the operator configured it, built the client's own way."""
    from openlineage.client import OpenLineageClient

    return OpenLineageClient()


def transport_of(settings: Mapping[str, Any]) -> str | None:
    """A plan's settings.lineage transport as canonical JSON, for PipelineRun.transport."""
    lineage = settings.get("lineage")
    if lineage is None:
        return None
    return json.dumps(lineage["transport"], sort_keys=True, separators=(",", ":"))


def _client_config(transport: Mapping[str, Any]) -> dict[str, Any]:
    """The client's own config for a spec's transport; the API key is read here, at send
    time, from the variable the spec names, so it is never written anywhere."""
    if transport["type"] != "http":
        return {"type": transport["type"]}
    config: dict[str, Any] = {
        "type": "http",
        "url": transport["url"],
        "endpoint": transport["endpoint"],
        "timeout": transport["timeout_s"],
    }
    name = transport.get("api_key_env")
    if name:
        key = os.environ.get(name)
        if not key:
            raise RuntimeError(f"settings.lineage.transport.api_key_env: ${name} is not set")
        config["auth"] = {"type": "api_key", "apiKey": key}
    return config


@functools.cache
def _spec_client(transport: str) -> OpenLineageClient:
    """A client for the spec's transport, built once per step process."""
    from openlineage.client import OpenLineageClient

    return OpenLineageClient(config={"transport": _client_config(json.loads(transport))})


def _clients(project_root: Path, transport: str | None) -> list[OpenLineageClient]:
    clients = [_project_client(project_root.resolve())]
    try:
        if transport is not None:
            clients.append(_spec_client(transport))
        elif client_configured():
            clients.append(_operator_client())
    except Exception as exc:  # a key not set must not fail a step either
        print(f"mlcompile: warning: lineage transport not set up: {exc}", file=sys.stderr)
    return clients


def emit(project_root: Path, event: Any, transport: str | None = None) -> None:
    """Send one event to the project log and to the spec's or the operator's transport."""
    clients = _clients(project_root, transport)
    for client in clients:
        try:
            client.emit(event)
        except Exception as exc:  # a full disk or a lineage server down must not fail a step
            print(f"mlcompile: warning: lineage event not sent: {exc}", file=sys.stderr)
