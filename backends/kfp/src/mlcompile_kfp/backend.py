"""The Kubeflow Pipelines backend: a KFP v2 pipeline module, its IR, and a kfp.local runner."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from mlcompile.backends import ArtifactSet, RunOptions, RunResult
from mlcompile.backends.bundle import ProjectBundle
from mlcompile.backends.executors import Executor
from mlcompile.errors import Diagnostic
from mlcompile.plan import Plan, StepKind
from mlcompile_kfp import codes
from mlcompile_kfp.settings import KfpSettings, check_settings

# The kinds this backend has been checked to compile and run: listed, not derived from
# StepKind, so a new kind is refused (K110) until someone makes and tests it here.
SUPPORTED_KINDS = frozenset(
    {
        StepKind.INGEST,
        StepKind.VALIDATE,
        StepKind.SPLIT,
        StepKind.FEATURES,
        StepKind.TUNE,
        StepKind.TRAIN,
        StepKind.EVALUATE,
        StepKind.GATE,
        StepKind.REGISTER,
        StepKind.SCORE,
        StepKind.KSERVE,
        StepKind.MONITOR,
    }
)
# A cluster stores a pipeline in etcd, whose default request limit is 1.5 MiB (kubeflow/
# pipelines issue 4170): warn with room to spare, refuse what the cluster would refuse.
IR_WARN_BYTES = 1024 * 1024
IR_MAX_BYTES = 1536 * 1024
_SPLIT_HINT = (
    "split the pipeline: one spec per group of models (composed from shared config groups), "
    "or move monitors into their own spec"
)


class KfpBackend:
    name: ClassVar[str] = "kfp"
    settings_model: ClassVar[type[BaseModel]] = KfpSettings

    def check(self, plan: Plan, settings: BaseModel) -> list[Diagnostic]:
        return [*check_settings(_settings(settings)), *unsupported_steps(plan, SUPPORTED_KINDS)]

    def bundle_root(self, settings: BaseModel) -> str | None:
        own = _settings(settings)
        return own.pipeline_root if own.project_bundle else None

    def render(
        self, plan: Plan, settings: BaseModel, bundle: ProjectBundle | None = None
    ) -> ArtifactSet:
        from mlcompile_kfp.render import MODULE_FILE, compile_ir, render_module
        from mlcompile_kfp.requirements import REQUIREMENTS_FILE, requirements

        module = render_module(plan, _settings(settings), bundle)
        return ArtifactSet(
            {
                MODULE_FILE: module,
                "pipeline.yaml": compile_ir(module),
                REQUIREMENTS_FILE: requirements(plan, bundle),
            }
        )

    def check_files(self, files: ArtifactSet) -> list[Diagnostic]:
        size = len(files["pipeline.yaml"].encode("utf-8"))
        mib = f"{size / 1024 / 1024:.2f} MiB"
        if size > IR_MAX_BYTES:
            return [
                Diagnostic(
                    codes.IR_TOO_LARGE,
                    f"the KFP IR is {mib}, over the 1.5 MiB a cluster stores",
                    hint=_SPLIT_HINT,
                    path="backends.kfp",
                )
            ]
        if size > IR_WARN_BYTES:
            return [
                Diagnostic(
                    codes.IR_NEAR_LIMIT,
                    f"the KFP IR is {mib}, near the 1.5 MiB a cluster stores",
                    hint=_SPLIT_HINT,
                    path="backends.kfp",
                )
            ]
        return []

    def executors(self, files: Mapping[str, str], plan: Plan) -> list[Executor]:
        from mlcompile_kfp.executors import executors

        return executors(files, plan)

    def run(
        self, built_dir: Path, plan: Plan, settings: BaseModel, options: RunOptions
    ) -> RunResult:
        from mlcompile_kfp.local_run import run_local

        return run_local(built_dir, plan, _settings(settings), options)


def unsupported_steps(plan: Plan, supported: frozenset[StepKind]) -> list[Diagnostic]:
    return [
        Diagnostic(
            codes.UNKNOWN_STEP_KIND, f"step {node.id!r}: the kfp backend has no '{node.kind}' step"
        )
        for node in sorted(plan.nodes, key=lambda n: n.id)
        if node.kind not in supported
    ]


def _settings(settings: BaseModel) -> KfpSettings:
    if not isinstance(settings, KfpSettings):
        raise TypeError(f"the kfp backend needs KfpSettings, got {type(settings).__name__}")
    return settings
