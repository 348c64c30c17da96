"""Spec -> Plan -> backend artifacts: the Python API behind `build`, `graph` and `run`.

The CLI, the backend conformance kit and any program embedding mlcompile go through here.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from mlcompile import paths
from mlcompile.backends import ArtifactSet, Backend, get_backend
from mlcompile.backends.emit import stale_files, with_index, write_text_atomic, write_tree
from mlcompile.errors import WRITE_ERRNOS, Diagnostic, SpecError, UsageError, WriteError
from mlcompile.plan import Plan
from mlcompile.spec import LoadedSpec, load_spec

MONITORING_DIR = "monitoring"


@dataclass
class Compiled:
    loaded: LoadedSpec
    plan: Plan
    spec_path: Path
    # the monitoring job: its own plan, built and emitted beside the training pipeline
    monitor_plan: Plan | None = None

    @property
    def project_root(self) -> Path:
        return self.loaded.resolved.project_root

    def monitoring(self) -> Plan:
        """The monitoring job, for commands that need one."""
        if self.monitor_plan is None:
            raise UsageError(f"'{self.spec_path}' has no monitors: add them under 'monitoring:'")
        return self.monitor_plan

    @property
    def spec_file(self) -> str:
        """The spec's path relative to its project, as lineage records it."""
        return self.spec_path.resolve().relative_to(self.project_root).as_posix()


def compile_spec(spec_path: Path, overrides: list[str]) -> Compiled:
    from mlcompile.plan.build import build_monitor_plan, build_plan

    loaded = load_spec(spec_path, overrides)
    plan = build_plan(loaded.resolved, loaded.composed.data)
    monitor_plan = build_monitor_plan(loaded.resolved, loaded.composed.data)
    return Compiled(loaded, plan, spec_path, monitor_plan)


def backend_settings(compiled: Compiled, backend: Backend) -> BaseModel:
    """The spec's `backends.<name>` section, validated by the backend's own model."""
    return validated_backend_settings(compiled.loaded, backend)


def validated_backend_settings(loaded: LoadedSpec, backend: Backend) -> BaseModel:
    """A backend's settings from the spec, with their paths (the fields the model marks as
    project paths) checked by the rule every path of the spec follows."""
    from mlcompile.spec.diagnose import diagnostics_from_validation
    from mlcompile.spec.paths import PathChecker
    from mlcompile.spec.yaml_loader import KeyPath

    raw = loaded.resolved.spec.backends.get(backend.name, {})
    prefix = ("backends", backend.name)
    try:
        settings = backend.settings_model.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(
            diagnostics_from_validation(exc, loaded.composed, backend.settings_model, prefix)
        ) from None
    found: list[Diagnostic] = []

    def report(code: str, message: str, path: KeyPath, hint: str) -> None:
        span = loaded.composed.span(path)
        found.append(Diagnostic(code, message, span, hint, path=".".join(map(str, path))))

    PathChecker(loaded.resolved.project_root).check(settings, prefix, report)
    if found:
        raise SpecError(found)
    return settings


def check_backend_sections(loaded: LoadedSpec) -> None:
    """`validate`'s check of the spec's `backends:` sections, for the backends installed
    here (a section for one that is not may be meant for another machine)."""
    from mlcompile.backends import available_backends

    installed = available_backends()
    found: list[Diagnostic] = []
    for name in loaded.resolved.spec.backends:
        if name in installed:
            try:
                validated_backend_settings(loaded, get_backend(name))
            except SpecError as exc:
                found += exc.diagnostics
    if found:
        raise SpecError(found)


@dataclass
class Rendered:
    backend: Backend
    settings: BaseModel
    files: ArtifactSet
    warnings: list[Diagnostic]
    # the monitoring job in the same backend's terms, when the spec has monitors
    monitor_files: ArtifactSet | None = None


def render(compiled: Compiled, backend_name: str) -> Rendered:
    backend = get_backend(backend_name)
    settings = backend_settings(compiled, backend)
    plans = [p for p in (compiled.plan, compiled.monitor_plan) if p is not None]
    diagnostics = [d for plan in plans for d in backend.check(plan, settings)]
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise SpecError(diagnostics)
    monitor = compiled.monitor_plan
    return Rendered(
        backend,
        settings,
        backend.render(compiled.plan, settings),
        list(dict.fromkeys(diagnostics)),
        backend.render(monitor, settings) if monitor is not None else None,
    )


def emitted_files(compiled: Compiled, rendered: Rendered) -> dict[str, dict[str, str]]:
    """Folder (relative to the output dir) -> files, exactly as `write` puts them on disk.

    The monitoring job goes to monitoring/: its plan.json and monitoring/<backend>/."""
    trees = {
        ".": {"plan.json": compiled.plan.to_json()},
        "lineage": build_lineage_cached(compiled),
        rendered.backend.name: with_index(rendered.files),
    }
    if compiled.monitor_plan is not None and rendered.monitor_files is not None:
        trees["."][f"{MONITORING_DIR}/plan.json"] = compiled.monitor_plan.to_json()
        trees[f"{MONITORING_DIR}/{rendered.backend.name}"] = with_index(rendered.monitor_files)
    return trees


def build_lineage_cached(compiled: Compiled) -> dict[str, str]:
    """The build's OpenLineage files, kept in .mlcompile/cache/lineage by what they depend
    on: a `run` whose plan did not change then skips importing the OpenLineage client."""
    import json
    import os

    from mlcompile import __version__
    from mlcompile.plan import canonical_json, sha256_text

    plan_text = compiled.plan.to_json()
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    key = sha256_text(canonical_json([plan_text, compiled.spec_file, __version__, epoch]))
    cached = compiled.project_root / paths.cache_dir("lineage") / f"{key}.json"
    try:
        files: dict[str, str] = json.loads(cached.read_text(encoding="utf-8"))
        return files
    except (OSError, ValueError):
        pass
    from mlcompile.lineage import build_lineage

    # No git commit here: it changes with every commit, which would make a checked-in build
    # stale forever under `build --check`. Run events record the commit instead.
    files = build_lineage(compiled.plan, compiled.spec_file, compiled.plan.spec_sha256, None)
    with contextlib.suppress(OSError):
        write_text_atomic(cached, json.dumps(files, sort_keys=True))
    return files


def write(out_dir: Path, trees: dict[str, dict[str, str]]) -> list[str]:
    written = []
    try:
        for folder, files in trees.items():
            if folder == ".":
                for rel, text in files.items():
                    write_text_atomic(out_dir / rel, text)
                    written.append(rel)
            else:
                write_tree(out_dir / folder, files)
                written += [f"{folder}/{rel}" for rel in files]
    except OSError as exc:
        # the error names a temporary file; the user chose the folder
        if exc.errno not in WRITE_ERRNOS:
            raise
        raise WriteError(out_dir, exc) from None
    return sorted(written)


def stale(out_dir: Path, trees: dict[str, dict[str, str]]) -> list[str]:
    found = []
    for folder, files in trees.items():
        if folder == ".":
            found += [rel for rel, text in files.items() if not _same(out_dir / rel, text)]
        else:
            found += [f"{folder}/{rel}" for rel in stale_files(out_dir / folder, files)]
    return sorted(found)


def _same(path: Path, text: str) -> bool:
    return path.is_file() and path.read_text(encoding="utf-8") == text
