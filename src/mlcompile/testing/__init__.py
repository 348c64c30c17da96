"""The backend conformance kit: a pytest suite every backend runs against itself.

Subclass `BackendConformance` in a test module of your backend's distribution:

    from mlcompile.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        backend = "mybackend"

pytest then collects every `test_*` method below for your backend: discovery by entry
point, deterministic and relative output, hostile names that stay inert, gates that stop
deployments, metrics equal to the local backend's on the same data, and the monitoring job
(the spec's monitors, a plan of their own) built and run like the training pipeline.
Backends without a runner set `can_run = False` and keep the render checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mlcompile.backends import Runner, RunOptions, RunResult, available_backends, get_backend
from mlcompile.compiler import Rendered, compile_spec, render
from mlcompile.testing.project import conformance_spec, hostile_names, make_project

__all__ = ["BackendConformance", "conformance_spec", "make_project", "run_backend"]


def _build(spec_path: Path, backend: str) -> tuple[Any, Any]:
    compiled = compile_spec(spec_path, [])
    return compiled, render(compiled, backend)


def run_backend(spec_path: Path, backend: str, out: Path, *, monitoring: bool = False) -> RunResult:
    """Build `spec_path` for `backend` under `out` and run its training pipeline, or its
    monitoring job when `monitoring`."""
    from mlcompile.compiler import MONITORING_DIR, emitted_files, write

    compiled, rendered = _build(spec_path, backend)
    write(out, emitted_files(compiled, rendered))
    runner = rendered.backend
    assert isinstance(runner, Runner), f"backend '{backend}' has no runner"
    options = RunOptions(project_root=compiled.project_root, jobs=1)
    if monitoring:
        assert compiled.monitor_plan is not None, "the spec has no monitors"
        built = out / MONITORING_DIR / backend
        return runner.run(built, compiled.monitor_plan, rendered.settings, options)
    return runner.run(out / backend, compiled.plan, rendered.settings, options)


def short_marker() -> Path:
    """A short absolute path a hostile spec tries to create (names are capped at 200 chars)."""
    import tempfile
    import uuid

    return Path(tempfile.gettempdir()) / f"mlc-pwned-{uuid.uuid4().hex[:8]}"


def _all_files(rendered: Rendered) -> dict[str, str]:
    """The training pipeline's files and the monitoring job's, under monitoring/."""
    monitoring: Mapping[str, str] = rendered.monitor_files or {}
    return {**rendered.files, **{f"monitoring/{p}": t for p, t in monitoring.items()}}


def _overall(metrics: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    return {model: dict(m["overall"]) for model, m in metrics.items()}


class BackendConformance:
    backend: ClassVar[str]
    settings: ClassVar[dict[str, Any]] = {}
    can_run: ClassVar[bool] = True

    def _spec(self, **kwargs: Any) -> dict[str, Any]:
        return conformance_spec({self.backend: self.settings} if self.settings else {}, **kwargs)

    # ---- discovery and rendering ------------------------------------------------------

    def test_discovered_by_entry_point(self) -> None:
        assert self.backend in available_backends()
        backend = get_backend(self.backend)
        assert backend.name == self.backend

    def test_render_is_deterministic_and_relative(self, tmp_path: Path) -> None:
        first = make_project(tmp_path / "one", self._spec())
        second = make_project(tmp_path / "two" / "nested", self._spec())
        files_one = _all_files(_build(first, self.backend)[1])
        again = _all_files(_build(first, self.backend)[1])
        files_two = _all_files(_build(second, self.backend)[1])
        assert any(p.startswith("monitoring/") for p in files_one), "no monitoring job"
        assert files_one == again, "rendering the same plan twice gave different bytes"
        assert files_one == files_two, "output depends on where the project lives"
        for path, text in files_one.items():
            assert not path.startswith("/") and ".." not in path.split("/")
            assert str(tmp_path) not in text, f"{path} contains an absolute path"

    def test_hostile_names_render_to_code_that_compiles(self, tmp_path: Path) -> None:
        marker = short_marker()
        spec = make_project(tmp_path / "p", self._spec(names=hostile_names(marker)))
        files = _all_files(_build(spec, self.backend)[1])
        for path, text in files.items():
            if path.endswith(".py"):
                compile(text, path, "exec")
        assert not marker.exists()

    # ---- running ------------------------------------------------------------------------

    def _require_runner(self) -> None:
        if not self.can_run:
            pytest.skip(f"backend '{self.backend}' declares no runner")

    def test_hostile_names_run_and_execute_nothing_else(self, tmp_path: Path) -> None:
        self._require_runner()
        marker = short_marker()
        spec = make_project(tmp_path / "p", self._spec(names=hostile_names(marker)))
        result = run_backend(spec, self.backend, tmp_path / "p" / "build")
        assert result.exit_code == 0, result.error
        assert not marker.exists(), "text from the spec was executed"

    def test_failed_gate_deploys_nothing(self, tmp_path: Path) -> None:
        self._require_runner()
        spec = make_project(tmp_path / "p", self._spec(gate="roc_auc >= 0.9999"))
        result = run_backend(spec, self.backend, tmp_path / "p" / "build")
        assert result.exit_code == 4, (result.exit_code, result.error)
        assert result.decisions["quality"]["passed"] is False
        assert not (tmp_path / "p" / "outputs" / "scores.parquet").exists()
        assert not (tmp_path / "p" / ".mlcompile" / "registry" / "conformance.benign").exists()
        assert not (tmp_path / "p" / "deploy").exists()

    def test_metrics_equal_the_local_backend(self, tmp_path: Path) -> None:
        self._require_runner()
        spec = make_project(tmp_path / "p", self._spec())
        local = run_backend(spec, "local", tmp_path / "p" / "build-local")
        assert local.exit_code == 0, local.error
        ours = run_backend(spec, self.backend, tmp_path / "p" / "build")
        assert ours.exit_code == 0, ours.error
        expected, got = _overall(local.metrics), _overall(ours.metrics)
        assert got.keys() == expected.keys()
        for model, values in expected.items():
            assert got[model] == pytest.approx(values, rel=1e-9, abs=1e-12), model
        assert (tmp_path / "p" / "outputs" / "scores.parquet").is_file()

    def test_monitoring_job_runs_after_training(self, tmp_path: Path) -> None:
        self._require_runner()
        spec = make_project(tmp_path / "p", self._spec())
        trained = run_backend(spec, "local", tmp_path / "p" / "build-local")
        assert trained.exit_code == 0, trained.error
        watched = run_backend(spec, self.backend, tmp_path / "p" / "build", monitoring=True)
        assert watched.exit_code == 0, watched.error
        decision = watched.decisions["drift"]
        assert decision["registered_name"] == "conformance.benign"
        assert decision["judged"] and decision["passed"], decision["checks"]
        assert decision["retrain"] is False
        measured = {c["feature"] for c in decision["checks"]}
        assert {"radius_log", "texture", "worst_area", "prediction"} <= measured
