"""Every broken spec under broken/ yields exactly the diagnostics its `# expect:` lines name.

A line is `# expect: CODE [LINE:COL]`; all errors of a file are reported in one run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlcompile.errors import Diagnostic, SpecError
from mlcompile.spec import load_spec

BROKEN = Path(__file__).parent / "broken"
CASES = sorted(p for p in BROKEN.glob("E*.yaml"))


def expectations(path: Path) -> list[tuple[str, str | None]]:
    found = re.findall(r"^# expect: (\w+)(?: (\d+:\d+))?$", path.read_text(), re.M)
    return sorted((code, where or None) for code, where in found)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_broken_spec_reports_every_error_with_its_location(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} names no expected diagnostics"
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    errors = [d for d in caught.value.diagnostics if d.severity == "error"]
    got = sorted((d.code, f"{d.span.line}:{d.span.column}" if d.span else "") for d in errors)
    shown = [f"{d.code} {d.span} {d.message}" for d in errors]
    assert [code for code, _ in got] == [code for code, _ in expected], shown
    located = [e for e in expected if e[1] is not None]
    assert all(e in got for e in located), shown
    for diagnostic in errors:
        assert diagnostic.span is not None and diagnostic.span.file.endswith(path.name)
        assert diagnostic.message
        assert diagnostic.hint, f"{diagnostic.code} {diagnostic.message} has no hint"


def test_the_base_spec_is_valid() -> None:
    loaded = load_spec(BROKEN / "base.yaml")
    assert set(loaded.resolved.spec.models) == {"delayed"}


def test_unknown_names_get_did_you_mean() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(BROKEN / "E3xx_references.yaml")
    hints = {d.message: d.hint for d in caught.value.diagnostics}
    assert hints["unknown model 'delayd'"] == "did you mean 'delayed'?"
    assert hints["unknown source 'flight'"] == "did you mean 'flights'?"


def test_comparison_brackets_say_what_they_should_name() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(BROKEN / "E32x_comparisons.yaml")
    hints = {d.message.split("'")[1]: d.hint for d in caught.value.diagnostics}
    assert hints["rmse[challengr] <= rmse[production] - 0.5"] == "did you mean 'challenger'?"
    assert hints["rmse[origin] <= rmse[production]"] == (
        "'origin' is a slice: check it as 'rmse[origin] <= <bound>'; a comparison names two versions"
    )
    assert hints["rmse[production] >= rmse[challenger]"] == (
        "write 'rmse[challenger] <= rmse[production]'"
    )


def test_override_errors_point_at_the_override() -> None:
    diagnostic = _override_problem(["settings.seed=3", "model.delayed.num_boost_round=3"])
    assert diagnostic.code == "E201"
    assert diagnostic.span is not None and diagnostic.span.file == "<command line>"
    assert diagnostic.span.column == len("settings.seed=3 ") + 1
    assert diagnostic.hint == "did you mean 'models'?"


def test_overrides_set_keys_the_spec_left_to_their_defaults() -> None:
    loaded = load_spec(
        BROKEN / "base.yaml", ["settings.seed=3", "models.delayed.num_boost_round=7"]
    )
    assert loaded.resolved.spec.settings.seed == 3
    assert loaded.resolved.spec.models["delayed"].num_boost_round == 7


def _override_problem(overrides: list[str]) -> Diagnostic:
    """The one diagnostic loading the broken corpus's base spec with `overrides` gives."""
    with pytest.raises(SpecError) as caught:
        load_spec(BROKEN / "base.yaml", overrides)
    [diagnostic] = caught.value.diagnostics
    return diagnostic


def test_malformed_override_is_a_located_error() -> None:
    diagnostic = _override_problem(["settings.seed=[1,"])
    assert diagnostic.code == "E401"
    assert diagnostic.span is not None and diagnostic.span.file == "<command line>"


def test_unknown_config_group_option_suggests_the_closest() -> None:
    diagnostic = _override_problem(["+model_preset@models.delayed=tiyn"])
    assert diagnostic.code == "E402"
    assert diagnostic.hint == "did you mean 'tiny'?"


def test_override_with_a_value_of_the_wrong_type_is_located_on_the_command_line() -> None:
    diagnostic = _override_problem(["models.delayed.num_boost_round=many"])
    assert diagnostic.code == "E203"
    assert diagnostic.span is not None and diagnostic.span.file == "<command line>"


def test_hydra_instantiation_keys_are_plain_unknown_keys(tmp_path: Path) -> None:
    """`_target_` means nothing to mlcompile: nothing is ever instantiated from a spec."""
    marker = tmp_path / "PWNED"
    spec = (BROKEN / "base.yaml").read_text() + (
        f"evil:\n  _target_: os.system\n  command: touch {marker}\n"
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "flights.csv").write_text((BROKEN / "data" / "flights.csv").read_text())
    (tmp_path / "spec.yaml").write_text(spec)
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "spec.yaml", ["+profile=dev"])
    assert [d.code for d in caught.value.diagnostics] == ["E201"]
    assert not marker.exists()


@pytest.mark.parametrize(
    "uri",
    ["https://ci:hunter2@mlflow.internal", "https://mlflow.internal/?access_token=hunter2"],
)
def test_credentials_in_a_tracking_uri_are_refused_and_not_repeated(uri: str) -> None:
    diagnostic = _override_problem([f"tracking.mlflow.tracking_uri='{uri}'"])
    assert diagnostic.code == "E203" and "credentials" in diagnostic.message
    assert "hunter2" not in diagnostic.message and "MLFLOW_TRACKING_" in str(diagnostic.hint)


def test_a_tracking_uri_without_credentials_is_fine() -> None:
    loaded = load_spec(BROKEN / "base.yaml", ["tracking.mlflow.tracking_uri=http://127.0.0.1:5000"])
    mlflow = loaded.resolved.spec.tracking.mlflow
    assert mlflow is not None and mlflow.tracking_uri == "http://127.0.0.1:5000"
