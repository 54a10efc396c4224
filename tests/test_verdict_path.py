"""The verdict path pinned against its mutants (issue 17, docs/mutation.md): Holm as judge applies it,
non-finite losses in every position, and the refusal reason for each failing condition of a win."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from frontier_mcp import stats
from frontier_mcp.protocol.judging import judge
from frontier_mcp.protocol.suites import CANDIDATE, CLAIM_SUITES, SUITES
from frontier_mcp.protocol.tuning import _score
from frontier_mcp.tools.record_result import Claim, refusal

SUITE = dataclasses.replace(SUITES["quick"], baselines=("adam", "sgd"))
SEEDS = SUITES["quick"].eval_seeds
BAD = [math.nan, math.inf, -math.inf]


def row(optimizer: str, problem: str, seed: int, loss: float) -> dict[str, Any]:
    finite = math.isfinite(loss)
    return {"phase": "eval", "optimizer": optimizer, "problem": problem, "seed": seed, "lr": 0.01,
            "final_loss": loss, "best_loss": loss, "diverged": not finite,
            "curve": [[0, 10.0], [50, 10.0 if not finite else max(loss, 1e-10) * 2], [100, loss]]}


# Per problem, the candidate's factor on each seed against adam (sgd is always worse than adam).
FACTORS = {
    "rosenbrock-10": [0.5] * 8,                               # better on every seed: p = 2/2^8
    # better on 7 of 8: p = 0.039 < 0.05, but 0.078 after Holm (a win only if Holm is skipped)
    "quadratic-ill-50": [0.9, 1.5, *(0.9**k for k in range(3, 9))],
    "logreg-breast-cancer": [0.5, 2.0, 0.5, 2.0, 0.5, 2.0, 0.9, 1.1],  # no difference
}


def rows(factors: dict[str, list[float]], override: dict[tuple[str, str], float] | None = None
         ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    override = override or {}
    candidate, baselines = [], []
    for problem, per_seed in factors.items():
        for seed, factor in zip(SEEDS, per_seed, strict=True):
            base = 1.0 + 0.01 * seed
            candidate.append(row(CANDIDATE, problem, seed, override.get((CANDIDATE, problem), base * factor)))
            baselines.append(row("adam", problem, seed, override.get(("adam", problem), base)))
            baselines.append(row("sgd", problem, seed, 3.0 * base))
    return candidate, baselines


def report_of(candidate: list[dict[str, Any]], baselines: list[dict[str, Any]]) -> Any:
    return judge(SUITE, candidate, baselines, harness_version="test", trials=0, cache_state="hit", seconds=0.0,
                 provenance={})


def test_judge_applies_holm_across_the_problems_exactly() -> None:
    report = report_of(*rows(FACTORS))
    p = [r.p_value for r in report.problems]
    assert p[0] == pytest.approx(2 / 2**8)
    # Holm by hand: sorted ascending, the k-th smallest times (m - k), running maximum, capped at 1.
    order = sorted(range(3), key=lambda i: p[i])
    expected, running = [0.0] * 3, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * p[i]))
        expected[i] = running
    assert [r.p_holm for r in report.problems] == expected == stats.holm(p)
    assert all(r.p_holm >= r.p_value for r in report.problems)
    assert report.problems[0].p_holm == pytest.approx(3 * 2 / 2**8) and report.problems[0].p_holm > p[0]
    assert p[1] == pytest.approx(0.0390625) and report.problems[1].p_holm == pytest.approx(2 * 0.0390625)
    assert report.problems[2].p_holm == 1.0
    # Holm decides the second problem: with its raw p-value it would be a win.
    second = report.problems[1]
    assert second.ratio_ci is not None and second.ratio_ci[1] < stats.MIN_EFFECT
    assert stats.outcome_of(second.p_value, second.ratio, SUITE.alpha, tuple(second.ratio_ci)) == "win"
    assert [r.outcome for r in report.problems] == ["win", "tie", "tie"]
    assert (report.outcome, report.wins, report.ties, report.losses) == ("win", 1, 2, 0)
    assert report.geomean_ratio == stats.geometric_mean([r.ratio for r in report.problems])
    logs = [x for r in report.problems for x in stats.paired_log_ratios(
        [x * (1.0 + 0.01 * s) for x, s in zip(FACTORS[r.problem], SEEDS, strict=True)],
        [1.0 + 0.01 * s for s in SEEDS])]
    assert report.pooled_p == stats.pooled_improvement_p(logs) and report.pairs == 24
    assert report.reached_target == "2/3" and report.rediscovery_of is None


def test_a_candidate_that_is_a_baseline_ties_everywhere_and_is_named_a_rediscovery() -> None:
    candidate, baselines = rows({p: [1.0] * 8 for p in FACTORS})
    tuning = [{**r, "phase": "tune", "diverged": r["problem"] == "rosenbrock-10",
               "error": "panicked" if r["problem"] == "rosenbrock-10" else None} for r in candidate]
    report = report_of(candidate + tuning, baselines)
    assert report.rediscovery_of == "adam" and report.outcome == "tie" and report.losses == 0
    assert (report.pooled_p, report.pairs, report.geomean_ratio) == (1.0, 0, 1.0)
    assert [r.speedup for r in report.problems] == [1.0, 1.0, 1.0] and report.geomean_speedup == 1.0
    assert [r.all_tuning_failed for r in report.problems] == [True, False, False]
    assert report.problems[0].candidate_errors == [{"message": "panicked", "location": None, "runs": 8}]
    assert report.problems[1].candidate_errors == []


def test_holm_decides_when_the_raw_p_value_alone_would_win() -> None:
    # With raw p-values 2/2^8 < 0.05 on two problems; after Holm over 3 problems: 3 * 2/2^8 = 0.023 (still a win);
    # a suite of 7 such problems (7 * 2/2^8 = 0.055) would lose it. Pin the adjusted value that decides.
    assert stats.holm([2 / 2**8] * 7) == [pytest.approx(7 * 2 / 2**8)] * 7
    assert stats.outcome_of(stats.holm([2 / 2**8] * 7)[0], 0.5, 0.05, (0.4, 0.6)) == "tie"
    assert stats.outcome_of(2 / 2**8, 0.5, 0.05, (0.4, 0.6)) == "win"
    assert stats.holm([0.6, 0.9]) == [1.0, 1.0]  # capped at 1, never above
    assert stats.holm([0.01, 0.04, 0.03]) == [pytest.approx(0.03), pytest.approx(0.06), pytest.approx(0.06)]
    assert stats.holm([]) == []


@pytest.mark.parametrize("bad", BAD, ids=["nan", "inf", "-inf"])
def test_a_non_finite_loss_floors_to_divergence(bad: float) -> None:
    assert stats.floored(bad) == math.inf
    assert stats.floored(None) == math.inf
    assert stats.floored(0.0) == stats.LOSS_FLOOR and stats.floored(-1.0) == stats.LOSS_FLOOR
    assert stats.floored(2.5) == 2.5


@pytest.mark.parametrize("bad", BAD, ids=["nan", "inf", "-inf"])
def test_a_non_finite_candidate_or_baseline_loss_loses_every_comparison(bad: float) -> None:
    n = 8
    mine = stats.compare([bad] * n, [1.0] * n)
    assert (mine.ratio, mine.candidate_better, mine.baseline_better) == (stats.RATIO_CAP, 0, n)
    assert mine.p_value == pytest.approx(2 / 2**n)
    theirs = stats.compare([1.0] * n, [bad] * n)
    assert (theirs.ratio, theirs.candidate_better, theirs.baseline_better) == (1 / stats.RATIO_CAP, n, 0)
    both = stats.compare([bad] * n, [bad] * n)
    assert (both.ratio, both.p_value, both.candidate_better, both.baseline_better) == (1.0, 1.0, 0, 0)
    cap = math.log(stats.RATIO_CAP)
    assert list(stats.paired_log_ratios([bad, 1.0, bad], [1.0, bad, bad])) == [cap, -cap, 0.0]
    assert stats.ratio(bad, 1.0) == stats.RATIO_CAP and stats.ratio(1.0, bad) == 1 / stats.RATIO_CAP
    assert stats.ratio(bad, bad) == 1.0


@pytest.mark.parametrize("bad", BAD, ids=["nan", "inf", "-inf"])
def test_a_non_finite_tuning_loss_is_never_the_chosen_rate(bad: float) -> None:
    # A setting that "reached" a non-finite loss on most tuning seeds scores as diverged, not as best
    # (tune() takes the setting of the lowest score).
    assert _score([{"final_loss": bad}, {"final_loss": bad}, {"final_loss": 1.0}]) == math.inf
    assert _score([{"final_loss": bad}, {"final_loss": 1.0}, {"final_loss": 1.0}]) == 1.0
    assert _score([{"final_loss": None}, {"final_loss": 0.5}, {"final_loss": None}]) == math.inf


@pytest.mark.parametrize("bad", BAD, ids=["nan", "inf", "-inf"])
def test_a_non_finite_evaluation_loss_is_a_divergence_in_the_report(bad: float) -> None:
    # The candidate's every evaluation loss is non-finite on the first problem: a loss there, never a win.
    report = report_of(*rows(FACTORS, {(CANDIDATE, "rosenbrock-10"): bad}))
    first = report.problems[0]
    assert first.outcome == "loss" and first.ratio == stats.RATIO_CAP
    assert first.candidate.median_final_loss is None and first.candidate.diverged == len(SEEDS)
    assert (report.outcome, report.losses) == ("loss", 1)
    # The best baseline's every evaluation loss non-finite: the other baseline becomes the best.
    other = report_of(*rows(FACTORS, {("adam", "rosenbrock-10"): bad}))
    assert other.problems[0].best_baseline == "sgd"
    assert other.problems[0].outcome == "win"


NEVER = lambda job_id: False  # noqa: E731
GATE = {"benchmark_run_id": 2, "job_id": "job-1", "suite": "holdout"}


def klass(outcome: str, p: float = 1e-6, pairs: int = 48) -> dict[str, Any]:
    return {"outcome": outcome, "geomean_ratio": 0.5 if outcome == "win" else 2.0, "wins": 1, "ties": 3,
            "losses": 0 if outcome in ("win", "tie") else 1, "pooled_p": p, "pairs": pairs}


def standard(outcome: str = "win", **extra: Any) -> dict[str, Any]:
    return {"benchmark_run_id": 1, "job_id": "job-1", "suite": "standard", "outcome": outcome, "geomean_ratio": 0.5,
            "wins": 3, "ties": 7, "losses": 0, "rediscovery_of": None, "pooled_p": 1e-4, "pairs": 120,
            "classes": {"smooth": klass("win", 1e-5, 40), "neural": klass("win", 1e-3, 30),
                        "stochastic": klass("mixed", p=0.3), "multimodal": klass("tie")}, **extra}


HOLDOUT_FAILED = ("the win on 'standard' did not pass the hidden holdout gate{} (other functions, dimensions, "
                  "datasets and instances). The candidate looks tuned to the suites it was shown; record 'mixed' or "
                  "'loss', or evolve it.")


@pytest.mark.parametrize(("verdict", "benchmarks", "classes", "reason"), [
    ("loss", [], None, "there is no benchmark of this experiment, so 'loss' has no evidence; run benchmark, or "
                       "record 'broken' (did not compile / did not run) or 'inconclusive'."),
    ("tie", [standard()], ["smooth"], "`classes` scopes a claim of a win; leave it empty for any other verdict."),
    ("win", [{**standard(), "suite": "quick"}], None,
     f"a win must be supported by a suite built for claims ({', '.join(CLAIM_SUITES)}); run "
     "benchmark(suite='standard') first (the quick suite is for iterating)."),
    ("win", [standard(rediscovery_of="adam")], None,
     "the candidate reproduces adam: that is a rediscovery, not a win."),
    ("win", [standard("mixed"), {**GATE, "passed": True}], None,
     "the latest 'standard' benchmark (run 1) measured 'mixed' (3 wins, 7 ties, 0 losses); an overall win needs a "
     "problem won (p_holm < alpha and the ratio's interval below 0.95) and none lost. If it won some classes, "
     "claim those: record_result(..., classes=[...])."),
    ("win", [standard("mixed"), {**GATE, "passed": True}], ["smooth", "stochastic", "multimodal"],
     "the latest 'standard' benchmark (run 1) does not support a win on stochastic, multimodal: stochastic: mixed "
     "(1 wins, 3 ties, 1 losses, geomean ratio 2); multimodal: tie (1 wins, 3 ties, 0 losses, geomean ratio 2). A "
     "class win needs a problem won (p_holm < alpha and the ratio's interval below 0.95), none lost, and a "
     "geometric-mean ratio below 1."),
    ("win", [standard()], ["neural", "quantum"],
     "unknown or unmeasured class(es) ['quantum']; the 'standard' run measured ['multimodal', 'neural', 'smooth', "
     "'stochastic']."),
    ("win", [standard()], None,
     "the hidden holdout gate was not consulted after the 'standard' win (run 1: cancelled, interrupted, or its "
     "daily budget was spent); run benchmark(suite='standard') again later."),
    ("win", [standard(), {**GATE, "passed": False}], None, HOLDOUT_FAILED.format("")),
    ("win", [standard(), {**GATE, "passed": True, "classes": {"smooth": True, "neural": False}}],
     ["smooth", "neural"], HOLDOUT_FAILED.format(" for neural")),
    ("win", [standard(), {**GATE, "passed": True}], ["smooth"], HOLDOUT_FAILED.format(" for smooth")),
    ("win", [standard(), {**GATE, "passed": True, "classes": {}}], ["smooth", "neural"],
     HOLDOUT_FAILED.format(" for smooth, neural")),
])
def test_each_failing_condition_of_a_win_has_its_own_reason(verdict: str, benchmarks: list[dict[str, Any]],
                                                          classes: list[str] | None, reason: str) -> None:
    assert refusal(verdict, {"benchmarks": benchmarks}, NEVER, classes) == reason


def test_a_standard_suite_without_a_win_is_refused_for_that_even_with_a_passed_holdout() -> None:
    # The mutant that drops the check of the standard outcome would let these through to a Claim.
    for outcome in ("mixed", "tie", "loss"):
        reason = refusal("win", {"benchmarks": [standard(outcome), {**GATE, "passed": True}]}, NEVER)
        assert isinstance(reason, str) and reason.startswith(f"the latest 'standard' benchmark (run 1) measured "
                                                             f"'{outcome}'")


def test_a_still_running_holdout_is_named_and_the_supported_claims_carry_their_evidence() -> None:
    assert refusal("win", {"benchmarks": [standard()]}, lambda job_id: job_id == "job-1") == (
        "the hidden holdout suite is still running after the 'standard' win; wait with job_status(job_id='job-1') "
        "and record the verdict when it is done.")
    for verdict in ("broken", "inconclusive"):
        assert refusal(verdict, {"benchmarks": []}, NEVER) is None
    for verdict in ("loss", "tie", "mixed"):
        assert refusal(verdict, {"benchmarks": [standard()]}, NEVER) is None
    passed = {**GATE, "passed": True, "classes": {"smooth": True, "neural": True}}
    assert refusal("win", {"benchmarks": [standard(), passed]}, NEVER) == Claim(scope="all", p_value=1e-4, pairs=120)
    assert refusal("win", {"benchmarks": [standard(pooled_p=None), passed]}, NEVER) == Claim(
        scope="all", p_value=1.0, pairs=120)
    assert refusal("win", {"benchmarks": [standard(), passed]}, NEVER, ["smooth", "neural"]) == Claim(
        scope="neural,smooth", p_value=1e-3, pairs=30)
    # The overall gate passing says nothing about a class the holdout did not report.
    assert refusal("win", {"benchmarks": [standard(), {**GATE, "passed": True}]}, NEVER, ["smooth"]) == (
        HOLDOUT_FAILED.format(" for smooth"))


def test_a_class_outcome_is_a_tie_without_wins_and_needs_a_geometric_mean_strictly_below_one() -> None:
    from frontier_mcp.protocol.report import class_outcome

    assert class_outcome(["tie", "tie"], 0.5) == "tie" and class_outcome([], None) == "tie"
    assert class_outcome(["win"], 1.0) == "tie" and class_outcome(["win"], None) == "tie"


def test_the_outcome_rules_at_their_boundaries() -> None:
    win_ci = (0.4, 0.6)
    assert stats.outcome_of(0.05, 0.5, 0.05, win_ci) == "tie"  # p must be strictly below alpha
    assert stats.outcome_of(0.001, 1.0, 0.05, (0.4, 0.9)) == "tie"  # a ratio of exactly 1 is neither
    assert stats.outcome_of(0.001, 1.5, 0.05, (0.4, 0.9)) == "loss"
    assert stats.outcome_of(0.001, 0.5, 0.05, (0.4, stats.MIN_EFFECT)) == "tie"  # the interval must end below
    assert stats.outcome_of(0.05, 1.5, 0.05, (1.0, 1.04)) == "tie"
    assert stats.outcome_of(0.001, 1.5, 0.05, (1.0, 2.0)) == "loss"
    assert stats.outcome_of(0.3, 2.0, 0.05, (1.0 / stats.MIN_EFFECT, 3.0)) == "tie"
    assert stats.outcome_of(0.3, 2.0, 0.05, (1.5, 3.0)) == "loss"
    assert stats.overall_outcome(["tie", "tie"]) == "tie" and stats.overall_outcome([]) == "tie"
    assert stats.overall_outcome(["win", "loss"]) == "mixed"
    assert stats.ratio(1e-10, 1e3) == 1 / stats.RATIO_CAP and stats.ratio(1e3, 1e-10) == stats.RATIO_CAP


def test_finite_pairs_are_counted_by_which_side_is_lower() -> None:
    assert stats.compare([1.0, 1.0, 3.0], [2.0, 2.0, 2.0]) == stats.Comparison(
        ratio=0.5, p_value=stats.paired_log_wilcoxon([1.0, 1.0, 3.0], [2.0, 2.0, 2.0]), candidate_better=2,
        baseline_better=1)


def test_class_verdicts_count_pool_and_average_only_their_own_problems() -> None:
    report = report_of(*rows(FACTORS))
    by_problem = {r.problem: r for r in report.problems}
    smooth, stochastic = report.classes["smooth"], report.classes["stochastic"]
    assert smooth.problems == ["rosenbrock-10", "quadratic-ill-50"] and stochastic.problems == ["logreg-breast-cancer"]
    assert (smooth.outcome, smooth.wins, smooth.ties, smooth.losses) == ("win", 1, 1, 0)
    assert (stochastic.outcome, stochastic.wins, stochastic.ties, stochastic.losses) == ("tie", 0, 1, 0)
    assert smooth.geomean_ratio == stats.geometric_mean([by_problem[p].ratio for p in smooth.problems])
    assert stochastic.geomean_ratio == by_problem["logreg-breast-cancer"].ratio
    logs = [x for p in smooth.problems for x in stats.paired_log_ratios(
        [x * (1.0 + 0.01 * s) for x, s in zip(FACTORS[p], SEEDS, strict=True)], [1.0 + 0.01 * s for s in SEEDS])]
    assert smooth.pooled_p == stats.pooled_improvement_p(logs) and (smooth.pairs, stochastic.pairs) == (16, 8)
    lost = report_of(*rows(FACTORS, {(CANDIDATE, "rosenbrock-10"): math.nan})).classes["smooth"]
    assert (lost.outcome, lost.wins, lost.ties, lost.losses) == ("loss", 0, 1, 1)


def test_a_diverged_side_is_the_worst_rank_and_rounding_level_differences_are_ties() -> None:
    # Seven seeds where the candidate is better by a little, one where it diverged: the divergence ranks
    # as the largest difference there is, as a finite but enormous loss would.
    mine = [0.9] * 7 + [math.nan]
    assert stats.paired_log_wilcoxon(mine, [1.0] * 8) == stats.paired_log_wilcoxon([0.9] * 7 + [1e300], [1.0] * 8)
    assert stats.paired_log_wilcoxon([1.0] * 7 + [0.9], [0.9] * 7 + [math.inf]) == pytest.approx(
        stats.paired_log_wilcoxon([1.0] * 7 + [0.9], [0.9] * 7 + [1e300]))
    assert stats.paired_log_wilcoxon([1.0] * 8, [1.0 + 1e-7] * 8) == 1.0
    assert stats.paired_log_wilcoxon([1.0], [2.0]) == 1.0  # one pair: p = 1
    assert stats.pooled_improvement_p([-1e-6] * 12) == 1.0  # at the tolerance: a tie
    assert stats.pooled_improvement_p([-1.0]) == 0.5


def test_steps_to_accuracy_are_the_first_recorded_crossing_for_problems_with_a_target() -> None:
    assert stats.steps_to_accuracy([[0, 0.1], [100, 0.5], [200, 0.95], [300, 0.99]], 0.9) == 200
    assert stats.steps_to_accuracy([[0, 0.1], [100, None], [200, 0.89]], 0.9) == math.inf
    problem = "logreg-breast-cancer"
    suite = dataclasses.replace(SUITE, problems=tuple(
        dataclasses.replace(p, accuracy_target=0.9) if p.name == problem else p for p in SUITE.problems))
    candidate, baselines = rows(FACTORS)
    for r in candidate + baselines:
        if r["problem"] == problem:  # the candidate generalises at step 100, adam at 300, sgd never
            at = {CANDIDATE: 100, "adam": 300}.get(r["optimizer"])
            r["accuracy_curve"] = [[s, 0.95 if at is not None and s >= at else 0.5] for s in (0, 100, 200, 300)]
    report = judge(suite, candidate, baselines, harness_version="test", trials=0, cache_state="hit", seconds=0.0,
                   provenance={})
    by_name = {p.problem: p for p in report.problems}
    target = by_name[problem]
    assert (target.accuracy_target, target.steps_to_accuracy, target.best_baseline_steps_to_accuracy) == (0.9, 100, 300)
    assert by_name["rosenbrock-10"].accuracy_target is None and by_name["rosenbrock-10"].steps_to_accuracy is None
