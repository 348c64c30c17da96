"""The backend conformance kit: a pytest suite every backend runs against itself.

Subclass `BackendConformance` in a test module of your backend's distribution:

    from mlcompile.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        backend = "mybackend"

pytest then collects every `test_*` method below for your backend: discovery by entry
point, deterministic and relative output, hostile names that stay inert (in every emitted
file and in every executor, which must run its own node and nothing else), gates that stop
deployments, metrics equal to the local backend's on the same data, and the monitoring job
(the spec's monitors, a plan of their own) built and run like the training pipeline.
Backends without a runner set `can_run = False` and keep the render checks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mlcompile import paths
from mlcompile.backends import (
    ExecutorMap,
    Runner,
    RunOptions,
    RunResult,
    available_backends,
    get_backend,
)
from mlcompile.compiler import Compiled, Rendered, compile_spec, render
from mlcompile.plan import Plan
from mlcompile.testing.project import (
    INVISIBLE,
    conformance_spec,
    hostile_names,
    make_project,
)

__all__ = [
    "BackendConformance",
    "conformance_spec",
    "executor_mismatches",
    "make_project",
    "run_backend",
    "unsafe_characters",
]


def _build(spec_path: Path, backend: str) -> tuple[Any, Any]:
    compiled = compile_spec(spec_path, [])
    return compiled, render(compiled, backend)


def run_backend(spec_path: Path, backend: str, out: Path, *, monitoring: bool = False) -> RunResult:
    """Build `spec_path` for `backend` under `out` and run its training pipeline, or its
    monitoring job when `monitoring`."""
    from mlcompile.compiler import MONITORING_DIR, emitted_files, publish_bundle, write

    compiled, rendered = _build(spec_path, backend)
    write(out, emitted_files(compiled, rendered))
    publish_bundle(rendered)
    runner = rendered.backend
    assert isinstance(runner, Runner), f"backend '{backend}' has no runner"
    options = RunOptions(project_root=compiled.project_root, jobs=1, bundle=rendered.bundle)
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


def unsafe_characters(text: str) -> list[str]:
    """Control, format and line or paragraph separator characters other than \\n and \\t,
    as escapes: no emitted file needs one, and each can make a file read differently from
    what a tool runs."""
    import unicodedata

    found = {
        char
        for char in text
        if char not in "\n\t" and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs")
    }
    return sorted(ascii(char) for char in found)


def executor_mismatches(backend: ExecutorMap, files: Mapping[str, str], plan: Plan) -> list[str]:
    """What is wrong with the executors `backend` reads back from `files`: a plan node with no
    executor or several, or an executor that invokes anything but its own node."""
    executors = backend.executors(files, plan)
    problems = []
    counts = {node.id: 0 for node in plan.nodes}
    for executor in executors:
        counts[executor.node] = counts.get(executor.node, 0) + 1
        if tuple(executor.invokes) != (executor.node,):
            problems.append(
                f"{executor.name} (for {executor.node!r}) runs {list(executor.invokes)!r}"
            )
    problems += [f"{node!r} has {n} executors" for node, n in sorted(counts.items()) if n != 1]
    return problems


def _hostile(folder: Path, spec: dict[str, Any]) -> Compiled:
    """The hostile project, compiled, after checking the names arrived intact."""
    compiled = compile_spec(make_project(folder, spec), [])
    carried = "".join(_strings([(n.id, n.params) for n in compiled.plan.nodes]))
    lost = [ascii(char) for char in INVISIBLE if char not in carried]
    assert not lost, f"the plan lost characters of the hostile names: {lost}"
    return compiled


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


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
        compiled = _hostile(tmp_path / "p", self._spec(names=hostile_names(marker)))
        files = _all_files(render(compiled, self.backend))
        for path, text in files.items():
            if path.endswith(".py"):
                compile(text, path, "exec")
            assert not unsafe_characters(text), (path, unsafe_characters(text))
        assert not marker.exists()

    def test_each_executor_runs_its_own_node(self, tmp_path: Path) -> None:
        marker = short_marker()
        compiled = _hostile(tmp_path / "p", self._spec(names=hostile_names(marker)))
        rendered = render(compiled, self.backend)
        if not isinstance(rendered.backend, ExecutorMap):
            pytest.skip(f"backend '{self.backend}' does not read back its executors")
        assert compiled.monitor_plan is not None and rendered.monitor_files is not None
        for plan, files in (
            (compiled.plan, rendered.files),
            (compiled.monitor_plan, rendered.monitor_files),
        ):
            problems = executor_mismatches(rendered.backend, files, plan)
            assert not problems, "\n".join(problems)
        assert not marker.exists()

    # ---- running ------------------------------------------------------------------------

    def _require_runner(self) -> None:
        if not self.can_run:
            pytest.skip(f"backend '{self.backend}' declares no runner")

    def test_hostile_names_run_and_execute_nothing_else(self, tmp_path: Path) -> None:
        self._require_runner()
        marker = short_marker()
        _hostile(tmp_path / "p", self._spec(names=hostile_names(marker)))
        result = run_backend(
            tmp_path / "p" / "mlcompile.yaml", self.backend, tmp_path / "p" / "build"
        )
        assert result.exit_code == 0, result.error
        assert not marker.exists(), "text from the spec was executed"

    def test_failed_gate_deploys_nothing(self, tmp_path: Path) -> None:
        self._require_runner()
        spec = make_project(tmp_path / "p", self._spec(gate="roc_auc >= 0.9999"))
        result = run_backend(spec, self.backend, tmp_path / "p" / "build")
        assert result.exit_code == 4, (result.exit_code, result.error)
        assert result.decisions["quality"]["passed"] is False
        assert not (tmp_path / "p" / "outputs" / "scores.parquet").exists()
        assert not (tmp_path / "p" / paths.REGISTRY / "conformance.benign").exists()
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
