"""The judging rules, pinned one by one: effect sizes, divergence, class verdicts, lab-wide levels."""

from __future__ import annotations

import math

import pytest

from frontier_mcp import stats
from frontier_mcp.protocol.classes import CLASSES, class_of
from frontier_mcp.protocol.error_control import gamma, lord_level
from frontier_mcp.protocol.report import class_outcome
from frontier_mcp.protocol.suites import SUITES


def test_a_win_needs_significance_and_the_whole_interval_below_the_minimum_effect() -> None:
    assert stats.outcome_of(0.001, 0.5, 0.05, (0.4, 0.6)) == "win"
    assert stats.outcome_of(0.001, 0.97, 0.05, (0.96, 0.98)) == "tie"  # significant but too small
    assert stats.outcome_of(0.2, 0.5, 0.05, (0.4, 0.6)) == "tie"  # large but not significant
    assert stats.outcome_of(0.001, 0.5, 0.05, (0.4, 0.99)) == "tie"  # the interval reaches the minimum effect


def test_a_loss_needs_significance_or_an_interval_wholly_above_the_inverse_effect() -> None:
    assert stats.outcome_of(0.001, 1.5, 0.05, (1.2, 2.0)) == "loss"
    assert stats.outcome_of(0.3, 131.0, 0.05, (50.0, 400.0)) == "loss"  # underpowered, but clearly worse
    assert stats.outcome_of(0.3, 1.02, 0.05, (0.9, 1.2)) == "tie"


def test_divergence_is_a_failure_ranked_as_one() -> None:
    logs = stats.paired_log_ratios([None, math.nan, math.inf, 1.0], [1.0, 1.0, 1.0, None])
    cap = math.log(stats.RATIO_CAP)
    assert list(logs) == [cap, cap, cap, -cap]
    low, high = stats.paired_ratio_ci([None] * 6 + [1.0] * 6, [1.0] * 12)
    assert high >= 1.0 and stats.outcome_of(0.3, stats.RATIO_CAP, 0.05, (low, high)) != "win"
    both = stats.paired_log_ratios([None, 1e-12], [None, 1e-11])  # both diverged; both below the floor
    assert list(both) == [0.0, 0.0]


def test_the_pooled_test_is_one_sided_and_ties_are_no_evidence() -> None:
    assert stats.pooled_improvement_p([-1.0] * 12) == pytest.approx(2.0**-12)
    assert stats.pooled_improvement_p([1.0] * 12) > 0.99
    assert stats.pooled_improvement_p([0.0, 1e-9, -1e-9]) == 1.0
    assert stats.pairs_needed(2.0**-10) == 10


def test_a_class_wins_only_without_losses_and_with_a_geometric_mean_below_one() -> None:
    assert class_outcome(["win", "tie"], 0.5) == "win"
    assert class_outcome(["win", "tie"], 1.2) == "tie"
    assert class_outcome(["win", "loss"], 0.5) == "mixed"
    assert class_outcome(["tie", "loss"], 0.5) == "loss"


def test_every_problem_has_a_class_and_every_class_is_in_the_standard_suite_and_the_holdout() -> None:
    for suite in ("standard", "holdout"):
        present = {class_of(p.name) for p in SUITES[suite].problems}
        assert present == set(CLASSES), (suite, present)
    with pytest.raises(KeyError):
        class_of("unknown-7")


def test_the_lab_wide_levels_decay_and_discoveries_earn_wealth_back() -> None:
    assert gamma(1) > gamma(2) > gamma(10) > 0
    first, second = lord_level(1, [], 0.05), lord_level(2, [], 0.05)
    assert first == pytest.approx(gamma(1) * 0.025) and second < first
    assert lord_level(2, [1], 0.05) > second  # a discovery at test 1 raises test 2's level
    assert lord_level(5, [1, 3], 0.05) > lord_level(5, [1], 0.05)


def test_an_archived_report_with_class_verdicts_loads_back_through_the_one_decoder() -> None:
    from pathlib import Path

    from frontier_mcp.archive import load_report
    from frontier_mcp.protocol.report import ClassVerdict

    report = load_report((Path(__file__).parent / "fixtures" / "report_standard.json").read_text())
    report.classes = {"smooth": ClassVerdict(outcome="win", problems=["rosenbrock-10"], wins=1, ties=0, losses=0,
                                             geomean_ratio=0.5, pooled_p=1e-4, pairs=12)}
    again = load_report(report.model_dump_json())
    assert again.classes == report.classes
    assert load_report(report.model_dump(mode="json")).summary().classes == {"smooth": True}


def test_the_suites_a_model_may_ask_for_are_the_visible_ones_and_each_claim_suite_has_a_hidden_gate() -> None:
    from typing import get_args

    from frontier_mcp.protocol.suites import CLAIM_SUITES, VisibleSuite

    assert set(get_args(VisibleSuite)) == {name for name, suite in SUITES.items() if not suite.hidden}
    for name in CLAIM_SUITES:
        gate = SUITES[name].holdout
        assert gate is not None and SUITES[gate].hidden, name
        assert {class_of(p.name) for p in SUITES[gate].problems} >= {class_of(p.name) for p in SUITES[name].problems}


def test_the_cli_offers_the_suites_a_model_may_ask_for() -> None:
    from typing import get_args

    from frontier_mcp.cli import VISIBLE_SUITES
    from frontier_mcp.protocol.suites import VisibleSuite

    assert list(get_args(VisibleSuite)) == VISIBLE_SUITES
