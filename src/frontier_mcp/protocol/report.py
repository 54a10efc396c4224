"""The benchmark report: what a run returns, what the archive stores, and the holdout gate."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


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
    settings: dict[str, float | str] = Field(
        default_factory=dict, description="the tuned setting evaluated: lr, the optimizer's own hyperparameters "
                                          "(a baseline's search space, a candidate's knobs), warmup and decay")
    at_edge: list[str] = Field(
        default_factory=list, description="settings still at an edge of their range after tuning (the lr at an end "
                                          "of the extended grid, a hyperparameter at a bound that is not its default)")


class ProblemResult(BaseModel):
    problem: str
    steps: int
    candidate: OptimizerSummary
    best_baseline: str = Field(description="the baseline with the lowest median final loss")
    baselines: list[OptimizerSummary]
    ratio: float = Field(description="candidate median final loss / best baseline's (<1 means better)")
    p_value: float = Field(description="paired Wilcoxon signed-rank test on log final losses vs best baseline")
    p_holm: float = Field(description="p_value after Holm correction across the suite's problems")
    ratio_ci: list[float] | None = Field(
        None, description="95% paired bootstrap interval of the median per-seed ratio candidate / best baseline "
                          "(a diverged run counts as the capped ratio 1e12)")
    problem_class: str = Field("", description="the class of the problem (smooth, multimodal, stochastic, neural)")
    outcome: str = Field(description="win: p_holm < alpha and the whole ratio interval below 0.95; loss: "
                                     "significantly worse, or the whole interval above 1/0.95; else tie")
    target_loss: float = Field(description="loss at 95% (log scale) of the best optimizer's progress")
    steps_to_target: float | None = Field(description="candidate's median steps to target_loss (null: not reached)")
    best_baseline_steps: float | None = Field(description="best baseline's median steps to target_loss")
    speedup: float | None = Field(description="best_baseline_steps / steps_to_target (>1: candidate faster)")
    accuracy_target: float | None = Field(
        None, description="problems where *when* held-out accuracy rises is the point (grokking): the target")
    steps_to_accuracy: float | None = Field(
        None, description="candidate's median first step with held-out accuracy >= accuracy_target (null: never)")
    best_baseline_steps_to_accuracy: float | None = Field(
        None, description="the same for the best baseline (by final loss)")
    curves: dict[str, list[list[float | None]]] = Field(
        description="median loss curve [step, loss] of the candidate and the best baseline")
    candidate_errors: list[dict[str, Any]] = Field(
        default_factory=list, description="why the candidate's runs failed here (tuning and evaluation): each "
                                          "distinct message with its location in optimizer.rs and how many runs")
    all_tuning_failed: bool = Field(False, description="every tuning run of the candidate failed on this problem")


class ClassVerdict(BaseModel):
    """The verdict on one class of problems: what a claim scoped to that class rests on."""

    outcome: str = Field(description="win (some problem won, none lost, geometric-mean ratio below 1), loss, "
                                     "mixed or tie")
    problems: list[str]
    wins: int
    ties: int
    losses: int
    geomean_ratio: float | None
    pooled_p: float = Field(description="one-sided Wilcoxon p-value that the candidate is better, pooled over "
                                        "every (problem, seed) pair of the class")
    pairs: int = Field(description="untied (problem, seed) pairs in the pooled test")


def class_outcome(outcomes: list[str], geomean_ratio: float | None) -> str:
    wins, losses = outcomes.count("win"), outcomes.count("loss")
    if wins and not losses:
        return "win" if geomean_ratio is not None and geomean_ratio < 1.0 else "tie"
    if losses and not wins:
        return "loss"
    return "mixed" if wins and losses else "tie"


class SuiteSummary(BaseModel):
    """What the model may see of a hidden suite: whether its gate passed, overall and per class. Not
    the problems, not per-problem or aggregate wins and losses: each would let a candidate be fitted to it."""

    suite: str
    passed: bool = Field(description="no loss and a geometric-mean loss ratio below 1")
    classes: dict[str, bool] = Field(default_factory=dict,
                                     description="per class: no loss there and a geometric-mean ratio below 1")
    problems: int


def holdout_passed(losses: int, geomean_ratio: float | None) -> bool:
    """The holdout gate: no loss, and better than the best baseline on geometric mean."""
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
        description="a baseline the candidate reproduces: on the fixed gradient probe (see `rediscovery`), or by "
                    "its evaluation loss curves (1e-3 relative at every point); such a candidate cannot win")
    rediscovery: dict[str, Any] | None = Field(
        None, description="the baseline configuration the candidate reproduces on the fixed gradient probe "
                          "(replayed step for step, 1e-6 relative), if any: baseline, settings, lr_scale")
    problems: list[ProblemResult]
    classes: dict[str, ClassVerdict] = Field(default_factory=dict, description="the verdict per problem class")
    pooled_p: float | None = Field(None, description="one-sided Wilcoxon p-value that the candidate is better, "
                                                     "pooled over every (problem, seed) pair of the suite")
    pairs: int = Field(0, description="untied (problem, seed) pairs in the pooled test")
    trials: int = Field(description="harness runs performed for this report (baselines from cache excluded)")
    baseline_cache: str = Field(description="hit or miss")
    seconds: float
    provenance: dict[str, Any]

    def summary(self) -> SuiteSummary:
        return SuiteSummary(suite=self.suite, passed=holdout_passed(self.losses, self.geomean_ratio),
                            classes={name: holdout_passed(c.losses, c.geomean_ratio)
                                     for name, c in self.classes.items()},
                            problems=len(self.problems))
