"""Tuning and evaluation of one optimizer, the same for the candidate and every baseline (AlgoPerf's rule).

Per problem, every optimizer gets the same budget over its own search space:
1. every learning rate of the suite's grid, at default hyperparameters and a constant schedule;
2. the grid extends itself, half a decade at a time (at most `grid_extension_decades` each way),
   while the best rate sits at an edge of what was evaluated and beats its neighbour;
3. `tuner_trials` more trials of a seeded TPE sampler (warm-started with every grid point, so none
   of them is random search) over the learning rate, the optimizer's own hyperparameters (a
   baseline's `search_spaces`, a candidate's knobs), the warm-up fraction and the decay;
4. the best of all of them by median final loss on the tuning seeds is evaluated on fresh seeds.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio

from .. import stats
from .harness import Harness, plan_lines
from .suites import CANDIDATE, Suite
from .tasks import task_group

DECAYS = ("constant", "cosine", "linear")
MAX_WARMUP = 0.5
TPE_STARTUP_TRIALS = 3
EDGE_TOLERANCE = 0.01  # a setting within 1% of its range (on its scale) of a bound is at that edge



TUNING_CURVE_POINTS = 2  # the start and the end

def _trial_row(run: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    return {"phase": run["phase"], "problem": run["problem"], "optimizer": run["optimizer"],
            "lr": run["lr"], "seed": run["seed"],
            "final_loss": None if record.get("diverged") else record.get("final_loss"),
            "best_loss": record.get("best_loss"), "diverged": int(bool(record.get("diverged"))),
            "test_accuracy": record.get("test_accuracy"), "ns_per_step": record.get("ns_per_step"),
            "grad_evals": record.get("grad_evals"), "error": record.get("error"),
            "error_location": record.get("error_location"), "curve": record.get("curve"),
            "accuracy_curve": record.get("accuracy_curve"),
            "steps_done": record.get("steps_done"), "knobs": run.get("knobs") or {},
            "opts": run.get("opts") or {}, "warmup": run.get("warmup", 0.0), "decay": run.get("decay", "constant"),
            "oracle_evals": (record.get("grad_evals") or 0) + (record.get("loss_evals") or 0)}


# What of a trial the archive keeps (curves stay in the report; the rest is recomputable).
TRIAL_COLUMNS = ("phase", "problem", "optimizer", "lr", "seed", "final_loss", "best_loss", "diverged",
                 "test_accuracy", "ns_per_step", "grad_evals", "error")


# ---------------------------------------------------------------------------------------- spaces

def knob_space(knobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A candidate's declared knobs as a search space."""
    return [{"name": k["name"], "low": float(k["low"]), "high": float(k["high"]),
             "scale": "log" if k.get("log_scale") else "linear", "default": float(k["default"])} for k in knobs]


def baseline_space(info: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """A baseline's search space from the harness's `list` line (`search_spaces`, `optimizer_defaults`)."""
    defaults = (info.get("optimizer_defaults") or {}).get(name) or {}
    return [{"name": str(hp["name"]), "low": float(hp["low"]), "high": float(hp["high"]),
             "scale": str(hp["scale"]), "default": float(defaults.get(hp["name"], hp["low"]))}
            for hp in (info.get("search_spaces") or {}).get(name) or []]


def _to_unit(param: dict[str, Any], value: float) -> float:
    """Where a value sits in its range on its scale: 0 at `low`, 1 at `high`."""
    low, high, scale = param["low"], param["high"], param["scale"]
    if scale == "log":
        low, high, value = math.log(low), math.log(high), math.log(max(value, 1e-300))
    elif scale == "log1m":
        low, high, value = -math.log(1 - low), -math.log(1 - high), -math.log(max(1 - value, 1e-300))
    return (value - low) / (high - low) if high > low else 0.5


def _key(param: dict[str, Any]) -> str:
    return f"1-{param['name']}" if param["scale"] == "log1m" else param["name"]


def _distributions(space: list[dict[str, Any]], lr_low: float, lr_high: float) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    dists: dict[str, Any] = {"lr": FloatDistribution(lr_low, lr_high, log=True)}
    for p in space:
        if p["scale"] == "log1m":
            dists[_key(p)] = FloatDistribution(1 - p["high"], 1 - p["low"], log=True)
        else:
            dists[_key(p)] = FloatDistribution(p["low"], p["high"], log=p["scale"] == "log")
    dists["warmup"] = FloatDistribution(0.0, MAX_WARMUP)
    dists["decay"] = CategoricalDistribution(DECAYS)
    return dists


def _encode(space: list[dict[str, Any]], dists: dict[str, Any], values: dict[str, float]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for p in space:
        v = 1 - values[p["name"]] if p["scale"] == "log1m" else values[p["name"]]
        d = dists[_key(p)]
        params[_key(p)] = min(max(v, d.low), d.high)
    return params


def _decode(space: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, float]:
    return {p["name"]: float(1 - params[_key(p)] if p["scale"] == "log1m" else params[_key(p)]) for p in space}


# ------------------------------------------------------------------------------------------ grid

def extension_point(scores: dict[float, float], low_bound: float, high_bound: float,
                    per_decade: int) -> float | None:
    """The next learning rate to try beyond the evaluated grid, or None.

    The grid extends (one point per 1/per_decade decade) while its best rate (lowest score, ties
    to the smaller) sits at an edge and beats its neighbour there, or every rate diverged (then
    downwards: divergence is cured by smaller rates), never past [low_bound, high_bound]."""
    lrs = sorted(scores)
    if not lrs:
        return None
    factor = 10 ** (1 / per_decade)
    best = min(lrs, key=lambda lr: scores[lr])
    if all(math.isinf(scores[lr]) for lr in lrs) or (best == lrs[0] and (
            len(lrs) == 1 or scores[lrs[0]] < scores[lrs[1]])):
        nxt = float(f"{lrs[0] / factor:.6g}")
        return nxt if nxt >= low_bound * (1 - 1e-9) else None
    if best == lrs[-1] and scores[lrs[-1]] < scores[lrs[-2]]:
        nxt = float(f"{lrs[-1] * factor:.6g}")
        return nxt if nxt <= high_bound * (1 + 1e-9) else None
    return None


def grid_bounds(suite: Suite) -> tuple[float, float]:
    span = 10 ** suite.grid_extension_decades
    return min(suite.lr_grid) / span, max(suite.lr_grid) * span


def tuner_seed(suite: Suite, problem: str, optimizer: str) -> int:
    return int(hashlib.sha256(f"{suite.name}|{problem}|{optimizer}".encode()).hexdigest()[:8], 16)


# ----------------------------------------------------------------------------------------- tuning

def _score(rows: list[dict[str, Any]]) -> float:
    return stats.median([stats.floored(r["final_loss"]) for r in rows])


async def tune(harness: Harness, optimizer: str, suite: Suite, tick: Callable[[dict[str, Any]], None],
               space: list[dict[str, Any]], switched_off: tuple[str, ...] = ()
               ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Tune one optimizer on every problem of the suite (grid, its extension, then TPE); return the
    tuning rows and, per problem, the chosen configuration with its settings and edges."""
    rows: list[dict[str, Any]] = []
    # per problem: the configurations tried, each {"lr", "values", "warmup", "decay", "grid", "score"}
    tried: dict[str, list[dict[str, Any]]] = {spec.name: [] for spec in suite.problems}
    defaults = {p["name"]: p["default"] for p in space}
    is_candidate = optimizer == CANDIDATE

    async def run_configs(configs: list[tuple[str, dict[str, Any]]],
                          scored: Callable[[int, float], None] | None = None) -> None:
        """Run every configuration on the tuning seeds; `scored(i, score)` as soon as configs[i]'s
        runs are all in (the rest of the round may still be running)."""
        runs: list[dict[str, Any]] = []
        steps = {spec.name: spec.steps for spec in suite.problems}
        for problem, config in configs:
            values = config["values"]
            for seed in suite.tuning_seeds:
                runs.append({"optimizer": optimizer, "problem": problem, "lr": config["lr"], "seed": seed,
                             "steps": steps[problem], "phase": "tune", "id": len(rows) + len(runs),
                             "knobs": dict(values) if is_candidate else {},
                             "opts": {} if is_candidate or config["grid"] else dict(values),
                             "warmup": config["warmup"], "decay": config["decay"], "switched_off": switched_off,
                             "accuracy": False})
        # Tuning reads only final losses: no curve in between (it used to cost ~half the harness's CPU,
        # in full-dataset losses at 40 points per run that nothing looked at), and no accuracies (full
        # passes over the training and test sets, ~15 % of an mlp-mnist1d tuning run).
        arrived: dict[int, list[dict[str, Any]]] = defaultdict(list)
        seeds = len(suite.tuning_seeds)

        def on_result(record: dict[str, Any]) -> None:
            tick(record)
            index = record.get("id", -1) - len(rows) if isinstance(record.get("id"), int) else -1
            if scored is None or not 0 <= index < len(runs):
                return
            arrived[index // seeds].append(_trial_row(runs[index], record))
            if len(arrived[index // seeds]) == seeds:
                scored(index // seeds, _score(arrived[index // seeds]))

        results = await harness.run(runs, TUNING_CURVE_POINTS, on_result)
        by_config: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for i, run in enumerate(runs):
            row = _trial_row(run, results.get(run["id"], {"diverged": True, "error": "no result"}))
            rows.append(row)
            by_config[i // len(suite.tuning_seeds)].append(row)
        for i, (problem, config) in enumerate(configs):
            config["score"] = _score(by_config[i])
            tried[problem].append(config)

    def grid_config(lr: float) -> dict[str, Any]:
        return {"lr": lr, "values": dict(defaults), "warmup": 0.0, "decay": "constant", "grid": True}

    # 1. every rate of the grid, at default hyperparameters and a constant schedule
    await run_configs([(spec.name, grid_config(lr)) for spec in suite.problems for lr in suite.lr_grid])
    # 2. the grid extends itself while its best rate is at an edge (bounded)
    low_bound, high_bound = grid_bounds(suite)
    while True:
        extra = []
        for spec in suite.problems:
            scores = {c["lr"]: c["score"] for c in tried[spec.name] if c["grid"]}
            nxt = extension_point(scores, low_bound, high_bound, suite.grid_extension_per_decade)
            if nxt is not None:
                extra.append((spec.name, grid_config(nxt)))
        if not extra:
            break
        await run_configs(extra)
    # 3. the same number of TPE trials for everyone, warm-started with the grid
    if suite.tuner_trials:
        import optuna  # imported here: the fast tests of the grid need not load it

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        studies: dict[str, tuple[Any, dict[str, Any]]] = {}
        for spec in suite.problems:
            lrs = [c["lr"] for c in tried[spec.name]]
            dists = _distributions(space, min(lrs), max(lrs))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # multivariate TPE is "experimental"
                sampler = optuna.samplers.TPESampler(seed=tuner_seed(suite, spec.name, optimizer),
                                                     n_startup_trials=TPE_STARTUP_TRIALS, multivariate=True)
            study = optuna.create_study(sampler=sampler)
            for c in tried[spec.name]:
                study.add_trial(optuna.trial.create_trial(
                    params={"lr": c["lr"], **_encode(space, dists, c["values"]), "warmup": 0.0, "decay": "constant"},
                    distributions=dists, value=math.log(min(c["score"], 1e300))))
            studies[spec.name] = (study, dists)
        def ask(problem: str) -> tuple[dict[str, Any], Any]:
            study, dists = studies[problem]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trial = study.ask(fixed_distributions=dists)
            params = trial.params
            return ({"lr": float(params["lr"]), "values": _decode(space, params), "warmup": float(params["warmup"]),
                     "decay": str(params["decay"]), "grid": False}, trial)

        # Each problem's study is its own seeded sampler, told and asked in its own order, so a study
        # can take its next trial as soon as its own runs are in, while the round's other runs go on:
        # the ~10 ms of TPE per problem and round (~1 s a standard benchmark) left both cores idle
        # between rounds. One thread at a time: warnings.catch_warnings is process-global state.
        sampler_lane = anyio.CapacityLimiter(1)
        names = [spec.name for spec in suite.problems]
        asked = {name: await anyio.to_thread.run_sync(ask, name, limiter=sampler_lane) for name in names}
        for trial_round in range(suite.tuner_trials):
            upcoming: dict[str, tuple[dict[str, Any], Any]] = {}
            told: set[str] = set()

            def tell_and_ask(problem: str, score: float, last: bool = trial_round == suite.tuner_trials - 1,
                             asked: dict[str, tuple[dict[str, Any], Any]] = asked,
                             upcoming: dict[str, tuple[dict[str, Any], Any]] = upcoming, told: set[str] = told
                             ) -> None:
                studies[problem][0].tell(asked[problem][1], math.log(min(score, 1e300)))
                told.add(problem)
                if not last:
                    upcoming[problem] = ask(problem)

            async with task_group() as group:
                def scored(index: int, score: float, group: Any = group) -> None:
                    group.start_soon(partial(anyio.to_thread.run_sync, tell_and_ask, names[index], score,
                                             limiter=sampler_lane))

                await run_configs([(name, asked[name][0]) for name in names], scored)
            for name in names:
                if name not in told:  # its runs never all reported as they finished: the round's score
                    await anyio.to_thread.run_sync(tell_and_ask, name, asked[name][0]["score"],
                                                   limiter=sampler_lane)
            asked = upcoming
    # 4. the best of everything tried (ties: grid before tuner, then the smaller rate)
    chosen: dict[str, dict[str, Any]] = {}
    for spec in suite.problems:
        configs = tried[spec.name]
        order = {id(c): i for i, c in enumerate(configs)}
        best = min(configs, key=lambda c: (c["score"], not c["grid"], c["lr"] if c["grid"] else order[id(c)]))
        lrs = [c["lr"] for c in configs]
        chosen[spec.name] = {**best, "settings": settings_of(best), "at_edge": edges_of(best, space, min(lrs),
                                                                                          max(lrs), suite)}
    return rows, chosen


def settings_of(config: dict[str, Any]) -> dict[str, float | str]:
    return {"lr": config["lr"], **config["values"], "warmup": config["warmup"], "decay": config["decay"]}


def edges_of(config: dict[str, Any], space: list[dict[str, Any]], lr_low: float, lr_high: float,
             suite: Suite) -> list[str]:
    """The settings still at an edge of their range: the learning rate at an end of the (extended)
    grid, a hyperparameter within 1% of a bound on its scale (unless that bound is its default, like
    no weight decay), a warm-up at its maximum."""
    edges: list[str] = []
    lr_param = {"low": lr_low, "high": lr_high, "scale": "log"}
    if lr_high > lr_low and not EDGE_TOLERANCE < _to_unit(lr_param, config["lr"]) < 1 - EDGE_TOLERANCE:
        edges.append("lr")
    for p in space:
        value = config["values"][p["name"]]
        u = _to_unit(p, value)
        at_low, at_high = u <= EDGE_TOLERANCE, u >= 1 - EDGE_TOLERANCE
        natural = (at_low and p["default"] == p["low"]) or (at_high and p["default"] == p["high"])
        if (at_low or at_high) and not natural:
            edges.append(p["name"])
    if config["warmup"] >= MAX_WARMUP * (1 - EDGE_TOLERANCE):
        edges.append("warmup")
    return edges


async def run_optimizer(harness: Harness, optimizer: str, suite: Suite, tick: Callable[[dict[str, Any]], None],
                        knobs: list[dict[str, Any]] | None = None, switched_off: tuple[str, ...] = (),
                        space: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Tune on the tuning seeds, then evaluate the chosen settings on the evaluation seeds.

    `space` is a baseline's search space (`baseline_space`); a candidate's is its `knobs`. An
    ablated variant (`switched_off`) is tuned afresh, with the same budget: it is another optimizer."""
    if space is None:
        space = knob_space(knobs or []) if optimizer == CANDIDATE else []
    tune_rows, chosen = await tune(harness, optimizer, suite, tick, space, switched_off)
    evaluate = plan_lines(optimizer, suite, phase="eval", lrs={p: c["lr"] for p, c in chosen.items()},
                          start_id=len(tune_rows))
    for run in evaluate:
        config = chosen[run["problem"]]
        run["switched_off"] = switched_off
        run["knobs"] = dict(config["values"]) if optimizer == CANDIDATE else {}
        run["opts"] = {} if optimizer == CANDIDATE or config["grid"] else dict(config["values"])
        run["warmup"], run["decay"] = config["warmup"], config["decay"]
    evaluated = await harness.run(evaluate, suite.curve_points, tick)
    eval_rows = []
    for run in evaluate:
        row = _trial_row(run, evaluated.get(run["id"], {"diverged": True, "error": "no result"}))
        row["settings"], row["at_edge"] = chosen[run["problem"]]["settings"], chosen[run["problem"]]["at_edge"]
        eval_rows.append(row)
    return tune_rows + eval_rows


async def tune_with_knobs(harness: Harness, suite: Suite, knobs: list[dict[str, Any]],
                          tick: Callable[[dict[str, Any]], None], switched_off: tuple[str, ...] = ()
                          ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The candidate's tuning over its knobs (kept for callers of the earlier API): rows and, per
    problem, {"lr", "knobs", "warmup", "decay"}."""
    rows, chosen = await tune(harness, CANDIDATE, suite, tick, knob_space(knobs), switched_off)
    return rows, {p: {"lr": c["lr"], "knobs": c["values"], "warmup": c["warmup"], "decay": c["decay"]}
                  for p, c in chosen.items()}


def runs_per_optimizer(suite: Suite) -> int:
    """Harness runs per optimizer, not counting the grid's extension (at most
    2 x grid_extension_decades x grid_extension_per_decade points a problem, only where needed)."""
    per_problem = (len(suite.lr_grid) + suite.tuner_trials) * len(suite.tuning_seeds) + len(suite.eval_seeds)
    return per_problem * len(suite.problems)


def annotate_settings(report: Any, trials: list[dict[str, Any]]) -> None:
    """Copy each optimizer's tuned settings and edges per problem into the report's summaries."""
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for row in trials:
        if row.get("phase") == "eval":
            first.setdefault((row["optimizer"], row["problem"]), row)
    for problem in report.problems:
        for summary in (problem.candidate, *problem.baselines):
            found = first.get((summary.optimizer, problem.problem))
            if found is not None:
                summary.settings = dict(found.get("settings") or {"lr": found["lr"]})
                summary.at_edge = list(found.get("at_edge") or [])
