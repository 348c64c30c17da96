"""The request-size limit (serving/limits.py): 413 before the body is parsed, whether the
client declares its length or streams it, and a real server never holding more than the
limit of a 60 MB body."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlcompile.serving.app import MIB, Limits, create_app

from .conftest import MODEL, as_json_rows
from .serve_process import Sandbox, Served

LIMIT = 4096


@pytest.fixture
def small(registry_root: Path, log_dir: Path) -> Iterator[TestClient]:
    app = create_app(registry_root, MODEL, "production", log_dir, limits=Limits(LIMIT))
    with TestClient(app) as client:
        yield client


def _body(raw_rows: pd.DataFrame, size: int) -> bytes:
    """A valid request of about `size` bytes."""
    row = as_json_rows(raw_rows.head(1))[0]
    count = max(1, size // len(json.dumps(row)))
    return json.dumps({"rows": [row] * count}).encode()


def _too_large(response: Any) -> str:
    assert response.status_code == 413
    (error,) = response.json()["errors"]
    assert (error["row"], error["column"], error["kind"]) == (None, None, "too_large")
    assert response.headers["connection"] == "close"
    return str(error["message"])


def test_a_body_within_the_limit_is_answered(small: TestClient, raw_rows: pd.DataFrame) -> None:
    body = _body(raw_rows, LIMIT - 400)
    assert len(body) <= LIMIT
    response = small.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text


def test_a_declared_length_over_the_limit_is_413(small: TestClient, raw_rows: pd.DataFrame) -> None:
    body = _body(raw_rows, 2 * LIMIT)
    message = _too_large(
        small.post("/predict", content=body, headers={"Content-Type": "application/json"})
    )
    assert f"({len(body):,} bytes) is larger than this server takes (4,096 bytes" in message


def test_a_body_without_a_length_is_counted(small: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for _ in range(10):
            yield b" " * 1024

    message = _too_large(small.post("/predict", content=chunks()))
    assert message.startswith("the request body is larger than this server takes (4,096 bytes")


def test_requests_without_a_body_pass(small: TestClient) -> None:
    assert small.get("/health").status_code == 200


def _chunked_upload(port: int, total: int) -> bytes:
    """Stream `total` bytes as a chunked body; stop sending once the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"%x\r\n%s\r\n" % (MIB, b" " * MIB)
        try:
            for _ in range(total // MIB):
                if select.select([sock], [], [], 0)[0]:
                    break
                sock.sendall(chunk)
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed its end after answering; the answer is still there
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
        return answer


def test_a_60_mb_body_is_refused_without_holding_it(
    sandbox: Sandbox, raw_rows: pd.DataFrame
) -> None:
    log_dir = sandbox.root / "predictions"
    served = Served(sandbox, MODEL, "--log-dir", str(log_dir), "--max-body-mb", "1").started()
    assert served.post(as_json_rows(raw_rows.head(2)))[0] == 200
    before = served.peak_memory_kib()
    answer = _chunked_upload(served.port, 60 * MIB)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert json.loads(body)["errors"][0]["kind"] == "too_large"
    # a body parsed into Python objects would take several times its size
    assert served.peak_memory_kib() - before < 16 * 1024
    status, _ = served.post(as_json_rows(raw_rows.head(2)))  # and it goes on serving
    assert status == 200
    assert served.stop() == 143
