"""How fast `mlcompile serve` answers: POST /predict over loopback HTTP, against a bare
FastAPI + LightGBM endpoint measured with the same client in the same run.

Each server runs in its own process (uvicorn, one worker, the same options on both sides:
no access log, uvicorn's default HTTP parser and event loop, h11 and asyncio unless httptools
and uvloop are installed). 4 client threads send single-row
requests with urllib (at most REQUESTS, capped at TIME_CAP seconds), then one request of
10,000 rows is timed (median of 3). Two models: the flights example's `delayed` (features
from DuckDB expressions, date parts, encodings, imputation, scaling) against the bare
endpoint on the same trees with the rows already transformed; and the conformance model.
Reports throughput, p50/p99 latency and the rows in the prediction log after a graceful stop,
with the load average, since the 2 cores are shared.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from common import MLCOMPILE, REPO, table

REQUESTS = 2_000
CLIENTS = 4
TIME_CAP = 60.0
BIG = 10_000
# One measurement varies by a fifth on this shared machine: the ratio is the median of rounds.
ROUNDS = 5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_up(base: str, server: subprocess.Popen[bytes], errors: IO[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            errors.seek(0)
            said = errors.read().decode(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"the server exited with {server.returncode}: " + "\n".join(said))
        try:
            with urllib.request.urlopen(f"{base}/openapi.json", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not answer within 60 s")


@contextmanager
def _server(command: list[str], port: int) -> Iterator[str]:
    base = f"http://127.0.0.1:{port}"
    # its last words explain a server that does not start (a venv without a new dependency)
    with tempfile.TemporaryFile() as errors:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        try:
            _wait_up(base, server, errors)
            yield base
        finally:
            server.send_signal(signal.SIGINT)  # uvicorn's graceful stop: the log flushes
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _post(base: str, body: bytes) -> None:
    request = urllib.request.Request(
        f"{base}/predict", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def _load(base: str, row: dict[str, Any]) -> tuple[list[float], float]:
    """Latencies of the single-row requests sent before the cap, and their wall time."""
    body = json.dumps({"rows": [row]}).encode()
    for _ in range(20):  # warm up
        _post(base, body)
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
            sent = time.perf_counter()
            _post(base, body)
            with lock:
                latencies.append(time.perf_counter() - sent)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - start


def _big(base: str, rows: list[dict[str, Any]]) -> float:
    body = json.dumps({"rows": (rows * (BIG // len(rows) + 1))[:BIG]}).encode()
    times = []
    for _ in range(3):
        sent = time.perf_counter()
        _post(base, body)
        times.append(time.perf_counter() - sent)
    return statistics.median(times)


def _measure(command: list[str], port: int, rows: list[dict[str, Any]]) -> dict[str, float]:
    with _server(command, port) as base:
        latencies, wall = _load(base, rows[0])
        big = _big(base, rows)
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "rate": len(latencies) / wall,
        "p50": cuts[49],
        "p99": cuts[98],
        "big": big,
    }


def _median(measured: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(m[key] for m in measured) for key in measured[0]}


def _flights(folder: Path) -> tuple[Path, list[dict[str, Any]], list[dict[str, Any]]]:
    """The trained flights example's registry, December rows as raw JSON rows, and the same
    rows as the model inputs the bare endpoint takes."""
    import numpy as np
    import pandas as pd

    from mlcompile.runtime.registry import Registry
    from mlcompile.runtime.store import Store
    from mlcompile.runtime.train import model_inputs

    project = folder / "flights"
    shutil.copytree(
        REPO / "examples" / "flights",
        project,
        ignore=shutil.ignore_patterns("build", ".mlcompile", "outputs"),
    )
    done = subprocess.run(
        [MLCOMPILE, "run", "mlcompile.yaml", "-q"], cwd=project, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"mlcompile run failed:\n{done.stdout}\n{done.stderr}")
    (run,) = (project / ".mlcompile" / "runs").iterdir()
    key = json.loads((run / "run.json").read_text())["steps"]["ingest:december"]["key"]
    store = Store(project / ".mlcompile" / "store")
    december = pd.read_parquet(store.entry(key) / "dataset" / "data.parquet").head(1000)
    raw = json.loads(december.to_json(orient="records", date_format="iso"))
    registry = project / ".mlcompile" / "registry"
    bundle = Registry(registry).get("flights.delayed", "production").bundle()
    (folder / "delayed.txt").write_text(bundle.text)
    inputs = model_inputs(bundle, december)
    matrix = inputs.apply(
        lambda s: s.cat.codes.replace(-1, np.nan) if isinstance(s.dtype, pd.CategoricalDtype) else s
    ).to_numpy(dtype="float64", na_value=np.nan)
    transformed = [
        {f"f{i}": (None if np.isnan(v) else float(v)) for i, v in enumerate(row)} for row in matrix
    ]
    return registry, raw, transformed


def _conformance(folder: Path) -> tuple[Path, list[dict[str, Any]]]:
    import pandas as pd

    from mlcompile.testing import conformance_spec, make_project, run_backend

    project = folder / "conformance"
    result = run_backend(make_project(project, conformance_spec()), "local", project / "build")
    if result.status != "succeeded":
        raise RuntimeError(f"conformance project failed: {result.error}")
    raw = pd.read_csv(project / "data" / "cancer.csv").head(1000)
    rows = [{str(k): v for k, v in r.items()} for r in raw.to_dict(orient="records")]
    return project / ".mlcompile" / "registry", rows


def _serve(model: str, registry: Path, log_dir: Path, port: int) -> list[str]:
    return [
        MLCOMPILE,
        "serve",
        model,
        "--registry",
        str(registry),
        "--port",
        str(port),
        "--log-dir",
        str(log_dir),
    ]


def _row(name: str, m: dict[str, float], logged: str) -> list[str]:
    return [
        name,
        f"{m['requests']:,.0f}",
        f"{m['rate']:.0f}",
        f"{m['p50'] * 1000:.1f} ms",
        f"{m['p99'] * 1000:.1f} ms",
        f"{m['big'] * 1000:.0f} ms",
        logged,
    ]


def _logged(log_dir: Path) -> str:
    import pandas as pd

    return f"{len(pd.read_parquet(log_dir)):,}" if any(log_dir.glob("*.parquet")) else "0"


def main() -> str:
    loads = [os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        registry, raw, transformed = _flights(folder)
        conformance, conformance_rows = _conformance(folder)
        loads.append(os.getloadavg())
        bare_command = [sys.executable, str(Path(__file__).parent / "bare_serve.py")]
        rounds: dict[str, list[dict[str, float]]] = {"bare": [], "served": []}
        for number in range(ROUNDS):
            # the sides take turns going first, so a drift of the machine's speed within a
            # round favours neither
            for side in ("bare", "served") if number % 2 == 0 else ("served", "bare"):
                port = _free_port()
                if side == "bare":
                    # [{"f0": ...}] rows: the bare endpoint reads the values in order
                    command = [*bare_command, str(folder / "delayed.txt"), str(port)]
                    rounds[side].append(_measure(command, port, [dict(r) for r in transformed]))
                else:
                    flights_log = folder / f"log-flights-{number}"
                    command = _serve("flights.delayed", registry, flights_log, port)
                    rounds[side].append(_measure(command, port, raw))
        bare, served = _median(rounds["bare"]), _median(rounds["served"])
        ratios = [
            s["rate"] / b["rate"] for s, b in zip(rounds["served"], rounds["bare"], strict=True)
        ]
        loads.append(os.getloadavg())
        conformance_log = folder / "log-conformance"
        port = _free_port()
        small = _measure(
            _serve("conformance.benign", conformance, conformance_log, port),
            port,
            conformance_rows,
        )
        loads.append(os.getloadavg())
        rows = [
            _row("bare FastAPI + LightGBM (flights.delayed trees, transformed rows)", bare, "-"),
            _row("`mlcompile serve flights.delayed` (raw rows)", served, _logged(flights_log)),
            _row("`mlcompile serve conformance.benign`", small, _logged(conformance_log)),
        ]
    ratio = statistics.median(ratios)
    load_text = "; ".join(", ".join(f"{x:.2f}" for x in load) for load in loads)
    verdict = [
        f"- throughput of `mlcompile serve` / bare endpoint: **{ratio:.2f}x**, the median of the "
        f"rounds' {', '.join(f'{r:.2f}x' for r in ratios)} (target >= 0.8x);",
        f"- p99 single-row latency: {served['p99'] * 1000:.1f} ms (target < 25 ms);",
        f"- one request of {BIG:,} rows: {served['big'] * 1000:.0f} ms (target < 300 ms; the bare "
        f"endpoint {bare['big'] * 1000:.0f} ms).",
    ]
    return "\n".join(
        [
            "## Serving speed",
            "",
            f"One uvicorn process per server on loopback; single-row `POST /predict` requests "
            f"from {CLIENTS} urllib client threads (at most {REQUESTS:,} requests or "
            f"{TIME_CAP:.0f} s, after 20 to warm up), then one request of {BIG:,} rows "
            "(median of 3). The bare endpoint parses the JSON and calls LightGBM's `predict` "
            "on rows that are already model inputs; `mlcompile serve` takes raw rows, checks "
            "them, computes the features, and logs every row. The flights model and the bare "
            f"endpoint are measured in {ROUNDS} rounds, each a fresh server of each side, taking "
            "turns going first; their rows give each figure's median over the rounds, and "
            "rows logged is the last round's.",
            "",
            table(
                ["server", "requests", "requests/s", "p50", "p99", f"{BIG:,} rows", "rows logged"],
                rows,
            ),
            "",
            *verdict,
            "",
            f"Load average (1, 5, 15 min) at the start, after training, after the flights "
            f"servers, at the end: {load_text} (2 cores, shared).",
        ]
    )


if __name__ == "__main__":
    print(main())
