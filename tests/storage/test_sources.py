"""Sources in object storage: a run reads them through fsspec from a real S3 API (moto's
server on 127.0.0.1) and gives the same metrics as from the local file; the cache keys on
the object's ETag."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from mlcompile.testing import conformance_spec, make_project, run_backend


def _overall(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {model: dict(m["overall"]) for model, m in metrics.items()}


def _in_bucket(s3: Any, project: Path) -> str:
    """Move the project's data file into a fresh bucket; its URI."""
    bucket = f"data-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    local = project / "data" / "cancer.csv"
    s3.put_object(Bucket=bucket, Key="raw/cancer.csv", Body=local.read_bytes())
    local.unlink()
    return f"s3://{bucket}/raw/cancer.csv"


@pytest.mark.slow
def test_a_run_reads_its_source_from_s3_with_the_same_metrics(s3: Any, tmp_path: Path) -> None:
    spec = conformance_spec()
    local_spec = make_project(tmp_path / "local", spec)
    local = run_backend(local_spec, "local", tmp_path / "local" / "build")
    assert local.exit_code == 0, local.error

    remote_root = tmp_path / "remote"
    make_project(remote_root, spec)
    uri = _in_bucket(s3, remote_root)
    spec["sources"]["raw"]["path"] = uri
    remote_spec = make_project(remote_root, spec)
    (remote_root / "data" / "cancer.csv").unlink()  # make_project wrote it again
    remote = run_backend(remote_spec, "local", remote_root / "build")
    assert remote.exit_code == 0, remote.error
    assert _overall(remote.metrics) == _overall(local.metrics)
    assert json.loads((remote_root / "build" / "plan.json").read_text())  # built from the URI
    assert uri in (remote_root / "build" / "plan.json").read_text()

    # The cache keys on the object's ETag: unchanged, the ingest is a cache hit; replaced
    # with other bytes, it runs again and sees them.
    again = run_backend(remote_spec, "local", remote_root / "build")
    assert again.exit_code == 0, again.error
    assert again.steps["ingest:raw"]["status"] == "cached"
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=original.replace(b"\n", b"\r\n"))
    changed = run_backend(remote_spec, "local", remote_root / "build")
    assert changed.exit_code == 0, changed.error
    assert changed.steps["ingest:raw"]["status"] != "cached"


def test_validate_takes_source_uris_offline_and_refuses_other_ones(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    spec = conformance_spec()
    spec["sources"]["raw"]["path"] = "s3://no-such-bucket/raw/cancer.csv"
    path = make_project(tmp_path / "p", spec)
    assert cli("validate", path, cwd=path.parent).exit_code == 0  # no network at validate

    spec["sources"]["raw"]["path"] = "ftp://host/cancer.csv"
    path = make_project(tmp_path / "q", spec)
    refused = cli("validate", path, cwd=path.parent)
    assert refused.exit_code == 2
    assert "E306" in refused.output and "'ftp://' is not supported" in refused.output

    spec = conformance_spec()
    spec["deployments"]["scores"]["output"] = "s3://bucket/scores.parquet"
    path = make_project(tmp_path / "r", spec)
    refused = cli("validate", path, cwd=path.parent)
    assert refused.exit_code == 2
    assert "only sources and settings.registry use object storage so far" in refused.output
