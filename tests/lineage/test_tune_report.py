"""A tuned model in the report and the run record: a chart of the objective by trial and a
table of the best parameters, from a real local run on the flights example's data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.backends.kfp.test_tune import TUNED_SPEC
from tests.conftest import EXAMPLE

CLI = str(Path(sys.executable).with_name("mlcompile"))


def test_the_report_draws_the_search_and_lists_its_best_parameters(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    frame = pd.read_parquet(EXAMPLE / "data" / "flights.parquet").sample(n=3000, random_state=13)
    frame.to_parquet(tmp_path / "data" / "flights.parquet", index=False)
    (tmp_path / "mlcompile.yaml").write_text(TUNED_SPEC, encoding="utf-8")
    run_it = ["run", "mlcompile.yaml", "--no-deploy", "-q", "-j", "1"]
    done = subprocess.run([CLI, *run_it], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    [run] = (tmp_path / ".mlcompile" / "runs").iterdir()
    report = ["report", str(run), "-o", "report.html"]
    done = subprocess.run([CLI, *report], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((run / "run.json").read_text())["steps"]["tune:delayed"]["summary"]
    assert len(summary["trials"]) == summary["finished"] == 3
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    start = html.index('data-chart="tuning"')
    chart = html[start : html.index("</figure>", start)]
    complete = [t for t in summary["trials"] if t["state"] == "complete"]
    assert chart.count('class="dot s0"') == len(complete)
    assert chart.count('class="point"') == 1  # the chosen trial
    table = html[html.index('data-tuning="delayed"') : html.index("</table>", start)]
    for name, value in summary["best"]["params"].items():
        assert re.search(rf"<code>{name}</code></td><td class=\"num\">{value:.6g}<", table), name
