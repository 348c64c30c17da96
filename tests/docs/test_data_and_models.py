"""docs/data-and-models.md's metric table is the one the code has."""

from __future__ import annotations

import re

from mlcompile.tasks import LOWER_IS_BETTER, TASK_METRICS
from tests.conftest import REPO

PAGE = REPO / "docs" / "data-and-models.md"


def test_the_metric_table_lists_every_task_and_metric() -> None:
    rows = {
        m[1]: m for m in re.finditer(r"^\| `(\w+)` \| (.*?) \| (.*?) \|$", PAGE.read_text(), re.M)
    }
    assert set(TASK_METRICS) <= set(rows)
    for task, metrics in TASK_METRICS.items():
        listed = re.findall(r"`(\w+)`", rows[task][2])
        assert listed == list(metrics), task
        lower = re.findall(r"`(\w+)`", rows[task][3])
        assert lower == [m for m in metrics if m in LOWER_IS_BETTER], task
