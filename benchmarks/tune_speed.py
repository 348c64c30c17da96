"""What a parameter search costs in mlcompile over the same search in a plain script.

The flights example's `delayed` model with 20 trials over num_leaves, learning_rate and
min_data_in_leaf (the spec in tests/conftest.py's TUNED, trials raised). One `mlcompile run`
makes the training rows; then, alternating, `mlcompile step` runs the tune node in a fresh
process, and a plain Optuna + LightGBM script (same rows, same validation split, same early
stopping, the same trials enqueued in the same order, the same median pruner fed every
5 rounds) runs in another. Both walls include the process start-up and imports. Also the
share of the tune step's own time spent outside LightGBM (its summary's seconds).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import MLCOMPILE, REPO, table

sys.path.insert(0, str(REPO))
from tests.conftest import TUNED  # the spec the tests tune

TRIALS = 20
ROUNDS = 2
TARGET = 0.10
NODE = "tune:delayed"

PLAIN = """\
import json, sys, time
started = time.perf_counter()
import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd
from sklearn.metrics import roc_auc_score

folder, out = sys.argv[1], sys.argv[2]
params = json.load(open(sys.argv[3]))
trials = json.load(open(sys.argv[4]))
state = json.load(open(folder + "/transformer/transformer.json"))
rows = pd.read_parquet(folder + "/train/data.parquet")
rows = rows[rows[params["target"]].notna()]
x, y = rows[state["output_columns"]], rows[params["target"]].to_numpy(dtype=float)
held = np.zeros(len(y), dtype=bool)
count = int(np.ceil(len(y) * params["validation_size"]))
held[np.random.default_rng(params["seed"]).permutation(len(y))[:count]] = True
fixed = {"objective": "binary", "verbosity": -1, **params["params"], "seed": params["seed"],
         "deterministic": True, "force_col_wise": True, "num_threads": 1}

def objective(trial):
    p = {**fixed, **trial.params}
    # built per trial, as Optuna's LightGBM examples do: binning depends on min_data_in_leaf
    fit = lgb.Dataset(x[~held], y[~held])
    check = lgb.Dataset(x[held], y[held], reference=fit)
    def prune(env):
        if (env.iteration + 1) % 5:
            return
        trial.report(-env.evaluation_result_list[0][2], env.iteration + 1)
        if trial.should_prune():
            raise optuna.TrialPruned()
    prune.order = 40
    booster = lgb.train(p, fit, params["num_boost_round"], valid_sets=[check],
                        callbacks=[lgb.early_stopping(params["early_stopping_rounds"], verbose=False), prune])
    return roc_auc_score(y[held], booster.predict(x[held], num_iteration=booster.best_iteration))

optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(5, 20))
space = {"learning_rate": optuna.distributions.FloatDistribution(0.02, 0.3, log=True),
         "min_data_in_leaf": optuna.distributions.IntDistribution(10, 200),
         "num_leaves": optuna.distributions.IntDistribution(7, 127, log=True)}
for chosen in trials:
    study.enqueue_trial(chosen)
    trial = study.ask(space)
    try:
        study.tell(trial, objective(trial))
    except optuna.TrialPruned:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
json.dump({"seconds": time.perf_counter() - started, "best": study.best_params}, open(out, "w"))
"""


def _load() -> str:
    import os

    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _run(project: Path) -> dict[str, Any]:
    overrides = [o.replace("trials=8", f"trials={TRIALS}") for o in TUNED]
    subprocess.run(
        [MLCOMPILE, "run", "mlcompile.yaml", "--no-deploy", "--quiet", *overrides],
        cwd=project,
        check=True,
        capture_output=True,
    )
    [run] = sorted((project / ".mlcompile" / "runs").iterdir())[-1:]
    record: dict[str, Any] = json.loads((run / "run.json").read_text())
    record["folder"] = str(run)
    return record


def _timed(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> str:
    at_start = _load()
    with tempfile.TemporaryDirectory(prefix="mlcompile-tune-") as tmp:
        project = Path(tmp) / "flights"
        shutil.copytree(
            REPO / "examples" / "flights",
            project,
            ignore=shutil.ignore_patterns("build", ".mlcompile", "outputs", "deploy"),
        )
        record = _run(project)
        run = Path(record["folder"])
        store = project / ".mlcompile" / "store" / "entries"
        features = record["steps"]["features:delayed"]["key"]
        fitted = store / features[:2] / features
        plan = json.loads((run / "plan.json").read_text())
        [node] = [n for n in plan["nodes"] if n["id"] == NODE]
        summary = record["steps"][NODE]["summary"]
        params_file, trials_file = Path(tmp) / "params.json", Path(tmp) / "trials.json"
        params_file.write_text(json.dumps(node["params"]))
        trials_file.write_text(json.dumps([t["params"] for t in summary["trials"]]))
        step = [
            MLCOMPILE, "step", str(run / "plan.json"), "--node", NODE,
            "--in", f"train={fitted / 'train'}", "--in", f"transformer={fitted / 'transformer'}",
            "--out", f"tuning={Path(tmp) / 'tuning'}", "--project-root", str(project),
        ]  # fmt: skip
        plain = [
            sys.executable, "-c", PLAIN, str(fitted), str(Path(tmp) / "plain.json"),
            str(params_file), str(trials_file),
        ]  # fmt: skip
        walls: dict[str, list[float]] = {"mlcompile step": [], "plain Optuna script": []}
        for _ in range(ROUNDS):
            shutil.rmtree(Path(tmp) / "tuning", ignore_errors=True)
            walls["mlcompile step"].append(_timed(step, project))
            walls["plain Optuna script"].append(_timed(plain, project))
        plain_best = json.loads((Path(tmp) / "plain.json").read_text())["best"]
        tuned = json.loads((Path(tmp) / "tuning" / "tuning.json").read_text())
    best = {k: min(v) for k, v in walls.items()}
    ratio = best["mlcompile step"] / best["plain Optuna script"]
    inside, lightgbm = float(summary["seconds"]), float(summary["lightgbm_seconds"])
    outside = (inside - lightgbm) / inside
    states = [t["state"] for t in summary["trials"]]
    rows = [
        [name, " / ".join(f"{s:.1f}" for s in values), f"{min(values):.1f}"]
        for name, values in walls.items()
    ]
    met = "met" if ratio - 1 <= TARGET else "**not met**"
    return "\n".join(
        [
            "## Parameter search: 20 trials on the flights example",
            "",
            f"Load average (1/5/15 min) {at_start} at the start, {_load()} at the end. "
            f"`benchmarks/tune_speed.py`: the `delayed` model's search over num_leaves, "
            f"learning_rate and min_data_in_leaf, {TRIALS} trials "
            f"({states.count('complete')} complete, {states.count('pruned')} pruned by the "
            f"median pruner), one thread; the tune step (`mlcompile step`, a fresh process) "
            f"against a plain Optuna + LightGBM script running the same trials in the same "
            f"order, {ROUNDS} alternating runs each (seconds, start-up and imports included).",
            "",
            table(["", "wall (s), each run", "best (s)"], rows),
            "",
            f"- overhead of the tune step over the plain script: {(ratio - 1) * 100:+.1f}% "
            f"(target under {TARGET * 100:.0f}%: {met});",
            f"- inside the step, {outside * 100:.1f}% of its {inside:.1f} s is spent outside "
            f"LightGBM (training and predicting the trials: {lightgbm:.1f} s): sampling, "
            "pruning, scoring the validation rows, reading the rows;",
            f"- same best parameters as the plain script: "
            f"{'yes' if plain_best == tuned['best']['params'] else 'no'}.",
        ]
    )


if __name__ == "__main__":
    print(main())
