"""A real `mlcompile serve` process on 127.0.0.1 and its prediction log: written before the
process exits on SIGTERM or SIGINT (even a second Ctrl-C), refused at start when its folder
cannot be written, and kept, reported and retried when writes fail while it runs."""

from __future__ import annotations

import json
import re
import signal
import socket
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from .conftest import MODEL, as_json_rows
from .serve_process import Sandbox, Served

# never flushed by size or time: only shutdown writes the log
HOLD = ("--flush-rows", "1000000", "--flush-seconds", "3600")


@pytest.fixture
def rows(raw_rows: pd.DataFrame) -> list[dict[str, Any]]:
    return as_json_rows(raw_rows.head(5))


def _logged(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder) if any(folder.glob("part-*.parquet")) else pd.DataFrame()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_signal_writes_the_buffered_rows_first(
    sandbox: Sandbox, rows: list[dict[str, Any]], sig: signal.Signals, code: int
) -> None:
    log_dir = sandbox.root / "predictions"
    served = Served(sandbox, MODEL, "--log-dir", str(log_dir), *HOLD).started()
    answers = [served.post(rows[:2]), served.post(rows[2:])]
    assert [status for status, _ in answers] == [200, 200]
    assert not any(log_dir.glob("*.parquet")), "nothing is written before the signal"
    assert served.stop(sig) == code, served.output
    logged = _logged(log_dir)
    assert sorted(set(logged["request_id"])) == sorted(body["request_id"] for _, body in answers)
    assert len(logged) == 5


def test_a_second_ctrl_c_skips_the_wait_but_not_the_log(
    sandbox: Sandbox, rows: list[dict[str, Any]]
) -> None:
    log_dir = sandbox.root / "predictions"
    served = Served(sandbox, MODEL, "--log-dir", str(log_dir), *HOLD).started()
    assert served.post(rows)[0] == 200
    # a request whose body never finishes keeps uvicorn waiting for its connection
    stalled = socket.create_connection(("127.0.0.1", served.port))
    stalled.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    try:
        assert served.health()[0] == 200  # by now the server has read the stalled request
        served.process.send_signal(signal.SIGINT)
        served.wait_for("Waiting for connections to close")
        # uvicorn's force quit: it skips the app's shutdown, where the log is written
        assert served.stop(signal.SIGINT) == 130, served.output
    finally:
        stalled.close()
    assert len(_logged(log_dir)) == 5


@pytest.mark.parametrize("where", ["the folder", "its parent"])
def test_a_log_folder_that_cannot_be_written_stops_serve_at_start(
    sandbox: Sandbox, where: str
) -> None:
    parent = sandbox.root / "logs"
    parent.mkdir()
    log_dir = parent / "predictions"
    if where == "the folder":
        log_dir.mkdir()
        sandbox.allow_writes(parent)
        sandbox.forbid_writes(log_dir)
    else:
        sandbox.forbid_writes(parent)
    served = Served(sandbox, MODEL, "--log-dir", str(log_dir))
    assert served.wait(timeout=60) == 5, served.output
    assert f"mlcompile: error: cannot write {log_dir}: Permission denied" in served.output
    assert "Uvicorn running" not in served.output and "Traceback" not in served.output


def _serving_then_unwritable(sandbox: Sandbox, *options: str) -> tuple[Served, Path]:
    """A server that started with a writable log folder, which then becomes read-only."""
    log_dir = sandbox.root / "predictions"
    log_dir.mkdir()
    sandbox.allow_writes(log_dir)
    flush = ("--flush-rows", "1", "--flush-seconds", "0.2")
    served = Served(sandbox, MODEL, "--log-dir", str(log_dir), *flush, *options).started()
    sandbox.forbid_writes(log_dir)
    return served, log_dir


def test_a_failing_log_is_reported_kept_and_retried(
    sandbox: Sandbox, rows: list[dict[str, Any]]
) -> None:
    served, log_dir = _serving_then_unwritable(sandbox)
    first = [served.post(rows[:2])[1]["request_id"], served.post(rows[2:])[1]["request_id"]]
    failing = served.health_until(lambda h: h["status"] == "degraded")
    assert failing["prediction_log"]["buffered_rows"] == 5
    assert "Permission denied" in failing["prediction_log"]["error"]
    assert failing["prediction_log"]["failing_since"] is not None
    assert served.health()[0] == 200  # it still answers
    served.wait_for(rf"ERROR: +prediction log: cannot write to {log_dir} .*5 rows kept")

    sandbox.allow_writes(log_dir)
    healthy = served.health_until(lambda h: h["status"] == "ok")
    assert healthy["prediction_log"]["buffered_rows"] == 0
    served.wait_for(r"prediction log: writing to .* works again")
    assert sorted(set(_logged(log_dir)["request_id"])) == sorted(first)

    # rows that still cannot be written at shutdown fail the command, loudly
    sandbox.forbid_writes(log_dir)
    assert served.post(rows[:1])[0] == 200
    served.health_until(lambda h: h["status"] == "degraded")
    assert served.stop(signal.SIGTERM) == 5, served.output
    assert (
        f"mlcompile: error: 1 prediction log rows could not be written to '{log_dir}'"
        in served.output
    )
    assert len(_logged(log_dir)) == 5


def test_a_full_buffer_stops_answers_until_the_log_is_written(
    sandbox: Sandbox, rows: list[dict[str, Any]]
) -> None:
    served, log_dir = _serving_then_unwritable(
        sandbox, "--max-rows", "2", "--max-buffered-rows", "3"
    )
    assert served.post(rows[:2])[0] == 200
    status, body = served.post(rows[2:4])
    assert status == 503, body
    (error,) = body["errors"]
    assert (error["row"], error["column"], error["kind"]) == (None, None, "unavailable")
    assert "holds 2 rows not yet written" in error["message"]
    assert "--max-buffered-rows" in error["message"]
    code, health = served.health()
    assert (code, health["status"]) == (503, "error")

    sandbox.allow_writes(log_dir)
    served.health_until(lambda h: h["status"] == "ok")
    assert served.post(rows[2:4])[0] == 200
    assert served.stop() == 143
    assert len(_logged(log_dir)) == 4


def test_an_answer_leaves_in_one_write(sandbox: Sandbox, rows: list[dict[str, Any]]) -> None:
    """The head and the body of an answer reach the client together: the first read of the
    socket holds the whole response. uvicorn alone writes them one after the other, and the
    client then wakes up for the head alone."""
    served = Served(sandbox, MODEL, "--log-dir", str(sandbox.root / "predictions")).started()
    body = json.dumps({"rows": rows[:1]}).encode()
    request = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", served.port)) as client:
            client.sendall(request)
            first = client.recv(1 << 20)
        head, _, answer = first.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), first
        length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))  # type: ignore[union-attr]
        assert len(answer) == length and json.loads(answer)["predictions"], first
    assert served.stop() == 143, served.output
