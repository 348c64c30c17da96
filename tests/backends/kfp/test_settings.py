"""KfpSettings: defaults, strictness, inheritance per step kind, and what `check` rejects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mlcompile_kfp import KfpBackend, KfpSettings
from mlcompile_kfp.backend import SUPPORTED_KINDS
from mlcompile_kfp.settings import check_settings
from pydantic import ValidationError

from mlcompile.backends import get_backend
from mlcompile.compiler import Compiled, compile_spec, render
from mlcompile.errors import SpecError
from mlcompile.plan import StepKind
from tests.backends.kfp.helpers import MINI_SPEC


def codes(settings: KfpSettings) -> list[tuple[str, str | None]]:
    return [(d.code, d.path) for d in check_settings(settings)]


def test_discovered_by_entry_point() -> None:
    backend = get_backend("kfp")
    assert isinstance(backend, KfpBackend)
    assert backend.settings_model is KfpSettings


def test_defaults_work_and_check_clean() -> None:
    settings = KfpSettings()
    assert settings.base_image == "python:3.11-slim"
    assert settings.packages_to_install == ["mlcompile"]
    assert settings.project_root == "/workspace"
    assert settings.caching is True
    assert (settings.caching_for("train"), settings.caching_for("monitor")) == (True, False)
    train = settings.resources_for("train")
    assert (train.cpu_request, train.cpu_limit) == ("500m", "2")
    assert (train.memory_request, train.memory_limit) == ("1G", "4G")
    assert codes(settings) == []


def test_frozen_and_unknown_keys_rejected() -> None:
    with pytest.raises(ValidationError, match="extra"):
        KfpSettings.model_validate({"base_img": "x"})
    with pytest.raises(ValidationError, match="extra"):
        KfpSettings.model_validate({"kinds": {"train": {"gpu": 1}}})
    with pytest.raises(ValidationError):
        KfpSettings.model_validate({"kinds": {"trian": {}}})
    with pytest.raises(ValidationError):
        KfpSettings.model_validate({"retries": -1})
    settings = KfpSettings()
    with pytest.raises(ValidationError):
        settings.caching = False  # type: ignore[misc]


def test_kind_overrides_inherit_the_rest() -> None:
    settings = KfpSettings.model_validate(
        {
            "resources": {"memory_limit": "8Gi"},
            "caching": True,
            "retries": 1,
            "kinds": {
                "train": {"resources": {"cpu_limit": "4"}, "retries": 3},
                "ingest": {"caching": False},
            },
        }
    )
    train = settings.resources_for("train")
    assert (train.cpu_request, train.cpu_limit, train.memory_limit) == ("500m", "4", "8Gi")
    assert settings.resources_for("gate").cpu_limit == "2"
    assert (settings.retries_for("train"), settings.retries_for("gate")) == (3, 1)
    assert (settings.caching_for("ingest"), settings.caching_for("train")) == (False, True)
    assert codes(settings) == []


def test_check_reports_every_setting_that_cannot_work() -> None:
    settings = KfpSettings.model_validate(
        {
            "resources": {"cpu_limit": "two", "memory_request": "1 GB"},
            "kinds": {"train": {"resources": {"cpu_request": "3", "cpu_limit": "2500m"}}},
            "node_selector": {"bad key!": "x"},
            "secrets": [{"secret_name": "Not_A_Name", "env": {"1BAD": "k", "GOOD": "k e y"}}],
            "project_root": "workspace",
            "base_image": "python:3.11\nRUN rm -rf /",
            "packages_to_install": ["mlcompile[kfp]>=0.1; python_version>'3'", "x$(touch PWNED)"],
        }
    )
    assert codes(settings) == [
        ("K101", "backends.kfp.resources.cpu_limit"),
        ("K101", "backends.kfp.resources.memory_request"),
        ("K102", "backends.kfp.kinds.train.resources"),
        ("K103", "backends.kfp.node_selector.bad key!"),
        ("K104", "backends.kfp.secrets.0.secret_name"),
        ("K105", "backends.kfp.secrets.0.env.1BAD"),
        ("K105", "backends.kfp.secrets.0.env.GOOD"),
        ("K106", "backends.kfp.project_root"),
        ("K108", "backends.kfp.packages_to_install.0"),
        ("K108", "backends.kfp.packages_to_install.1"),
        ("K107", "backends.kfp.base_image"),
    ]
    message = check_settings(settings)[2].message
    assert "cpu_request 3 exceeds cpu_limit 2500m" in message


def test_check_rejects_steps_the_backend_does_not_support() -> None:
    """K110 fires for a kind missing from the backend's list: the flights example's
    monitoring plan, checked against a list without `monitor`."""
    from mlcompile_kfp.backend import unsupported_steps

    from mlcompile.compiler import compile_spec
    from tests.conftest import EXAMPLE

    plan = compile_spec(EXAMPLE / "mlcompile.yaml", []).monitoring()
    found = unsupported_steps(plan, SUPPORTED_KINDS - {StepKind.MONITOR})
    monitors = sorted(n.id for n in plan.nodes if n.kind == StepKind.MONITOR)
    assert monitors and [d.code for d in found] == ["K110"] * len(monitors)
    assert found[0].message == f"step {monitors[0]!r}: the kfp backend has no 'monitor' step"
    assert KfpBackend().check(plan, KfpSettings()) == []


def test_a_new_step_kind_is_supported_only_when_listed() -> None:
    """Every kind today is listed; a kind added to StepKind fails here until the backend
    says it compiles and runs it (and K110 refuses it meanwhile)."""
    assert set(StepKind) == SUPPORTED_KINDS


def test_plain_requirements_are_accepted() -> None:
    settings = KfpSettings(packages_to_install=["mlcompile==0.1.0", "pandas>=2.2,<3", "x[y]~=1.0"])
    assert codes(settings) == []


def test_request_above_limit_compares_units() -> None:
    ok = KfpSettings.model_validate(
        {
            "resources": {
                "cpu_request": "1500m",
                "cpu_limit": "2",
                "memory_request": "1Gi",
                "memory_limit": "1100M",
            }
        }
    )
    assert codes(ok) == []
    bad = KfpSettings.model_validate({"resources": {"cpu_request": "2500m", "cpu_limit": "2"}})
    assert codes(bad) == [("K102", "backends.kfp.resources")]


def _with_backend_section(make_project: Callable[..., Path], section: str) -> Compiled:
    spec = MINI_SPEC.replace("__BOUND__", "0.5") + "backends:\n  kfp:\n" + section
    root = make_project(spec=spec)
    return compile_spec(root / "mlcompile.yaml", [])


def test_spec_section_errors_are_located_spec_errors(make_project: Callable[..., Path]) -> None:
    compiled = _with_backend_section(make_project, "    base_imag: python:3.12\n")
    with pytest.raises(SpecError) as caught:
        render(compiled, "kfp")
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.span is not None and diagnostic.span.line > 0


def test_check_errors_stop_the_build(make_project: Callable[..., Path]) -> None:
    compiled = _with_backend_section(make_project, "    resources: {cpu_limit: lots}\n")
    with pytest.raises(SpecError) as caught:
        render(compiled, "kfp")
    assert [d.code for d in caught.value.diagnostics] == ["K101"]
