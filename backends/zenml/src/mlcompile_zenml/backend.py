"""The ZenML backend: a Plan becomes a ZenML pipeline module and its run configuration.

ZenML itself is imported only by the emitted module, in the subprocess that runs it: neither
`mlcompile build` nor this package needs it at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import ClassVar

from pydantic import BaseModel

from mlcompile.backends import ArtifactSet, RunOptions, RunResult
from mlcompile.backends.bundle import ProjectBundle, check_bundle_root
from mlcompile.backends.executors import Executor
from mlcompile.errors import Diagnostic, did_you_mean
from mlcompile.plan import Plan
from mlcompile_zenml import codes
from mlcompile_zenml import render as rendering
from mlcompile_zenml.runner import run_pipeline
from mlcompile_zenml.settings import UNCACHED_KINDS, ZenmlSettings

SECTION = "backends.zenml"
# Run configuration keys this backend writes itself, and where a spec sets them instead.
GENERATED_KEYS = {
    "enable_cache": f"{SECTION}.enable_cache and {SECTION}.steps.<kind>.enable_cache",
    "execution_mode": f"{SECTION}.execution_mode",
    "steps": f"{SECTION}.steps (per step kind)",
    "model": f"{SECTION}.model",
    "tags": f"{SECTION}.tags",
    "run_name": "nothing: each run gets a unique name so that its summary can be read back",
    "parameters": "nothing: the pipeline takes no parameters",
}
# The other top-level keys of ZenML's PipelineRunConfiguration (0.9x).
RUN_CONFIG_KEYS = frozenset(
    {
        "build",
        "cache_policy",
        "cleanup_hook_source",
        "enable_artifact_metadata",
        "enable_artifact_visualization",
        "enable_heartbeat",
        "enable_pipeline_logs",
        "enable_step_logs",
        "end_hook_source",
        "environment",
        "extra",
        "failure_hook_source",
        "init_hook_kwargs",
        "init_hook_source",
        "pause_hook_source",
        "resume_hook_source",
        "retry",
        "schedule",
        "secrets",
        "settings",
        "start_hook_source",
        "substitutions",
        "success_hook_source",
    }
)


# What a step of an uncached kind depends on outside the pipeline, for Z112 (CACHED_EFFECT).
_UNSEEN = {
    "gate": "the registry's current model",
    "monitor": "the model version at the registry alias, a prediction log, the report it wrote",
}


class ZenmlBackend:
    name: ClassVar[str] = "zenml"
    settings_model: ClassVar[type[BaseModel]] = ZenmlSettings

    def check(self, plan: Plan, settings: BaseModel) -> list[Diagnostic]:
        assert isinstance(settings, ZenmlSettings)
        return [
            *_run_config_diagnostics(settings),
            *_step_diagnostics(plan, settings),
            *_model_diagnostics(plan, settings),
            *_home_diagnostics(settings),
            *(
                check_bundle_root(settings.pipeline_root, SECTION)
                if settings.project_bundle
                else []
            ),
        ]

    def bundle_root(self, settings: BaseModel) -> str | None:
        assert isinstance(settings, ZenmlSettings)
        return settings.pipeline_root if settings.project_bundle else None

    def render(
        self, plan: Plan, settings: BaseModel, bundle: ProjectBundle | None = None
    ) -> ArtifactSet:
        assert isinstance(settings, ZenmlSettings)
        return rendering.render(plan, settings, bundle)

    def executors(self, files: Mapping[str, str], plan: Plan) -> list[Executor]:
        from mlcompile_zenml.executors import executors

        return executors(files, plan)

    def run(
        self, built_dir: Path, plan: Plan, settings: BaseModel, options: RunOptions
    ) -> RunResult:
        assert isinstance(settings, ZenmlSettings)
        return run_pipeline(built_dir, plan, settings, options)


def _run_config_diagnostics(settings: ZenmlSettings) -> list[Diagnostic]:
    found = []
    for key in sorted(settings.run_config):
        path = f"{SECTION}.run_config.{key}"
        if key in GENERATED_KEYS:
            found.append(
                Diagnostic(
                    codes.GENERATED_KEY,
                    f"{path}: mlcompile writes '{key}' into run_config.yaml itself",
                    hint=f"set {GENERATED_KEYS[key]}",
                    path=path,
                )
            )
        elif key not in RUN_CONFIG_KEYS:
            found.append(
                Diagnostic(
                    codes.UNKNOWN_RUN_CONFIG_KEY,
                    f"{path}: '{key}' is not a ZenML run configuration key",
                    hint=did_you_mean(key, RUN_CONFIG_KEYS | set(GENERATED_KEYS)),
                    path=path,
                )
            )
    return found


def _step_diagnostics(plan: Plan, settings: ZenmlSettings) -> list[Diagnostic]:
    kinds = {node.kind for node in plan.nodes}
    # The settings serve both of a spec's plans and `check` sees one at a time: the training
    # plan judges every kind but monitor, which only the monitoring job has.
    judged = not rendering.is_monitoring(plan)
    found = []
    for kind, options in sorted(settings.steps.items()):
        path = f"{SECTION}.steps.{kind}"
        if judged and kind != "monitor" and kind not in kinds:
            found.append(
                Diagnostic(
                    codes.OPTIONS_FOR_NO_STEP,
                    f"{path}: this plan has no '{kind}' step, so these options do nothing",
                    path=path,
                )
            )
        if options.enable_cache and kind in UNCACHED_KINDS:
            found.append(
                Diagnostic(
                    codes.CACHED_EFFECT,
                    f"{path}.enable_cache: a cached '{kind}' step is not run again, and ZenML "
                    "cannot see what it depends on outside the pipeline "
                    f"({_UNSEEN.get(kind, 'a registry entry or a file it wrote may be gone')})",
                    hint="leave it unset: these steps re-run on every run",
                    path=f"{path}.enable_cache",
                )
            )
    return found


def _model_diagnostics(plan: Plan, settings: ZenmlSettings) -> list[Diagnostic]:
    if not settings.model.enabled:
        return []
    by_zenml_name: dict[str, list[str]] = {}
    for registered in sorted(set(rendering.model_names(plan).values())):
        name = rendering.zenml_name(settings.model.name_prefix + registered)
        by_zenml_name.setdefault(name, []).append(registered)
    return [
        Diagnostic(
            codes.MODEL_NAME_CLASH,
            f"{SECTION}.model: the registered models {', '.join(repr(r) for r in clashing)} "
            f"would share the ZenML Model '{name}' (ZenML names keep letters, digits and _.:-)",
            hint="rename one of the models or deployments",
            path=f"{SECTION}.model",
        )
        for name, clashing in sorted(by_zenml_name.items())
        if len(clashing) > 1
    ]


def _home_diagnostics(settings: ZenmlSettings) -> list[Diagnostic]:
    home = settings.zenml_home
    if home is None:
        return []
    pure = PurePosixPath(home)
    if home and "\\" not in home and not pure.is_absolute() and ".." not in pure.parts:
        return []
    return [
        Diagnostic(
            codes.ZENML_HOME_OUTSIDE,
            f"{SECTION}.zenml_home: {home!r} must be a folder inside the project, "
            "given relative to it",
            hint='for example ".mlcompile/zenml"; null uses your own ZenML configuration',
            path=f"{SECTION}.zenml_home",
        )
    ]
