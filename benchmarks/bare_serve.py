"""The baseline of serve_speed.py: a bare FastAPI endpoint that parses the JSON body and calls
LightGBM's `predict` on its rows, which are already model inputs (no features, no checks, no
log). LightGBM's threads follow `mlcompile serve`'s rule (`predict_threads`: all cores for a
large frame, one thread otherwise), so the two sides differ only in what serve adds.
Run as `python bare_serve.py MODEL_FILE PORT`."""

from __future__ import annotations

import json
import sys

import lightgbm as lgb
import numpy as np
import uvicorn
from fastapi import FastAPI, Request

from mlcompile.serving.model import predict_threads

booster = lgb.Booster(model_file=sys.argv[1])
app = FastAPI()


@app.post("/predict")
async def predict(request: Request) -> dict[str, list[float]]:
    rows = json.loads(await request.body())["rows"]
    matrix = np.array(
        [[np.nan if v is None else v for v in row.values()] for row in rows], dtype=float
    )
    threads = predict_threads(len(rows))
    return {"predictions": booster.predict(matrix, num_threads=threads).tolist()}


if __name__ == "__main__":
    # the options `mlcompile serve` runs uvicorn with: no access log, uvicorn's default
    # HTTP parser and event loop
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
