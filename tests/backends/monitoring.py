"""The monitoring job end to end, as every backend must run it: the flights example trained
with the local backend, then `mlcompile monitor --backend <name>` on the model it registered.

December is the month after the training data, so the example's monitor must find the
seasonal drift (day of year and month) whatever backend runs it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result

# 20,000-row training samples and a registry of the profile's own: the quick way through.
PROFILE = "+profile=ci"
MONITOR = "monitor:delayed_drift"


def monitor_flights(
    cli: Callable[..., Result], project: Path, backend: str, *overrides: str
) -> dict[str, Any]:
    """`mlcompile monitor --format json` on `backend`, after training `project` locally."""
    spec = project / "mlcompile.yaml"
    trained = cli("run", spec, PROFILE, *overrides, "--quiet")
    assert trained.exit_code == 0, trained.output
    watched = cli(
        "monitor",
        spec,
        PROFILE,
        *overrides,
        "--backend",
        backend,
        "--no-retrain",
        "--format",
        "json",
        "--quiet",
    )
    # 7: checks failed and nothing replaced the watched model
    assert watched.exit_code == 7, watched.output
    payload: dict[str, Any] = json.loads(watched.stdout)
    assert payload["monitoring"]["status"] == "succeeded", payload["monitoring"]["error"]
    assert payload["monitoring"]["steps"][MONITOR]["status"] == "ran"
    decision = payload["monitoring"]["decisions"]["delayed_drift"]
    failing = {c["feature"] for c in decision["checks"] if c["kind"] == "drift" and not c["passed"]}
    assert {"day_of_year", "month"} <= failing, decision["checks"]
    assert (decision["passed"], decision["retrain"]) == (False, True)
    # --no-retrain: the training pipeline did not run again
    assert payload["retrain"] is None
    # the report outside the orchestrator's store, where schedulers and triggers read it
    report = json.loads((project / payload["reports"]["delayed_drift"]).read_text("utf-8"))
    assert report["decision"] == decision
    check_drift_report(report["drift"], payload)
    return payload


def check_drift_report(drift: dict[str, Any], payload: dict[str, Any]) -> None:
    """The drift.json a backend kept describes the version the decision judged."""
    decision = payload["monitoring"]["decisions"]["delayed_drift"]
    assert (drift["registered_name"], drift["version"]) == (
        decision["registered_name"],
        decision["version"],
    )
    for feature in ("day_of_year", "month"):
        assert drift["features"][feature]["psi"] > 0.25, feature
