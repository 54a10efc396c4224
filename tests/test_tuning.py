"""Tuning parity (fast tier): the grid's extension, the equal budget for every optimizer, the tuner's
reproducibility and the settings a report shows, on a fake harness (no cargo, no sandbox)."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import replace
from typing import Any

import anyio
import pytest

from frontier_mcp.protocol import CANDIDATE, SUITES, ProblemSpec, format_line
from frontier_mcp.protocol.tuning import (
    baseline_space,
    extension_point,
    knob_space,
    run_optimizer,
    runs_per_optimizer,
)

SUITE = replace(SUITES["quick"], name="fake", problems=(ProblemSpec("bowl", 100), ProblemSpec("stiff", 100)),
                tuning_seeds=(0, 1), eval_seeds=(100, 101, 102), tuner_trials=5)


class FakeHarness:
    """Loss is a bowl in log10(lr) around `best_lr`, +inf above `diverge_above`; hyperparameters and
    schedules shift it a little, so the tuner has something to find."""

    def __init__(self, best_lr: dict[str, float], diverge_above: dict[str, float]) -> None:
        self.best_lr, self.diverge_above = best_lr, diverge_above
        self.runs: list[dict[str, Any]] = []

    async def run(self, runs: list[dict[str, Any]], curve_points: int, tick: Any) -> dict[int, dict[str, Any]]:
        out = {}
        for run in runs:
            self.runs.append(run)
            lr, problem = run["lr"], run["problem"]
            if lr > self.diverge_above[problem]:
                record: dict[str, Any] = {"id": run["id"], "diverged": True, "final_loss": None}
            else:
                values = {**run.get("opts", {}), **run.get("knobs", {})}
                loss = (math.log10(lr) - math.log10(self.best_lr[problem])) ** 2 + 1e-3
                loss *= 1 + 0.1 * sum(abs(v - 0.9) for v in values.values()) + 0.01 * run["seed"]
                loss *= 0.8 if run.get("decay", "constant") == "cosine" else 1.0
                record = {"id": run["id"], "diverged": False, "final_loss": loss, "best_loss": loss,
                          "curve": [[0, 10.0], [100, loss]], "steps_done": 100, "grad_evals": 100}
            out[run["id"]] = record
            tick(record)
        return out


def tune(harness: FakeHarness, optimizer: str, **kw: Any) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        return await run_optimizer(harness, optimizer, SUITE, lambda _r: None, **kw)
    return anyio.run(go)


EASY = {"bowl": 1e-2, "stiff": 1e-2}
NEVER = {"bowl": math.inf, "stiff": math.inf}
ADAM_SPACE = baseline_space(
    {"search_spaces": {"adam": [{"name": "beta1", "low": 0.5, "high": 0.99, "scale": "log1m"},
                                {"name": "beta2", "low": 0.9, "high": 0.9999, "scale": "log1m"},
                                {"name": "eps", "low": 1e-12, "high": 1e-4, "scale": "log"}]},
     "optimizer_defaults": {"adam": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}}}, "adam")
KNOBS = [{"name": "beta1", "low": 0.5, "high": 0.99, "default": 0.9, "log_scale": False},
         {"name": "beta2", "low": 0.9, "high": 0.9999, "default": 0.999, "log_scale": False}]


def test_extension_point_rules() -> None:
    inf = math.inf
    grid = {1e-4: 5.0, 1e-3: 3.0, 1e-2: 4.0}
    assert extension_point(grid, 1e-8, 1e4, 2) is None  # best inside: done
    assert extension_point({1e-4: inf, 1e-3: inf}, 1e-8, 1e4, 2) == pytest.approx(10 ** -4.5)  # all diverge: down
    assert extension_point({1e-4: 1.0, 1e-3: 2.0}, 1e-8, 1e4, 2) == pytest.approx(10 ** -4.5)  # best at the low end
    assert extension_point({1e-4: 3.0, 1e-3: 2.0}, 1e-8, 1e4, 2) == pytest.approx(10 ** -2.5)  # best at the high end
    assert extension_point({1e-4: 1.0, 1e-3: 1.0}, 1e-8, 1e4, 2) is None  # a plateau at the edge is not an edge
    assert extension_point({1e-8: 1.0, 1e-7: 2.0}, 1e-8, 1e4, 2) is None  # bounded
    assert extension_point({1e3: 3.0, 1e4: 2.0}, 1e-8, 1e4, 2) is None


def test_grid_extends_until_a_rate_converges() -> None:
    """SGD on quadratic-ill-50-k1e5 needs lr < 2e-5: the grid starts at 1e-4, so it must extend."""
    harness = FakeHarness({"bowl": 1e-6, "stiff": 1e-2}, {"bowl": 2e-5, "stiff": 0.5})
    rows = tune(harness, "sgd", space=[])
    evals = [r for r in rows if r["phase"] == "eval"]
    bowl = [r for r in evals if r["problem"] == "bowl"]
    assert all(not r["diverged"] for r in bowl)
    assert bowl[0]["lr"] < 2e-5 and abs(math.log10(bowl[0]["lr"]) + 6) < 0.5
    assert "lr" not in bowl[0]["at_edge"]
    grid_lrs = {r["lr"] for r in rows if r["problem"] == "bowl" and r["decay"] == "constant" and not r["opts"]
                and r["warmup"] == 0}
    assert min(grid_lrs) == pytest.approx(10 ** -6.5, rel=1e-5)  # one point below the optimum, then stops
    stiff = [r for r in evals if r["problem"] == "stiff"]
    assert abs(math.log10(stiff[0]["lr"]) + 2) < 0.5


def test_grid_extension_is_bounded_and_flagged() -> None:
    harness = FakeHarness({"bowl": 1e-12, "stiff": 1e-2}, {"bowl": 1e-12, "stiff": 0.5})
    rows = tune(harness, "sgd", space=[])
    bowl_grid = sorted({r["lr"] for r in rows if r["problem"] == "bowl" and r["phase"] == "tune"
                        and r["decay"] == "constant" and r["warmup"] == 0 and not r["opts"]})
    extra = [lr for lr in bowl_grid if lr < min(SUITE.lr_grid)]
    assert len(extra) == 8 and min(extra) == pytest.approx(1e-8)  # 4 decades, 2 points each, no more
    bowl_eval = next(r for r in rows if r["phase"] == "eval" and r["problem"] == "bowl")
    assert bowl_eval["diverged"]


def test_every_optimizer_gets_the_same_budget() -> None:
    """Candidate with knobs, a baseline with three hyperparameters, a baseline with none: the same
    number of tuning trials per problem (the grid, then tuner_trials), each on every tuning seed."""
    counts = {}
    for name, kw in [(CANDIDATE, {"knobs": KNOBS}), ("adam", {"space": ADAM_SPACE}), ("sgd", {"space": []})]:
        harness = FakeHarness(EASY, NEVER)
        rows = tune(harness, name, **kw)
        per_problem = Counter((r["problem"], r["phase"]) for r in rows)
        counts[name] = per_problem
        assert per_problem[("bowl", "tune")] == (len(SUITE.lr_grid) + SUITE.tuner_trials) * len(SUITE.tuning_seeds)
        assert per_problem[("bowl", "eval")] == len(SUITE.eval_seeds)
        assert len(rows) == runs_per_optimizer(SUITE)
        assert {r["lr"] for r in rows if r["phase"] == "tune"} >= set(SUITE.lr_grid)  # every grid rate, always
    assert counts[CANDIDATE] == counts["adam"] == counts["sgd"]


def test_the_tuner_searches_hyperparameters_and_schedules_reproducibly() -> None:
    harness = FakeHarness(EASY, NEVER)
    rows = tune(harness, "adam", space=ADAM_SPACE)
    tuner = [r for r in rows if r["phase"] == "tune" and r["opts"]]
    assert len(tuner) == SUITE.tuner_trials * len(SUITE.tuning_seeds) * len(SUITE.problems)
    assert {"beta1", "beta2", "eps"} == set(tuner[0]["opts"])
    assert all(0 <= r["warmup"] <= 0.5 and r["decay"] in ("constant", "cosine", "linear") for r in tuner)
    again = tune(FakeHarness(EASY, NEVER), "adam", space=ADAM_SPACE)
    assert [(r["lr"], r["opts"], r["warmup"], r["decay"]) for r in rows] == \
           [(r["lr"], r["opts"], r["warmup"], r["decay"]) for r in again]
    # a different optimizer name draws other trials (the seed is per suite, problem and optimizer)
    other = tune(FakeHarness(EASY, NEVER), "adamax", space=ADAM_SPACE)
    assert [r["opts"] for r in other if r["opts"]] != [r["opts"] for r in tuner]
    ev = next(r for r in rows if r["phase"] == "eval")
    assert set(ev["settings"]) == {"lr", "beta1", "beta2", "eps", "warmup", "decay"}
    # the best setting over grid and tuner, by median final loss on the tuning seeds, is evaluated
    for problem in ("bowl", "stiff"):
        scores: dict[tuple[Any, ...], list[float]] = {}
        for r in rows:
            if r["phase"] == "tune" and r["problem"] == problem:
                key = (r["lr"], tuple(sorted(r["opts"].items())), r["warmup"], r["decay"])
                scores.setdefault(key, []).append(r["final_loss"])
        best = min(scores, key=lambda k: statistics.median(scores[k]))
        chosen = next(r for r in rows if r["phase"] == "eval" and r["problem"] == problem)
        assert (chosen["lr"], chosen["warmup"], chosen["decay"]) == (best[0], best[2], best[3])


def test_candidate_knobs_reach_the_runs() -> None:
    harness = FakeHarness(EASY, NEVER)
    rows = tune(harness, CANDIDATE, knobs=KNOBS)
    assert all(set(r["knobs"]) == {"beta1", "beta2"} and not r["opts"] for r in rows)
    assert all(not run["opts"] for run in harness.runs)


def test_format_line_carries_opts_and_schedule_only_when_set() -> None:
    base = {"id": 1, "optimizer": "adam", "problem": "p", "lr": 0.01, "seed": 0, "steps": 10}
    plain = format_line(base, 5)
    assert "opt." not in plain and "warmup" not in plain and "decay" not in plain
    assert format_line({**base, "opts": {}, "warmup": 0.0, "decay": "constant"}, 5) == plain
    line = format_line({**base, "opts": {"beta1": 0.8}, "warmup": 0.1, "decay": "cosine"}, 5)
    assert line.endswith("curve_points=5 opt.beta1=0.8 warmup=0.1 decay=cosine")


def test_knob_space_and_edges() -> None:
    from frontier_mcp.protocol.tuning import edges_of
    space = [*knob_space(KNOBS), {"name": "weight_decay", "low": 0.0, "high": 0.1, "scale": "linear",
                                  "default": 0.0}]
    config = {"lr": 1e-4, "values": {"beta1": 0.99, "beta2": 0.95, "weight_decay": 0.0}, "warmup": 0.5,
              "decay": "linear"}
    assert edges_of(config, space, 1e-4, 1.0, SUITE) == ["lr", "beta1", "warmup"]
