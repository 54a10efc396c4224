import math

import pytest

from frontier_mcp import stats


def test_holm_matches_hand_computation() -> None:
    # sorted p: 0.01 (x3) -> 0.03, 0.02 (x2) -> 0.04, 0.04 (x1) -> 0.04
    assert stats.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_wilcoxon_detects_consistent_improvement_and_ignores_ties() -> None:
    base = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    better = [b / 10 for b in base]
    assert stats.paired_log_wilcoxon(better, base) == pytest.approx(2 / 256)
    assert stats.paired_log_wilcoxon(base, base) == 1.0
    # both at numerical zero: a tie, not a win
    assert stats.paired_log_wilcoxon([1e-30] * 8, [1e-25] * 8) == 1.0


def test_divergence_loses_every_comparison() -> None:
    cmp = stats.compare([None] * 8, [1.0] * 8)
    assert cmp.ratio == stats.RATIO_CAP
    assert cmp.baseline_better == 8 and cmp.p_value < 0.01
    assert stats.outcome_of(stats.holm([cmp.p_value])[0], cmp.ratio, 0.05) == "loss"


def test_ratio_and_geomean() -> None:
    assert stats.ratio(0.5, 1.0) == 0.5
    assert stats.ratio(1e-20, 1e-15) == 1.0  # both floored
    assert stats.geometric_mean([0.25, 4.0]) == pytest.approx(1.0)
    assert stats.geometric_mean([]) is None


def test_overall_outcome() -> None:
    assert stats.overall_outcome(["win", "tie"]) == "win"
    assert stats.overall_outcome(["win", "loss"]) == "mixed"
    assert stats.overall_outcome(["tie", "loss"]) == "loss"
    assert stats.overall_outcome(["tie"]) == "tie"


def test_median_ci_is_deterministic_and_brackets_the_median() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    low, high = stats.median_ci(values)
    assert low <= stats.median(values) <= high
    assert stats.median_ci(values) == (low, high)
    assert stats.median_ci([2.0, 2.0]) == (2.0, 2.0)
    assert math.isinf(stats.median_ci([1.0, math.inf, math.inf])[1])


def test_downsample_keeps_ends() -> None:
    curve = [[i, float(i)] for i in range(100)]
    small = stats.downsample(curve, 10)
    assert small[0] == [0, 0.0] and small[-1] == [99, 99.0] and len(small) == 10


def test_rounding_level_differences_are_ties() -> None:
    base = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    retyped = [b * (1 + 1e-13) for b in base]  # same formula, other rounding: consistently a hair worse
    assert stats.paired_log_wilcoxon(retyped, base) == 1.0
    assert stats.compare(retyped, base).baseline_better == 0
    assert stats.paired_log_wilcoxon([b * 1.01 for b in base], base) == pytest.approx(2 / 256)
