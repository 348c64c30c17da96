"""A bounded load test that SIGKILLs `mlcompile serve` mid-load: every prediction log file
the server flushed is whole and readable, and holds only whole requests that were sent."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request

import pandas as pd
import pyarrow.parquet as pq

from .conftest import MODEL, as_json_rows
from .serve_process import Sandbox, Served

CLIENTS = 4
REQUESTS = 1_500  # at most; the kill usually comes first
ROWS = 3


def test_sigkill_mid_load_leaves_only_whole_log_files(
    sandbox: Sandbox, raw_rows: pd.DataFrame
) -> None:
    log_dir = sandbox.root / "predictions"
    flush = ("--flush-rows", "30", "--flush-seconds", "0.1")
    served = Served(sandbox, MODEL, "--log-dir", str(log_dir), *flush).started()
    rows = as_json_rows(raw_rows.head(ROWS))
    body = json.dumps({"rows": rows}).encode()
    answered: list[str] = []
    remaining = [REQUESTS]
    lock = threading.Lock()
    deadline = time.monotonic() + 120  # bounded, whatever happens

    def client() -> None:
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            request = urllib.request.Request(
                f"{served.base}/predict", data=body, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    request_id = json.load(response)["request_id"]
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return  # the server is gone
            with lock:
                answered.append(request_id)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    while len(answered) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    served.process.send_signal(signal.SIGKILL)
    assert served.wait() == -signal.SIGKILL
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)

    parts = sorted(log_dir.glob("part-*.parquet"))
    assert len(parts) >= 2, parts  # flushes happened under load before the kill
    frames = [pq.read_table(part).to_pandas() for part in parts]  # each file whole
    logged = pd.concat(frames, ignore_index=True)
    # a request's rows go into one file together; a logged request was answered, but for
    # the at most CLIENTS in flight when the kill came
    assert set(logged.groupby("request_id").size()) == {ROWS}
    unanswered = set(logged["request_id"]) - set(answered)
    assert len(unanswered) <= CLIENTS, unanswered
    # rows answered long before the kill are in the log (at most a flush window is lost)
    assert len(logged) >= (len(answered) - 300) * ROWS * 0.5
    leftovers = [p.name for p in log_dir.iterdir() if not p.name.startswith("part-")]
    assert all(name.endswith(".tmp") and name.startswith(".part-") for name in leftovers)
