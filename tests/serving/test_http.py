"""One real server on loopback: uvicorn in a thread, requests with urllib."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import uvicorn

from mlcompile.runtime.registry import Registry
from mlcompile.runtime.score import score_frame
from mlcompile.serving.app import create_app

from .conftest import MODEL, as_json_rows


def _post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_serves_over_loopback_http(
    registry_root: Path, log_dir: Path, raw_rows: pd.DataFrame
) -> None:
    app = create_app(registry_root, MODEL, "production", log_dir, flush_seconds=3600)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                pytest.fail("uvicorn did not start")
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/health", timeout=10) as response:
            assert json.load(response)["status"] == "ok"
        status, body = _post(f"{base}/predict", {"rows": as_json_rows(raw_rows.head(2))})
        assert status == 200
        expected = score_frame(Registry(registry_root).get(MODEL, 1).bundle(), raw_rows.head(2), [])
        assert pd.DataFrame(body["predictions"]).equals(expected)
        bad = as_json_rows(raw_rows.head(1))
        bad[0]["worst_area"] = "huge"
        status, body = _post(f"{base}/predict", {"rows": bad})
        assert status == 422
        (error,) = body["errors"]
        assert (error["row"], error["column"], error["kind"]) == (0, "worst_area", "type")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(pd.read_parquet(log_dir)) == 2, "shutdown should flush the logged rows"
