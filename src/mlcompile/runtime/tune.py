"""The search for a model's LightGBM parameters, with Optuna (imported here only).

Each trial trains exactly as the train step does (the same rows, fixed params, early
stopping on the same validation split), with parameters drawn from the space merged over
the fixed ones, and is scored on that validation split only: the test split stays unseen
until evaluate. The train step then retrains with the best trial's parameters, so the
model's validation score is the best trial's.

Same spec and data, same trials: trials run one after another (a parallel worker would
draw from a history that depends on which trial finished first), and the sampler that
draws the k-th finished trial is seeded from (seed, k) alone. So a study resumed from its
storage after a kill draws what an uninterrupted one would have: the trial that the kill
cut short is marked failed and drawn again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd  # type: ignore[import-untyped]

from mlcompile.errors import StepError
from mlcompile.plan.model import canonical_json

from .artifacts import json_safe
from .evaluate import TASK_METRICS, Scorer
from .train import TrainingRows, fit, lightgbm_params, threshold_of, training_rows, with_tuned

if TYPE_CHECKING:
    import optuna

# A trial reports its validation loss to the pruner every this many rounds: each report is
# a write to the study's storage, one per round would cost more than the round itself.
REPORT_EVERY = 5
# The median pruner judges a trial only after this many trials finished, and this many rounds.
PRUNER_STARTUP_TRIALS = 5
PRUNER_WARMUP_ROUNDS = 20
# What the study's name hashes of the params: not how many trials, nor for how long, so a
# study asked for more trials continues the one that ran fewer.
_NOT_IN_STUDY = ("trials", "timeout_s", "storage", "outside_project")


def study_name(params: Mapping[str, Any], inputs: Mapping[str, Any]) -> str:
    """The study a search resumes: its space, sampler, seed and training params, and what
    it read (the training rows' sha256, the fitted transformer)."""
    kept = {k: v for k, v in params.items() if k not in _NOT_IN_STUDY}
    digest = hashlib.sha256(canonical_json({"params": kept, "inputs": dict(inputs)}).encode())
    return f"mlcompile-{params['model']}-{digest.hexdigest()[:16]}"


def _trial_seed(seed: int, finished: int) -> int:
    digest = hashlib.sha256(f"{seed}:{finished}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31)


def _distributions(space: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    found: dict[str, Any] = {}
    for name, searched in sorted(space.items()):
        log = bool(searched.get("log", False))
        if "int" in searched:
            low, high = searched["int"]
            found[name] = IntDistribution(int(low), int(high), log=log)
        elif "float" in searched:
            low, high = searched["float"]
            found[name] = FloatDistribution(float(low), float(high), log=log)
        else:
            found[name] = CategoricalDistribution(list(searched["choice"]))
    return found


def _sampler(kind: str, seed: int) -> optuna.samplers.BaseSampler:
    from optuna.samplers import RandomSampler, TPESampler

    return RandomSampler(seed=seed) if kind == "random" else TPESampler(seed=seed)


def pruning_callback(trial: optuna.Trial, greater_is_better: bool) -> Callable[[Any], None]:
    """A LightGBM callback that reports the validation loss early stopping watches, signed
    to the search's direction, and stops the trial when the pruner says so."""
    from optuna import TrialPruned

    def callback(env: Any) -> None:
        round_ = env.iteration + 1
        if round_ % REPORT_EVERY:
            return
        for data, _name, value, higher in env.evaluation_result_list:
            if data == "validation":
                trial.report(value if higher == greater_is_better else -value, round_)
                break
        if trial.should_prune():
            raise TrialPruned(f"pruned at round {round_}")

    callback.order = 40  # type: ignore[attr-defined]  # after early stopping's (30)
    return callback


class _Objective:
    """Trains one trial's model and scores it on the validation rows."""

    def __init__(self, rows: TrainingRows, params: Mapping[str, Any], num_threads: int) -> None:
        self.rows, self.params, self.threads = rows, params, num_threads
        task = str(params["task"])
        self.metric = str(params["metric"])
        self.measure = TASK_METRICS[task][self.metric]
        self.lightgbm_seconds = 0.0

    def __call__(
        self, chosen: Mapping[str, Any], callbacks: list[Callable[[Any], None]]
    ) -> tuple[float | None, int, str | None]:
        """(the metric on the validation rows or None, the best round, why it has no value)."""
        params = with_tuned(self.params, chosen)
        lgb_params = lightgbm_params(params, self.rows.classes, self.threads)
        started = time.perf_counter()
        try:
            found = fit(self.rows, params, lgb_params, callbacks)
        finally:
            self.lightgbm_seconds += time.perf_counter() - started
        assert found.held_out is not None  # a tuned model has early stopping (spec check)
        inputs, labels = found.held_out
        started = time.perf_counter()
        scores = found.booster.predict(inputs, num_iteration=found.best, num_threads=self.threads)
        self.lightgbm_seconds += time.perf_counter() - started
        threshold = float(threshold_of(params, found)["value"])
        scorer = Scorer(str(params["task"]), {self.metric: self.measure}, (), threshold)
        values, undefined = scorer.score(labels, scores)
        return values.get(self.metric), found.best, undefined.get(self.metric)


def tune(
    train_df: pd.DataFrame,
    state: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    name: str,
    storage: Path | None = None,
    num_threads: int = 1,
) -> tuple[dict[str, Any], dict[str, float]]:
    """(tuning.json, timings): the study's trials, its best trial, and the seconds spent in
    all and in LightGBM. `name` is the study's (`study_name`); with `storage`, the study
    lives in that SQLite file and resumes from it."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    rows = training_rows(train_df, state, params)
    objective = _Objective(rows, params, num_threads)
    greater = bool(params["greater_is_better"])
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNER_WARMUP_ROUNDS
        )
        if params.get("pruning")
        else optuna.pruners.NopPruner()
    )
    url = None
    if storage is not None:
        storage.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{storage}"
    study = optuna.create_study(
        study_name=name,
        storage=url,
        load_if_exists=True,
        direction="maximize" if greater else "minimize",
        pruner=pruner,
    )
    # one worker: a trial still "running" was cut short by a kill, and is drawn again
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(stale.number, state=TrialState.FAIL)
    wanted, seed = int(params["trials"]), int(params["tune_seed"])
    timeout = params.get("timeout_s")
    distributions = _distributions(params["space"])
    finished_states = (TrialState.COMPLETE, TrialState.PRUNED)
    stopped = "trials"
    reasons: dict[int, str] = {}
    resumed = len(study.get_trials(deepcopy=False, states=finished_states))
    while (done := len(study.get_trials(deepcopy=False, states=finished_states))) < wanted:
        if timeout is not None and time.perf_counter() - started > float(timeout):
            stopped = "timeout"
            break
        study.sampler = _sampler(str(params["sampler"]), _trial_seed(seed, done))
        trial = study.ask(distributions)
        callbacks = [pruning_callback(trial, greater)] if params.get("pruning") else []
        try:
            value, best_round, why = objective(trial.params, callbacks)
        except optuna.TrialPruned as pruned:
            trial.set_user_attr("pruned", str(pruned))
            study.tell(trial, state=TrialState.PRUNED)
            continue
        trial.set_user_attr("best_iteration", best_round)
        if value is None:
            reasons[trial.number] = str(why)
            trial.set_user_attr("undefined", str(why))
            study.tell(trial, state=TrialState.FAIL)
            if _fails_only(study, wanted):
                break
        else:
            study.tell(trial, value)
    record = _record(study, params, wanted, stopped, resumed)
    timings = {
        "seconds": time.perf_counter() - started,
        "lightgbm_seconds": objective.lightgbm_seconds,
    }
    return record, timings


def _fails_only(study: optuna.Study, wanted: int) -> bool:
    """As many trials failed as were asked for, and none finished: the metric is undefined
    on these validation rows whatever the parameters."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    return len(trials) >= wanted and all(t.state == TrialState.FAIL for t in trials)


def _record(
    study: optuna.Study, params: Mapping[str, Any], wanted: int, stopped: str, resumed: int
) -> dict[str, Any]:
    from optuna.trial import TrialState

    states = {
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
        TrialState.FAIL: "failed",
    }
    trials: list[dict[str, Any]] = []
    counted = 0
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if trial.state not in states:
            continue
        if trial.state != TrialState.FAIL:
            counted += 1
            if counted > wanted:  # a study that ran more trials for another spec
                break
        entry: dict[str, Any] = {
            "number": trial.number,
            "state": states[trial.state],
            "value": trial.value if trial.state == TrialState.COMPLETE else None,
            "params": dict(trial.params),
        }
        entry.update({k: v for k, v in sorted(trial.user_attrs.items())})
        trials.append(entry)
    greater = bool(params["greater_is_better"])
    complete = [t for t in trials if t["state"] == "complete"]
    if not complete:
        why = next((t.get("undefined") for t in trials if t.get("undefined")), None)
        raise StepError(
            f"model '{params['model']}': no trial of the search gave a value for "
            f"'{params['metric']}' on the validation rows"
            + (f": {why}" if why else " (every trial was pruned or stopped)")
        )
    # the first of equal values wins: the choice depends on the trials' order only
    best = complete[0]
    for entry in complete[1:]:
        if (entry["value"] > best["value"]) if greater else (entry["value"] < best["value"]):
            best = entry
    return dict(
        json_safe(
            {
                "model": params["model"],
                "metric": params["metric"],
                "direction": "maximize" if greater else "minimize",
                "study": study.study_name,
                "sampler": params["sampler"],
                "seed": params["tune_seed"],
                "trials_asked": wanted,
                "finished": len([t for t in trials if t["state"] != "failed"]),
                "resumed_from": resumed,
                "stopped": stopped,
                "best": {k: best[k] for k in ("number", "value", "params")},
                "trials": trials,
            }
        )
    )
