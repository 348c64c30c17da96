"""Spec -> Plan -> backend artifacts: the Python API behind `build`, `graph` and `run`.

The CLI, the backend conformance kit and any program embedding mlcompile go through here.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcompile import paths
from mlcompile.errors import WRITE_ERRNOS, Diagnostic, SpecError, UsageError, WriteError
from mlcompile.plan import Plan

if TYPE_CHECKING:
    from pydantic import BaseModel

    from mlcompile.backends import ArtifactSet, Backend
    from mlcompile.backends.bundle import ProjectBundle
    from mlcompile.spec import LoadedSpec

MONITORING_DIR = "monitoring"


@dataclass
class Compiled:
    """A compiled spec: its plans, and what the commands after compiling read of the spec.

    Compiled from the spec, or read from the plan cache (`mlcompile.plancache`); the
    composed and validated spec itself (`loaded`) is then composed again only when asked
    for, which a run that goes well never does."""

    plan: Plan
    spec_path: Path
    overrides: list[str]
    # the monitoring job: its own plan, built and emitted beside the training pipeline
    monitor_plan: Plan | None
    warnings: list[Diagnostic]
    # the spec's `backends:` sections and its `tracking.mlflow` section, as validated
    backends: dict[str, Any]
    tracking: dict[str, Any] | None
    # how many sources, features, models, gates, deployments and monitors the spec has
    counts: dict[str, int]
    # display name -> path of the config-group files composed into the spec
    groups: dict[str, str] = field(default_factory=dict)
    # whether `validate`'s check of every `backends:` section passed (`run` checks only its own)
    backends_checked: bool = False
    _loaded: LoadedSpec | None = field(default=None, repr=False)

    @property
    def loaded(self) -> LoadedSpec:
        if self._loaded is None:
            from mlcompile.spec import load_spec

            self._loaded = load_spec(self.spec_path, self.overrides)
        return self._loaded

    @property
    def project_root(self) -> Path:
        return self.spec_path.resolve().parent

    def monitoring(self) -> Plan:
        """The monitoring job, for commands that need one."""
        if self.monitor_plan is None:
            raise UsageError(f"'{self.spec_path}' has no monitors: add them under 'monitoring:'")
        return self.monitor_plan

    @property
    def spec_file(self) -> str:
        """The spec's path relative to its project, as lineage records it."""
        return self.spec_path.resolve().relative_to(self.project_root).as_posix()

    def texts(self) -> dict[str, str]:
        """File contents by display name, for snippets under diagnostics."""
        from mlcompile.spec.compose import COMMAND_LINE, display_path

        if self._loaded is not None:
            return self._loaded.composed.texts()
        texts = {COMMAND_LINE: " ".join(self.overrides)}
        for display, path in [(display_path(self.spec_path), self.spec_path), *_paths(self)]:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                texts[display] = Path(path).read_text(encoding="utf-8")
        return texts


def _paths(compiled: Compiled) -> list[tuple[str, Path]]:
    return [(display, Path(path)) for display, path in sorted(compiled.groups.items())]


def compile_spec(spec_path: Path, overrides: list[str]) -> Compiled:
    """Compose, validate and plan the spec."""
    from mlcompile.spec import load_spec

    # the planner (and with it the spec's pydantic models) is imported after composing:
    # load_spec starts typing the data files in a thread first, to overlap that import
    loaded = load_spec(spec_path, overrides)
    from mlcompile.plan.build import build_monitor_plan, build_plan

    plan = build_plan(loaded.resolved, loaded.composed.data)
    monitor_plan = build_monitor_plan(loaded.resolved, loaded.composed.data)
    spec = loaded.resolved.spec
    mlflow = spec.tracking.mlflow
    return Compiled(
        plan,
        spec_path,
        list(overrides),
        monitor_plan,
        loaded.warnings,
        dict(spec.backends),
        mlflow.model_dump() if mlflow is not None else None,
        {section: len(getattr(spec, section)) for section in SECTIONS},
        {g.display: str(g.path) for g in loaded.composed.groups},
        _loaded=loaded,
    )


# the sections `validate` counts
SECTIONS = ("sources", "features", "models", "gates", "deployments", "monitoring")


def compile_cached(
    spec_path: Path,
    overrides: list[str],
    check_backends: bool = False,
    compiled_hook: Callable[[Compiled], None] | None = None,
) -> Compiled:
    """`compile_spec`, answered from the plan cache when nothing it depends on changed.
    `check_backends`: also check every `backends:` section, as `validate` does;
    `compiled_hook` sees the compiled spec before that check (for the texts its errors
    quote)."""
    from mlcompile import plancache

    key = plancache.cache_key(spec_path, overrides)
    root = spec_path.resolve().parent
    entry = plancache.load(root, key) if key is not None else None
    if entry is not None and (entry.backends_checked or not check_backends):
        return Compiled(spec_path=spec_path, overrides=list(overrides), **vars(entry))
    compiled = compile_spec(spec_path, overrides)
    if compiled_hook is not None:
        compiled_hook(compiled)
    if check_backends:
        check_backend_sections(compiled.loaded)
        compiled.backends_checked = True
    if key is not None:
        kept = plancache.Entry(**{f: getattr(compiled, f) for f in plancache.ENTRY_FIELDS})
        plancache.store(root, key, kept, plancache.input_files(compiled.loaded))
    return compiled


def backend_settings(compiled: Compiled, backend: Backend) -> BaseModel:
    """The spec's `backends.<name>` section, validated by the backend's own model (or the
    backend's defaults, when the spec has no such section and the backend offers them)."""
    from mlcompile.backends.base import DefaultSettings

    if backend.name not in compiled.backends and isinstance(backend, DefaultSettings):
        defaults: BaseModel = backend.default_settings()
        return defaults
    if compiled._loaded is None:
        # from the plan cache: the section passed before; should it fail now (the backend
        # changed), the spec is composed again for located errors
        settings = _valid_settings(compiled, backend)
        if settings is not None:
            return settings
    return validated_backend_settings(compiled.loaded, backend)


def _valid_settings(compiled: Compiled, backend: Backend) -> BaseModel | None:
    from pydantic import ValidationError

    from mlcompile.spec.paths import PathChecker

    try:
        settings = backend.settings_model.model_validate(compiled.backends.get(backend.name, {}))
    except ValidationError:
        return None
    found: list[str] = []
    PathChecker(compiled.project_root).check(
        settings, ("backends", backend.name), lambda code, *_: found.append(code)
    )
    return None if found else settings


def validated_backend_settings(loaded: LoadedSpec, backend: Backend) -> BaseModel:
    """A backend's settings from the spec, with their paths (the fields the model marks as
    project paths) checked by the rule every path of the spec follows."""
    from pydantic import ValidationError

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
    from mlcompile.backends import available_backends, get_backend

    if not loaded.resolved.spec.backends:
        return
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
    # what the steps fetch instead of reading a project folder, when the settings ask for it
    bundle: ProjectBundle | None = None


def render(compiled: Compiled, backend_name: str) -> Rendered:
    from mlcompile.backends import Bundled, FileChecks, get_backend

    backend = get_backend(backend_name)
    settings = backend_settings(compiled, backend)
    plans = [p for p in (compiled.plan, compiled.monitor_plan) if p is not None]
    diagnostics = [d for plan in plans for d in backend.check(plan, settings)]
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise SpecError(diagnostics)
    monitor = compiled.monitor_plan
    bundle = None
    if isinstance(backend, Bundled) and (root := backend.bundle_root(settings)) is not None:
        bundle = _bundle(compiled, root)

    def render_plan(plan: Plan) -> ArtifactSet:
        if bundle is None:
            return backend.render(plan, settings)
        assert isinstance(backend, Bundled)
        return backend.render(plan, settings, bundle)

    rendered = Rendered(
        backend,
        settings,
        render_plan(compiled.plan),
        list(dict.fromkeys(diagnostics)),
        render_plan(monitor) if monitor is not None else None,
        bundle,
    )
    if isinstance(backend, FileChecks):
        outputs = [f for f in (rendered.files, rendered.monitor_files) if f is not None]
        found = [_located(compiled, d) for files in outputs for d in backend.check_files(files)]
        if any(d.severity == "error" for d in found):
            raise SpecError(found)
        rendered.warnings += found
    return rendered


def _bundle(compiled: Compiled, root: str) -> ProjectBundle:
    """The project bundle of both plans, or a SpecError saying why the steps need the
    project folder."""
    from mlcompile.backends.bundle import make_bundle

    plans = {"plan.json": compiled.plan}
    if compiled.monitor_plan is not None:
        plans[f"{MONITORING_DIR}/plan.json"] = compiled.monitor_plan
    bundle, problems = make_bundle(plans, compiled.project_root, root)
    if bundle is None:
        raise SpecError([_located(compiled, d) for d in problems])
    return bundle


def publish_bundle(rendered: Rendered) -> None:
    """Upload the build's project bundle to its pipeline root, when it has one."""
    if rendered.bundle is not None:
        from mlcompile.backends.bundle import publish

        publish(rendered.bundle)


def _located(compiled: Compiled, diagnostic: Diagnostic) -> Diagnostic:
    if diagnostic.span is not None or diagnostic.path is None:
        return diagnostic
    span = compiled.loaded.composed.span(tuple(diagnostic.path.split(".")))
    return dataclasses.replace(diagnostic, span=span)


def emitted_files(compiled: Compiled, rendered: Rendered) -> dict[str, dict[str, str]]:
    """Folder (relative to the output dir) -> files, exactly as `write` puts them on disk.

    The monitoring job goes to monitoring/: its plan.json and monitoring/<backend>/."""
    from mlcompile.backends.emit import with_index

    trees = {
        ".": {"plan.json": compiled.plan.to_json()},
        "lineage": build_lineage_cached(compiled),
        rendered.backend.name: with_index(rendered.files),
    }
    if compiled.monitor_plan is not None and rendered.monitor_files is not None:
        trees["."][f"{MONITORING_DIR}/plan.json"] = compiled.monitor_plan.to_json()
        trees[f"{MONITORING_DIR}/{rendered.backend.name}"] = with_index(rendered.monitor_files)
    if rendered.bundle is not None:
        from mlcompile.backends.bundle import BUNDLE_DIR

        trees[BUNDLE_DIR] = {rendered.bundle.file_name: rendered.bundle.text}
    return trees


def build_lineage_cached(compiled: Compiled) -> dict[str, str]:
    """The build's OpenLineage files, kept in .mlcompile/cache/lineage by what they depend
    on: a `run` whose plan did not change then skips building them again."""
    import os

    import orjson

    from mlcompile import __version__
    from mlcompile.backends.emit import write_text_atomic
    from mlcompile.plan import canonical_json, sha256_text

    plan_sha256 = sha256_text(compiled.plan.to_json())
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    key = sha256_text(canonical_json([plan_sha256, compiled.spec_file, __version__, epoch]))
    cached = compiled.project_root / paths.cache_dir("lineage") / f"{key}.json"
    try:
        files: dict[str, str] = orjson.loads(cached.read_bytes())
        return files
    except (OSError, ValueError):
        pass
    from mlcompile.lineage import build_lineage

    # No git commit here: it changes with every commit, which would make a checked-in build
    # stale forever under `build --check`. Run events record the commit instead.
    files = build_lineage(compiled.plan, compiled.spec_file, compiled.plan.spec_sha256, None)
    with contextlib.suppress(OSError):
        write_text_atomic(cached, orjson.dumps(files, option=orjson.OPT_SORT_KEYS).decode())
    return files


def write(out_dir: Path, trees: dict[str, dict[str, str]]) -> list[str]:
    """Put `trees` on disk; files already there as they should be are left alone (a no-op
    run then writes, and syncs, nothing here)."""
    from mlcompile.backends.emit import stale_files, write_text_atomic, write_tree

    written = []
    try:
        for folder, files in trees.items():
            if folder == ".":
                for rel, text in files.items():
                    if not _same(out_dir / rel, text):
                        write_text_atomic(out_dir / rel, text)
                    written.append(rel)
            else:
                if stale_files(out_dir / folder, files):
                    write_tree(out_dir / folder, files)
                written += [f"{folder}/{rel}" for rel in files]
    except OSError as exc:
        # the error names a temporary file; the user chose the folder
        if exc.errno not in WRITE_ERRNOS:
            raise
        raise WriteError(out_dir, exc) from None
    return sorted(written)


def stale(out_dir: Path, trees: dict[str, dict[str, str]]) -> list[str]:
    from mlcompile.backends.emit import stale_files

    found = []
    for folder, files in trees.items():
        if folder == ".":
            found += [rel for rel, text in files.items() if not _same(out_dir / rel, text)]
        else:
            found += [f"{folder}/{rel}" for rel in stale_files(out_dir / folder, files)]
    return sorted(found)


def _same(path: Path, text: str) -> bool:
    try:
        return path.is_file() and path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False
