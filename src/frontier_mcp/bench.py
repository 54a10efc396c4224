"""The benchmark protocol: plan the runs, run the harness binary in the sandbox, judge the numbers.

Protocol (the same for every optimizer, candidate included):
1. tuning: every learning rate of a log-spaced grid on the tuning seeds; the learning rate with
   the lowest median final loss wins (divergence counts as +inf);
2. evaluation: the chosen learning rate on fresh seeds, paired across optimizers by seed;
3. per problem, the candidate is compared with the best baseline by a paired Wilcoxon test on
   log losses, Holm-corrected across problems.
Baseline results depend only on the harness and the plan, so they are cached per harness version.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import platform
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, Field

from . import stats
from .sandbox import Mount, RunResult, Sandbox
from .settings import Limits

CANDIDATE = "candidate"
MAX_CRASH_RETRIES = 20
BASELINES = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad", "lion")


@dataclass(frozen=True)
class ProblemSpec:
    name: str
    steps: int


@dataclass(frozen=True)
class Suite:
    name: str
    problems: tuple[ProblemSpec, ...]
    lr_grid: tuple[float, ...]
    tuning_seeds: tuple[int, ...]
    eval_seeds: tuple[int, ...]
    baselines: tuple[str, ...] = BASELINES
    curve_points: int = 40
    alpha: float = 0.05
    hidden: bool = False  # a hidden suite's problems are never shown to the model

    def describe(self) -> dict[str, Any]:
        return asdict(self)

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.describe(), sort_keys=True).encode()).hexdigest()[:16]


def log_grid(low_exp: float, high_exp: float, per_decade: int) -> tuple[float, ...]:
    count = round((high_exp - low_exp) * per_decade) + 1
    return tuple(float(f"{10 ** (low_exp + i / per_decade):.6g}") for i in range(count))


# Eight evaluation seeds: the smallest exact two-sided Wilcoxon p-value is then 2/256, which
# survives a Holm correction over the suite's problems; five seeds could never reach p < 0.05.
SUITES: dict[str, Suite] = {
    "quick": Suite(
        name="quick",
        problems=(ProblemSpec("rosenbrock-10", 500), ProblemSpec("quadratic-ill-50", 300),
                  ProblemSpec("logreg-breast-cancer", 300)),
        lr_grid=log_grid(-4, 0, 2),
        tuning_seeds=(0, 1),
        eval_seeds=tuple(range(100, 108)),
    ),
    "standard": Suite(
        name="standard",
        problems=(ProblemSpec("rosenbrock-10", 1000), ProblemSpec("rosenbrock-50", 1000),
                  ProblemSpec("rastrigin-10", 500), ProblemSpec("ackley-10", 500),
                  ProblemSpec("quadratic-ill-50", 500), ProblemSpec("quadratic-ill-50-k1e5", 500),
                  ProblemSpec("noisy-quadratic-50", 500), ProblemSpec("logreg-breast-cancer", 500),
                  ProblemSpec("softmax-digits", 500), ProblemSpec("mlp-mnist1d", 500)),
        lr_grid=log_grid(-4, 0.5, 2),
        tuning_seeds=(0, 1, 2),
        eval_seeds=tuple(range(200, 212)),
    ),
    # Other dimensions, rotations, datasets and seeds; run after a standard win, never listed to the
    # model, so a candidate tuned to the suites it can see is caught here.
    "holdout": Suite(
        name="holdout",
        problems=(ProblemSpec("rosenbrock-30", 1000), ProblemSpec("rastrigin-20", 500),
                  ProblemSpec("ackley-30", 500), ProblemSpec("styblinski-tang-20", 500),
                  ProblemSpec("quadratic-ill-100-k1e4", 500), ProblemSpec("noisy-quadratic-100", 500),
                  ProblemSpec("softmax-wine", 300), ProblemSpec("softmax-mnist1d", 500)),
        lr_grid=log_grid(-4, 0.5, 2),
        tuning_seeds=(30, 31, 32),
        eval_seeds=tuple(range(300, 312)),
        hidden=True,
    ),
}
PROFILE_TAUS = (1.0, 1.5, 2.0, 4.0, 10.0)


class OptimizerSummary(BaseModel):
    optimizer: str
    lr: float = Field(description="learning rate chosen on the tuning seeds")
    median_final_loss: float | None = Field(description="median over evaluation seeds; null if most diverged")
    ci_low: float | None = Field(description="95% bootstrap interval of the median, low end")
    ci_high: float | None
    median_best_loss: float | None
    diverged: int = Field(description="evaluation runs that diverged (NaN, inf or blow-up) or panicked")
    runs: int
    median_test_accuracy: float | None = None
    ns_per_step: float | None = Field(None, description="median optimizer time per step, nanoseconds")
    knobs: dict[str, float] = Field(default_factory=dict, description="tuned values of the candidate's knobs")
    evals_per_step: float | None = Field(
        None, description="median oracle evaluations (gradients + losses, HVP = 2) per step; baselines use 1")


class ProblemResult(BaseModel):
    problem: str
    steps: int
    candidate: OptimizerSummary
    best_baseline: str = Field(description="the baseline with the lowest median final loss")
    baselines: list[OptimizerSummary]
    ratio: float = Field(description="candidate median final loss / best baseline's (<1 means better)")
    p_value: float = Field(description="paired Wilcoxon signed-rank test on log final losses vs best baseline")
    p_holm: float = Field(description="p_value after Holm correction across the suite's problems")
    outcome: str = Field(description="win, tie or loss at the suite's alpha")
    target_loss: float = Field(description="loss at 95% (log scale) of the best optimizer's progress")
    steps_to_target: float | None = Field(description="candidate's median steps to target_loss (null: not reached)")
    best_baseline_steps: float | None = Field(description="best baseline's median steps to target_loss")
    speedup: float | None = Field(description="best_baseline_steps / steps_to_target (>1: candidate faster)")
    curves: dict[str, list[list[float | None]]] = Field(
        description="median loss curve [step, loss] of the candidate and the best baseline")


class SuiteSummary(BaseModel):
    """What the model may see of a hidden suite: one bit, whether its gate passed. Not the problems,
    not per-problem or aggregate wins and losses: each of those would let a candidate be fitted to it."""

    suite: str
    passed: bool = Field(description="no significant loss and a geometric-mean loss ratio below 1")
    problems: int


def holdout_passed(losses: int, geomean_ratio: float | None) -> bool:
    """The holdout gate: no significant loss, and better than the best baseline on geometric mean."""
    return losses == 0 and geomean_ratio is not None and geomean_ratio < 1.0


class BenchmarkReport(BaseModel):
    suite: str
    harness_version: str
    outcome: str = Field(description="win (some wins, no losses), loss, mixed, or tie")
    wins: int
    ties: int
    losses: int
    geomean_ratio: float | None = Field(description="geometric mean over problems of `ratio`")
    geomean_speedup: float | None = Field(
        description="geometric mean of `speedup` over problems where both reached the target")
    reached_target: str = Field(description="problems where the candidate reached the target / all problems")
    performance_profile: dict[str, dict[str, float]] = Field(
        description="Dolan–Moré profile on steps to target: per optimizer, share of problems solved within "
                    "tau x the fastest optimizer's steps, for tau in 1, 1.5, 2, 4, 10")
    indistinguishable_from: list[str] = Field(
        description="baselines the candidate differs from on no problem (paired Wilcoxon, Holm, alpha)")
    time_ratio_vs_adam: float | None = Field(
        description="candidate time per step / Adam's, measured alternating in one process (see timing)")
    timing: dict[str, Any] | None = Field(
        None, description="the time-per-step measurement: problem, pairs, medians (ns) and a 95% bootstrap "
                          "interval of the ratio")
    rediscovery_of: str | None = Field(
        description="a baseline whose evaluation loss curves the candidate reproduces (1e-6 relative), if any")
    problems: list[ProblemResult]
    trials: int = Field(description="harness runs performed for this report (baselines from cache excluded)")
    baseline_cache: str = Field(description="hit or miss")
    seconds: float
    provenance: dict[str, Any]

    def summary(self) -> SuiteSummary:
        return SuiteSummary(suite=self.suite, passed=holdout_passed(self.losses, self.geomean_ratio),
                            problems=len(self.problems))


Progress = Callable[[int, int, str], None]


def plan_lines(optimizer: str, suite: Suite, *, phase: str, lrs: dict[str, float] | None = None,
               start_id: int = 0) -> list[dict[str, Any]]:
    """The harness runs for one optimizer: the tuning grid, or evaluation at chosen rates."""
    runs: list[dict[str, Any]] = []
    for spec in suite.problems:
        if phase == "tune":
            for lr in suite.lr_grid:
                for seed in suite.tuning_seeds:
                    runs.append({"optimizer": optimizer, "problem": spec.name, "lr": lr, "seed": seed,
                                 "steps": spec.steps, "phase": "tune"})
        else:
            assert lrs is not None
            for seed in suite.eval_seeds:
                runs.append({"optimizer": optimizer, "problem": spec.name, "lr": lrs[spec.name],
                             "seed": seed, "steps": spec.steps, "phase": "eval"})
    for offset, run in enumerate(runs):
        run["id"] = start_id + offset
    return runs


def instance_key(secret: bytes | None, problem: str, seed: int) -> int:
    """The problem instance a (problem, seed) pair runs on: drawn from the lab's secret, so no one
    who lacks it (a candidate, a reader of the docs) can predict where an optimum is. Every
    optimizer meets the same instance on the same seed, which keeps runs paired. 0 (no secret) is
    the canonical problem, for tests and reference runs."""
    if not secret:
        return 0
    digest = hmac.new(secret, f"{problem}|{seed}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "little") | 1


def format_line(run: dict[str, Any], curve_points: int, secret: bytes | None = None) -> str:
    # The oracle budget equals the step budget: a baseline spends one gradient a step, and a
    # candidate that calls loss_at/grad_at/hvp inside its step pays for them with steps.
    knobs = "".join(f" knob.{name}={value!r}" for name, value in (run.get("knobs") or {}).items())
    knobs += "".join(f" switch.{name}=0" for name in run.get("switched_off") or ())
    instance = instance_key(secret, run["problem"], run["seed"])
    return (f"id={run['id']} optimizer={run['optimizer']} problem={run['problem']} lr={run['lr']!r} "
            f"seed={run['seed']} instance={instance} steps={run['steps']} eval_budget={run['steps']} "
            f"curve_points={curve_points}{knobs}")


class HarnessError(RuntimeError):
    pass


@dataclass
class Harness:
    """Runs plans through the lab's trusted harness binary, in the sandbox, over `workers` processes.

    `binary` is the lab's own `frontier-bench`: it owns the problems, the oracle budget and every
    number it prints, and never runs candidate code. For `optimizer=candidate` runs it starts a
    fresh process of `candidate` (the experiment's binary) per run and talks to it over a pipe.
    """

    binary: Path
    sandbox: Sandbox
    limits: Limits
    workers: int
    candidate: Path | None = None
    # The lab's secret from which problem instances are drawn (None: canonical problems).
    secret: bytes | None = field(default=None, repr=False)
    # Runs one harness process over some plan lines elsewhere (ray_runner.RayExecutor), feeding it
    # each stdout line; None runs it here. Chunking, results by id and crash retries stay in `run`.
    executor: Callable[[Harness, bytes, Callable[[bytes], None]], Awaitable[RunResult]] | None = None

    async def version(self) -> dict[str, Any]:
        result = await self.sandbox.run([str(self.binary), "list"], mounts=[Mount(self.binary)],
                                        env={"PATH": "/usr/bin:/bin"}, cwd=Path("/tmp"), timeout=30)
        if not result.ok:
            raise HarnessError(f"the harness did not start: {result.stderr.decode(errors='replace')[-400:]}")
        return json.loads(result.stdout.decode().strip().splitlines()[0])

    async def declared(self) -> dict[str, list[Any]]:
        """The candidate's declared knobs and switches (checked again by the harness at every run)."""
        if self.candidate is None:
            return {"knobs": [], "switches": []}
        result = await self.sandbox.run([str(self.candidate), "knobs"], mounts=[Mount(self.candidate)],
                                        env={"PATH": "/usr/bin:/bin"}, cwd=Path("/tmp"), timeout=30)
        try:
            answer = json.loads(result.stdout.decode().strip().splitlines()[0])
        except (ValueError, IndexError):
            raise HarnessError(f"the candidate's knobs could not be read: {result.killed_reason or result.returncode}"
                               ) from None
        if not isinstance(answer, dict):
            raise HarnessError("the candidate's knobs could not be read: not a JSON object")
        if "error" in answer:
            raise HarnessError(f"the candidate's knobs() or switches() is invalid: {str(answer['error'])[:500]}")
        try:
            knobs = [{"name": str(k["name"]), "low": float(k["low"]), "high": float(k["high"]),
                      "default": float(k["default"]), "log_scale": bool(k["log_scale"])} for k in answer["knobs"]]
            switches = [str(name) for name in answer.get("switches", [])]
        except (KeyError, TypeError, ValueError):
            raise HarnessError("the candidate's knobs could not be read: malformed declaration") from None
        return {"knobs": knobs[:4], "switches": switches[:8]}

    async def run(self, runs: list[dict[str, Any]], curve_points: int,
                  progress: Callable[[dict[str, Any]], None] | None = None,
                  processes: int | None = None) -> dict[int, dict[str, Any]]:
        count = processes or self.workers
        chunks = [runs[i::count] for i in range(count)]
        results: dict[int, dict[str, Any]] = {}

        def fail(run_ids: list[int], error: str) -> None:
            for run_id in run_ids:
                results[run_id] = {"id": run_id, "diverged": True, "final_loss": None, "error": error}
                if progress is not None:
                    progress(results[run_id])

        async def run_chunk(chunk: list[dict[str, Any]]) -> None:
            # Runs print in plan order, so when the process dies (stack overflow, abort, timeout)
            # the first missing run is the culprit: it fails, and the rest are sent again.
            crashes = 0
            while chunk:
                planned = {run["id"]: run for run in chunk}
                got: dict[int, dict[str, Any]] = {}
                tampered: list[str] = []

                def on_line(line: bytes, planned: dict[int, dict[str, Any]] = planned,
                            got: dict[int, dict[str, Any]] = got, tampered: list[str] = tampered) -> None:
                    # The harness prints exactly one line per planned run, echoing its plan; anything
                    # else came from somewhere else in the process and voids the whole chunk.
                    if not line.strip():
                        return
                    try:
                        record = json.loads(line)
                    except ValueError:
                        tampered.append("a line that is not JSON")
                        return
                    record_id = record.get("id") if isinstance(record, dict) else None
                    run = planned.get(record_id) if isinstance(record_id, int) else None
                    refused = run is not None and str(record.get("error", "")).startswith("bad plan line")
                    if run is None or record["id"] in got or (not refused and any(
                            record.get(key) != run[key] for key in ("optimizer", "problem", "seed", "steps"))):
                        tampered.append(f"an unplanned or repeated result line: {line[:120]!r}")
                        return
                    got[record["id"]] = record

                stdin = "\n".join(format_line(run, curve_points, self.secret) for run in chunk).encode() + b"\n"
                outcome = await self.run_process(stdin, on_line)
                if not tampered and len(got) == len(planned) and not outcome.ok:
                    tampered.append("every result arrived, yet the process did not exit cleanly")
                if tampered:
                    fail(list(planned), f"the run's output was tampered with ({tampered[0]}); every run of "
                                        "this process counts as failed")
                    return
                for record in got.values():
                    results[record["id"]] = record
                    if progress is not None:
                        progress(record)
                missing = [run for run in chunk if run["id"] not in results]
                if not missing:
                    return
                reason = outcome.killed_reason or (
                    f"exit code {outcome.returncode}: {outcome.stderr.decode(errors='replace')[-300:]}")
                # A hang costs a whole timeout, so after one the remaining runs are not retried.
                failed = missing if outcome.timed_out or crashes >= MAX_CRASH_RETRIES else missing[:1]
                fail([run["id"] for run in failed], f"the harness process died during this run: {reason}")
                crashes += 1
                chunk = missing[len(failed):]

        async with anyio.create_task_group() as group:
            for chunk in chunks:
                group.start_soon(run_chunk, chunk)
        return results

    def command(self) -> tuple[list[str], list[Mount]]:
        """The harness's argv and what it needs mounted (read-only)."""
        argv, mounts = [str(self.binary), "run"], [Mount(self.binary)]
        if self.candidate is not None:
            argv += ["--candidate", str(self.candidate), "--run-timeout-ms", str(int(self.limits.run_seconds * 1000))]
            if self.sandbox.enabled:
                argv.append("--sweep")  # the harness is pid 2 of its sandbox: nothing else may outlive a run
            mounts.append(Mount(self.candidate))
        return argv, mounts

    async def run_process(self, stdin: bytes, on_line: Callable[[bytes], None]) -> RunResult:
        """One harness process over these plan lines: in the local sandbox, or on the executor."""
        if self.executor is not None:
            return await self.executor(self, stdin, on_line)
        argv, mounts = self.command()
        return await self.sandbox.run(
            argv, mounts=mounts, env={"PATH": "/usr/bin:/bin"}, cwd=Path("/"), timeout=self.limits.run_seconds,
            stdin=stdin, on_stdout_line=on_line, scratch=False)


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


async def benchmark(harness: Harness, suite: Suite, *, cache_dir: Path, toolchain_version: str,
                    provenance: dict[str, Any], progress: Progress | None = None,
                    switched_off: tuple[str, ...] = ()) -> tuple[
                        BenchmarkReport, list[dict[str, Any]]]:
    """Run the candidate (and the baselines unless cached); return the report and candidate trials."""
    started = time.perf_counter()
    info = await harness.version()
    harness_version = str(info.get("harness_version", "unknown"))
    known = set(info.get("problems_names") or [p["name"] for p in info.get("problems", [])])
    missing = [p.name for p in suite.problems if known and p.name not in known]
    if missing:
        raise HarnessError(f"the harness lacks problems {missing}; the lab's scaffold is out of date")
    # libm picks code paths by CPU, so results are bit-identical per CPU model, not across them.
    secret_id = hashlib.sha256(harness.secret or b"").hexdigest()[:16]
    cache_key = hashlib.sha256(f"{harness_version}|{toolchain_version}|{suite.key()}|{secret_id}|"
                               f"{provenance.get('rustflags')}|{machine_info()['cpu']}".encode()).hexdigest()[:20]
    cache_file = cache_dir / f"baselines-{suite.name}-{cache_key}.json"
    baseline_trials: list[dict[str, Any]] | None = None
    if cache_file.exists():
        try:
            baseline_trials = json.loads(cache_file.read_text())
        except ValueError:
            baseline_trials = None
    optimizers = [CANDIDATE] + ([] if baseline_trials is not None else list(suite.baselines))
    total = runs_per_optimizer(suite) * len(optimizers)
    done = 0

    def tick(_record: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, f"{done}/{total} harness runs")

    declared = await harness.declared()
    candidate_trials = await run_optimizer(harness, CANDIDATE, suite, tick, knobs=declared["knobs"],
                                           switched_off=switched_off)
    if baseline_trials is None:
        baseline_trials = []
        for name in suite.baselines:
            baseline_trials += await run_optimizer(harness, name, suite, tick)
        tmp = cache_file.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(baseline_trials))
        tmp.replace(cache_file)
        cache_state = "miss"
    else:
        cache_state = "hit"
    timing = None if switched_off else await time_against_adam(harness, suite, candidate_trials, baseline_trials)
    report = judge(suite, candidate_trials, baseline_trials, harness_version=harness_version,
                   trials=done, cache_state=cache_state, seconds=time.perf_counter() - started,
                   provenance={**provenance, "harness_version": harness_version,
                               "machine": machine_info(), "tuning_seeds": list(suite.tuning_seeds),
                               "eval_seeds": list(suite.eval_seeds), "lr_grid": list(suite.lr_grid),
                               "suite_key": suite.key(), "instances_secret_sha256": secret_id})
    if timing is not None:
        report.time_ratio_vs_adam, report.timing = timing["ratio"], timing
    return report, candidate_trials


TIMING_PAIRS, TIMING_WARMUP, TIMING_STEPS = 24, 4, 300


async def time_against_adam(harness: Harness, suite: Suite, candidate: list[dict[str, Any]],
                            baselines: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Time per step of the candidate against Adam, Criterion-style: one process, alternating pairs
    (the order inside a pair alternates too) so that drift cancels, warm-up pairs dropped, and a
    paired bootstrap interval of the ratio of medians. Run on the suite's largest test function."""
    functions = [p for p in suite.problems if not p.name.startswith(("logreg", "softmax", "mlp"))]
    problem = max(functions or suite.problems, key=lambda p: (int(p.name.split("-")[-1]) if
                                                             p.name.split("-")[-1].isdigit() else 0))
    def chosen(rows: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
        return next((r for r in rows if r["phase"] == "eval" and r["optimizer"] == name
                     and r["problem"] == problem.name), None)

    mine, adam = chosen(candidate, CANDIDATE), chosen(baselines, "adam")
    if mine is None or adam is None:
        return None
    # Both are timed by the harness around the same pipe: Adam is served by a process of its own too.
    runs: list[dict[str, Any]] = []
    for i in range(TIMING_PAIRS + TIMING_WARMUP):
        order = ((CANDIDATE, mine), ("served:adam", adam)) if i % 2 == 0 else (("served:adam", adam), (CANDIDATE, mine))
        for name, row in order:
            runs.append({"id": len(runs), "optimizer": name, "problem": problem.name, "lr": row["lr"], "seed": 1,
                         "steps": TIMING_STEPS, "knobs": row.get("knobs") or {}, "pair": i})
    results = await harness.run(runs, 2, None, processes=1)
    pairs: dict[int, dict[str, float]] = defaultdict(dict)
    for run in runs:
        ns = results.get(run["id"], {}).get("ns_per_step")
        if run["pair"] >= TIMING_WARMUP and ns:
            pairs[run["pair"]][run["optimizer"]] = float(ns)
    complete = [p for p in pairs.values() if len(p) == 2]
    if len(complete) < 4:
        return None
    mine_ns, adam_ns = [p[CANDIDATE] for p in complete], [p["served:adam"] for p in complete]
    low, high = stats.ratio_of_medians_ci(mine_ns, adam_ns)
    return {"problem": problem.name, "pairs": len(complete), "candidate_ns": stats.median(mine_ns),
            "adam_ns": stats.median(adam_ns), "ratio": stats.median(mine_ns) / stats.median(adam_ns),
            "ci_low": low, "ci_high": high}


def _summary(optimizer: str, rows: list[dict[str, Any]]) -> OptimizerSummary:
    finals = [stats.floored(r["final_loss"]) for r in rows]
    diverged = sum(1 for r in rows if r["diverged"])
    med = stats.median(finals)
    low, high = stats.median_ci(finals)
    best = [stats.floored(r["best_loss"]) for r in rows]
    accuracies = [r["test_accuracy"] for r in rows if r.get("test_accuracy") is not None]
    times = [r["ns_per_step"] for r in rows if r.get("ns_per_step")]
    evals = [r["oracle_evals"] / r["steps_done"] for r in rows if r.get("steps_done")]

    return OptimizerSummary(
        optimizer=optimizer, lr=rows[0]["lr"] if rows else math.nan, knobs=rows[0].get("knobs") or {} if rows else {},
        median_final_loss=_finite(med),
        ci_low=_finite(low), ci_high=_finite(high), median_best_loss=_finite(stats.median(best)),
        diverged=diverged, runs=len(rows),
        median_test_accuracy=stats.median(accuracies) if accuracies else None,
        ns_per_step=stats.median(times) if times else None,
        evals_per_step=stats.median(evals) if evals else None)


def _median_curve(rows: list[dict[str, Any]], points: int) -> list[list[float | None]]:
    """Pointwise median over seeds; a run that diverged counts as +inf after its last point."""
    curves = [r.get("curve") or [] for r in rows]
    longest = max(curves, key=len, default=[])
    merged: list[list[float | None]] = []
    for i, point in enumerate(longest):
        value = stats.median([stats.floored(c[i][1]) if i < len(c) else math.inf for c in curves])
        merged.append([point[0], value if math.isfinite(value) else None])
    return stats.downsample(merged, points)


def judge(suite: Suite, candidate: list[dict[str, Any]], baselines: list[dict[str, Any]], *,
          harness_version: str, trials: int, cache_state: str, seconds: float,
          provenance: dict[str, Any]) -> BenchmarkReport:
    evals: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in candidate + baselines:
        if row["phase"] == "eval":
            evals[(row["optimizer"], row["problem"])].append(row)
    for rows in evals.values():
        rows.sort(key=lambda r: r["seed"])
    optimizers = (CANDIDATE, *suite.baselines)

    partial: list[dict[str, Any]] = []
    costs: dict[str, list[float]] = {name: [] for name in optimizers}
    for spec in suite.problems:
        cand_rows = evals[(CANDIDATE, spec.name)]
        summaries = {name: _summary(name, evals[(name, spec.name)]) for name in suite.baselines}
        best = min(suite.baselines, key=lambda n: (stats.floored(summaries[n].median_final_loss), n))
        comparison = stats.compare([r["final_loss"] for r in cand_rows],
                                   [r["final_loss"] for r in evals[(best, spec.name)]])
        steps = _steps_to_target(spec, optimizers, evals)
        for name in optimizers:
            costs[name].append(max(1.0, steps["by_optimizer"][name]))
        partial.append({"spec": spec, "cand": _summary(CANDIDATE, cand_rows), "best": best,
                        "baselines": list(summaries.values()), "cmp": comparison, "steps": steps,
                        "curves": {CANDIDATE: _median_curve(cand_rows, 12),
                                   best: _median_curve(evals[(best, spec.name)], 12)}})
    adjusted = stats.holm([item["cmp"].p_value for item in partial])
    results: list[ProblemResult] = []
    for item, p_holm in zip(partial, adjusted, strict=True):
        cmp, steps, best = item["cmp"], item["steps"], item["best"]
        mine, theirs = steps["by_optimizer"][CANDIDATE], steps["by_optimizer"][best]
        results.append(ProblemResult(
            problem=item["spec"].name, steps=item["spec"].steps, candidate=item["cand"],
            best_baseline=best, baselines=item["baselines"], ratio=cmp.ratio, p_value=cmp.p_value,
            p_holm=p_holm, outcome=stats.outcome_of(p_holm, cmp.ratio, suite.alpha),
            target_loss=steps["target"], steps_to_target=_finite(mine), best_baseline_steps=_finite(theirs),
            speedup=(theirs / mine) if math.isfinite(mine) and math.isfinite(theirs) and mine > 0 else None,
            curves=item["curves"]))
    outcomes = [r.outcome for r in results]
    speedups = [r.speedup for r in results if r.speedup is not None]
    return BenchmarkReport(
        suite=suite.name, harness_version=harness_version, outcome=stats.overall_outcome(outcomes),
        wins=outcomes.count("win"), ties=outcomes.count("tie"), losses=outcomes.count("loss"),
        geomean_ratio=stats.geometric_mean([r.ratio for r in results]),
        geomean_speedup=stats.geometric_mean(speedups),
        reached_target=f"{sum(r.steps_to_target is not None for r in results)}/{len(results)}",
        performance_profile=stats.performance_profile(costs, PROFILE_TAUS),
        indistinguishable_from=indistinguishable(suite, evals), time_ratio_vs_adam=None,
        rediscovery_of=rediscovery(candidate, baselines, suite), problems=results, trials=trials,
        baseline_cache=cache_state, seconds=seconds, provenance=provenance)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _steps_to_target(spec: ProblemSpec, optimizers: tuple[str, ...],
                     evals: dict[tuple[str, str], list[dict[str, Any]]]) -> dict[str, Any]:
    """The problem's target (from the best median final loss of any optimizer) and each one's median steps."""
    finals = {name: stats.median([stats.floored(r["final_loss"]) for r in evals[(name, spec.name)]])
              for name in optimizers}
    initials = [c[0][1] for name in optimizers for r in evals[(name, spec.name)] if (c := r.get("curve"))]
    target = stats.log_target(min(finals.values()), stats.median([stats.floored(x) for x in initials]))
    by_optimizer = {}
    for name in optimizers:
        per_seed = [stats.steps_to_target(r.get("curve") or [], target) for r in evals[(name, spec.name)]]
        by_optimizer[name] = stats.median(per_seed) if per_seed else math.inf
    return {"target": target, "by_optimizer": by_optimizer}


def indistinguishable(suite: Suite, evals: dict[tuple[str, str], list[dict[str, Any]]]) -> list[str]:
    """Baselines from which the candidate differs significantly on no problem (Holm across problems)."""
    same: list[str] = []
    for name in suite.baselines:
        pvalues = [stats.compare([r["final_loss"] for r in evals[(CANDIDATE, spec.name)]],
                                 [r["final_loss"] for r in evals[(name, spec.name)]]).p_value
                   for spec in suite.problems]
        if all(p >= suite.alpha for p in stats.holm(pvalues)):
            same.append(name)
    return same


def compare_variant(suite: Suite, full: list[dict[str, Any]], variant: list[dict[str, Any]]) -> dict[str, Any]:
    """An ablated variant against the full candidate, paired by seed, Holm across problems.

    The switched-off mechanism *mattered* if the variant is significantly worse on some problem."""
    def finals(rows: list[dict[str, Any]], problem: str) -> list[float | None]:
        chosen = sorted((r for r in rows if r["phase"] == "eval" and r["problem"] == problem), key=lambda r: r["seed"])
        return [r["final_loss"] for r in chosen]

    comparisons = [stats.compare(finals(variant, p.name), finals(full, p.name)) for p in suite.problems]
    adjusted = stats.holm([c.p_value for c in comparisons])
    problems = [{"problem": p.name, "ratio": c.ratio, "p_holm": p_holm,
                 "outcome": {"win": "variant better", "loss": "variant worse", "tie": "tie"}[
                     stats.outcome_of(p_holm, c.ratio, suite.alpha)]}
                for p, c, p_holm in zip(suite.problems, comparisons, adjusted, strict=True)]
    worse = [p["problem"] for p in problems if p["outcome"] == "variant worse"]
    better = [p["problem"] for p in problems if p["outcome"] == "variant better"]
    return {"mattered": bool(worse), "worse_without_it": worse, "better_without_it": better,
            "geomean_ratio": stats.geometric_mean([c.ratio for c in comparisons]), "problems": problems}


def rediscovery(candidate: list[dict[str, Any]], baselines: list[dict[str, Any]], suite: Suite) -> str | None:
    """The baseline whose every evaluation curve the candidate reproduces to 1e-6 relative, if any."""
    def curves(rows: list[dict[str, Any]], name: str) -> dict[tuple[str, int], list[float]]:
        return {(r["problem"], r["seed"]): [stats.floored(p[1]) for p in (r.get("curve") or [])]
                + [stats.floored(r["final_loss"])] for r in rows
                if r["phase"] == "eval" and r["optimizer"] == name}

    def close(a: float, b: float) -> bool:
        return (math.isinf(a) and math.isinf(b)) or abs(a - b) <= 1e-6 * max(abs(a), abs(b)) + 1e-12

    mine = curves(candidate, CANDIDATE)
    for name in suite.baselines:
        theirs = curves(baselines, name)
        if mine and mine.keys() == theirs.keys() and all(
            len(mine[k]) == len(theirs[k]) and all(map(close, mine[k], theirs[k])) for k in mine
        ):
            return name
    return None


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "system": platform.system(), "python": platform.python_version()}


def render_table(report: BenchmarkReport) -> str:
    """A compact plain-text table for the tool's text content (clients that ignore structure)."""
    lines = [f"suite={report.suite} outcome={report.outcome} (wins {report.wins}, ties {report.ties}, "
             f"losses {report.losses}); geomean loss ratio vs best baseline = {_fmt(report.geomean_ratio)}; "
             f"time/step vs Adam = {_fmt(report.time_ratio_vs_adam)}"
             + (f" [{_fmt(report.timing['ci_low'])}, {_fmt(report.timing['ci_high'])}]" if report.timing else "")]
    if report.rediscovery_of:
        lines.append(f"REDISCOVERY: the candidate reproduces {report.rediscovery_of}'s loss curves.")
    if report.indistinguishable_from:
        lines.append("Indistinguishable (no significant difference on any problem) from: "
                     + ", ".join(report.indistinguishable_from))
    lines.append(f"Reached the target on {report.reached_target} problems; geomean speed-up to target vs best "
                 f"baseline = {_fmt(report.geomean_speedup)}; performance profile (tau=1,2,10): "
                 + ", ".join(f"{k} {v['1']:.2f}/{v['2']:.2f}/{v['10']:.2f}"
                             for k, v in report.performance_profile.items() if k in ("candidate", "adam", "sgd")))
    lines.append(f"{'problem':<24} {'cand lr':>8} {'cand loss':>10} {'best baseline':>14} {'base loss':>10} "
                 f"{'ratio':>8} {'p(holm)':>8} {'div':>4} {'speedup':>8} {'test acc c/b':>12} outcome")
    for r in report.problems:
        best = next(b for b in r.baselines if b.optimizer == r.best_baseline)
        accuracy = (f"{_fmt(r.candidate.median_test_accuracy)}/{_fmt(best.median_test_accuracy)}"
                    if best.median_test_accuracy is not None else "-")
        lines.append(f"{r.problem:<24} {r.candidate.lr:>8.3g} {_fmt(r.candidate.median_final_loss):>10} "
                     f"{r.best_baseline:>14} {_fmt(best.median_final_loss):>10} {_fmt(r.ratio):>8} "
                     f"{r.p_holm:>8.3g} {r.candidate.diverged:>4} {_fmt(r.speedup):>8} {accuracy:>12} {r.outcome}")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
