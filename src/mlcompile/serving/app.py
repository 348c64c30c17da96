"""The HTTP API of `mlcompile serve`: POST /predict, GET /health, GET /model.

Predictions go through `score_frame` on the registered bundle, so a served row gets exactly
the fitted feature transforms and model that batch scoring gives it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Response
from pydantic import BaseModel, Field

from mlcompile import __version__
from mlcompile.errors import MlcompileError
from mlcompile.runtime.predlog import log_rows
from mlcompile.runtime.score import score_frame

from .inputs import InvalidRows, rows_frame
from .model import Loaded, ServedModel
from .predlog import PredictionLog

MAX_ROWS = 10_000


class PredictRequest(BaseModel):
    rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ROWS)


class PredictResponse(BaseModel):
    request_id: str
    model: str
    version: int
    alias: str | None
    predictions: list[dict[str, Any]]


class Health(BaseModel):
    status: str
    model: str
    version: int | None
    alias: str | None
    detail: str | None = None


class ModelInfo(BaseModel):
    model: str
    version: int
    alias: str | None
    task: str
    signature: dict[str, str]
    metrics: dict[str, Any]
    registration: dict[str, Any]


def default_log_dir(name: str) -> Path:
    return Path(".mlcompile") / "predictions" / name


def create_app(
    registry_root: Path,
    name: str,
    ref: str,
    log_dir: Path | None = None,
    *,
    flush_rows: int = 1000,
    flush_seconds: float = 5.0,
) -> FastAPI:
    """An app serving `name@ref` (an alias or a version number) from the registry at
    `registry_root`, logging predictions under `log_dir` (default
    .mlcompile/predictions/<name>). Raises UsageError now if the model cannot be loaded."""
    served = ServedModel(registry_root, name, ref)
    log = PredictionLog(
        log_dir or default_log_dir(name), flush_rows=flush_rows, flush_seconds=flush_seconds
    )

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

    def current() -> Loaded:
        try:
            return served.current()
        except MlcompileError as exc:
            raise HTTPException(503, detail=exc.message) from None

    # Plain `def` endpoints run in FastAPI's thread pool: pandas and LightGBM block.
    @app.post("/predict")
    def predict(request: PredictRequest) -> PredictResponse:
        received_at = dt.datetime.now(dt.UTC)
        model = current()
        try:
            frame = rows_frame(request.rows, model.signature)
        except InvalidRows as exc:
            raise HTTPException(422, detail=[p.detail() for p in exc.problems]) from None
        try:
            scored = score_frame(model.bundle, frame, [])
        except MlcompileError as exc:
            raise HTTPException(422, detail=exc.message) from None
        request_id = uuid.uuid4().hex
        log.append(log_rows(request_id, received_at, model.version, frame, scored))
        return PredictResponse(
            request_id=request_id,
            model=model.name,
            version=model.version,
            alias=model.alias,
            predictions=scored.to_dict(orient="records"),
        )

    @app.get("/health")
    def health(response: Response) -> Health:
        try:
            model = served.current()
        except MlcompileError as exc:
            response.status_code = 503
            return Health(
                status="error", model=name, version=None, alias=served.alias, detail=exc.message
            )
        return Health(status="ok", model=name, version=model.version, alias=model.alias)

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
