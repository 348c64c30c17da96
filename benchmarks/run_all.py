"""Run every benchmark and write docs/benchmarks.md (`make bench`).

Each benchmark measures its ratios within one run, so the figures compare like with like on
whatever machine runs them; the header records that machine and its load.
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime

# run as a script (`python benchmarks/run_all.py`), so its folder is on sys.path
import compile_speed
import kfp_compile
import runtime_speed
import serve_speed
import tune_speed
from common import REPO


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}; "
        f"load average at start {load}."
    )


def main() -> None:
    sections = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`benchmarks/run_all.py`); do not edit by hand.",
        machine(),
        "",
        compile_speed.main(),
        "",
        runtime_speed.main(),
        "",
        kfp_compile.main(),
        "",
        serve_speed.main(),
        "",
        tune_speed.main(),
        "",
    ]
    (REPO / "docs" / "benchmarks.md").write_text("\n".join(sections), encoding="utf-8")
    print((REPO / "docs" / "benchmarks.md").read_text())


if __name__ == "__main__":
    main()
