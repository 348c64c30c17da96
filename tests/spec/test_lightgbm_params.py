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
