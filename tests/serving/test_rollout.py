"""Canary and shadow: two versions of a model behind one server, both in the log."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlcompile.errors import UsageError
from mlcompile.runtime.registry import Registry
from mlcompile.serving.app import create_app
from mlcompile.serving.rollout import Canary, parse_canary

from .conftest import MODEL, add_version, as_json_rows

REQUESTS = 2_000


@pytest.fixture
def two_versions(registry_root: Path) -> Path:
    """Version 1 at production, version 2 at challenger."""
    Registry(registry_root).promote(MODEL, add_version(registry_root), "challenger")
    return registry_root


def _logged(client: TestClient, log_dir: Path) -> pd.DataFrame:
    client.app.state.prediction_log.flush()  # type: ignore[attr-defined]
    return pd.read_parquet(log_dir)


def test_canary_takes_its_share_of_2000_requests(
    two_versions: Path, log_dir: Path, raw_rows: pd.DataFrame
) -> None:
    app = create_app(two_versions, MODEL, "production", log_dir, canary=Canary("challenger", 20))
    body = {"rows": as_json_rows(raw_rows.head(1))}
    with TestClient(app) as client:
        answers = [client.post("/predict", json=body).json() for _ in range(REQUESTS)]
        logged = _logged(client, log_dir)
    versions = pd.Series([a["version"] for a in answers])
    share = (versions == 2).mean()
    # binomial(2000, 0.2): a standard deviation of 0.009, so 4.5 of them either side
    assert 0.16 <= share <= 0.24, share
    assert set(versions) == {1, 2}
    by = logged.groupby("answered_by")["model_version"].agg(set).to_dict()
    assert by == {"production": {1}, "challenger": {2}}
    assert (logged["answered_by"] == "challenger").sum() == (versions == 2).sum()


def test_a_routing_key_sticks_to_one_side(
    two_versions: Path, log_dir: Path, raw_rows: pd.DataFrame
) -> None:
    app = create_app(two_versions, MODEL, "production", log_dir, canary=Canary("challenger", 50))
    body = {"rows": as_json_rows(raw_rows.head(1))}
    with TestClient(app) as client:
        sides = {}
        for user in range(200):
            seen = {
                client.post(
                    "/predict", json=body, headers={"X-Routing-Key": f"user-{user}"}
                ).json()["version"]
                for _ in range(3)
            }
            assert len(seen) == 1, (user, seen)
            sides[user] = seen.pop()
    assert 0.35 <= sum(v == 2 for v in sides.values()) / len(sides) <= 0.65


def test_the_shadow_is_logged_and_never_returned(
    two_versions: Path, log_dir: Path, raw_rows: pd.DataFrame
) -> None:
    app = create_app(two_versions, MODEL, "production", log_dir, shadow="challenger")
    rows = as_json_rows(raw_rows.head(4))
    with TestClient(app) as client:
        answer = client.post("/predict", json={"rows": rows}).json()
        logged = _logged(client, log_dir)
    assert answer["version"] == 1 and answer["alias"] == "production"
    assert all(set(p) == {"probability", "label"} for p in answer["predictions"])
    assert "shadow" not in str(answer)
    assert logged["shadow_version"].tolist() == [2] * 4
    assert logged["model_version"].tolist() == [1] * 4
    # the same trees: the challenger's answers, logged beside the champion's
    assert logged["shadow_probability"].tolist() == logged["probability"].tolist()
    assert logged["shadow_label"].tolist() == [p["label"] for p in answer["predictions"]]


@pytest.mark.parametrize("text", ["challenger", "challenger=101", "=5", "../x=5", "a=ten"])
def test_bad_canary_options_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="--canary"):
        parse_canary(text)
