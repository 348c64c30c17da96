"""LightGBM parameters are checked against the installed LightGBM, whose names are learned
once per LightGBM version, in a child process: validate never imports lightgbm itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlcompile.errors import SpecError
from mlcompile.spec import load_spec

BROKEN = Path(__file__).parent / "broken"
PROBE = """
import sys
from pathlib import Path
from mlcompile.spec import load_spec
load_spec(Path(sys.argv[1]))
print(sorted({"lightgbm", "numpy"} & set(sys.modules)))
"""


def _project(tmp_path: Path, params: str) -> Path:
    shutil.copytree(BROKEN / "data", tmp_path / "data")
    spec = (
        (BROKEN / "base.yaml")
        .read_text()
        .replace("    slices: [origin]\n", f"    slices: [origin]\n    params: {params}\n")
    )
    (tmp_path / "mlcompile.yaml").write_text(spec)
    return tmp_path / "mlcompile.yaml"


def test_a_typo_is_located_with_the_name_lightgbm_knows(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(_project(tmp_path, "{num_leavs: 15, learning_rate: 0.1}"))
    [diagnostic] = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.hint) == ("E314", "did you mean 'num_leaves'?")
    assert diagnostic.path == "models.delayed.params.num_leavs"
    assert diagnostic.span is not None and (diagnostic.span.line, diagnostic.span.column) == (
        24,
        25,
    )


def test_aliases_are_accepted_and_validate_does_not_import_lightgbm(
    tmp_path: Path,
) -> None:
    spec = _project(tmp_path, "{num_leaf: 15, eta: 0.1, min_child_samples: 5}")
    # a cache of its own: the first validate learns LightGBM's table, the second reads it
    cached = tmp_path / "user-cache" / "lightgbm"
    env = {**os.environ, "MLCOMPILE_CACHE_DIR": str(cached.parent)}
    imported = [
        subprocess.run(
            [sys.executable, "-c", PROBE, str(spec)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.strip()
        for _ in range(2)
    ]
    assert imported == ["[]", "[]"]
    assert len(list(cached.glob("params-*.json"))) == 1
    assert len(list(cached.glob("values-*.json"))) == 1  # one entry per set of values


def test_many_models_ask_lightgbm_once_and_each_refusal_names_its_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlcompile.spec import lightgbm_params

    spec = _project(tmp_path, "{num_leaves: 4}")
    text = spec.read_text()
    model = text[text.index("  delayed:\n") : text.index("gates:")]
    extra = "".join(
        model.replace("  delayed:", f"  delayed_{i}:").replace(
            "num_leaves: 4", f"num_leaves: {-3 if i == 7 else 5 + i}"
        )
        for i in range(12)
    )
    spec.write_text(text.replace("gates:", extra + "gates:", 1))
    monkeypatch.setenv("MLCOMPILE_CACHE_DIR", str(tmp_path / "user-cache"))
    asked: list[str] = []
    real = lightgbm_params._in_child

    def counted(function: str, *args: object) -> object:
        asked.append(function)
        return real(function, *args)

    monkeypatch.setattr(lightgbm_params, "_in_child", counted)
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    # a child per model would import LightGBM thirteen times: 89 s for 167 models
    assert asked.count("_lightgbm_verdicts") == 1
    [refused] = caught.value.diagnostics
    assert refused.code == "E315" and refused.path == "models.delayed_7.params.num_leaves"
    assert len(list((tmp_path / "user-cache" / "lightgbm").glob("values-*.json"))) == 13
