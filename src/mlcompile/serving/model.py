"""The model a server answers with: one registry version, or whatever an alias points at.

An alias is re-resolved on every request, cheaply: a stat of aliases.json (which the registry
replaces atomically, so a change shows as a new inode, size or mtime). The bundle is read again
only when the alias moved, so `mlcompile registry promote` and `rollback` take effect without a
restart. A version pinned by number never changes.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcompile.errors import UsageError
from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.registry import ALIASES_FILE, Registry, open_registry
from mlcompile.runtime.score import prediction_values
from mlcompile.runtime.train import booster, model_inputs

from .arith import Inexact
from .body import BodyReader
from .domain import Domain, training_domain
from .evaluator import Evaluator, compile_features
from .inputs import InputColumn, columns_frame, input_columns
from .onerow import OneRow

logger = logging.getLogger("mlcompile.serving")

DEFAULT_ALIAS = "production"
PARALLEL_ROWS = 1_000


def predict_threads(rows: int) -> int:
    """LightGBM's `num_threads` for a request of `rows` rows. A large frame is split over the
    cores (0: OpenMP's default, one thread a core): 10,000 flights rows take about half the
    wall time on 2 cores, and each row is still scored by one thread alone, so the bytes are
    the same. Smaller requests stay on one thread, so that concurrent requests do not make
    OpenMP's threads fight over the cores."""
    return 0 if rows >= PARALLEL_ROWS else 1


@dataclass(frozen=True)
class Loaded:
    name: str
    version: int
    alias: str | None
    bundle: ModelBundle
    metrics: dict[str, Any]
    registration: dict[str, Any]
    inputs: tuple[InputColumn, ...]
    reader: BodyReader
    booster: Any
    one_row: OneRow
    evaluator: Evaluator | None
    domain: Domain
    on_invalid: str  # "warn" or "reject", from the model's `serving` spec

    @property
    def signature(self) -> dict[str, str]:
        return dict(self.bundle.meta["feature_state"]["input_signature"])

    def predict(self, values: dict[str, list[Any]], rows: int) -> dict[str, Any]:
        """The prediction columns for request values `reader` read: through the
        compiled evaluator when it can compute them, else through the batch path (which
        raises MlcompileError for rows its features refuse)."""
        if self.evaluator is not None:
            try:
                matrix = self.evaluator.matrix(values, rows)
            except Inexact:
                pass
            else:
                raw = (
                    self.one_row.predict(matrix[0])
                    if rows == 1
                    else self.booster.predict(matrix, num_threads=predict_threads(rows))
                )
                return prediction_values(self.bundle, raw)
        frame = model_inputs(self.bundle, columns_frame(values, self.inputs))
        raw = self.booster.predict(frame, num_threads=predict_threads(rows))
        return prediction_values(self.bundle, raw)


def split_ref(ref: str) -> tuple[str, str]:
    """MODEL, MODEL@ALIAS or MODEL@VERSION; a bare MODEL means its production alias."""
    name, _, which = ref.partition("@")
    if not name:
        raise UsageError(f"'{ref}' names no model: use MODEL, MODEL@ALIAS or MODEL@VERSION")
    return name, which or DEFAULT_ALIAS


class ServedModel:
    def __init__(self, registry_root: Path | str, name: str, ref: str) -> None:
        self.registry = open_registry(registry_root)
        self.name = name
        self.ref = ref
        self.alias = None if ref.isdigit() else ref
        # an object store's registry has no aliases.json to watch: its alias is resolved
        # when the server starts, and followed only by a restart
        self._aliases_file = (
            self.registry.root / name / ALIASES_FILE
            if isinstance(self.registry, Registry)
            else None
        )
        self._lock = threading.Lock()
        self._stamp = self._aliases_stamp()
        self._loaded = self._load()

    def _aliases_stamp(self) -> tuple[int, int, int] | None:
        if self._aliases_file is None:
            return None
        try:
            st = os.stat(self._aliases_file)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _load(self) -> Loaded:
        found = self.registry.get(self.name, self.ref)
        bundle = found.bundle()
        model = booster(bundle)
        evaluator, why = compile_features(bundle.meta["feature_state"], model)
        if evaluator is None:
            logger.warning(
                "%s version %d: features served by the batch path (%s)",
                self.name,
                found.version,
                why,
            )
        inputs = input_columns(bundle.meta["feature_state"]["input_signature"])
        return Loaded(
            self.name,
            found.version,
            self.alias,
            bundle,
            found.metrics(),
            found.registration,
            inputs,
            BodyReader(inputs),
            model,
            OneRow(model),
            evaluator,
            training_domain(found.reference_path, bundle.meta["feature_state"], inputs),
            str((bundle.meta.get("serving") or {}).get("on_invalid", "warn")),
        )

    def current(self) -> Loaded:
        """The version to answer with now. Raises UsageError when the alias is gone or
        now points at a version whose inputs JSON cannot fill."""
        if self.alias is None:
            return self._loaded
        stamp = self._aliases_stamp()
        if stamp == self._stamp:
            return self._loaded
        with self._lock:
            # another request may have reloaded while this one waited for the lock
            if stamp != self._stamp:
                version = self.registry.get(self.name, self.alias).version
                if version != self._loaded.version:
                    self._loaded = self._load()
                self._stamp = stamp
            return self._loaded
