"""The HTTP API of `mlcompile serve`: POST /predict, GET /health, GET /model.

Predictions go through the version's compiled evaluator (`evaluator`), or the batch path
where it cannot compute them, so a served row gets exactly the fitted feature transforms and
model that batch scoring gives it. A request is refused
(413, 422 or 503, in the shape of `problems`) before anything is scored when it is too large
or any of its values does not fit the model's input signature; it is answered only once its
rows are in the prediction log's buffer.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from mlcompile import __version__, paths
from mlcompile.errors import MlcompileError, UsageError

from .auth import BearerToken
from .limits import BodyLimit, Receive, Send
from .model import Loaded, ServedModel
from .predlog import Entry, LogFull, PredictionLog
from .problems import Refused, capped, error_body, refused
from .rollout import ROUTING_HEADER, Canary

logger = logging.getLogger("mlcompile.serving")
MIB = 1024 * 1024
INLINE_BYTES = 16 * 1024  # about 30 rows of the flights model


@dataclass(frozen=True)
class Limits:
    """What one request may hold, and how much the log may hold unwritten."""

    max_body_bytes: int = 8 * MIB
    max_rows: int = 10_000
    max_buffered_rows: int = 100_000


class PredictResponse(BaseModel):
    request_id: str
    model: str
    version: int
    alias: str | None
    warnings: list[dict[str, Any]]
    predictions: list[dict[str, Any]]


class LogHealth(BaseModel):
    path: str
    buffered_rows: int
    written_files: int
    error: str | None
    failing_since: dt.datetime | None


class Health(BaseModel):
    status: str  # "ok", "degraded" (the log cannot be written) or "error" (cannot answer)
    model: str
    version: int | None
    alias: str | None
    detail: str | None = None
    prediction_log: LogHealth


class ModelInfo(BaseModel):
    model: str
    version: int
    alias: str | None
    task: str
    signature: dict[str, str]
    metrics: dict[str, Any]
    registration: dict[str, Any]


# the body is read by the endpoint itself (to bound it and answer in one error shape), so
# its schema is given to OpenAPI by hand
_REQUEST_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["rows"],
                    "properties": {
                        "rows": {"type": "array", "minItems": 1, "items": {"type": "object"}}
                    },
                }
            }
        },
    }
}


def _documented(_: Request) -> None:
    """Never called: it only gives OpenAPI the route below (FastAPI documents its own routes,
    and POST /predict is a plain Starlette one)."""


_PREDICT_DOCS = APIRoute(
    "/predict",
    _documented,
    methods=["POST"],
    openapi_extra=_REQUEST_SCHEMA,
    response_model=PredictResponse,
)


class _Asgi:
    """An ASGI app for Starlette's router, which wraps a plain function in its request and
    response machinery instead; FastAPI's, with its dependency injection, costs more than
    scoring a row."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        await self.handle(scope, receive, send)


def _plain(column: Any) -> list[Any]:
    """A prediction column as Python values (NumPy's float64 and int64 as float and int)."""
    return column.tolist() if hasattr(column, "tolist") else list(column)


def default_log_dir(name: str) -> Path:
    return Path(paths.PREDICTIONS) / name


def create_app(
    registry_root: Path | str,
    name: str,
    ref: str,
    log_dir: Path | None = None,
    *,
    flush_rows: int = 1000,
    flush_seconds: float = 5.0,
    limits: Limits = Limits(),
    token: str | None = None,
    canary: Canary | None = None,
    shadow: str | None = None,
) -> FastAPI:
    """An app serving `name@ref` (an alias or a version number) from the registry at
    `registry_root`, logging predictions under `log_dir` (default
    .mlcompile/predictions/<name>). Raises UsageError now if the model cannot be loaded,
    WriteError if the log folder cannot be written."""
    if limits.max_buffered_rows < limits.max_rows:
        raise UsageError(
            f"--max-buffered-rows ({limits.max_buffered_rows:,}) must be at least --max-rows "
            f"({limits.max_rows:,}), or the log could never take a full request"
        )
    served = ServedModel(registry_root, name, ref)
    canary_model = ServedModel(registry_root, name, canary.alias) if canary else None
    shadow_model = ServedModel(registry_root, name, shadow) if shadow else None
    log = PredictionLog(
        log_dir or default_log_dir(name),
        flush_rows=flush_rows,
        flush_seconds=flush_seconds,
        max_buffered_rows=limits.max_buffered_rows,
    )
    log.check_writable()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.start()
        try:
            yield
        finally:
            log.close()

    app = FastAPI(
        title=f"mlcompile serve: {name}",
        version=__version__,
        lifespan=lifespan,
        description="Predictions from a model of the mlcompile registry.",
    )
    app.state.prediction_log = log
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    if token is not None:  # added last, so it runs first: no body is read for a stranger
        app.add_middleware(BearerToken, token=token)

    @app.exception_handler(Refused)
    async def _refused(_: Request, exc: Refused) -> Response:
        return Response(error_body(exc.problems), exc.status, media_type="application/json")

    def current(which: ServedModel = served) -> Loaded:
        try:
            return which.current()
        except MlcompileError as exc:
            raise refused(503, "unavailable", exc.message) from None

    def shadowed(body: bytes, rows: int) -> dict[str, list[Any]]:
        """The shadow's prediction columns, or only its version when it cannot score."""
        if shadow_model is None:
            return {}
        try:
            model = shadow_model.current()
        except MlcompileError as exc:
            logger.warning("shadow %s: %s", shadow, exc.message)
            return {}
        found: dict[str, list[Any]] = {"shadow_version": [model.version] * rows}
        try:
            # read by its own signature, which may not be the answering version's
            _, values = model.reader.read(body, limits.max_rows)
            predicted = model.predict(values, rows)
        except (MlcompileError, Refused) as exc:
            logger.warning(
                "shadow %s version %d could not score a request: %s", shadow, model.version, exc
            )
            return found
        found.update({f"shadow_{k}": _plain(v) for k, v in predicted.items()})
        return found

    def answer(body: bytes, received_at: dt.datetime, key: str | None) -> Response:
        model = current()
        if canary_model is not None and canary is not None and canary.takes(key):
            model = current(canary_model)
        rows, values = model.reader.read(body, limits.max_rows)
        outside = model.domain.outside(values, rows)
        if outside.count and model.on_invalid == "reject":
            raise Refused(422, outside.listed, outside.count)
        try:
            predicted = model.predict(values, rows)
        except MlcompileError as exc:
            raise refused(422, "scoring", exc.message) from None
        columns = {name: _plain(column) for name, column in predicted.items()}
        request_id = uuid.uuid4().hex
        entry = Entry(
            request_id,
            received_at,
            model.version,
            model.inputs,
            values,
            columns,
            rows,
            outside.per_row,
            model.alias or str(model.version),
            shadowed(body, rows),
        )
        try:
            log.append(entry)
        except LogFull as exc:
            raise refused(503, "unavailable", str(exc)) from None
        names = list(columns)
        answer = {
            "request_id": request_id,
            "model": model.name,
            "version": model.version,
            "alias": model.alias,
            "warnings": [p.to_dict() for p in capped(outside.listed, outside.count)],
            # C loops over the rows: a comprehension costs twice as much for 10,000 of them
            "predictions": list(
                map(dict, map(zip, repeat(names), zip(*columns.values(), strict=True)))
            ),
        }
        return Response(orjson.dumps(answer), media_type="application/json")

    async def predict(scope: Any, receive: Receive, send: Send) -> None:
        received_at = dt.datetime.now(dt.UTC)
        request = Request(scope, receive)
        body = await request.body()  # at most --max-body-mb, which BodyLimit enforces
        key = request.headers.get(ROUTING_HEADER)
        if len(body) <= INLINE_BYTES:
            # a few rows take less than a thread pool's hand-off: answered on the loop
            response = answer(body, received_at, key)
        else:
            # parsing, NumPy and LightGBM block: off the event loop, in the thread pool
            response = await run_in_threadpool(answer, body, received_at, key)
        await response(scope, receive, send)

    app.router.routes.append(Route("/predict", _Asgi(predict), methods=["POST"]))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=[*app.routes, _PREDICT_DOCS],
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/health")
    def health(response: Response) -> Health:
        state = LogHealth(**asdict(log.state()))
        try:
            model = served.current()
        except MlcompileError as exc:
            response.status_code = 503
            return Health(
                status="error",
                model=name,
                version=None,
                alias=served.alias,
                detail=exc.message,
                prediction_log=state,
            )
        if state.buffered_rows + limits.max_rows > limits.max_buffered_rows:
            response.status_code = 503
            status = "error"  # a full request would find no room in the log
            why = state.error or "writes are too slow"
            detail = f"the prediction log is full of rows not yet written: {why}"
        elif state.error is None:
            status, detail = "ok", None
        else:
            status, detail = "degraded", f"the prediction log cannot be written: {state.error}"
        return Health(
            status=status,
            model=name,
            version=model.version,
            alias=model.alias,
            detail=detail,
            prediction_log=state,
        )

    @app.get("/model")
    def model_info() -> ModelInfo:
        model = current()
        return ModelInfo(
            model=model.name,
            version=model.version,
            alias=model.alias,
            task=str(model.bundle.meta["task"]),
            signature=model.signature,
            metrics=model.metrics,
            registration=model.registration,
        )

    return app
