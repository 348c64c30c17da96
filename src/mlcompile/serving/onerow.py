"""LightGBM's single-row fast path, for the requests of one row (most of them).

`Booster.predict` sets up a predictor on every call: about 80 us for one row, more than the
trees take. LightGBM's C API keeps that setup (`LGBM_BoosterPredictForMatSingleRowFastInit`)
for the calls that follow (`LGBM_BoosterPredictForMatSingleRowFast`), about 15 us each. Both
run the same per-row predictor over the same dense float64 row, so the answer is the batch
path's bit for bit; `tests/serving/test_fast_path.py` checks that for every December row of
the flights example. The C side locks the booster around a prediction, so threads may share
one `OneRow`.

The calls go through lightgbm's own loaded library, as a second ctypes handle with its own
argument types, so lightgbm's function objects are left as they are.
"""

from __future__ import annotations

import ctypes
import weakref
from typing import Any

import lightgbm.basic
import numpy as np

from mlcompile.errors import UsageError

_PREDICT_NORMAL = 0  # C_API_PREDICT_NORMAL: what Booster.predict gives by default
_FLOAT64 = 1  # C_API_DTYPE_FLOAT64
_LIB = ctypes.CDLL(lightgbm.basic._LIB._name)  # type: ignore[attr-defined]
_LIB.LGBM_BoosterPredictForMatSingleRowFastInit.argtypes = [
    ctypes.c_void_p,  # booster
    ctypes.c_int,  # predict type
    ctypes.c_int,  # start iteration
    ctypes.c_int,  # number of iterations (-1: all, as Booster.predict on a loaded model)
    ctypes.c_int,  # data type
    ctypes.c_int32,  # columns
    ctypes.c_char_p,  # parameters
    ctypes.POINTER(ctypes.c_void_p),  # the fast config made
]
_LIB.LGBM_BoosterPredictForMatSingleRowFast.argtypes = [
    ctypes.c_void_p,  # fast config
    ctypes.c_void_p,  # the row
    ctypes.POINTER(ctypes.c_int64),  # values written
    ctypes.c_void_p,  # output
]
_LIB.LGBM_FastConfigFree.argtypes = [ctypes.c_void_p]
_LIB.LGBM_GetLastError.restype = ctypes.c_char_p


def _check(status: int) -> None:
    if status != 0:
        raise UsageError(f"LightGBM: {_LIB.LGBM_GetLastError().decode(errors='replace')}")


class OneRow:
    """Predictions for one row of model inputs, as `booster.predict(row, num_threads=1)`."""

    def __init__(self, booster: Any) -> None:
        self.columns = int(booster.num_feature())
        self.outputs = int(booster.num_model_per_iteration())  # classes, or 1
        handle = ctypes.c_void_p()
        _check(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                _PREDICT_NORMAL,
                0,
                -1,
                _FLOAT64,
                self.columns,
                b"num_threads=1",
                ctypes.byref(handle),
            )
        )
        self._handle = handle
        self._booster = booster  # the config points into it: it must outlive the config
        weakref.finalize(self, _LIB.LGBM_FastConfigFree, handle)

    def predict(self, row: np.ndarray) -> np.ndarray:
        """`row`: a contiguous float64 array of the model's columns. The shape Booster.predict
        gives one row: (1,), or (1, classes) for a multiclass model."""
        if row.shape != (self.columns,) or row.dtype != np.float64 or not row.flags.c_contiguous:
            raise ValueError(f"expected a contiguous float64 row of {self.columns} values")
        out = np.empty(self.outputs, dtype="float64")
        written = ctypes.c_int64()
        _check(
            _LIB.LGBM_BoosterPredictForMatSingleRowFast(
                self._handle, row.ctypes.data, ctypes.byref(written), out.ctypes.data
            )
        )
        return out if self.outputs == 1 else out.reshape(1, -1)
