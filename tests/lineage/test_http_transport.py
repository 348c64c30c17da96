"""Events sent to an OpenLineage backend over HTTP, configured the client's way.

A real HTTP server on 127.0.0.1 receives what a run's steps send when OPENLINEAGE_URL points
at it: every event valid against the OpenLineage schema, the same as the project's own log
holds, and the API key taken from the environment, never the spec.
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


def test_a_run_posts_valid_events_to_an_http_backend(
    tmp_path: Path,
    server: tuple[str, list[tuple[str, str, dict[str, Any]]]],
    openlineage: Callable[[str, dict[str, Any]], list[str]],
) -> None:
    url, received = server
    project = copy_example(tmp_path / "flights")
    # the auditor guide's command, with the example's dev profile to keep it short
    env = {"OPENLINEAGE_URL": url, "OPENLINEAGE_API_KEY": TOKEN}
    done = cli(project, "run", "mlcompile.yaml", *TRIM, "-q", "--format", "json", env=env)
    assert done.returncode in (0, 4), done.stdout + done.stderr  # a gate may fail on dev data
    run_id = json.loads(done.stdout)["run_id"]

    assert {path for path, _, _ in received} == {"/api/v1/lineage"}
    assert {auth for _, auth, _ in received} == {f"Bearer {TOKEN}"}
    events = [event for _, _, event in received]
    for event in events:
        assert openlineage("RunEvent", event) == [], event["job"]["name"]
    pipeline = [e for e in events if "parent" not in e["run"]["facets"]]
    assert [e["eventType"] for e in pipeline] in (["START", "COMPLETE"], ["START", "FAIL"])
    steps = [e for e in events if "parent" in e["run"]["facets"]]
    assert {e["run"]["facets"]["parent"]["run"]["runId"] for e in steps} == {
        pipeline[0]["run"]["runId"]
    }
    assert {e["run"]["facets"]["mlcompile_step"]["runRecord"] for e in steps} == {run_id}
    ended = {e["job"]["name"] for e in steps if e["eventType"] != "START"}
    assert ended == {e["job"]["name"] for e in steps} and "train:arrival" in ended
    # the project's log holds the same events; the key is in neither it nor the build
    logged = (project / ".mlcompile" / "lineage" / "runs.jsonl").read_text("utf-8")
    # (steps run side by side: the log's order and the server's may differ)
    assert sorted(map(_canonical, map(json.loads, logged.splitlines()))) == sorted(
        map(_canonical, events)
    )
    assert TOKEN not in logged
    assert not [p for p in (project / "build").rglob("*") if p.is_file() and TOKEN in p.read_text()]


def _canonical(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True)
