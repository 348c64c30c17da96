"""The Kubeflow Pipelines backend: a KFP v2 pipeline module, its IR, and a kfp.local runner."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from mlcompile.backends import ArtifactSet, RunOptions, RunResult
from mlcompile.backends.executors import Executor
from mlcompile.errors import Diagnostic
from mlcompile.plan import Plan, StepKind
from mlcompile_kfp.settings import KfpSettings, check_settings

# The kinds this backend has been checked to compile and run: listed, not derived from
# StepKind, so a new kind is refused (K110) until someone makes and tests it here.
SUPPORTED_KINDS = frozenset(
    {
        StepKind.INGEST,
        StepKind.VALIDATE,
        StepKind.SPLIT,
        StepKind.FEATURES,
        StepKind.TRAIN,
        StepKind.EVALUATE,
        StepKind.GATE,
        StepKind.REGISTER,
        StepKind.SCORE,
        StepKind.KSERVE,
        StepKind.MONITOR,
    }
)


class KfpBackend:
    name: ClassVar[str] = "kfp"
    settings_model: ClassVar[type[BaseModel]] = KfpSettings

    def check(self, plan: Plan, settings: BaseModel) -> list[Diagnostic]:
        return [*check_settings(_settings(settings)), *unsupported_steps(plan, SUPPORTED_KINDS)]

    def render(self, plan: Plan, settings: BaseModel) -> ArtifactSet:
        from mlcompile_kfp.render import MODULE_FILE, compile_ir, render_module

        module = render_module(plan, _settings(settings))
        return ArtifactSet({MODULE_FILE: module, "pipeline.yaml": compile_ir(module)})

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
        Diagnostic("K110", f"step {node.id!r}: the kfp backend has no '{node.kind}' step")
        for node in sorted(plan.nodes, key=lambda n: n.id)
        if node.kind not in supported
    ]


def _settings(settings: BaseModel) -> KfpSettings:
    if not isinstance(settings, KfpSettings):
        raise TypeError(f"the kfp backend needs KfpSettings, got {type(settings).__name__}")
    return settings
