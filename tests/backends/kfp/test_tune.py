"""A tuned model on kfp.local: the search runs as a step of its own, and registers the model
the local backend registers, chosen by the same trials."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.backends.kfp.helpers import MINI_SPEC
from tests.backends.kfp.test_local_run import run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("kfp")]

TUNED_SPEC = MINI_SPEC.replace("__BOUND__", "0.5").replace(
    "    early_stopping: null\n",
    "    early_stopping: {rounds: 5, validation_size: 0.2}\n"
    "    tune:\n"
    "      metric: roc_auc\n"
    "      trials: 3\n"
    "      space:\n"
    "        num_leaves: {int: [4, 31]}\n"
    "        learning_rate: {float: [0.05, 0.3], log: true}\n",
)


def registered(root: Path) -> dict[str, Any]:
    [folder] = (root / ".mlcompile" / "registry").glob("*/versions/1")
    entry: dict[str, Any] = json.loads((folder / "registration.json").read_text())
    return entry


def test_kfp_local_tunes_as_the_local_backend_does(make_project: Callable[..., Path]) -> None:
    kfp_root = make_project("kfp", spec=TUNED_SPEC)
    local_root = make_project("local", spec=TUNED_SPEC)
    result = run(kfp_root, "kfp")
    assert result.status == "succeeded", result.error
    assert result.steps["tune:delayed"]["status"] == "ran"
    expected = run(local_root, "local")
    assert expected.status == "succeeded", expected.error
    on_kfp, on_local = registered(kfp_root), registered(local_root)
    assert on_kfp["tuning"]["trials"] == 3
    assert on_kfp["tuning"] == on_local["tuning"]
    assert on_kfp["model_sha256"] == on_local["model_sha256"]
