"""The shipped presets live in the repository's top-level conf/ and travel inside the wheel
(hatch's force-include), so an installed mlcompile composes specs with them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO

SPEC = """\
name: wheel_check
defaults:
  - model_preset@models.m: lgbm_fast
  - profile: ci
  - _self_
sources:
  rows: {path: rows.csv}
models:
  m: {data: rows, target: y, features: [x]}
"""

PIP_WHEEL = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
COMPOSE = """\
import json, sys
from pathlib import Path
import mlcompile
from mlcompile.spec.compose import PRESETS_DIR, compose
composed = compose(Path(sys.argv[1]), [])
print(json.dumps({"package": mlcompile.__file__, "presets": str(PRESETS_DIR),
                  "data": composed.data}))
"""


def test_the_repository_keeps_the_presets_at_the_top_level() -> None:
    groups = {p.name for p in (REPO / "conf").iterdir() if p.is_dir()}
    assert groups == {"model_preset", "split", "gate_preset", "profile"}
    assert not (REPO / "src" / "mlcompile" / "conf").exists()


def test_an_installed_wheel_composes_with_its_own_presets(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [*PIP_WHEEL, "-w", str(wheels), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("mlcompile-*.whl")
    shipped = {
        name for name in zipfile.ZipFile(wheel).namelist() if name.startswith("mlcompile/conf/")
    }
    in_repo = {
        "mlcompile/conf/" + p.relative_to(REPO / "conf").as_posix()
        for p in (REPO / "conf").rglob("*.yaml")
    }
    assert shipped == in_repo

    # the wheel's files, unpacked as pip installs them, ahead of this checkout on the path
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    project = tmp_path / "project"
    project.mkdir()
    (project / "mlcompile.yaml").write_text(SPEC)
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", COMPOSE, str(project / "mlcompile.yaml")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert Path(result["package"]).is_relative_to(site)
    assert Path(result["presets"]) == site / "mlcompile" / "conf"
    assert result["data"]["models"]["m"]["params"]["num_leaves"] == 15  # lgbm_fast
    assert result["data"]["settings"]["sample_rows"] == 20000  # profile ci
