"""The `backends.zenml` section of a spec, validated like the rest of it.

Everything here ends up in `run_config.yaml`, never in `pipeline.py`: the module depends on
the plan alone, so changing a resource request or a model policy leaves ZenML's cache keys
(which hash the step code) untouched.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mlcompile.backends import BackendSettings
from mlcompile.plan import StepKind
from mlcompile.trust import ProjectPath

# A gate and a monitor read the model version at a registry alias (a monitor, for a
# prediction-log window, files outside the pipeline too), and a monitor or a deploy step
# writes outside the artifact store; ZenML's cache key sees none of that, so these re-run
# every time unless a spec says so.
UNCACHED_KINDS: frozenset[str] = frozenset({"gate", "monitor", "register", "score", "kserve"})

# ZenML's own format for a memory request (zenml.config.ResourceSettings.memory).
MEMORY_PATTERN = r"^[0-9]+(KB|KiB|MB|MiB|GB|GiB|TB|TiB|PB|PiB)$"
# ZenML hands the expression to the orchestrator as it is: five fields for Kubernetes, Vertex
# or Airflow, six (seconds first) for Kubeflow, or a macro such as @daily.
CRON_PATTERN = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
    r"|[0-9A-Za-z*?/,#-]+( [0-9A-Za-z*?/,#-]+){4,5})$"
)


class StepOptions(BackendSettings):
    """Per step kind: caching and the resources a remote orchestrator should reserve."""

    enable_cache: bool | None = Field(
        None, description="Override the pipeline-wide enable_cache for every step of this kind."
    )
    cpu_count: float | None = Field(None, gt=0, description="CPUs to reserve (ResourceSettings).")
    gpu_count: int | None = Field(None, ge=0, description="GPUs to reserve (ResourceSettings).")
    memory: str | None = Field(
        None, pattern=MEMORY_PATTERN, description='Memory to reserve, e.g. "4GB" or "512MiB".'
    )


class ModelPolicy(BackendSettings):
    """How registered models map onto ZenML Models and their versions."""

    enabled: bool = Field(
        True, description="Run each registered model's steps inside a ZenML Model version."
    )
    name_prefix: str = Field("", description="Prefix for the ZenML Model name.")
    version: Literal["run", "fingerprint"] = Field(
        "run",
        description=(
            '"run": a new numbered version per pipeline run; "fingerprint": one version per '
            "trained model, named after the train step's fingerprint, so re-runs of the same "
            "plan add to the same version."
        ),
    )
    promote: bool = Field(
        True,
        description=(
            "When a register step moves a registry alias named like a ZenML stage "
            "(staging, production, archived), move the ZenML Model version to that stage."
        ),
    )
    description: str | None = Field(None, description="ZenML Model description.")
    license: str | None = Field(None, description="ZenML Model license.")
    tags: list[str] = Field(default_factory=list, description="Tags on every model version.")


class MonitoringSchedule(BackendSettings):
    """When the monitoring job runs once it is scheduled (zenml.config.Schedule)."""

    cron_expression: str = Field(
        pattern=CRON_PATTERN,
        description='In the orchestrator\'s format, e.g. "0 6 * * *" (daily at 06:00).',
    )


class ZenmlSettings(BackendSettings):
    """Settings of the ZenML backend: `backends.zenml` in the spec."""

    pipeline_name: str | None = Field(
        None, description="ZenML pipeline name; default: the plan's name."
    )
    enable_cache: bool = Field(True, description="ZenML step caching for the whole pipeline.")
    steps: dict[StepKind, StepOptions] = Field(
        default_factory=dict, description="Caching and resources per step kind."
    )
    model: ModelPolicy = Field(default_factory=ModelPolicy)
    execution_mode: Literal["fail_fast", "stop_on_failure", "continue_on_failure"] = Field(
        "stop_on_failure",
        description=(
            "What ZenML does after a failed step. Deploy steps depend on their gates in every "
            "mode; stop_on_failure also keeps other branches from running, like the local "
            "backend. Some remote orchestrators support only continue_on_failure."
        ),
    )
    tags: list[str] = Field(default_factory=list, description="Tags on every pipeline run.")
    run_config: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "More ZenML run configuration (settings such as docker or orchestrator options, "
            "environment, secrets, schedule, retry, ...), merged into run_config.yaml."
        ),
    )
    monitoring_schedule: MonitoringSchedule | None = Field(
        None,
        description=(
            "The monitoring job's `schedule` in its run_config.yaml, registered by "
            "`python pipeline.py --schedule` on a stack whose orchestrator supports schedules."
        ),
    )
    pipeline_root: str | None = Field(
        None,
        description="Where the build uploads the project bundle for `project_bundle` "
        "(file://, s3://, gs://, az://).",
    )
    project_bundle: bool = Field(
        False,
        description="Steps fetch the project bundle from `pipeline_root` and run with no "
        "project folder, instead of reading it at $MLCOMPILE_PROJECT_ROOT.",
    )
    zenml_home: ProjectPath | None = Field(
        ".mlcompile/zenml",
        description=(
            "Project-relative folder that `mlcompile run` uses as ZenML's config directory "
            "(local SQLite store and artifact store), so runs stay isolated and keep their "
            "cache between builds. null: use the active ZenML client configuration and stack."
        ),
    )

    def step_options(self, kind: str) -> StepOptions:
        for configured, options in self.steps.items():
            if configured == kind:
                return options
        return StepOptions()

    def caches(self, kind: str) -> bool:
        configured = self.step_options(kind).enable_cache
        if configured is not None:
            return configured
        return self.enable_cache and kind not in UNCACHED_KINDS
