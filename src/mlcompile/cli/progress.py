"""Step progress for `mlcompile run`: a live table on a terminal, plain lines elsewhere (CI)."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import click

_SYMBOLS = {"started": "…", "finished": "✓", "cached": "=", "failed": "✗", "skipped": "-"}


def wants_live(stream: Any = None) -> bool:
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("CI")


class PlainProgress:
    """One line per event: readable in CI logs, greppable, no escape codes."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        with self.lock:
            if kind == "waiting":
                click.echo("waiting for another mlcompile run on this project to finish", err=True)
                return
            if kind in ("finished", "cached", "failed", "skipped"):
                self.done += 1
            node = event.get("node", "")
            seconds = event.get("seconds")
            timing = (
                f" ({seconds:.1f}s)" if isinstance(seconds, float) and kind == "finished" else ""
            )
            detail = f": {event.get('error')}" if kind == "failed" else ""
            label = {"finished": "done", "started": "start"}.get(kind, kind)
            click.echo(f"[{self.done:>3}/{self.total}] {label:<7} {node}{timing}{detail}", err=True)

    def close(self) -> None:
        pass


class LiveProgress:
    """A rich live view: counts of done/running/cached/failed and the running steps."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.live import Live

        self.total = total
        self.states: dict[str, str] = {}
        self.started: dict[str, float] = {}
        self.lock = threading.Lock()
        self.console = Console(stderr=True)
        self.live = Live(
            self._render(), console=self.console, refresh_per_second=8, transient=False
        )
        self.live.start()

    def __call__(self, event: dict[str, Any]) -> None:
        kind, node = event["event"], event.get("node", "")
        with self.lock:
            if kind == "waiting":
                self.console.print("waiting for another mlcompile run on this project to finish")
                return
            self.states[node] = kind
            if kind == "started":
                self.started[node] = time.monotonic()
            elif kind == "failed":
                self.console.print(f"[red]✗ {node}[/red]: {event.get('error')}")
            self.live.update(self._render())

    def _render(self) -> Any:
        from rich.table import Table

        counts = {k: sum(1 for s in self.states.values() if s == k) for k in _SYMBOLS}
        table = Table.grid(padding=(0, 2))
        done = counts["finished"] + counts["cached"]
        table.add_row(
            f"[bold]{done}/{self.total}[/bold] done",
            f"{counts['cached']} cached",
            f"{counts['started']} running",
            f"[red]{counts['failed']} failed[/red]" if counts["failed"] else "0 failed",
        )
        now = time.monotonic()
        for node, state in sorted(self.states.items()):
            if state == "started":
                table.add_row(f"  … {node}", f"{now - self.started[node]:.1f}s", "", "")
        return table

    def close(self) -> None:
        self.live.stop()


def make_progress(total: int, quiet: bool) -> PlainProgress | LiveProgress | None:
    if quiet:
        return None
    return LiveProgress(total) if wants_live() else PlainProgress(total)
