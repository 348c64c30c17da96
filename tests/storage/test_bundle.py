"""Steps that run from the project bundle: the data and the registry in a bucket of a real S3
API (moto's server on 127.0.0.1), the project files the steps read in the bundle that `build`
uploads to the pipeline root, and no project folder on disk while the pipeline runs, on
kfp.local and on ZenML, with the metrics of a local run on local files."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from mlcompile.backends import Runner, RunOptions
from mlcompile.compiler import compile_spec, render
from mlcompile.errors import StepError
from mlcompile.runtime.bundle import bundle_uri, fetch_project
from mlcompile.runtime.objregistry import ObjectRegistry
from mlcompile.testing import conformance_spec, make_project, run_backend


def _spec() -> dict[str, Any]:
    """The conformance project without the deployments that write into the project (E330)."""
    spec = conformance_spec()
    for name in ("scores", "serving"):
        del spec["deployments"][name]
    return spec


def _overall(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {model: dict(m["overall"]) for model, m in metrics.items()}


@pytest.fixture(scope="module")
def local_metrics(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, float]]:
    root = tmp_path_factory.mktemp("bundle-local")
    done = run_backend(make_project(root, _spec()), "local", root / "build")
    assert done.exit_code == 0, done.error
    return _overall(done.metrics)


def _bucketed(s3: Any, root: Path, backend: str) -> tuple[Path, str]:
    """A project whose data and registry live in a fresh bucket and whose `backend` runs
    from the bundle at the bucket's pipeline root; its spec and the bucket."""
    bucket = f"bundle-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    spec = _spec()
    spec["sources"]["raw"]["path"] = f"s3://{bucket}/raw/cancer.csv"
    spec["settings"] = {"registry": f"s3://{bucket}/registry"}
    spec["backends"] = {
        backend: {"project_bundle": True, "pipeline_root": f"s3://{bucket}/pipelines"}
    }
    path = make_project(root, spec)
    data = root / "data" / "cancer.csv"
    s3.put_object(Bucket=bucket, Key="raw/cancer.csv", Body=data.read_bytes())
    shutil.rmtree(data.parent)
    return path, bucket


def _run_without_project(
    spec_path: Path, backend: str, tmp_path: Path, cli: Callable[..., Result]
) -> tuple[Any, Path]:
    """`mlcompile build` (which uploads the bundle), then the project folder is deleted and
    the build runs from an empty folder."""
    built = cli(
        "build", spec_path, "-b", backend, "--out", tmp_path / "build", cwd=spec_path.parent
    )
    assert built.exit_code == 0, built.output
    compiled = compile_spec(spec_path, [])
    rendered = render(compiled, backend)
    assert rendered.bundle is not None
    shutil.rmtree(spec_path.parent)
    empty = tmp_path / "empty"
    empty.mkdir()
    runner = rendered.backend
    assert isinstance(runner, Runner)
    options = RunOptions(project_root=empty, bundle=rendered.bundle)
    return runner.run(
        tmp_path / "build" / backend, compiled.plan, rendered.settings, options
    ), empty


def _production(bucket: str, tmp_path: Path) -> dict[str, Any]:
    """The aliases the bucket's registry holds for the model."""
    reader = ObjectRegistry(f"s3://{bucket}/registry", cache_dir=tmp_path / "reader")
    return reader.aliases("conformance.benign")


def _same_metrics(got: dict[str, Any], expected: dict[str, dict[str, float]]) -> None:
    assert _overall(got).keys() == expected.keys()
    for model, values in expected.items():
        assert _overall(got)[model] == pytest.approx(values, rel=1e-9, abs=1e-12), model


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("kfp", marks=pytest.mark.xdist_group("kfp")),  # on kfp.local
        pytest.param("zenml", marks=pytest.mark.xdist_group("zenml")),
    ],
)
def test_every_step_runs_from_the_bundle_with_no_project_on_disk(
    backend: str,
    s3: Any,
    tmp_path: Path,
    cli: Callable[..., Result],
    local_metrics: dict[str, dict[str, float]],
) -> None:
    spec_path, bucket = _bucketed(s3, tmp_path / "project", backend)
    result, empty = _run_without_project(spec_path, backend, tmp_path, cli)
    assert result.exit_code == 0, result.error
    _same_metrics(result.metrics, local_metrics)
    # the bundle is where the build put it, named by its hash; the model is in the bucket
    (bundle,) = (tmp_path / "build" / "bundle").glob("*.json")
    key = f"pipelines/mlcompile/bundles/{bundle.name}"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == bundle.read_bytes()
    assert _production(bucket, tmp_path) == {"production": 1}
    # the custom metric's module reached the steps only through the bundle
    assert "conformance_metrics.py" in json.loads(bundle.read_text())["files"]
    assert not spec_path.parent.exists()
    assert not list(empty.rglob("conformance_metrics.py")) and not list(empty.rglob("*.csv"))


def test_a_step_runs_only_the_bundle_its_pipeline_names(tmp_path: Path) -> None:
    from mlcompile.backends.bundle import ProjectBundle, publish
    from mlcompile.plan import canonical_json, sha256_text

    text = canonical_json(
        {"files": {"schemas/s.yaml": "columns: {}\n"}, "format": "mlcompile-bundle/1"}
    )
    root = (tmp_path / "root").as_uri()
    bundle = ProjectBundle(root, sha256_text(text), text)
    publish(bundle)
    publish(bundle)  # content-addressed: a second upload changes nothing
    folder = fetch_project(root, bundle.sha256)
    assert (folder / "schemas" / "s.yaml").read_text() == "columns: {}\n"
    assert sorted(p.name for p in folder.rglob("*")) == ["s.yaml", "schemas"]

    stored = tmp_path / "root" / "mlcompile" / "bundles" / bundle.file_name
    stored.write_text(text.replace("columns", "checks"), encoding="utf-8")
    fetch_project.cache_clear()
    with pytest.raises(StepError, match=r"has sha256 \w+, not the"):
        fetch_project(root, bundle.sha256)
    with pytest.raises(StepError, match="cannot fetch the project bundle"):
        fetch_project(root, "0" * 64)
    assert bundle_uri(root + "/", "ab") == f"{root}/mlcompile/bundles/ab.json"


def test_build_refuses_what_steps_without_the_project_folder_would_miss(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    spec = conformance_spec({"kfp": {"project_bundle": True, "pipeline_root": "file:///r"}})
    path = make_project(tmp_path / "p", spec)
    # a module Python reads, in a bundle of UTF-8 text it cannot join
    module = path.parent / "conformance_metrics.py"
    module.write_bytes(b"# -*- coding: latin-1 -*-\n# co\xfbt\n" + module.read_bytes())
    refused = cli("build", path, "-b", "kfp", cwd=path.parent)
    assert refused.exit_code == 2
    for code, where in (
        ("E327", "the project file 'conformance_metrics.py' is not UTF-8 text"),
        ("E328", "source 'raw' reads the project file 'data/cancer.csv'"),
        ("E328", "the registry '.mlcompile/registry' is a folder of the project"),
        ("E330", "deployment 'scores' writes 'outputs/scores.parquet'"),
        ("E330", "deployment 'serving' writes 'deploy/serving.yaml'"),
    ):
        assert f"{code}: {where}" in refused.output, refused.output
    assert "Traceback" not in refused.output
    assert not (path.parent / "build").exists()

    spec["backends"] = {"zenml": {"project_bundle": True}}
    path = make_project(tmp_path / "q", spec)
    refused = cli("build", path, "-b", "zenml", cwd=path.parent)
    assert refused.exit_code == 2
    assert "E329: project_bundle needs a pipeline_root" in refused.output, refused.output
