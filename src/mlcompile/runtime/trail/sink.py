"""Where events go: the project's event log, and any transport the OpenLineage client is
configured with (its openlineage.yml or OPENLINEAGE_* environment, the client's way).

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
import os
import sys
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


def emit(project_root: Path, event: Any) -> None:
    """Send one event to the project log and to the operator's transport, if there is one."""
    clients = [_project_client(project_root.resolve())]
    if client_configured():
        clients.append(_operator_client())
    for client in clients:
        try:
            client.emit(event)
        except Exception as exc:  # a full disk or a lineage server down must not fail a step
            print(f"mlcompile: warning: lineage event not sent: {exc}", file=sys.stderr)
