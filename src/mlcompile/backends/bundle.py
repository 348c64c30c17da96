"""The project bundle a build makes for steps that run with no project folder.

What a step reads from the project besides its data: pandera schema files, the modules of
custom features and metrics (with the rest of their package), the operator's pyproject.toml
(its grants), and the plans. Sources and the registry must then be URIs, since a step's
folder is empty but for the bundle (E328), and no deployment may write into the project
(E330: outputs to object storage are not supported yet). The bundle's format and how a
step fetches it: `mlcompile.runtime.bundle`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcompile import codes
from mlcompile.errors import Diagnostic
from mlcompile.plan import Plan, StepKind, canonical_json, sha256_text
from mlcompile.runtime.bundle import FORMAT, bundle_uri
from mlcompile.trust import PYPROJECT, project_module_file
from mlcompile.uris import READ_ONLY, SCHEMES, is_uri, scheme

BUNDLE_DIR = "bundle"  # the build's folder of it


@dataclass(frozen=True)
class ProjectBundle:
    root: str  # the pipeline root it is uploaded to
    sha256: str
    text: str

    @property
    def file_name(self) -> str:
        return f"{self.sha256}.json"

    @property
    def uri(self) -> str:
        return bundle_uri(self.root, self.sha256)


def make_bundle(
    plans: Mapping[str, Plan], project_root: Path, root: str
) -> tuple[ProjectBundle | None, list[Diagnostic]]:
    """The bundle of `plans` (file name in the bundle -> plan) for the pipeline root `root`,
    or the reasons its steps could not run from one."""
    problems = [d for plan in plans.values() for d in project_paths(plan)]
    files = {name: plan.to_json() for name, plan in plans.items()}
    for relative in sorted(
        {r for plan in plans.values() for r in project_files(plan, project_root)}
    ):
        try:
            files[relative] = (project_root / relative).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            problems.append(
                Diagnostic(
                    codes.BUNDLE_FILE_UNREADABLE,
                    f"the project file '{relative}' is not UTF-8 text",
                    hint="save it as UTF-8",
                )
            )
    if problems:
        return None, list(dict.fromkeys(problems))
    text = canonical_json({"files": files, "format": FORMAT}) + "\n"
    return ProjectBundle(root, sha256_text(text), text), []


def project_files(plan: Plan, project_root: Path) -> set[str]:
    """The project-relative files the plan's steps read, besides data."""
    root = project_root.resolve()
    found: set[Path] = set()
    if (root / PYPROJECT).is_file():
        found.add(root / PYPROJECT)
    for node in plan.nodes:
        schema = node.params.get("schema")
        if node.kind == StepKind.VALIDATE and isinstance(schema, dict) and schema.get("file"):
            found.add((root / str(schema["file"])).resolve())
        for module in _custom_modules(node.params):
            file = project_module_file(module, root)
            if file is None:  # an installed module the operator allowed: the image has it
                continue
            found.add(file)
            top = root / module.split(".", 1)[0]
            if top.is_dir():  # its package's other modules, which it may import
                found.update(p.resolve() for p in top.rglob("*.py"))
    return {p.relative_to(root).as_posix() for p in found if p.is_relative_to(root)}


def _custom_modules(value: Any) -> Iterator[str]:
    """The modules of every `module:function` a custom feature or metric names."""
    if isinstance(value, Mapping):
        function = value.get("function")
        if isinstance(function, str) and ":" in function:
            yield function.split(":", 1)[0]
        for item in value.values():
            yield from _custom_modules(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _custom_modules(item)


def project_paths(plan: Plan) -> list[Diagnostic]:
    """What a step running in an empty folder could not read, or would write where nobody
    finds it: project paths of sources, prediction logs, the registry, deployment outputs."""
    hint = "put it in object storage and name it by URI (s3://, gs://, az://, file://)"
    found = []
    registries = {str(n.params["registry"]) for n in plan.nodes if n.params.get("registry")}
    for registry in sorted(r for r in registries if not is_uri(r)):
        found.append(
            Diagnostic(
                codes.PROJECT_PATH_IN_BUNDLE,
                f"the registry '{registry}' is a folder of the project, which steps that run "
                "from the bundle do not have",
                hint=hint,
                path="settings.registry",
            )
        )
    for node in sorted(plan.nodes, key=lambda n: n.id):
        path = node.params.get("path")
        if node.kind == StepKind.INGEST and path and not is_uri(str(path)):
            found.append(
                Diagnostic(
                    codes.PROJECT_PATH_IN_BUNDLE,
                    f"source '{node.name}' reads the project file '{path}', which steps that "
                    "run from the bundle do not have",
                    hint=hint,
                    path=f"sources.{node.name}.path",
                )
            )
        window = (node.params.get("current") or {}).get("prediction_log")
        if node.kind == StepKind.MONITOR and window and not is_uri(str(window["path"])):
            found.append(
                Diagnostic(
                    codes.PROJECT_PATH_IN_BUNDLE,
                    f"monitor '{node.name}' reads the prediction log '{window['path']}' of "
                    "the project, which steps that run from the bundle do not have",
                    hint=hint,
                    path=f"monitoring.{node.name}.current.prediction_log.path",
                )
            )
        output = node.params.get("output")
        if node.kind in (StepKind.SCORE, StepKind.KSERVE) and output and not is_uri(str(output)):
            found.append(
                Diagnostic(
                    codes.OUTPUT_LOST_IN_BUNDLE,
                    f"deployment '{node.name}' writes '{output}' into the project folder, "
                    "which steps that run from the bundle do not keep",
                    hint="leave the deployment out of this spec, or run the pipeline with "
                    "the project folder (project_bundle: false)",
                    path=f"deployments.{node.name}.output",
                )
            )
    return found


def check_bundle_root(root: str | None, section: str) -> list[Diagnostic]:
    """A backend's `pipeline_root` when its `project_bundle` is on: a URI to upload to."""
    if root is not None and scheme(root) in set(SCHEMES) - READ_ONLY:
        return []
    return [
        Diagnostic(
            codes.BUNDLE_WITHOUT_ROOT,
            "project_bundle needs a pipeline_root the build uploads the bundle to"
            + (f", not '{root}'" if root else ""),
            hint="e.g. pipeline_root: s3://ml-artifacts/pipelines (or file:///shared/pipelines)",
            path=f"{section}.pipeline_root",
        )
    ]


def publish(bundle: ProjectBundle) -> None:
    """Upload the bundle to its pipeline root, unless it is there: its name is its hash."""
    from mlcompile.errors import BackendError
    from mlcompile.runtime.artifacts import atomic_write_bytes
    from mlcompile.uris import filesystem, local_path

    data = bundle.text.encode("utf-8")
    try:
        if scheme(bundle.uri) == "file":
            atomic_write_bytes(Path(local_path(bundle.uri)), data)
            return
        fs, path = filesystem(bundle.uri)
        if not fs.exists(path):
            fs.pipe_file(path, data)
    except (OSError, ValueError, ImportError) as exc:
        raise BackendError(
            f"cannot upload the project bundle to {bundle.uri}: {type(exc).__name__}: {exc}"
        ) from None
