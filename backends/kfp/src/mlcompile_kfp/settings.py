"""The `backends.kfp` section of a spec: what the emitted pipeline asks of the cluster."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from mlcompile.backends import BackendSettings
from mlcompile.backends.bundle import check_bundle_root
from mlcompile.errors import Diagnostic
from mlcompile.plan import StepKind
from mlcompile.trust import ProjectPath
from mlcompile_kfp import codes

# The same patterns the KFP SDK enforces when a task's resources are set; checking them here
# reports every bad value with its key path instead of one ValueError from inside the compiler.
_CPU = re.compile(r"([0-9]*[.])?[0-9]+m?$")
_MEMORY = re.compile(r"^[0-9]+(E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki){0,1}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
# KFP puts each requirement into a `sh -c` command line inside double quotes (Python repr),
# where `$`, backticks and backslashes still act: such a requirement would run code at start.
_UNSAFE_REQUIREMENT = re.compile(r"[$`\\\"'\x00-\x1f\x7f]")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_MEMORY_UNITS = {
    "": 1,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
# A monitor's verdict depends on what KFP's cache key cannot see: the model version at the
# registry alias (it moves after every retrain) and, for a prediction-log window, files outside
# the pipeline. A cached monitor would report an old verdict on an old model, and would not
# write its report into the project, so its caching is off unless `kinds.monitor.caching`
# turns it on.
UNCACHED_KINDS: frozenset[str] = frozenset({"monitor"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Resources(_Frozen):
    """Kubernetes requests and limits; an unset value inherits from the level above."""

    cpu_request: str | None = Field(None, description="CPU request, e.g. '500m' or '1'.")
    cpu_limit: str | None = Field(None, description="CPU limit, e.g. '2'.")
    memory_request: str | None = Field(None, description="Memory request, e.g. '1G' or '512Mi'.")
    memory_limit: str | None = Field(None, description="Memory limit, e.g. '4G'.")

    def over(self, base: Resources) -> Resources:
        """These values where they are set, those of `base` elsewhere."""
        return base.model_copy(update=self.model_dump(exclude_none=True))


class KindSettings(_Frozen):
    """Overrides for every step of one kind."""

    resources: Resources = Field(default_factory=Resources)
    caching: bool | None = Field(
        None, description="KFP caching for this kind; default: `caching`, but off for monitor."
    )
    retries: int | None = Field(None, ge=0, le=10, description="Retries; default: `retries`.")


class SecretEnv(_Frozen):
    """A Kubernetes Secret exposed to steps as environment variables."""

    secret_name: str
    env: dict[str, str] = Field(description="Environment variable -> key in the Secret.")
    kinds: list[StepKind] | None = Field(None, description="Only these step kinds; default all.")


DEFAULT_RESOURCES = Resources(
    cpu_request="500m", cpu_limit="2", memory_request="1G", memory_limit="4G"
)


class KfpSettings(BackendSettings):
    base_image: str = Field("python:3.11-slim", description="Container image of every step.")
    packages_to_install: list[str] = Field(
        default_factory=lambda: ["mlcompile"],
        description="pip requirements installed when a step starts; [] if the image has them.",
    )
    install_kfp_package: bool = Field(
        True, description="Install the KFP SDK at step start (the step executor needs it)."
    )
    pipeline_root: str | None = Field(
        None, description="Default artifact root, e.g. s3://bucket/kfp."
    )
    project_bundle: bool = Field(
        False,
        description="Steps fetch the project bundle from `pipeline_root` and run in an empty "
        "folder, instead of reading the project at `project_root`.",
    )
    project_root: str = Field(
        "/workspace", description="The project folder inside the container (data and code)."
    )
    local_root: ProjectPath = Field(
        ".mlcompile/kfp-local",
        description="kfp.local pipeline root for `mlcompile run -b kfp`, relative to the project.",
    )
    resources: Resources = Field(default_factory=lambda: DEFAULT_RESOURCES)
    caching: bool = Field(
        True, description="KFP caching of step results; monitor steps only through `kinds`."
    )
    retries: int = Field(0, ge=0, le=10, description="Retries of a failed step.")
    kinds: dict[StepKind, KindSettings] = Field(
        default_factory=dict, description="Per step kind: resources, caching, retries."
    )
    node_selector: dict[str, str] = Field(default_factory=dict, description="Pod nodeSelector.")
    secrets: list[SecretEnv] = Field(default_factory=list)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None

    def resources_for(self, kind: str) -> Resources:
        base = self.resources.over(DEFAULT_RESOURCES)
        override = self.kinds.get(cast(StepKind, kind))
        return override.resources.over(base) if override else base

    def caching_for(self, kind: str) -> bool:
        override = self.kinds.get(cast(StepKind, kind))
        if override is not None and override.caching is not None:
            return override.caching
        return self.caching and kind not in UNCACHED_KINDS

    def retries_for(self, kind: str) -> int:
        override = self.kinds.get(cast(StepKind, kind))
        return self.retries if override is None or override.retries is None else override.retries


def check_settings(settings: KfpSettings) -> list[Diagnostic]:
    """Settings that validate as data but cannot work on a cluster."""
    found: list[Diagnostic] = []

    def error(code: str, path: str, message: str, hint: str | None = None) -> None:
        found.append(Diagnostic(code, message, hint=hint, path=f"backends.kfp.{path}"))

    levels = [("resources", settings.resources)] + [
        (f"kinds.{kind}.resources", override.resources)
        for kind, override in sorted(settings.kinds.items())
    ]
    for where, res in levels:
        for field, pattern, example in (
            ("cpu_request", _CPU, "'500m' or '1.5'"),
            ("cpu_limit", _CPU, "'500m' or '1.5'"),
            ("memory_request", _MEMORY, "'512Mi' or '2G'"),
            ("memory_limit", _MEMORY, "'512Mi' or '2G'"),
        ):
            value = getattr(res, field)
            if value is not None and not pattern.match(value):
                error(
                    codes.BAD_QUANTITY,
                    f"{where}.{field}",
                    f"invalid Kubernetes quantity {value!r}",
                    f"write it like {example}",
                )
    effective = [("resources", settings.resources.over(DEFAULT_RESOURCES))] + [
        (f"kinds.{kind}.resources", settings.resources_for(kind)) for kind in sorted(settings.kinds)
    ]
    for where, res in effective:
        if _quantity(res.cpu_request, _cpu) > _quantity(res.cpu_limit, _cpu):
            error(
                codes.REQUEST_OVER_LIMIT,
                where,
                f"cpu_request {res.cpu_request} exceeds cpu_limit {res.cpu_limit}",
            )
        if _quantity(res.memory_request, _memory) > _quantity(res.memory_limit, _memory):
            error(
                codes.REQUEST_OVER_LIMIT,
                where,
                f"memory_request {res.memory_request} exceeds memory_limit {res.memory_limit}",
            )
    for key, value in sorted(settings.node_selector.items()):
        if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
            error(
                codes.BAD_NODE_SELECTOR,
                f"node_selector.{key}",
                f"invalid node selector label {key!r}: {value!r}",
            )
    for i, secret in enumerate(settings.secrets):
        if not _K8S_NAME.match(secret.secret_name):
            error(
                codes.BAD_SECRET_NAME,
                f"secrets.{i}.secret_name",
                f"invalid Secret name {secret.secret_name!r}",
            )
        for env, key in sorted(secret.env.items()):
            if not _ENV_NAME.match(env):
                error(
                    codes.BAD_SECRET_ENV,
                    f"secrets.{i}.env.{env}",
                    f"invalid environment variable {env!r}",
                )
            if not _SECRET_KEY.match(key):
                error(codes.BAD_SECRET_ENV, f"secrets.{i}.env.{env}", f"invalid Secret key {key!r}")
    if not settings.project_root.startswith("/"):
        error(
            codes.RELATIVE_PROJECT_ROOT,
            "project_root",
            "project_root must be an absolute path inside the container",
        )
    for i, requirement in enumerate(settings.packages_to_install):
        if not requirement.strip() or _UNSAFE_REQUIREMENT.search(requirement):
            error(
                codes.UNSAFE_REQUIREMENT,
                f"packages_to_install.{i}",
                f"unsafe pip requirement {requirement!r}",
                "quotes, $, backticks, backslashes and control characters are not allowed",
            )
    if not settings.base_image or re.search(r"\s", settings.base_image):
        error(codes.BAD_IMAGE, "base_image", f"invalid image reference {settings.base_image!r}")
    if settings.project_bundle:
        found += check_bundle_root(settings.pipeline_root, "backends.kfp")
    monitor = settings.kinds.get(StepKind.MONITOR)
    if monitor is not None and monitor.caching:
        found.append(
            Diagnostic(
                codes.CACHED_MONITOR,
                "a cached monitor step reports the verdict of an earlier run and writes no "
                "report: KFP's cache key sees neither the model version at the registry alias "
                "nor a prediction log outside the pipeline",
                hint="leave it unset: monitor steps run again on every run",
                path="backends.kfp.kinds.monitor.caching",
            )
        )
    return found


def _quantity(value: str | None, parse: Callable[[str], float | None]) -> float:
    """A comparable number; NaN (never greater, never smaller) when unset or invalid."""
    number = parse(value) if value is not None else None
    return float("nan") if number is None else number


def _cpu(value: str) -> float | None:
    if not _CPU.match(value):
        return None
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def _memory(value: str) -> float | None:
    match = _MEMORY.match(value)
    if match is None:
        return None
    unit = match.group(1) or ""
    return float(value[: len(value) - len(unit)]) * _MEMORY_UNITS[unit]
