"""How fast the compiler answers: start-up on the example, and plans of 1k-10k nodes.

Targets (docs/design.md, issues 13 and 20): on the flights example, a warm `mlcompile validate`
(its caches filled) at most 0.25 s wall, a cold one (no project cache) under 0.6 s wall and a
cached no-op `mlcompile run` at most 0.35 s wall; a
synthetic spec of 10,000 nodes built in under 5 s, growing linearly. The start-up figures are
measured in rounds, each timing `python -c pass` and `python -c "import pydantic"` beside the
commands, so a loaded machine slows the scale and the commands alike.

`python benchmarks/compile_speed.py` measures this section alone and writes it into
docs/benchmarks.md in place; `make bench` writes the whole file.
"""

from __future__ import annotations

import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import MLCOMPILE, REPO, peak_of, table

EXAMPLE = REPO / "examples" / "flights"
ROUNDS = 15
VALIDATE_TARGET = 0.25
COLD_VALIDATE_TARGET = 0.6
COLD = "`mlcompile validate mlcompile.yaml` (cold)"
RUN_TARGET = 0.35

NODES_PER_MODEL = 6  # split, features, train, evaluate, gate, register


def synthetic_spec(models: int) -> str:
    lines = [
        "name: synthetic",
        "sources:",
        "  rows: {path: rows.csv, schema: rows}",
        "schemas:",
        "  rows:",
        "    columns: {a: {dtype: float}, b: {dtype: float}, c: {dtype: str}, y: {dtype: int}}",
        "features:",
        "  a_log: {log: a}",
        "  c_code: {encode: c}",
        "models:",
    ]
    for i in range(models):
        lines += [
            f"  m{i}:",
            "    task: binary",
            "    data: rows",
            "    target: y",
            "    features: [a_log, b, c_code]",
            f"    params: {{num_leaves: {8 + i % 50}}}",
        ]
    lines.append("gates:")
    lines += [f"  g{i}: {{model: m{i}, checks: ['roc_auc >= 0.5']}}" for i in range(models)]
    lines.append("deployments:")
    lines += [f"  d{i}: {{kind: registry, model: m{i}}}" for i in range(models)]
    return "\n".join(lines) + "\n"


def _timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


def start_up() -> tuple[list[list[str]], list[str]]:
    """Rows of the start-up table and the load averages seen, on a copy of the example."""
    # bytecode cached, as users have it (pip compiles an installed package)
    compileall.compile_dir(str(REPO / "src" / "mlcompile"), quiet=1)
    python = sys.executable
    commands = {
        "`python -c pass`": [python, "-c", "pass"],
        '`python -c "import pydantic"`': [python, "-c", "import pydantic"],
        "`mlcompile validate mlcompile.yaml` (warm)": [MLCOMPILE, "validate", "mlcompile.yaml"],
        COLD: [MLCOMPILE, "validate", "mlcompile.yaml"],
        "`mlcompile run mlcompile.yaml` (no-op, all cached)": [
            MLCOMPILE,
            "run",
            "mlcompile.yaml",
            "--quiet",
        ],
    }
    loads = [_load()]
    with tempfile.TemporaryDirectory() as tmp:
        project, cold = Path(tmp) / "flights", Path(tmp) / "flights-cold"
        for copy in (project, cold):
            shutil.copytree(
                EXAMPLE, copy, ignore=shutil.ignore_patterns(".mlcompile", "build", "outputs")
            )
        # the first run trains and fills every cache; validate then finds its caches filled
        _timed([MLCOMPILE, "run", "mlcompile.yaml", "--quiet"], project)
        _timed([MLCOMPILE, "validate", "mlcompile.yaml"], project)
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(ROUNDS):
            for name, cmd in commands.items():
                if name == COLD:  # a copy of its own, its project cache emptied each time
                    shutil.rmtree(cold / ".mlcompile" / "cache", ignore_errors=True)
                wall, cpu = _timed(cmd, cold if name == COLD else project)
                walls[name].append(wall)
                cpus[name].append(cpu)
            loads.append(_load())
    targets = [None, None, VALIDATE_TARGET, COLD_VALIDATE_TARGET, RUN_TARGET]
    rows = []
    for (name, _), target in zip(commands.items(), targets, strict=True):
        median = statistics.median(walls[name])
        verdict = ""
        if target is not None:
            met = "met" if median <= target else "**not met**"
            verdict = f"<= {target:.2f} s: {met}"
        rows.append(
            [
                name,
                f"{median:.3f} s",
                f"{min(walls[name]):.3f} s",
                f"{statistics.median(cpus[name]):.3f} s",
                verdict,
            ]
        )
    return rows, loads


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> str:
    startup_rows, loads = start_up()
    rows = []
    build_loads = [_load()]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "rows.csv").write_text("a,b,c,y\n1.0,2.0,x,0\n")
        # A machine cache of its own, empty: the first build learns LightGBM's parameters
        # (two child processes importing lightgbm) and is shown apart from the rest.
        os.environ["MLCOMPILE_CACHE_DIR"] = str(folder / "machine-cache")
        for models, first in ((167, True), (167, False), (417, False), (834, False), (1667, False)):
            spec = folder / f"spec{models}.yaml"
            spec.write_text(synthetic_spec(models))
            shutil.rmtree(folder / ".mlcompile", ignore_errors=True)  # no plan cache
            nodes = 2 + models * NODES_PER_MODEL
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            seconds, mib = peak_of([MLCOMPILE, "build", str(spec), "--out", str(folder / "out")])
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            rows.append(
                [
                    f"{nodes:,}" + (" (first build on the machine)" if first else ""),
                    f"{seconds:.2f} s",
                    f"{cpu:.2f} s",
                    f"{seconds / nodes * 1000:.3f} ms",
                    f"{mib:.0f} MiB",
                ]
            )
            build_loads.append(_load())
        del os.environ["MLCOMPILE_CACHE_DIR"]
    return "\n".join(
        [
            "## Compiler speed",
            "",
            "### Start-up on the flights example",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. "
            f"{ROUNDS} rounds, each running every command below once in a fresh process, in a "
            "copy of the example whose caches a first `run` and `validate` filled (so `validate` "
            "and the no-op `run` answer from the plan cache, .mlcompile/cache/plan), and a cold "
            "`validate` in a copy whose .mlcompile/cache is emptied before each; bytecode "
            "compiled. Wall time median and minimum, and CPU time (user + system) median, which "
            "other work on the machine disturbs less:",
            "",
            table(["command", "wall, median", "wall, min", "CPU, median", "target"], startup_rows),
            "",
            f"Load average (1, 5, 15 min) before and after each round: {'; '.join(loads)} "
            f"({os.cpu_count()} cores, shared with other work).",
            "",
            "`mlcompile build` of a synthetic spec (one source, N models with a gate and a",
            "registry deployment each), fresh process, no plan cache, wall time including",
            "start-up, and CPU time (user + system, with the measuring wrapper's start of about",
            "0.02 s). The first build on a machine also learns LightGBM's parameter names and",
            "checks each distinct parameter set once (cached per machine after that):",
            "",
            table(["plan nodes", "build wall", "build CPU", "per node", "peak RSS"], rows),
            "",
            f"Load average (1, 5, 15 min) before the builds and after each: {'; '.join(build_loads)}.",
            "",
            "Target: 10,000 nodes under 5 s, linear growth (per-node time flat).",
        ]
    )


def write_section(text: str) -> None:
    """Replace this benchmark's section of docs/benchmarks.md with `text`."""
    doc = REPO / "docs" / "benchmarks.md"
    current = doc.read_text(encoding="utf-8")
    start = current.index("## Compiler speed")
    end = current.find("\n## ", start + 1)
    rest = current[end:] if end != -1 else "\n"
    doc.write_text(current[:start] + text + "\n" + rest, encoding="utf-8")


if __name__ == "__main__":
    section = main()
    write_section(section)
    print(section)
