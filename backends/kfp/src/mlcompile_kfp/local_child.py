"""`python -m mlcompile_kfp.local_child RUN_DIR`: run RUN_DIR/pipeline.py on kfp.local.

Writes RUN_DIR/result.json: {"status", "failed_task", "error"}. kfp.local names the failed
task only in its exception message, so that is where the task name is read from.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from mlcompile_kfp.local_run import ANSI, OUTPUTS_DIR, RESULT_FILE
from mlcompile_kfp.render import load_module

_FAILED_TASK = re.compile(r"Inner task failed: '([^']+)'")


def main(run_dir: Path) -> int:
    from kfp import local  # type: ignore[import-untyped]

    module = load_module((run_dir / "pipeline.py").read_text("utf-8"))
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(run_dir / OUTPUTS_DIR),
        raise_on_error=True,
        # Input URIs contain the run's timestamped folder, so only tasks without inputs could
        # ever hit kfp.local's cache, and those read files whose content the key never sees.
        enable_caching=False,
    )
    outcome: dict[str, Any] = {"status": "succeeded", "failed_task": None, "error": None}
    try:
        module.pipeline()
    except RuntimeError as exc:
        message = ANSI.sub("", str(exc))
        found = _FAILED_TASK.search(message)
        outcome = {"status": "failed", "failed_task": found and found.group(1), "error": message}
    (run_dir / RESULT_FILE).write_text(json.dumps(outcome, sort_keys=True), encoding="utf-8")
    return 0 if outcome["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
