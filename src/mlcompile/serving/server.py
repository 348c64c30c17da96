"""Running the app under uvicorn until SIGINT or SIGTERM, without losing logged rows.

uvicorn shuts down gracefully on either signal and the app's lifespan then flushes the
prediction log. Two gaps are closed here: a second Ctrl-C makes uvicorn skip the lifespan
shutdown, and after a SIGTERM uvicorn re-raises the signal, whose default action ends the
process at once. So the log is closed here too, after uvicorn returns, with SIGINT and
SIGTERM ignored until it is, and SIGTERM ends the process through SystemExit (exit code 143,
128 + 15) once that is done. Rows that still cannot be written make the command fail (exit 5)
instead.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import signal
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from mlcompile.errors import ExitCode, MlcompileError

from .predlog import PredictionLog


class LogNotWritten(MlcompileError):
    exit_code = ExitCode.BACKEND_FAILED


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, with the prediction log's messages on the same stream."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"]["mlcompile.serving"] = {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    return config


class _OneWrite:
    """A connection's transport whose writes within one turn of the event loop go out as
    one: uvicorn writes a response's head and its body separately, and on loopback each
    write is a system call that also wakes the client, a tenth of a single-row answer's
    time. What the loop would have sent at once is still sent in that turn; `close` sends
    what is held first, and everything else is the transport's own."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._held:
            asyncio.get_running_loop().call_soon(self._send)
        self._held.append(data)

    def _send(self) -> None:
        if self._held:
            data = b"".join(self._held)
            self._held = []
            self._transport.write(data)

    def close(self) -> None:
        self._send()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol (its default without httptools) on a `_OneWrite` transport."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(_OneWrite(transport))  # type: ignore[arg-type]


def _terminate(signum: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run(app: FastAPI, host: str, port: int, *, access_log: bool = False) -> None:
    """Serve `app` until a signal. No line per request unless `access_log`: writing one costs
    a tenth of a single-row answer, and the prediction log records every answered request."""
    log: PredictionLog = app.state.prediction_log
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=_log_config(),
        access_log=access_log,
        http=_Protocol,
    )
    server = uvicorn.Server(config)
    # What is loaded by now (the libraries, the model) lives as long as the server: out of the
    # collector's sight, a full collection looks only at what requests made, not at the
    # hundred thousand objects of pandas, DuckDB and LightGBM (tens of microseconds a request).
    gc.collect()
    gc.freeze()
    # uvicorn restores this handler and raises SIGTERM again once it has shut down
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        server.run()
    finally:
        # a signal now would cut the last write short: it is ignored until that is done
        interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            left = log.close()
        finally:
            signal.signal(signal.SIGINT, interrupt)
            signal.signal(signal.SIGTERM, previous)
        if left:
            raise LogNotWritten(
                f"{left:,} prediction log rows could not be written to '{log.log_dir}': "
                f"{log.state().error}"
            )
