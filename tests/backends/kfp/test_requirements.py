"""`make dist` builds the wheels a kfp build's requirements.txt pins, so an image installs
exactly the runtime that compiled the pipeline."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from mlcompile_kfp.requirements import requirements
from packaging.requirements import Requirement

from mlcompile.compiler import compile_spec
from mlcompile.testing import conformance_spec, make_project
from tests.conftest import REPO


def _pins(text: str) -> dict[str, Requirement]:
    found = [Requirement(line) for line in text.splitlines() if line and not line.startswith("#")]
    return {r.name: r for r in found}


def test_make_dist_builds_the_wheels_requirements_txt_pins(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    # -o: the venv the tests run in is installed; never reinstall it from here
    subprocess.run(
        ["make", "-o", ".venv/.installed", "dist", f"DIST={dist}"],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheels = sorted(p.name for p in dist.glob("*.whl"))
    assert wheels == [
        f"{name.replace('-', '_')}-{version(name)}-py3-none-any.whl"
        for name in ("mlcompile", "mlcompile-kfp", "mlcompile-zenml")
    ]

    spec = conformance_spec()
    pins = _pins(requirements(compile_spec(make_project(tmp_path / "p", spec), []).plan, None))
    assert sorted(pins) == ["kfp", "mlcompile"]
    assert str(pins["kfp"].specifier) == f"=={version('kfp')}"
    assert not pins["mlcompile"].extras  # the project reads and writes only local files

    spec["sources"]["raw"]["path"] = "s3://data/raw/cancer.csv"
    remote = requirements(compile_spec(make_project(tmp_path / "q", spec), []).plan, None)
    pinned = _pins(remote)["mlcompile"]
    assert pinned.extras == {"s3"}
    # pip finds that exact requirement among the wheels, and nowhere else
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-index", "-q"]
    subprocess.run(
        [*pip, "--find-links", str(dist), "-d", str(tmp_path / "got"), str(pinned)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert [p.name for p in (tmp_path / "got").iterdir()] == [wheels[0]]
