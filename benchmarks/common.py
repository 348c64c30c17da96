"""Helpers shared by the benchmarks: timing in a fresh process, peak memory, Markdown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MLCOMPILE = str(Path(sys.executable).parent / "mlcompile")


def peak_of(cmd: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """Wall seconds and the peak RSS of exactly this command (via a wrapper process)."""
    wrapper = [
        sys.executable,
        "-c",
        "import resource,subprocess,sys,time;t=time.perf_counter();"
        "r=subprocess.run(sys.argv[1:]).returncode;"
        "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
        "sys.exit(r)",
        *cmd,
    ]
    done = subprocess.run(wrapper, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    seconds, kib = done.stdout.strip().splitlines()[-1].split()
    return float(seconds), int(kib) / 1024


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
