"""Override typos and profiles that silently do nothing (issue 19)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcompile.errors import SpecError
from mlcompile.spec import load_spec
from mlcompile.spec.compose import COMMAND_LINE

SPEC = """\
name: bikes
defaults:
  - model_preset@models.bikers: lgbm_regression
{profile_before}  - _self_
{profile_after}sources:
  rides: {{path: rides.csv}}
settings:
  seed: 13
  sample_rows: 1000
models:
  bikers: {{data: rides, target: count, features: [temp]}}
"""

PROFILE = "# @package _global_\nsettings:\n  sample_rows: 50\n  seed: 13\n  registry: .reg\n"


def _project(tmp_path: Path, before: bool) -> Path:
    (tmp_path / "rides.csv").write_text("temp,count\n1.0,3\n2.0,4\n3.0,5\n")
    (tmp_path / "conf" / "profile").mkdir(parents=True)
    (tmp_path / "conf" / "profile" / "databricks.yaml").write_text(PROFILE)
    line = "  - profile: databricks\n"
    spec = tmp_path / "mlcompile.yaml"
    spec.write_text(
        SPEC.format(profile_before=line if before else "", profile_after="" if before else line)
    )
    return spec


def _errors(spec: Path, overrides: list[str]) -> list:
    with pytest.raises(SpecError) as caught:
        load_spec(spec, overrides)
    return [d for d in caught.value.diagnostics if d.severity == "error"]


def test_an_override_naming_a_missing_model_is_one_error_at_the_command_line(
    tmp_path: Path,
) -> None:
    spec = _project(tmp_path, before=False)
    [error] = _errors(spec, ["settings.seed=3", "models.biker.num_boost_round=10"])
    assert error.code == "E405"
    assert error.message == "no model 'biker' (did you mean 'bikers'?)"
    assert error.span is not None and error.span.file == COMMAND_LINE
    assert error.span.column == len("settings.seed=3 ") + 1


def test_an_override_of_a_declared_model_or_an_explicit_addition_is_no_typo(
    tmp_path: Path,
) -> None:
    spec = _project(tmp_path, before=False)
    loaded = load_spec(spec, ["models.bikers.num_boost_round=10"])
    assert loaded.resolved.spec.models["bikers"].num_boost_round == 10
    # '+' says the entry is meant to be new: validation then asks for its required keys
    errors = _errors(spec, ["+models.biker.num_boost_round=10"])
    assert errors and all(e.code != "E405" for e in errors)


def test_a_missing_profile_chosen_on_the_command_line_is_reported_there(tmp_path: Path) -> None:
    spec = _project(tmp_path, before=False)
    [error] = _errors(spec, ["profile=databrick"])
    assert error.code == "E402"
    assert error.span is not None and error.span.file == COMMAND_LINE
    assert error.hint == "did you mean 'databricks'?"


def test_a_profile_before_self_that_the_spec_overrides_warns_at_both_keys(
    tmp_path: Path,
) -> None:
    spec = _project(tmp_path, before=True)
    loaded = load_spec(spec)
    assert loaded.resolved.spec.settings.sample_rows == 1000  # the spec won, silently before
    warnings = [w for w in loaded.warnings if w.code == "W201"]
    assert {(Path(w.span.file).name, w.span.line) for w in warnings if w.span} == {
        ("mlcompile.yaml", 10),  # the spec's sample_rows
        ("databricks.yaml", 3),  # the profile's
    }
    assert all("sample_rows" in w.message for w in warnings)  # seed: same value, no word


def test_a_profile_after_self_wins_and_gives_no_warning(tmp_path: Path) -> None:
    spec = _project(tmp_path, before=False)
    loaded = load_spec(spec)
    assert loaded.resolved.spec.settings.sample_rows == 50
    assert not [w for w in loaded.warnings if w.code == "W201"]


def test_a_command_line_value_wins_over_both_and_gives_no_warning(tmp_path: Path) -> None:
    spec = _project(tmp_path, before=True)
    loaded = load_spec(spec, ["settings.sample_rows=7"])
    assert not [w for w in loaded.warnings if w.code == "W201"]


def test_a_profile_the_defaults_do_not_list_is_added_with_a_plus(tmp_path: Path) -> None:
    spec = _project(tmp_path, before=False)
    spec.write_text(spec.read_text().replace("  - profile: databricks\n", ""))
    [error] = _errors(spec, ["profile=databrick"])
    assert error.span is not None and error.span.file == COMMAND_LINE
    assert error.hint == (
        "'profile' is a config group the spec's defaults do not list: write "
        "'+profile=databrick' to add it; did you mean 'databricks'?"
    )
