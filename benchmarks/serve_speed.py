"""How fast `mlcompile serve` answers: single-row POST /predict over loopback HTTP.

The server runs in its own process (`mlcompile serve`, uvicorn, one worker) on the
conformance model; 4 client threads send 2,000 single-row requests with urllib, capped at
60 s. Reports throughput and p50/p99 latency, and checks that the prediction log holds every
request after the server shuts down.
"""

from __future__ import annotations

import json
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from common import MLCOMPILE, table

MODEL = "conformance.benign"
REQUESTS = 2_000
CLIENTS = 4
TIME_CAP = 60.0
ROW = {
    "mean_radius": 17.99,
    "mean_texture": 10.38,
    "mean_smoothness": 0.1184,
    "worst_area": 2019.0,
    "worst_concavity": 0.7119,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _registry(folder: Path) -> Path:
    from mlcompile.testing import conformance_spec, make_project, run_backend

    result = run_backend(make_project(folder, conformance_spec()), "local", folder / "build")
    if result.status != "succeeded":
        raise RuntimeError(f"conformance project failed: {result.error}")
    return folder / ".mlcompile" / "registry"


def _wait_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"mlcompile serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=1) as response:
                if json.load(response)["status"] == "ok":
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("mlcompile serve did not become healthy within 30 s")


def _load(base: str) -> tuple[list[float], float]:
    """Latencies of the requests sent before the cap, and the wall time they took."""
    body = json.dumps({"rows": [ROW]}).encode()
    latencies: list[float] = []
    lock = threading.Lock()
    remaining = [REQUESTS]
    start = time.perf_counter()

    def client() -> None:
        while time.perf_counter() - start < TIME_CAP:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            request = urllib.request.Request(
                f"{base}/predict", data=body, headers={"Content-Type": "application/json"}
            )
            sent = time.perf_counter()
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
            with lock:
                latencies.append(time.perf_counter() - sent)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - start


def main() -> str:
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        registry = _registry(folder / "project")
        log_dir = folder / "predictions"
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        command = [MLCOMPILE, "serve", MODEL, "--registry", str(registry), "--port", str(port)]
        server = subprocess.Popen(
            [*command, "--log-dir", str(log_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_healthy(base, server)
            latencies, wall = _load(base)
        finally:
            server.send_signal(signal.SIGINT)  # uvicorn's graceful stop: the log flushes
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        logged = len(pd.read_parquet(log_dir)) if any(log_dir.glob("*.parquet")) else 0
    cuts = statistics.quantiles(latencies, n=100)
    rows = [
        [
            f"{len(latencies):,}",
            str(CLIENTS),
            f"{len(latencies) / wall:.0f}",
            f"{cuts[49] * 1000:.1f} ms",
            f"{cuts[98] * 1000:.1f} ms",
            f"{logged:,}",
        ]
    ]
    return "\n".join(
        [
            "## Serving speed",
            "",
            f"`mlcompile serve {MODEL}` (one uvicorn process) on loopback; single-row",
            f"`POST /predict` requests from {CLIENTS} urllib client threads "
            f"(at most {REQUESTS:,} requests or {TIME_CAP:.0f} s):",
            "",
            table(
                ["requests", "clients", "requests/s", "p50 latency", "p99 latency", "rows logged"],
                rows,
            ),
        ]
    )


if __name__ == "__main__":
    print(main())
