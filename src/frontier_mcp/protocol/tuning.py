"""Tuning and evaluation of one optimizer: the learning-rate grid, or TPE over the candidate's knobs."""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from .. import stats
from .harness import Harness, plan_lines
from .suites import CANDIDATE, Suite


def choose_lrs(suite: Suite, tune: list[dict[str, Any]], results: dict[int, dict[str, Any]]
               ) -> dict[str, float]:
    """Per problem, the grid point with the lowest median final loss over tuning seeds."""
    scores: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in tune:
        record = results.get(run["id"], {})
        loss = None if record.get("diverged") else record.get("final_loss")
        scores[run["problem"]][run["lr"]].append(stats.floored(loss))
    chosen: dict[str, float] = {}
    for problem, by_lr in scores.items():
        chosen[problem] = min(sorted(by_lr), key=lambda lr: stats.median(by_lr[lr]))
    return chosen


def _trial_row(run: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    return {"phase": run["phase"], "problem": run["problem"], "optimizer": run["optimizer"],
            "lr": run["lr"], "seed": run["seed"],
            "final_loss": None if record.get("diverged") else record.get("final_loss"),
            "best_loss": record.get("best_loss"), "diverged": int(bool(record.get("diverged"))),
            "test_accuracy": record.get("test_accuracy"), "ns_per_step": record.get("ns_per_step"),
            "grad_evals": record.get("grad_evals"), "error": record.get("error"),
            "curve": record.get("curve"), "steps_done": record.get("steps_done"), "knobs": run.get("knobs") or {},
            "oracle_evals": (record.get("grad_evals") or 0) + (record.get("loss_evals") or 0)}


# What of a trial the archive keeps (curves stay in the report; the rest is recomputable).
TRIAL_COLUMNS = ("phase", "problem", "optimizer", "lr", "seed", "final_loss", "best_loss", "diverged",
                 "test_accuracy", "ns_per_step", "grad_evals", "error")


async def run_optimizer(harness: Harness, optimizer: str, suite: Suite, tick: Callable[[dict[str, Any]], None],
                        knobs: list[dict[str, Any]] | None = None,
                        switched_off: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Tune on the tuning seeds, then evaluate the chosen settings on the evaluation seeds.

    An ablated variant (`switched_off`) is tuned afresh, with the same budget: it is another optimizer."""
    if knobs:
        tune_rows, settings = await tune_with_knobs(harness, suite, knobs, tick, switched_off)
    else:
        tune = plan_lines(optimizer, suite, phase="tune")
        for run in tune:
            run["switched_off"] = switched_off
        tuned = await harness.run(tune, suite.curve_points, tick)
        tune_rows = [_trial_row(run, tuned[run["id"]]) for run in tune]
        settings = {problem: {"lr": lr, "knobs": {}} for problem, lr in choose_lrs(suite, tune, tuned).items()}
    evaluate = plan_lines(optimizer, suite, phase="eval", lrs={p: v["lr"] for p, v in settings.items()},
                          start_id=len(tune_rows))
    for run in evaluate:
        run["knobs"], run["switched_off"] = settings[run["problem"]]["knobs"], switched_off
    evaluated = await harness.run(evaluate, suite.curve_points, tick)
    return tune_rows + [_trial_row(run, evaluated[run["id"]]) for run in evaluate]


async def tune_with_knobs(harness: Harness, suite: Suite, knobs: list[dict[str, Any]],
                          tick: Callable[[dict[str, Any]], None], switched_off: tuple[str, ...] = ()
                          ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Tune the learning rate (on the baselines' grid) and the candidate's knobs jointly with optuna's TPE.

    The budget is the baselines': as many trials as the grid has learning rates, each on every
    tuning seed. The sampler's seed is fixed per problem, so tuning is reproducible.
    """
    import optuna  # imported here: only candidates that declare knobs need it

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows: list[dict[str, Any]] = []
    settings: dict[str, Any] = {}
    next_id = 0
    for spec in suite.problems:
        seed = int(hashlib.sha256(f"{suite.name}|{spec.name}".encode()).hexdigest()[:8], 16)
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        for _ in suite.lr_grid:
            trial = study.ask()
            lr = trial.suggest_categorical("lr", list(suite.lr_grid))
            values = {k["name"]: trial.suggest_float(k["name"], k["low"], k["high"], log=k["log_scale"])
                      for k in knobs}
            runs: list[dict[str, Any]] = [
                {"optimizer": CANDIDATE, "problem": spec.name, "lr": lr, "seed": s, "steps": spec.steps,
                 "phase": "tune", "knobs": values, "switched_off": switched_off, "id": next_id + i}
                for i, s in enumerate(suite.tuning_seeds)]
            next_id += len(runs)
            results = await harness.run(runs, suite.curve_points, tick)
            trial_rows = [_trial_row(run, results[run["id"]]) for run in runs]
            rows += trial_rows
            score = stats.median([stats.floored(r["final_loss"]) for r in trial_rows])
            study.tell(trial, math.log(min(score, 1e300)))
        best = study.best_trial.params
        settings[spec.name] = {"lr": best["lr"], "knobs": {k["name"]: best[k["name"]] for k in knobs}}
    return rows, settings


def runs_per_optimizer(suite: Suite) -> int:
    per_problem = len(suite.lr_grid) * len(suite.tuning_seeds) + len(suite.eval_seeds)
    return per_problem * len(suite.problems)
