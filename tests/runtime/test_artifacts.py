from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlcompile.errors import StepError
from mlcompile.runtime.artifacts import (
    ModelBundle,
    artifact_dir,
    atomic_write_bytes,
    dumps_json,
    parquet_bytes,
    read_dataset,
    read_model,
    read_record,
    resolve_project_path,
    sha256_file,
    write_dataset,
    write_model,
    write_record,
)


def test_same_frame_gives_same_parquet_bytes(flights: pd.DataFrame) -> None:
    sample = flights.head(2000)
    shuffled_index = sample.set_axis(np.arange(2000)[::-1])
    assert parquet_bytes(sample) == parquet_bytes(sample.copy())
    # The index is never stored, so frames differing only in their index give the same file.
    assert parquet_bytes(sample) == parquet_bytes(shuffled_index)
    assert parquet_bytes(sample) != parquet_bytes(sample.head(1999))


def test_dataset_round_trip_and_meta(tmp_path: Path, flights: pd.DataFrame) -> None:
    sample = flights.head(500).assign(when=pd.to_datetime(flights["time_hour"].head(500)))
    meta = write_dataset(tmp_path / "ds", sample, {"flights": "abc"})
    back, read_meta = read_dataset(tmp_path / "ds")
    pd.testing.assert_frame_equal(back, sample)
    assert read_meta == meta
    assert meta["rows"] == 500
    assert meta["columns"]["carrier"] == "str"
    assert meta["columns"]["dep_delay"] == "float64"
    assert meta["columns"]["when"].startswith("datetime64")
    assert meta["sha256"] == sha256_file(tmp_path / "ds" / "data.parquet")
    assert meta["sources"] == {"flights": "abc"}
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["data.parquet", "meta.json"]
    first = (tmp_path / "ds" / "data.parquet").read_bytes()
    write_dataset(tmp_path / "again", sample, {"flights": "abc"})
    assert (tmp_path / "again" / "data.parquet").read_bytes() == first


def test_json_is_sorted_indented_and_has_no_nan(tmp_path: Path) -> None:
    write_record(
        tmp_path / "m", "metrics", {"b": np.float64(0.5), "a": math.nan, "c": [np.int64(2)]}
    )
    text = (tmp_path / "m" / "metrics.json").read_text()
    assert text == '{\n  "a": null,\n  "b": 0.5,\n  "c": [\n    2\n  ]\n}\n'
    assert read_record(tmp_path / "m", "metrics") == {"a": None, "b": 0.5, "c": [2]}
    with pytest.raises(TypeError, match="cannot write"):
        dumps_json({"x": object()})


def test_rewriting_an_artifact_replaces_it_whole(tmp_path: Path) -> None:
    target = tmp_path / "model"
    write_model(target, ModelBundle(text="first", meta={"v": 1}))
    (target / "stale.txt").write_text("left over from an older writer")
    write_model(target, ModelBundle(text="second", meta={"v": 2}))
    assert sorted(p.name for p in target.iterdir()) == ["model.json", "model.txt"]
    assert read_model(target) == ModelBundle(text="second", meta={"v": 2})
    # No staging or discarded directories are left next to the artifact.
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_failed_write_leaves_the_old_artifact(tmp_path: Path) -> None:
    target = tmp_path / "a"
    write_record(target, "decision", {"passed": True})
    with pytest.raises(RuntimeError), artifact_dir(target) as staging:
        (staging / "decision.json").write_text("{}")
        raise RuntimeError("the step crashed half way")
    assert read_record(target, "decision") == {"passed": True}
    assert [p.name for p in tmp_path.iterdir()] == ["a"]


def test_atomic_write_bytes_returns_the_hash(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "out.bin"
    digest = atomic_write_bytes(path, b"payload")
    assert path.read_bytes() == b"payload"
    assert digest == hashlib.sha256(b"payload").hexdigest() == sha256_file(path)
    assert [p.name for p in path.parent.iterdir()] == ["out.bin"]


def test_published_files_are_readable_by_others(tmp_path: Path) -> None:
    # Temporary files start private; a shared registry or a served manifest must not stay so.
    atomic_write_bytes(tmp_path / "manifest.yaml", b"kind: x\n")
    write_record(tmp_path / "decision", "decision", {"passed": True})
    assert (tmp_path / "manifest.yaml").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "decision").stat().st_mode & 0o777 == 0o755


def test_a_corrupted_dataset_is_detected(tmp_path: Path) -> None:
    write_dataset(tmp_path / "ds", pd.DataFrame({"x": [1, 2, 3]}), {})
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    (tmp_path / "ds" / "meta.json").write_text(json.dumps({**meta, "sha256": "0" * 64}))
    with pytest.raises(StepError, match="does not match the sha256"):
        read_dataset(tmp_path / "ds")
    with pytest.raises(StepError, match="missing artifact file"):
        read_dataset(tmp_path / "nowhere")


def test_project_paths_cannot_escape_the_root(tmp_path: Path) -> None:
    assert resolve_project_path(tmp_path, "data/x.csv", "path") == tmp_path / "data" / "x.csv"
    for escaping in ("../outside.csv", "/etc/passwd", "data/../../x"):
        with pytest.raises(StepError, match="outside the project"):
            resolve_project_path(tmp_path, escaping, "source 'f' path")
