"""Events sent to an OpenLineage backend over HTTP, configured the client's way.

A real HTTP server on 127.0.0.1 receives what two `mlcompile step` processes send when
OPENLINEAGE_URL points at it: every event valid against the OpenLineage schema, the same as
the project's own log holds, and the API key taken from the environment, never the spec.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.lineage.conftest import TRIM, copy_example
from tests.trail import cli

TOKEN = "test-token-from-the-environment"


class _Lineage(BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers.get("Authorization", ""), json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[str, str, dict[str, Any]]]]]:
    _Lineage.received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Lineage)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", _Lineage.received
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_steps_post_valid_events_to_an_http_backend(
    tmp_path: Path,
    server: tuple[str, list[tuple[str, str, dict[str, Any]]]],
    openlineage: Callable[[str, dict[str, Any]], list[str]],
) -> None:
    url, received = server
    project = copy_example(tmp_path / "flights")
    built = cli(project, "build", "mlcompile.yaml", *TRIM)
    assert built.returncode == 0, built.stderr
    env = {"OPENLINEAGE_URL": url, "OPENLINEAGE_API_KEY": TOKEN}
    art = tmp_path / "artifacts"
    steps = [
        ["--node", "ingest:planes", "--out", f"dataset={art / 'raw'}"],
        [
            "--node",
            "validate:planes",
            "--in",
            f"dataset={art / 'raw'}",
            "--out",
            f"dataset={art / 'valid'}",
            "--out",
            f"report={art / 'report'}",
        ],
    ]
    for args in steps:
        done = cli(project, "step", "build/plan.json", *args, "--run", "ci-42", env=env)
        assert done.returncode == 0, done.stdout + done.stderr

    assert [path for path, _, _ in received] == ["/api/v1/lineage"] * 4
    assert {auth for _, auth, _ in received} == {f"Bearer {TOKEN}"}
    events = [event for _, _, event in received]
    for event in events:
        assert openlineage("RunEvent", event) == [], event["job"]["name"]
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("ingest:planes", "START"),
        ("ingest:planes", "COMPLETE"),
        ("validate:planes", "START"),
        ("validate:planes", "COMPLETE"),
    ]
    assert {e["run"]["facets"]["parent"]["run"]["runId"] for e in events} == {
        events[0]["run"]["facets"]["parent"]["run"]["runId"]
    }
    assert {e["run"]["facets"]["mlcompile_step"]["backend"] for e in events} == {"step"}
    # the project's log holds the same events; the key is in neither
    logged = (project / ".mlcompile" / "lineage" / "runs.jsonl").read_text("utf-8")
    assert [json.loads(line) for line in logged.splitlines()] == events
    assert TOKEN not in logged and TOKEN not in (project / "build" / "plan.json").read_text()
    listed = cli(project, "runs", "list")
    assert listed.stdout.startswith("ci-42 ") and " step " in listed.stdout, listed.stdout
