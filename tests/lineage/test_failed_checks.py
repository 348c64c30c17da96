"""A run stopped by a data check: the FAIL event and the report name the broken rule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlcompile.lineage.report import report_data
from mlcompile.plan import Plan
from mlcompile.runtime.trail.records import load_runs
from tests.lineage.conftest import TRIM, copy_example, invoke
from tests.trail import events_of

pytestmark = pytest.mark.slow


def test_failed_validation_is_reported(
    tmp_path: Path, openlineage: Callable[[str, dict[str, Any]], list[str]]
) -> None:
    project = copy_example(tmp_path / "flights")
    planes = project / "data" / "planes.csv"
    lines = planes.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace(",2,55,", ",2,-55,")  # seats must be > 0
    planes.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = invoke("run", "mlcompile.yaml", *TRIM, "-q", cwd=project)
    assert result.exit_code == 3, result.output
    (record,) = load_runs(project / ".mlcompile" / "runs")
    plan = Plan.from_json((project / "build" / "plan.json").read_text(encoding="utf-8"))
    store = project / ".mlcompile" / "store"

    events = events_of(project, record["id"])  # what the steps sent as they ran
    assert all(openlineage("RunEvent", e) == [] for e in events)
    failed = [e for e in events if e["job"]["name"] == "validate:planes"][-1]
    assert failed["eventType"] == "FAIL"
    assert "seats" in failed["run"]["facets"]["errorMessage"]["message"]
    assertions = failed["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    broken = [a for a in assertions if not a["success"]]
    assert [(a["column"], a["description"], a["actual"]) for a in broken] == [
        ("seats", "> 0.0", "1 failing rows")
    ]
    assert not any(e["job"]["name"] == "train:delayed" for e in events)  # never started

    data = report_data(plan, record, store, None)
    (planes_checks,) = [c for c in data["checks"] if c["node"] == "validate:planes"]
    assert planes_checks["report"]["passed"] is False
    (seats,) = [c for c in planes_checks["checks"] if not c["success"]]
    assert seats["examples"] == [-55]
