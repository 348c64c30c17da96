"""Who may call: loopback by default; any other address only with a bearer token."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pandas as pd
import pytest

from .conftest import MODEL, as_json_rows
from .serve_process import Sandbox, Served

TOKEN = "s3cret-t0ken"


def _call(base: str, path: str, token: str | None, rows: Any = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps({"rows": rows}).encode() if rows is not None else None
    request = urllib.request.Request(f"{base}{path}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_another_host_without_a_token_does_not_start(sandbox: Sandbox) -> None:
    served = Served(sandbox, MODEL, "--host", "0.0.0.0")
    assert served.wait() == 2, served.output
    assert "--host 0.0.0.0 lets other machines call this server: give --token-env" in (
        served.output
    )
    unset = Served(sandbox, MODEL, "--host", "0.0.0.0", "--token-env", "MLCOMPILE_TEST_UNSET")
    assert unset.wait() == 2, unset.output
    assert "MLCOMPILE_TEST_UNSET is unset or empty" in unset.output


def test_another_host_requires_the_bearer_token(
    sandbox: Sandbox, raw_rows: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCOMPILE_TEST_TOKEN", TOKEN)
    served = Served(sandbox, MODEL, "--host", "0.0.0.0", "--token-env", "MLCOMPILE_TEST_TOKEN")
    port = served.wait_for(r"Uvicorn running on http://0\.0\.0\.0:(\d+)").group(1)
    base = f"http://127.0.0.1:{port}"
    rows = as_json_rows(raw_rows.head(2))
    try:
        for token in (None, "wrong", TOKEN + "x"):
            status, body = _call(base, "/predict", token, rows)
            assert status == 401, body
            assert [e["kind"] for e in body["errors"]] == ["unauthorized"]
            assert _call(base, "/model", token)[0] == 401
        status, body = _call(base, "/predict", TOKEN, rows)
        assert status == 200 and len(body["predictions"]) == 2
        assert _call(base, "/model", TOKEN)[0] == 200
        assert _call(base, "/health", None)[0] == 200  # probes need no token
    finally:
        assert served.stop() == 143, served.output
    assert TOKEN not in served.output


def test_loopback_needs_no_token(sandbox: Sandbox, raw_rows: pd.DataFrame) -> None:
    served = Served(sandbox, MODEL).started()
    try:
        status, _ = _call(served.base, "/predict", None, as_json_rows(raw_rows.head(1)))
        assert status == 200
    finally:
        assert served.stop() == 143, served.output
