"""Every number a verdict reports, pinned against its mutants (issue 17, docs/mutation.md).

tests/test_verdict_path.py pins the outcome (Holm, non-finite losses, refusals); this file pins what a
report says besides the outcome — each optimizer's summary, the median curves, steps to target, the
errors shown, rediscovery, the ablation comparison, the timing interval — and the statistics and
LORD++ levels with their exact values, so a changed formula cannot pass for the same one.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from frontier_mcp import stats
from frontier_mcp.protocol import judging
from frontier_mcp.protocol.error_control import gamma, lord_level
from frontier_mcp.protocol.report import OptimizerSummary
from frontier_mcp.protocol.suites import CANDIDATE, PROFILE_TAUS, SUITES

SUITE = dataclasses.replace(SUITES["quick"], baselines=("adam", "sgd"))
SEEDS = SUITES["quick"].eval_seeds


def run(optimizer: str, problem: str, seed: int, final: float, **extra: Any) -> dict[str, Any]:
    return {"phase": "eval", "optimizer": optimizer, "problem": problem, "seed": seed, "lr": 0.01,
            "final_loss": final, "best_loss": final, "diverged": not math.isfinite(final),
            "curve": [[0, 4.0], [50, 2.0], [100, final]], **extra}


# --- LORD++ -------------------------------------------------------------------------------------

def test_the_lord_sequence_has_its_published_values() -> None:
    # gamma_j = 0.07720838 log(max(j, 2)) / (j exp(sqrt(log j))): values computed once and typed in.
    assert gamma(0) == 0.0 and gamma(-2) == 0.0
    assert gamma(1) == pytest.approx(0.05351677091260086, rel=1e-12)
    assert gamma(2) == pytest.approx(0.011638205782941741, rel=1e-12)
    assert gamma(3) == pytest.approx(0.009912498794460713, rel=1e-12)
    assert gamma(10) == pytest.approx(0.0038982519052638913, rel=1e-12)
    assert gamma(100) == pytest.approx(0.0004158425457727489, rel=1e-12)


def test_each_lord_level_spends_and_earns_back_exactly() -> None:
    # The first test, no discovery: gamma_1 W0 with W0 = alpha / 2 by default.
    assert lord_level(1, [], 0.05) == pytest.approx(0.05351677091260086 * 0.025, rel=1e-12)
    # The first discovery earns alpha - W0 (an explicit W0 is used as given) ...
    assert lord_level(5, [2], 0.05, 0.01) == pytest.approx(gamma(5) * 0.01 + 0.04 * 0.009912498794460713, rel=1e-12)
    assert lord_level(5, [2], 0.05, 0.01) == pytest.approx(0.00046638864887190833, rel=1e-12)
    # ... every later one alpha, in the order of the positions whatever order they are given in.
    assert lord_level(5, [4, 2], 0.05, 0.01) == pytest.approx(
        gamma(5) * 0.01 + 0.04 * gamma(3) + 0.05 * 0.05351677091260086, rel=1e-12)
    assert lord_level(5, [4, 2], 0.05, 0.01) == pytest.approx(0.0031422271945019515, rel=1e-12)
    # Discoveries at or after t are not earlier: the t-th test cannot earn from itself.
    assert lord_level(5, [2, 5, 7], 0.05, 0.01) == lord_level(5, [2], 0.05, 0.01)
    assert lord_level(3, [3], 0.05) == lord_level(3, [], 0.05) == pytest.approx(gamma(3) * 0.025, rel=1e-12)


# --- one optimizer's summary --------------------------------------------------------------------

def test_an_optimizer_summary_reports_every_field_from_its_runs() -> None:
    rows = [
        run("adam", "p", 0, 1.0, knobs={"beta": 0.9}, lr=0.03, best_loss=0.5, test_accuracy=0.8, ns_per_step=100.0,
            oracle_evals=20, steps_done=10),
        run("adam", "p", 1, 2.0, knobs={"beta": 0.5}, lr=0.5, best_loss=1.0, ns_per_step=0, oracle_evals=30,
            steps_done=10),
        run("adam", "p", 2, 4.0, best_loss=3.0, test_accuracy=0.6, ns_per_step=300.0, oracle_evals=40,
            steps_done=20),
        run("adam", "p", 3, 8.0, best_loss=7.0, test_accuracy=0.7, ns_per_step=500.0, oracle_evals=5,
            steps_done=0),
    ]
    low, high = stats.median_ci([1.0, 2.0, 4.0, 8.0])
    assert 1.0 <= low < 3.0 < high <= 8.0
    assert judging._summary("adam", rows) == OptimizerSummary(
        optimizer="adam", lr=0.03, knobs={"beta": 0.9}, median_final_loss=3.0, ci_low=low, ci_high=high,
        median_best_loss=2.0, diverged=0, runs=4, median_test_accuracy=0.7,
        ns_per_step=300.0,            # the run without a time (0) is left out: median of 100, 300, 500
        evals_per_step=2.0)           # 20/10, 30/10, 40/20; the run with no step done is left out


def test_a_summary_of_diverged_runs_has_no_finite_numbers_and_counts_them() -> None:
    rows = [run("x", "p", s, math.nan, best_loss=math.inf, oracle_evals=3, steps_done=1) for s in range(3)]
    summary = judging._summary("x", rows)
    assert (summary.median_final_loss, summary.ci_low, summary.ci_high, summary.median_best_loss) == (
        None, None, None, None)
    assert (summary.diverged, summary.runs, summary.evals_per_step, summary.median_test_accuracy,
            summary.ns_per_step) == (3, 3, None, None, None)
    empty = judging._summary("x", [])
    assert math.isnan(empty.lr) and empty.knobs == {} and empty.runs == 0 and empty.median_final_loss is None


def test_the_median_curve_is_pointwise_over_seeds_and_a_diverged_run_is_inf_after_its_end() -> None:
    rows: list[dict[str, Any]] = [{"curve": [[0, 4.0], [10, 2.0], [20, 1.0], [30, 0.5]]},
            {"curve": [[0, 6.0], [10, 3.0], [20, 3.0], [30, 0.25]]},
            {"curve": [[0, 8.0], [10, 1.0]]},          # diverged after step 10
            {"curve": None}]                           # failed before its first point
    assert judging._median_curve(rows, 12) == [[0, 7.0], [10, 2.5], [20, None], [30, None]]
    assert judging._median_curve(rows[:2], 12) == [[0, 5.0], [10, 2.5], [20, 2.0], [30, 0.375]]
    # Downsampled to the points asked for, first and last kept.
    assert judging._median_curve(rows[:2], 2) == [[0, 5.0], [30, 0.375]]
    assert judging._median_curve([], 12) == [] and judging._median_curve([{"curve": [[0, 0.0]]}], 3) == [
        [0, stats.LOSS_FLOOR]]


def test_steps_to_target_start_from_the_median_initial_loss_and_miss_without_runs() -> None:
    spec = SUITE.problems[0]
    evals: dict[tuple[str, str], list[dict[str, Any]]] = {
        (CANDIDATE, spec.name): [{"final_loss": 1e-4, "curve": [[0, 100.0], [50, 1.0], [100, 1e-4]]}],
        ("adam", spec.name): [{"final_loss": 1e-2, "curve": [[0, 100.0], [100, 1e-2]]}],
        ("sgd", spec.name): [],
    }
    steps = judging._steps_to_target(spec, (CANDIDATE, "adam", "sgd"), evals)
    # The target is 5 % of the way (in log-loss) from the best final 1e-4 up to the initial 100.
    assert steps["target"] == pytest.approx(math.exp(math.log(1e-4) + 0.05 * (math.log(100.0) - math.log(1e-4))))
    assert steps["by_optimizer"]["sgd"] == math.inf  # no runs: never reached, not NaN
    assert math.isinf(steps["by_optimizer"]["adam"])
    assert 50 < steps["by_optimizer"][CANDIDATE] < 100


def test_failures_list_the_first_distinct_messages_with_location_and_count() -> None:
    long = "x" * 600
    rows: list[dict[str, Any]] = [{"error": "panicked at a", "error_location": "optimizer.rs:3:5"},
            {"error": None}, {},
            {"error": "panicked at a", "error_location": "optimizer.rs:3:5"},
            {"error": "panicked at a", "error_location": "optimizer.rs:9:1"},
            {"error": long + "tail", "error_location": None},
            {"error": long + "other tail"},
            {"error": "a fourth message"}]
    assert judging.failures(rows) == [
        {"message": "panicked at a", "location": "optimizer.rs:3:5", "runs": 2},
        {"message": "panicked at a", "location": "optimizer.rs:9:1", "runs": 1},
        {"message": long[:500], "location": None, "runs": 2},   # cut at 500 characters, then the same
    ]
    assert len(judging.failures(rows, limit=4)) == 4 and judging.failures([]) == []


# --- the report's other numbers -----------------------------------------------------------------

def suite_rows(factor: dict[str, float], *, sgd: float = 3.0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    candidate, baselines = [], []
    for spec in SUITE.problems:
        for seed in SEEDS:
            base = 1.0 + 0.01 * seed
            mine = base * factor[spec.name]
            # The candidate reaches the baseline's final loss halfway: the same start, twice as fast.
            candidate.append({**run(CANDIDATE, spec.name, seed, mine), "curve": [[0, 4.0], [50, base], [100, mine]]})
            baselines.append({**run("adam", spec.name, seed, base), "curve": [[0, 4.0], [50, 3.0], [100, base]]})
            baselines.append(run("sgd", spec.name, seed, sgd * base))
    return candidate, baselines


def judged(candidate: list[dict[str, Any]], baselines: list[dict[str, Any]]) -> Any:
    return judging.judge(SUITE, candidate, baselines, harness_version="test", trials=0, cache_state="hit",
                         seconds=0.0, provenance={})


def test_a_report_gives_speedups_curves_and_profiles_of_the_runs() -> None:
    factors = {p.name: 0.5 for p in SUITE.problems}
    report = judged(*suite_rows(factors))
    first = report.problems[0]
    # Target: 5 % of the log way from the best final (the candidate's median) to the initial 4.0.
    best = stats.median([0.5 * (1.0 + 0.01 * s) for s in SEEDS])
    assert first.target_loss == pytest.approx(stats.log_target(best, 4.0))
    assert first.best_baseline == "adam" and first.best_baseline_steps is None and first.steps_to_target is not None
    assert 50 < first.steps_to_target < 100 and first.speedup is None
    assert first.curves[CANDIDATE][0] == [0, 4.0] and first.curves["adam"][0] == [0, 4.0]
    assert first.curves[CANDIDATE][-1] == [100, pytest.approx(best)]
    assert first.curves["adam"][-1] == [100, pytest.approx(stats.median([1.0 + 0.01 * s for s in SEEDS]))]
    assert report.reached_target == f"{len(report.problems)}/{len(report.problems)}"
    assert report.geomean_speedup is None
    # Only the candidate reaches its own target: it alone is solved within any factor of the best.
    assert report.performance_profile[CANDIDATE] == {f"{t:g}": 1.0 for t in PROFILE_TAUS}
    assert set(report.performance_profile) == {CANDIDATE, "adam", "sgd"}
    assert all(v == 0.0 for v in report.performance_profile["sgd"].values())
    assert report.time_ratio_vs_adam is None and report.trials == 0 and report.baseline_cache == "hit"


def test_a_report_with_equal_finals_gives_the_speedup_of_the_faster_curve() -> None:
    candidate, baselines = suite_rows({p.name: 1.0 for p in SUITE.problems})
    report = judged(candidate, baselines)
    for problem in report.problems:  # both reach the same final; the candidate is there by step 50
        assert problem.steps_to_target is not None and problem.best_baseline_steps is not None
        assert problem.steps_to_target < problem.best_baseline_steps
        assert problem.speedup == pytest.approx(problem.best_baseline_steps / problem.steps_to_target)
    assert report.geomean_speedup == pytest.approx(stats.geometric_mean([p.speedup for p in report.problems]))
    assert report.indistinguishable_from == ["adam"]


def test_indistinguishable_names_every_baseline_no_problem_tells_apart() -> None:
    candidate, baselines = suite_rows({p.name: 1.0 for p in SUITE.problems}, sgd=1.0 + 1e-9)
    evals: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in candidate + baselines:
        evals.setdefault((row["optimizer"], row["problem"]), []).append(row)
    assert judging.indistinguishable(SUITE, evals) == ["adam", "sgd"]
    candidate, baselines = suite_rows({p.name: 1.0 for p in SUITE.problems}, sgd=2.0)
    evals = {}
    for row in candidate + baselines:
        evals.setdefault((row["optimizer"], row["problem"]), []).append(row)
    assert judging.indistinguishable(SUITE, evals) == ["adam"]


def test_rediscovery_needs_every_point_of_every_run_within_its_tolerance() -> None:
    candidate, baselines = suite_rows({p.name: 1.0 for p in SUITE.problems})
    copied = [{**r, "optimizer": CANDIDATE} for r in baselines if r["optimizer"] == "adam"]
    assert judging.rediscovery(copied, baselines, SUITE) == "adam"
    # Within 1e-3 relative of every point is the same rule written another way ...
    near = [{**r, "curve": [[s, v * (1 + 0.9e-3)] for s, v in r["curve"]]} for r in copied]
    assert judging.rediscovery(near, baselines, SUITE) == "adam"
    # ... 2e-3 off at one point of one run is another optimizer.
    off = [dict(r) for r in copied]
    off[5] = {**off[5], "curve": [*off[5]["curve"][:2], [100, off[5]["curve"][2][1] * (1 + 2e-3)]]}
    assert judging.rediscovery(off, baselines, SUITE) is None
    final_off = [dict(r) for r in copied]
    final_off[0] = {**final_off[0], "final_loss": final_off[0]["final_loss"] * 1.01}
    assert judging.rediscovery(final_off, baselines, SUITE) is None
    # A missing run, a shorter curve, or only tuning runs are not a rediscovery either.
    assert judging.rediscovery(copied[1:], baselines, SUITE) is None
    short = [{**r, "curve": r["curve"][:2]} if i == 0 else r for i, r in enumerate(copied)]
    assert judging.rediscovery(short, baselines, SUITE) is None
    assert judging.rediscovery([{**r, "phase": "tune"} for r in copied], baselines, SUITE) is None
    # Diverged together (inf at the same points) is the same; the sgd baseline is the second one looked at.
    both = [{**r, "optimizer": CANDIDATE} for r in baselines if r["optimizer"] == "sgd"]
    assert judging.rediscovery(both, baselines, SUITE) == "sgd"
    inf_base = [{**r, "final_loss": math.inf} if r["optimizer"] == "adam" else r for r in baselines]
    inf_mine = [{**r, "optimizer": CANDIDATE} for r in inf_base if r["optimizer"] == "adam"]
    assert judging.rediscovery(inf_mine, inf_base, SUITE) == "adam"
    assert judging.rediscovery(candidate, baselines, SUITE) is None  # the candidate itself is twice as fast
    assert judging.rediscovery([], baselines, SUITE) is None


def test_an_ablated_variant_is_compared_with_the_full_candidate_problem_by_problem() -> None:
    names = [p.name for p in SUITE.problems]
    full, variant = [], []
    # Variant worse on the first problem, better on the second, the same on the rest.
    factor = {names[0]: 2.0, names[1]: 0.5}
    for name in names:
        for seed in reversed(SEEDS):  # out of order: the comparison pairs by seed
            base = 1.0 + 0.01 * seed
            full.append(run(CANDIDATE, name, seed, base))
            variant.append(run(CANDIDATE, name, seed, base * factor.get(name, 1.0)))
            full.append({**run(CANDIDATE, name, seed, 99.0), "phase": "tune"})  # tuning runs are ignored
    result = judging.compare_variant(SUITE, full, variant)
    assert result["mattered"] is True
    assert result["worse_without_it"] == [names[0]] and result["better_without_it"] == [names[1]]
    p = 2 / 2 ** len(SEEDS)
    expected_holm = stats.holm([p, p, *[1.0] * (len(names) - 2)])
    assert [r["problem"] for r in result["problems"]] == names
    assert [r["ratio"] for r in result["problems"]] == pytest.approx([2.0, 0.5, *[1.0] * (len(names) - 2)])
    assert [r["p_holm"] for r in result["problems"]] == pytest.approx(expected_holm)
    assert [r["outcome"] for r in result["problems"]] == [
        "variant worse", "variant better", *["tie"] * (len(names) - 2)]
    assert result["geomean_ratio"] == pytest.approx(1.0)
    same = judging.compare_variant(SUITE, full, full)
    assert same["mattered"] is False and same["worse_without_it"] == same["better_without_it"] == []
    assert all(r["outcome"] == "tie" and r["p_holm"] == 1.0 for r in same["problems"])


# --- statistics ---------------------------------------------------------------------------------

def test_small_statistics_exactly() -> None:
    assert stats.median([3.0, 1.0, 2.0]) == 2.0 and stats.median([1, 2, 3, 10]) == 2.5
    assert math.isnan(stats.median([]))
    assert stats.geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    assert stats.geometric_mean([2.0, 8.0, 0.0, -1.0, math.inf, math.nan]) == pytest.approx(4.0)  # positive, finite
    assert stats.geometric_mean([0.0, -3.0]) is None and stats.geometric_mean([]) is None
    assert stats.pairs_needed(0.05) == 5 and stats.pairs_needed(1 / 1024) == 10
    assert stats.pairs_needed(1.0) == 1 and stats.pairs_needed(2.0) == 1  # never fewer than one pair
    assert stats.pairs_needed(0.0) == 10**9 and stats.pairs_needed(-0.1) == 10**9  # unreachable
    assert stats.paired_log_ratios([2.0, 1e-20], [1.0, 1e-12]).tolist() == pytest.approx([math.log(2.0), 0.0])
    assert stats.paired_log_ratios([1e-10], [1e12]).tolist() == [-math.log(stats.RATIO_CAP)]
    with pytest.raises(ValueError):
        stats.paired_log_ratios([1.0, 2.0], [1.0])


def test_compare_counts_only_differences_beyond_rounding() -> None:
    c = stats.compare([1.0, 1.0 + 1e-9, 0.5, math.inf], [1.0 + 1e-9, 1.0, 1.0, math.inf])
    assert (c.candidate_better, c.baseline_better) == (1, 0)
    c = stats.compare([1.0, 2.0, math.inf], [1.0 - 2e-6, 1.0, 5.0])
    assert (c.candidate_better, c.baseline_better) == (0, 3)


def test_exact_wilcoxon_p_values_by_counting() -> None:
    # All n pairs one way: the two-sided exact p-value is 2 / 2^n, the one-sided 1 / 2^n.
    for n in (3, 8, 20):
        assert stats.paired_log_wilcoxon([1.0] * n, [2.0] * n) == pytest.approx(2 / 2**n)
        assert stats.pooled_improvement_p([-0.5] * n) == pytest.approx(1 / 2**n)
        assert stats.pooled_improvement_p([0.5] * n) == pytest.approx(1.0)
    # Ranks 1..4 with the smallest against: W+ = 9 of 10; two-sided P(T <= 1) * 2 = 2 * 2/16.
    logs = [-0.4, -0.3, -0.2, 0.1]
    assert stats.pooled_improvement_p(logs) == pytest.approx(2 / 16)
    mine = [math.exp(x) for x in logs]
    assert stats.paired_log_wilcoxon(mine, [1.0] * 4) == pytest.approx(4 / 16)
    # Ties at rounding level are dropped, not counted as evidence either way.
    assert stats.pooled_improvement_p([*logs, 1e-7, -1e-7]) == pytest.approx(2 / 16)
    assert stats.paired_log_wilcoxon([*mine, 1.0], [1.0] * 4 + [1.0 + 1e-8]) == pytest.approx(4 / 16)
    assert stats.pooled_improvement_p([]) == 1.0 and stats.paired_log_wilcoxon([], []) == 1.0


def normal_p(diff: list[float], *, two_sided: bool) -> float:
    """The signed-rank normal approximation by hand (no ties among |diff|, no continuity correction)."""
    n = len(diff)
    ranks = {i: rank + 1 for rank, i in enumerate(sorted(range(n), key=lambda i: abs(diff[i])))}
    w_plus = sum(ranks[i] for i in range(n) if diff[i] > 0)
    z = (w_plus - n * (n + 1) / 4) / math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    below = 0.5 * math.erfc(-z / math.sqrt(2))
    return min(1.0, 2 * min(below, 1 - below)) if two_sided else below


def test_beyond_fifty_pairs_the_normal_approximation_is_used() -> None:
    rng = np.random.default_rng(3)
    diff = [float(x) for x in rng.normal(-0.1, 1.0, 80)]
    assert stats.pooled_improvement_p(diff) == pytest.approx(normal_p(diff, two_sided=False), rel=1e-9)
    mine = [math.exp(x) for x in diff]
    assert stats.paired_log_wilcoxon(mine, [1.0] * 80) == pytest.approx(normal_p(diff, two_sided=True), rel=1e-6)
    # At 50 untied pairs it is still exact: all one way is 2^-50, far below the approximation's value.
    assert stats.pooled_improvement_p([-0.5 - 0.01 * i for i in range(50)]) == pytest.approx(2.0**-50)
    fifty_one = [-0.5 - 0.01 * i for i in range(51)]
    assert stats.pooled_improvement_p(fifty_one) == pytest.approx(normal_p(fifty_one, two_sided=False), rel=1e-9)
    assert stats.paired_log_wilcoxon([math.exp(x) for x in fifty_one], [1.0] * 51) == pytest.approx(
        normal_p(fifty_one, two_sided=True), rel=1e-6)


def test_bootstrap_intervals_are_deterministic_and_pinned() -> None:
    values = [1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0]
    low, high = stats.median_ci(values)
    assert (low, high) == stats.median_ci(values) and low < stats.median(values) < high
    assert (low, high) == pytest.approx((2.0, 21.0))
    narrow = stats.median_ci(values, confidence=0.5)
    assert low <= narrow[0] <= narrow[1] <= high and narrow != (low, high)
    assert stats.median_ci([4.0, 4.0, 4.0]) == (4.0, 4.0)
    assert stats.median_ci([4.0]) == (4.0, 4.0)
    assert stats.median_ci([]) == (math.inf, math.inf)
    assert stats.median_ci([1.0, math.inf, 3.0]) == (1.0, math.inf)
    # The paired interval of the per-seed ratio: exactly 0.5 on every seed is [0.5, 0.5].
    assert stats.paired_ratio_ci([0.5 * v for v in values], values) == pytest.approx((0.5, 0.5))
    spread = stats.paired_ratio_ci([v * f for v, f in zip(values, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2],
                                                           strict=True)], values)
    assert spread[0] < 0.85 < spread[1] and spread == pytest.approx((0.6, 1.095558756942103), rel=1e-9)
    assert all(math.isnan(x) for x in stats.paired_ratio_ci([], []))


def test_the_timing_interval_resamples_pairs_together() -> None:
    # Candidate times exactly twice the reference's, pair by pair, however noisy: the ratio is 2 in every
    # resample only if pairs are kept together.
    reference = [100.0, 150.0, 90.0, 300.0, 120.0, 110.0, 95.0, 400.0]
    low, high = stats.ratio_of_medians_ci([2 * x for x in reference], reference)
    assert (low, high) == pytest.approx((2.0, 2.0))
    noisy = [x * f for x, f in zip(reference, [1.9, 2.1, 2.0, 1.8, 2.2, 2.05, 1.95, 2.0], strict=True)]
    interval = stats.ratio_of_medians_ci(noisy, reference)
    assert interval == stats.ratio_of_medians_ci(noisy, reference)  # deterministic
    assert 1.8 <= interval[0] < 2.0 < interval[1] <= 2.2
    narrow = stats.ratio_of_medians_ci(noisy, reference, confidence=0.5)
    assert interval[0] <= narrow[0] <= narrow[1] <= interval[1] and narrow != interval


def test_curves_are_downsampled_to_their_ends_and_steps_interpolated_in_log_loss() -> None:
    curve = [[i * 10, 2.0**-i] for i in range(11)]
    assert stats.downsample(curve, 20) == curve and stats.downsample(curve, 11) == curve
    assert stats.downsample(curve, 3) == [curve[0], curve[5], curve[10]]
    assert stats.downsample(curve, 2) == [curve[0], curve[10]]
    # Halving every 10 steps: 2^-2.5 is reached at step 25 exactly (log-linear between points).
    assert stats.steps_to_target(curve, 2.0**-2.5) == pytest.approx(25.0)
    assert stats.steps_to_target(curve, 2.0**-3) == 30.0
    assert stats.steps_to_target(curve, 2.0) == 0.0 and stats.steps_to_target(curve, 1e-9) == math.inf
    assert stats.steps_to_target([[0, math.inf], [10, 0.1]], 0.5) == 10.0  # after a non-finite point: no interpolation
    assert stats.steps_to_target([[0, 1.0], [10, 1.0], [20, 0.25]], 1.0) == 0.0
    assert stats.steps_to_target([[None, 0.1]], 0.5) == 0.0
    assert stats.steps_to_target([[0, 1.0], [10, None], [20, 0.1]], 0.5) == 20.0  # None is a divergence
    assert stats.steps_to_target([[0, 2.0], [10, 2.0], [20, 0.5]], 1.0) == pytest.approx(15.0)
    # The target: 5 % of the way up in log-loss from the best; the best itself when nothing was gained.
    assert stats.log_target(1e-4, 1.0) == pytest.approx(1e-4 * (1e4**0.05))
    assert stats.log_target(1e-4, 1.0, fraction=0.5) == pytest.approx(1e-2)
    assert stats.log_target(1.0, 1.0) == 1.0 and stats.log_target(2.0, 1.0) == 2.0
    assert stats.log_target(math.inf, 1.0) == math.inf and stats.log_target(0.5, math.nan) == 0.5


def test_performance_profiles_count_problems_within_each_factor_of_the_best() -> None:
    costs = {"a": [10.0, 100.0, math.inf, 5.0], "b": [20.0, 50.0, math.inf, 5.0], "c": [80.0, 50.0, 7.0, 50.0]}
    profile = stats.performance_profile(costs, (1, 2, 4, 10))
    # Per problem, cost / best: a 1, 2, inf, 1; b 2, 1, inf, 1; c 8, 1, 1, 10.
    assert profile == {"a": {"1": 0.5, "2": 0.75, "4": 0.75, "10": 0.75},
                       "b": {"1": 0.5, "2": 0.75, "4": 0.75, "10": 0.75},
                       "c": {"1": 0.5, "2": 0.5, "4": 0.5, "10": 1.0}}
    # A problem nobody solved counts for nobody; a best cost of 0 counts only for whoever has 0.
    assert stats.performance_profile({"a": [math.inf, 0.0], "b": [math.inf, 1.0]}, (1, 1e9)) == {
        "a": {"1": 0.5, "1e+09": 0.5}, "b": {"1": 0.0, "1e+09": 0.0}}
    assert stats.performance_profile({"a": []}, (1,)) == {"a": {"1": 0.0}}
    assert stats.performance_profile({}, (1,)) == {}


# --- the lab-wide claim test (LORD++) on a real archive ------------------------------------------

def test_a_claim_spends_the_next_lab_wide_level_and_a_discovery_earns_the_next_one_more(tmp_path: Path) -> None:
    from mcp.server.mcpserver.exceptions import ToolError

    from frontier_mcp.archive import Archive
    from frontier_mcp.tools.record_result import Claim, spend_claim_test

    archive = Archive(tmp_path / "state.db")
    pairing = archive.add_pairing("p-adic-analysis", "fluid-dynamics", seed=1)
    ids = [archive.add_experiment(name=f"e{i}", pairing_id=pairing, parent_id=None, source=f"fn e{i}() {{}}",
                                  normalized_sha256=f"n{i}", statement="s" * 12, mechanism="m" * 12,
                                  prediction="p" * 12)[0] for i in range(4)]
    rt = SimpleNamespace(settings=SimpleNamespace(fdr_alpha=0.05), archive=archive)

    def tests_spent() -> list[tuple[float, float, int]]:
        return [(r["p_value"], r["level"], r["discovery"]) for r in archive.query(
            "SELECT p_value, level, discovery FROM claim_tests ORDER BY id")]

    first_level = lord_level(1, [], 0.05)            # 0.00134: 2^-10 reaches it, 2^-9 does not
    assert stats.pairs_needed(first_level) == 10
    # Too few untied pairs to reach the level even if all favour the candidate: refused, nothing spent.
    with pytest.raises(ToolError, match=r"rests on 9 untied \(problem, seed\) pairs.*level of the next claim is "
                                        r"0\.00134.*at least 10 are needed"):
        spend_claim_test(rt, ids[0], Claim(scope="all", p_value=1e-9, pairs=9), "win")
    assert tests_spent() == []
    # Enough pairs, p below the level: a discovery at test 1, at exactly that level.
    found = spend_claim_test(rt, ids[0], Claim(scope="smooth", p_value=first_level, pairs=10), "win")
    assert found == {"test": 1, "level": first_level, "p_value": first_level, "discovery": True,
                     "fdr_alpha": 0.05, "scope": "smooth"}
    # Test 2 earns from the discovery at 1; a p-value above it is refused, and the test is still spent.
    second_level = lord_level(2, [1], 0.05)
    assert second_level > lord_level(2, [], 0.05)
    with pytest.raises(ToolError) as refused:
        spend_claim_test(rt, ids[1], Claim(scope="all", p_value=0.5, pairs=200), "win")
    assert str(refused.value) == (
        f"verdict 'win' not recorded: the claim on all passed every gate of its benchmark, but its pooled p-value "
        f"0.5 is above the lab-wide level {second_level:.3g} of test 2 (online FDR control at 0.05, LORD++): too many "
        "claims compete for the same error budget. The test is spent; record 'mixed' or 'tie', or strengthen the "
        "evidence in a child experiment.")
    assert tests_spent() == [(first_level, first_level, 1), (0.5, pytest.approx(second_level), 0)]
    # Test 3 sees one discovery (at 1) and one spent miss (at 2).
    third = spend_claim_test(rt, ids[2], Claim(scope="all", p_value=1e-6, pairs=200), "win")
    assert third["test"] == 3 and third["level"] == pytest.approx(lord_level(3, [1], 0.05)) and third["discovery"]
    assert archive.next_claim_position() == (4, [1, 3])


# --- survivors of the first mutation run, each pinned (docs/mutation.md) -------------------------

def test_runs_that_errored_are_left_out_of_evaluations_per_step() -> None:
    rows = [{"oracle_evals": 10, "steps_done": 10}, {"oracle_evals": 90, "steps_done": 10, "error": "panicked"},
            {"oracle_evals": 30, "steps_done": 10, "diverged": True}, {"oracle_evals": 5, "steps_done": 0}]
    assert judging.evals_per_step(rows) == [1.0]


def test_class_pairs_count_only_log_ratios_beyond_the_tie_tolerance() -> None:
    report = judged(*suite_rows({p.name: 0.5 for p in SUITE.problems}))
    tol = stats.TIE_LOG_TOLERANCE
    logs = {p.problem: [tol, -tol, 2 * tol, 0.0] for p in report.problems}
    verdicts = judging.class_verdicts(report.problems, logs)
    assert sum(v.pairs for v in verdicts.values()) == len(report.problems)  # only the 2 * tol entries count


def test_a_significant_ratio_whose_interval_reaches_the_minimum_effect_is_a_tie() -> None:
    # Better on every seed (p = 2/2^8), median ratio ~0.75, but half the seeds only 1 % better: the
    # interval of the median per-seed ratio reaches 0.99 — too uncertain to be a win.
    factors = {p.name: 1.0 for p in SUITE.problems}
    candidate, baselines = suite_rows(factors)
    first = SUITE.problems[0].name
    per_seed = [0.5, 0.99] * (len(SEEDS) // 2)
    for row, factor in zip([r for r in candidate if r["problem"] == first], per_seed, strict=True):
        row["final_loss"] = row["best_loss"] = row["final_loss"] * factor
    problem = judged(candidate, baselines).problems[0]
    assert problem.p_value == pytest.approx(2 / 2 ** len(SEEDS)) and problem.ratio < stats.MIN_EFFECT
    assert problem.ratio_ci is not None and problem.ratio_ci[1] >= stats.MIN_EFFECT
    assert problem.outcome == "tie"


def test_report_curves_have_twelve_points_and_costs_start_at_one_step() -> None:
    candidate, baselines = suite_rows({p.name: 0.5 for p in SUITE.problems})
    for row in candidate + baselines:
        final = row["final_loss"]
        row["curve"] = [[step, 4.0 * (final / 4.0) ** (step / 39)] for step in range(40)]
    report = judged(candidate, baselines)
    for problem in report.problems:
        assert len(problem.curves[CANDIDATE]) == 12 and len(problem.curves["adam"]) == 12


def test_speedup_and_profile_at_the_first_steps() -> None:
    candidate, baselines = suite_rows({p.name: 1.0 for p in SUITE.problems})
    for row in candidate:  # the candidate is at the target half-way to step 1; adam by step 2 of 4
        row["curve"] = [[0, 4.0], [1, row["final_loss"] ** 2 / 4.0], [4, row["final_loss"]]]
    for row in baselines:
        if row["optimizer"] == "adam":
            row["curve"] = [[0, 4.0], [2, row["final_loss"]], [4, row["final_loss"]]]
    report = judged(candidate, baselines)
    first = report.problems[0]
    assert first.steps_to_target is not None and 0 < first.steps_to_target < 1
    assert first.best_baseline_steps is not None and 1 < first.best_baseline_steps < 2
    assert first.speedup == pytest.approx(first.best_baseline_steps / first.steps_to_target)
    # Costs are counted from one step: both reach the target within the first two, so both are "best".
    assert report.performance_profile[CANDIDATE]["1"] == 1.0 and report.performance_profile["adam"]["1"] == 0.0
    assert report.performance_profile["adam"]["2"] == 1.0
    # Already at the target at step 0: no speedup can be divided out.
    for row in candidate:
        row["curve"] = [[0, row["final_loss"]], [4, row["final_loss"]]]
    report = judged(candidate, baselines)
    assert report.problems[0].steps_to_target == 0.0 and report.problems[0].speedup is None


def test_a_run_diverged_on_one_side_only_is_not_a_rediscovery_and_tiny_losses_compare_absolutely() -> None:
    _, baselines = suite_rows({p.name: 1.0 for p in SUITE.problems})
    copied = [{**r, "optimizer": CANDIDATE} for r in baselines if r["optimizer"] == "adam"]
    one_diverged = [{**r, "final_loss": math.inf} if i == 0 else r for i, r in enumerate(copied)]
    assert judging.rediscovery(one_diverged, baselines, SUITE) is None
    tiny = [{**r, "final_loss": stats.LOSS_FLOOR, "curve": []} for r in baselines]
    tiny_mine = [{**r, "optimizer": CANDIDATE, "final_loss": stats.LOSS_FLOOR + 1e-12}
                 for r in tiny if r["optimizer"] == "adam"]
    assert judging.rediscovery(tiny_mine, tiny, SUITE) == "adam"  # 1e-12 apart at the floor: the same


def test_exact_p_values_at_fifty_pairs_and_at_a_log_ratio_of_exactly_one() -> None:
    fifty = [math.exp(-0.5 - 0.01 * i) for i in range(50)]
    assert stats.paired_log_wilcoxon(fifty, [1.0] * 50) == pytest.approx(2 * 2.0**-50)
    assert stats.paired_log_wilcoxon([math.e] * 8, [1.0] * 8) == pytest.approx(2 / 2**8)


def test_profiles_divide_by_a_best_cost_below_one() -> None:
    assert stats.performance_profile({"a": [0.5], "b": [1.0]}, (1, 2)) == {
        "a": {"1": 1.0, "2": 1.0}, "b": {"1": 0.0, "2": 1.0}}


def test_the_intervals_are_pinned_to_their_resampling() -> None:
    # 16 draws, where another resampling seed moves the upper end (1.134 with seed 1).
    values = [float(x) for x in np.random.default_rng(0).lognormal(0.0, 1.0, 16)]
    assert stats.median_ci(values) == pytest.approx((0.49473390045005083, 1.2731085764731978), rel=1e-12)
    rng = np.random.default_rng(11)
    rng.lognormal(0.0, 1.0, 12)
    reference = [float(x) for x in rng.lognormal(4.0, 0.5, 12)]
    noisy = [2.0 * x * float(f) for x, f in zip(reference, rng.lognormal(0.0, 0.2, 12), strict=True)]
    assert stats.ratio_of_medians_ci(noisy, reference) == pytest.approx(
        (1.4953582964651113, 2.2683248087074737), rel=1e-12)


def test_accuracy_and_target_steps_at_their_edges() -> None:
    assert stats.steps_to_accuracy([[0, 0.5], [100, 0.9]], 0.9) == 100  # reaching the target counts
    assert stats.steps_to_accuracy([[0, 0.95], [100, 0.99]], 0.9) == 0.0
    assert stats.log_target(0.11, 0.11) == 0.11  # no progress to measure: the best itself, not exp(log(best))


def test_a_scoped_claim_rests_on_the_latest_run_that_measured_its_classes() -> None:
    from frontier_mcp.tools.record_result import Claim, refusal

    smooth = {"outcome": "win", "geomean_ratio": 0.5, "wins": 1, "ties": 1, "losses": 0, "pooled_p": 1e-5,
              "pairs": 40}
    standard = {"benchmark_run_id": 1, "job_id": "job-1", "suite": "standard", "outcome": "win",
                "geomean_ratio": 0.5, "wins": 1, "ties": 9, "losses": 0, "rediscovery_of": None, "pooled_p": 1e-4,
                "pairs": 120, "classes": {"smooth": smooth}}
    gate = {"benchmark_run_id": 2, "job_id": "job-1", "suite": "holdout", "passed": True,
            "classes": {"smooth": True}}
    neural = {**standard, "benchmark_run_id": 3, "job_id": "job-3", "suite": "neural", "outcome": "tie",
              "classes": {"neural": {**smooth, "outcome": "tie"}}}
    claim = refusal("win", {"benchmarks": [standard, gate, neural]}, lambda job_id: False, ["smooth"])
    assert claim == Claim(scope="smooth", p_value=1e-5, pairs=40)


def test_the_grid_extends_at_most_its_decades_each_way() -> None:
    from frontier_mcp.protocol.tuning import grid_bounds

    standard = SUITES["standard"]
    low, high = grid_bounds(standard)
    assert low == pytest.approx(min(standard.lr_grid) / 10**standard.grid_extension_decades, rel=1e-12)
    assert high == pytest.approx(max(standard.lr_grid) * 10**standard.grid_extension_decades, rel=1e-12)
    assert (low, high) == pytest.approx((1e-8, 31622.8), rel=1e-12)


# --- tuning: where a setting sits in its range, the edges flagged, the grid's next point --------

def test_a_setting_is_placed_on_its_own_scale() -> None:
    from frontier_mcp.protocol.tuning import _to_unit

    linear = {"low": 0.0, "high": 0.1, "scale": "linear"}
    assert _to_unit(linear, 0.025) == pytest.approx(0.25)
    log = {"low": 1e-4, "high": 1.0, "scale": "log"}
    assert _to_unit(log, 1e-2) == pytest.approx(0.5) and _to_unit(log, 0.0) < -30  # 0 is floored, not an error
    # log1m: 0.9 -> 0.999 is even in -log(1 - x): 0.99 is half way, 0.999999 past the top (2.5).
    log1m = {"low": 0.9, "high": 0.999, "scale": "log1m"}
    assert _to_unit(log1m, 0.99) == pytest.approx(0.5, rel=1e-12)
    assert _to_unit(log1m, 0.9) == pytest.approx(0.0, abs=1e-12) and _to_unit(log1m, 0.999) == pytest.approx(1.0)
    assert _to_unit(log1m, 0.999999) == pytest.approx(2.5, rel=1e-9)
    assert _to_unit(log1m, 1.0) == pytest.approx((690.7755278982137 - 2.302585092994046) / 4.605170185988091)
    # A range of one point: every value is in its middle.
    assert _to_unit({"low": 0.5, "high": 0.5, "scale": "linear"}, 0.5) == 0.5


def test_edges_are_flagged_at_both_ends_and_within_their_tolerance() -> None:
    from frontier_mcp.protocol.tuning import EDGE_TOLERANCE, MAX_WARMUP, edges_of

    space = [{"name": "mix", "low": 0.0, "high": 1.0, "scale": "linear", "default": 0.0},
             {"name": "rho", "low": 0.0, "high": 1.0, "scale": "linear", "default": 0.5}]

    def edges(lr: float, mix: float, rho: float, warmup: float = 0.0) -> list[str]:
        return edges_of({"lr": lr, "values": {"mix": mix, "rho": rho}, "warmup": warmup, "decay": "constant"},
                        space, 1e-4, 1.0, SUITE)

    assert edges(1e-2, 0.5, 0.5) == []
    assert edges(1.0, 0.5, 0.5) == ["lr"] and edges(1e-4, 0.5, 0.5) == ["lr"]  # the top end too
    assert edges(1e-2, 0.5, EDGE_TOLERANCE) == ["rho"] and edges(1e-2, 0.5, 1 - EDGE_TOLERANCE) == ["rho"]
    assert edges(1e-2, 0.5, 0.02) == [] and edges(1e-2, 0.5, 0.98) == []
    # At the bound that is its default (no mixing) a setting is not at an edge; at the other bound it is.
    assert edges(1e-2, 0.0, 0.5) == [] and edges(1e-2, 1.0, 0.5) == ["mix"]
    assert edges(1e-2, 0.5, 0.5, warmup=MAX_WARMUP * (1 - EDGE_TOLERANCE)) == ["warmup"]
    assert edges(1e-2, 0.5, 0.5, warmup=MAX_WARMUP * 0.9) == []


def test_the_grid_extends_from_its_true_ends_and_stops_at_its_bounds() -> None:
    from frontier_mcp.protocol.tuning import extension_point

    up = {1e-4: 4.0, 1e-3: 3.0, 1e-2: 2.0, 1e-1: 1.0}
    assert extension_point(up, 1e-8, 1e4, 2) == pytest.approx(10**-0.5)  # from the top rate, not the second
    # The best in the middle: no extension, even though the top beats its neighbour.
    assert extension_point({1e-4: 3.0, 1e-3: 0.5, 1e-2: 2.0, 1e-1: 1.5}, 1e-8, 1e4, 2) is None
    # The next point may land on the bound, not beyond it.
    assert extension_point({1e3: 2.0, 1e4: 1.0}, 1e-8, 31622.8, 2) == pytest.approx(31622.8)
    assert extension_point({1e3: 2.0, 1e4: 1.0}, 1e-8, 20000.0, 2) is None
    assert extension_point({1e-6: 1.0, 1e-5: 2.0}, 3.16228e-7, 1e4, 2) == pytest.approx(3.16228e-7)
    assert extension_point({1e-6: 1.0, 1e-5: 2.0}, 5e-7, 1e4, 2) is None
