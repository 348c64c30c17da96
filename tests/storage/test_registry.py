"""The model registry on object storage, against a real S3 API (moto's server on 127.0.0.1):
create-only writes refused with 412, the same behaviour as the local folder, concurrent
promotes that all land in order, kills that leave it consistent, and a pipeline whose data
and registry both live in the bucket."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from mlcompile.errors import StepError, UsageError
from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.objregistry import ObjectRegistry
from mlcompile.runtime.registry import ModelRegistry, Registry, open_registry
from mlcompile.testing import conformance_spec, make_project, run_backend

from ..runtime.helpers import killed_at_each_boundary

METRICS = {"task": "binary", "rows": 10, "overall": {"roc_auc": 0.8}, "slices": {}}


def bundle(text: str) -> ModelBundle:
    return ModelBundle(text=text, meta={"model": "m", "training_data": {"sha256": "d" * 64}})


def new_bucket(s3: Any) -> str:
    bucket = f"reg-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def bucket(s3: Any) -> str:
    return new_bucket(s3)


def _cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_a_second_create_only_put_is_refused_with_412(s3: Any, bucket: str) -> None:
    """The store's side of the registry's commit: PutObject with If-None-Match: * creates
    a key once; the second writer gets 412 PreconditionFailed and the first one's bytes
    stay. s3fs's create mode (what the registry uses) says so with FileExistsError."""
    from botocore.exceptions import ClientError

    s3.put_object(Bucket=bucket, Key="m/events/event-000001.json", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        s3.put_object(
            Bucket=bucket, Key="m/events/event-000001.json", Body=b"second", IfNoneMatch="*"
        )
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    registry = ObjectRegistry(f"s3://{bucket}/reg")
    registry.fs.pipe_file(f"{bucket}/m/events/event-000002.json", b"one", mode="create")
    with pytest.raises(FileExistsError):
        registry.fs.pipe_file(f"{bucket}/m/events/event-000002.json", b"two", mode="create")
    body = s3.get_object(Bucket=bucket, Key="m/events/event-000001.json")["Body"].read()
    assert body == b"first"


def _exercise(registry: ModelRegistry) -> dict[str, Any]:
    """The same changes on any registry; what a reader sees after them."""
    registry.register("m", bundle("v1"), METRICS, alias="production", reference=b"PAR1 rows")
    again = registry.register("m", bundle("v1"), {**METRICS, "rows": 99}, alias="production")
    registry.register("m", bundle("v2"), METRICS, alias="production", diagnosis={"x": [1]})
    registry.register("m", bundle("v3"), METRICS)
    registry.promote("m", 3, "staging")
    back = registry.rollback("m", "production")
    with pytest.raises(UsageError, match="no previous version to roll back to"):
        registry.rollback("m", "production")
    with pytest.raises(UsageError, match=r"no version or alias 'prodution'.*did you mean"):
        registry.get("m", "prodution")
    with pytest.raises(UsageError, match="no registered model 'n'"):
        registry.promote("n", 1, "production")
    with pytest.raises(UsageError, match="cannot be a registry alias"):
        registry.promote("m", 1, "../evil")
    first = registry.get("m", 1)
    return {
        "again": (again.version, again.created),
        "back": back.version,
        "models": registry.list_models(),
        "versions": registry.versions("m"),
        "aliases": registry.aliases("m"),
        "history": [
            {k: v for k, v in e.items() if k not in ("timestamp", "user", "files")}
            for e in registry.history("m")
        ],
        "bundle": first.bundle(),
        "metrics": first.metrics(),
        "reference": first.reference_path.read_bytes(),
        "diagnosis": registry.get("m", 2).diagnosis(),
        "registration": {
            k: v for k, v in first.registration.items() if k not in ("created_at", "user")
        },
        "production": registry.production_metrics("m", "production"),
    }


def test_the_object_registry_behaves_like_the_folder(s3: Any, bucket: str, tmp_path: Path) -> None:
    local = _exercise(Registry(tmp_path / "registry"))
    remote = _exercise(ObjectRegistry(f"s3://{bucket}/registry", cache_dir=_cache(tmp_path)))
    assert remote == local
    assert local["again"] == (1, False) and local["back"] == 1
    assert local["aliases"] == {"production": 1, "staging": 3}
    # a second reader, with an empty cache, fetches the files from the bucket
    fresh = ObjectRegistry(f"s3://{bucket}/registry", cache_dir=tmp_path / "other-cache")
    assert fresh.get("m", "staging").bundle() == bundle("v3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    events = [k for k in keys if "/events/" in k]
    assert events == [f"registry/m/events/event-{n:06d}.json" for n in range(1, 8)]
    assert all(k.startswith(("registry/m/events/", "registry/.blobs/")) for k in keys)


def test_open_registry_picks_by_the_location(s3: Any, bucket: str, tmp_path: Path) -> None:
    assert isinstance(open_registry(f"s3://{bucket}/r"), ObjectRegistry)
    folder = open_registry(f"file://{tmp_path}/r")
    assert isinstance(folder, Registry) and folder.root == tmp_path / "r"
    assert isinstance(open_registry("reg", tmp_path), Registry)
    with pytest.raises(UsageError, match="a registry cannot live at 'https://"):
        open_registry("https://example.com/r")
    with pytest.raises(StepError, match="points outside the project folder"):
        open_registry("../elsewhere", tmp_path)


def test_a_missing_or_corrupt_event_is_a_clear_error(s3: Any, bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/r"
    registry = ObjectRegistry(uri, cache_dir=_cache(tmp_path))
    for text in ("v1", "v2"):
        registry.register("m", bundle(text), METRICS, alias="production")
    s3.put_object(Bucket=bucket, Key="r/m/events/event-000003.json", Body=b"not json")
    with pytest.raises(StepError, match=r"r/m/events/event-000003.json: corrupt registry event"):
        ObjectRegistry(uri).history("m")
    s3.delete_object(Bucket=bucket, Key="r/m/events/event-000002.json")
    with pytest.raises(StepError, match=r"event 2 is missing before event-000003\.json"):
        ObjectRegistry(uri).history("m")


# ---- concurrent writers -----------------------------------------------------------------

# One writer: argv is the registry's URI, the rounds, and the two versions it alternates.
# The login name tells the writers' events apart in the log.
PROMOTER = """
import sys
from mlcompile.runtime.objregistry import ObjectRegistry

uri, rounds, mine = sys.argv[1], int(sys.argv[2]), [int(v) for v in sys.argv[3:5]]
registry = ObjectRegistry(uri)
refused = 0
write = registry.fs.pipe_file


def counted(*args, **kwargs):
    global refused
    try:
        return write(*args, **kwargs)
    except FileExistsError:
        refused += 1
        raise


registry.fs.pipe_file = counted
sys.stdin.readline()  # started together: every writer waits for the go
for n in range(rounds):
    registry.promote("m", mine[n % 2], "production")
print(refused)
"""


def test_concurrent_promotes_all_land_in_order(s3: Any, bucket: str, tmp_path: Path) -> None:
    """Two processes move one alias at once, many times. Each writer alternates between two
    versions of its own, so every one of its promotes is a move; the log must hold all of
    them, each writer's in its own order, each event moving the alias from where the
    previous one left it (a lost move would break that chain)."""
    uri = f"s3://{bucket}/r"
    registry = ObjectRegistry(uri, cache_dir=_cache(tmp_path))
    for n in range(1, 5):
        registry.register("m", bundle(f"v{n}"), METRICS)
    rounds = 25
    writers = {"writer-a": ("1", "2"), "writer-b": ("3", "4")}
    procs = {
        user: subprocess.Popen(
            [sys.executable, "-c", PROMOTER, uri, str(rounds), *versions],
            env={**os.environ, "LOGNAME": user, "MLCOMPILE_CACHE_DIR": str(tmp_path / user)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for user, versions in writers.items()
    }
    for proc in procs.values():  # both have imported and opened the registry: go
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
    refused = 0
    for user, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (user, err[-2000:])
        refused += int(out)

    moves = [e for e in ObjectRegistry(uri).history("m") if e["event"] == "promote"]
    assert len(moves) == 2 * rounds
    for user, versions in writers.items():
        theirs = [e["to_version"] for e in moves if e["user"] == user]
        assert theirs == [int(versions[n % 2]) for n in range(rounds)], user
    previous = None
    for event in moves:
        assert event["from_version"] == previous, event
        previous = event["to_version"]
    assert ObjectRegistry(uri).aliases("m") == {"production": previous}
    # they did interleave (a test where one writer ran after the other would prove nothing)
    users = [e["user"] for e in moves]
    assert sum(a != b for a, b in itertools.pairwise(users)) > 1
    # and raced for the same event numbers: refused writes that read again and retried
    assert refused > 0, "no write was ever refused: the writers did not race"


def test_concurrent_registrations_get_distinct_versions(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    uri = f"s3://{bucket}/r"
    texts = [f"model {i}" for i in range(6)]

    def add(text: str) -> int:
        registry = ObjectRegistry(uri, cache_dir=_cache(tmp_path))
        return registry.register("m", bundle(text), METRICS, alias="production").version

    with ThreadPoolExecutor(max_workers=6) as pool:
        versions = list(pool.map(add, texts))
    assert sorted(versions) == list(range(1, 7))
    reader = ObjectRegistry(uri, cache_dir=tmp_path / "reader")
    for version, text in zip(versions, texts, strict=True):
        assert reader.get("m", version).bundle().text == text
    moves = [e for e in reader.history("m") if e["event"] == "promote"]
    assert [m["from_version"] for m in moves[1:]] == [m["to_version"] for m in moves[:-1]]


# ---- kills ------------------------------------------------------------------------------

CHANGE = """
import sys
from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.objregistry import ObjectRegistry

registry = ObjectRegistry(sys.argv[1])
metrics = {"task": "binary", "rows": 10, "overall": {"roc_auc": 0.8}, "slices": {}}
bundle = ModelBundle("model v4", {"model": "m", "training_data": {}})
registry.register("m", bundle, metrics, alias="production", reference=b"PAR1 rows")
"""


def assert_consistent(registry: ObjectRegistry) -> None:
    history = registry.history("m")
    versions = registry.versions("m")
    assert versions == list(range(1, len(versions) + 1))
    assert [e["version"] for e in history if e["event"] == "register"] == versions
    shas = []
    for version in versions:
        found = registry.get("m", version)  # every file an event names is in the bucket
        assert found.registration["model_sha256"] == found.bundle().sha256
        assert found.registration["version"] == version
        shas.append(found.bundle().sha256)
    assert len(set(shas)) == len(shas), "a model registered twice"
    for alias, version in registry.aliases("m").items():
        assert version in versions, f"{alias} points at a missing version"


def test_a_register_killed_at_any_write_boundary_leaves_it_consistent(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fresh(n: int) -> list[str]:
        uri = f"s3://{new_bucket(s3)}/r"
        registry = ObjectRegistry(uri, cache_dir=_cache(tmp_path))
        for text in ("model v1", "model v2", "model v3"):
            registry.register("m", bundle(text), METRICS, alias="production")
        monkeypatch.setenv("MLCOMPILE_CACHE_DIR", str(tmp_path / f"child-{n}"))
        return [uri]

    kills = []
    for n, (uri,) in killed_at_each_boundary(CHANGE, fresh):
        kills.append(n)
        registry = ObjectRegistry(uri, cache_dir=tmp_path / f"reader-{n}")
        assert_consistent(registry)
        assert registry.versions("m") in ([1, 2, 3], [1, 2, 3, 4])
        assert registry.aliases("m")["production"] in (3, 4)
        # the re-run after the kill: v4 once, promoted, with its reference rows
        v4 = ModelBundle("model v4", {"model": "m", "training_data": {}})
        again = registry.register("m", v4, METRICS, alias="production", reference=b"PAR1 rows")
        assert again.version == 4 and registry.aliases("m") == {"production": 4}
        assert again.reference_path.read_bytes() == b"PAR1 rows"
        assert_consistent(registry)
    # the blobs (model.txt, model.bst is the same bytes, model.json, metrics, reference,
    # registration), the local cache, the register event, the promote event
    assert len(kills) >= 6


# ---- a pipeline on the bucket -------------------------------------------------------------


def _overall(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {model: dict(m["overall"]) for model, m in metrics.items()}


@pytest.mark.slow
def test_a_run_with_data_and_registry_in_the_bucket_gives_the_local_metrics(
    s3: Any, bucket: str, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    import pandas as pd
    from fastapi.testclient import TestClient

    from mlcompile.serving.app import create_app

    spec = conformance_spec()
    local = run_backend(make_project(tmp_path / "local", spec), "local", tmp_path / "local" / "b")
    assert local.exit_code == 0, local.error

    root = tmp_path / "remote"
    make_project(root, spec)
    data = root / "data" / "cancer.csv"
    s3.put_object(Bucket=bucket, Key="raw/cancer.csv", Body=data.read_bytes())
    registry = f"s3://{bucket}/registry"
    spec["sources"]["raw"]["path"] = f"s3://{bucket}/raw/cancer.csv"
    spec["settings"] = {"registry": registry}
    remote_spec = make_project(root, spec)
    data.unlink()
    assert cli("validate", remote_spec, cwd=root).exit_code == 0
    remote = run_backend(remote_spec, "local", root / "b")
    assert remote.exit_code == 0, remote.error
    assert _overall(remote.metrics) == _overall(local.metrics)
    assert not (root / ".mlcompile" / "registry").exists()  # nothing of it on disk

    name = "conformance.benign"
    reader = ObjectRegistry(registry, cache_dir=tmp_path / "reader")
    assert reader.list_models() == [name]
    assert reader.aliases(name) == {"production": 1}
    assert reader.get(name, "production").metrics()["overall"] == local.metrics["benign"]["overall"]

    # serve answers from the bucket's version as from the same model in a local registry
    rows = pd.read_csv(tmp_path / "local" / "data" / "cancer.csv").head(5)
    body = {"rows": [{str(k): v for k, v in r.items()} for r in rows.to_dict("records")]}
    answers = []
    for where in (registry, tmp_path / "local" / ".mlcompile" / "registry"):
        app = create_app(where, name, "production", tmp_path / f"log-{len(answers)}")
        with TestClient(app) as client:
            response = client.post("/predict", json=body)
            assert response.status_code == 200, response.text
            answers.append(response.json()["predictions"])
    assert answers[0] == answers[1]

    # the gate compares with production, read from the bucket; the same model again
    # registers nothing new; the monitor watches the version the bucket's alias names
    again = run_backend(remote_spec, "local", root / "b")
    assert again.exit_code == 0, again.error
    assert reader.versions(name) == [1]
    watched = run_backend(remote_spec, "local", root / "b", monitoring=True)
    assert watched.exit_code == 0, watched.error
    report = json.loads((root / ".mlcompile" / "monitoring" / "drift.json").read_text())
    assert report["decision"]["version"] == 1

    # the registry commands on the bucket
    listed = cli("registry", "list", "--registry", registry, "--format", "json", cwd=root)
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)["models"][name]["aliases"] == {"production": 1}
    reader.register(name, bundle("another model"), METRICS)
    moved = cli("registry", "promote", f"{name}@2", "--registry", registry, cwd=root)
    assert moved.exit_code == 0 and f"{name}: production -> v2" in moved.output
    shown = cli("registry", "show", f"{name}@production", "--registry", registry, cwd=root)
    assert shown.exit_code == 0 and '"version": 2' in shown.output
    back = cli("registry", "rollback", name, "--registry", registry, cwd=root)
    assert back.exit_code == 0 and f"{name}: production -> v1" in back.output
    assert ObjectRegistry(registry).aliases(name) == {"production": 1}

    # without --registry the commands read the bucket the project's spec names; the model
    # trace and the audit report read the registry there too
    listed = cli("registry", "list", "--format", "json", cwd=root / "data")
    assert json.loads(listed.output)["models"][name]["aliases"] == {"production": 1}
    traced = cli("lineage", name, "--format", "json", cwd=root)
    assert traced.exit_code == 0, traced.output
    found = json.loads(traced.output)
    assert (found["version"], found["aliases"]) == (1, ["production"])
    assert found["run"]["id"] == remote.run_id
    assert [e["event"] for e in found["history"]][:2] == ["register", "promote"]
    page = tmp_path / "report.html"
    made = cli("report", root / ".mlcompile" / "runs" / str(remote.run_id), "-o", page, cwd=root)
    assert made.exit_code == 0, made.output
    history = page.read_text(encoding="utf-8").split('id="registry-table"')[1].split("</table>")[0]
    assert f"<td>{name}</td><td>register</td>" in history


def test_validate_takes_an_object_store_registry_and_refuses_https(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    spec = conformance_spec()
    spec["settings"] = {"registry": "s3://no-such-bucket/registry"}
    path = make_project(tmp_path / "p", spec)
    assert cli("validate", path, cwd=path.parent).exit_code == 0  # no network at validate

    spec["settings"] = {"registry": "https://example.com/registry"}
    path = make_project(tmp_path / "q", spec)
    refused = cli("validate", path, cwd=path.parent)
    assert refused.exit_code == 2
    assert "E306" in refused.output and "the registry cannot live at 'https://" in refused.output
