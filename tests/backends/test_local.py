"""The local backend's settings: the defaults a spec without a section gets, without
pydantic, are the settings model's own."""

from __future__ import annotations

from pathlib import Path

from mlcompile.backends import get_backend
from mlcompile.backends.local import LocalBackend, LocalDefaults
from mlcompile.backends.local_settings import LocalSettings
from mlcompile.plan import Plan


def _plan() -> Plan:
    return Plan(name="p", spec_sha256="0" * 64, settings={"store": ".mlcompile/store"}, nodes=())


def test_the_defaults_are_the_models_and_render_alike() -> None:
    backend = get_backend("local")
    assert isinstance(backend, LocalBackend)
    assert backend.settings_model is LocalSettings
    defaults, empty = backend.default_settings(), LocalSettings.model_validate({})
    assert isinstance(defaults, LocalDefaults)
    assert defaults.model_dump(mode="json") == empty.model_dump(mode="json")
    assert backend.render(_plan(), defaults) == backend.render(_plan(), empty)


def test_the_folders_follow_the_section(tmp_path: Path) -> None:
    backend = LocalBackend()
    moved = LocalSettings.model_validate({"store": "cache", "runs": "records"})
    assert backend.run_folders(moved, _plan(), tmp_path) == (
        tmp_path / "cache",
        tmp_path / "records",
    )
    assert backend.run_folders(LocalDefaults(), _plan(), tmp_path) == (
        tmp_path / ".mlcompile/store",
        tmp_path / LocalDefaults.runs,
    )
