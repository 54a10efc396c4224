"""Statistics behind a verdict: paired tests across seeds, intervals, multiple-comparison control.

Losses are compared on a log scale (a 10x improvement counts the same at 1e-2 as at 1e-8), after
flooring at LOSS_FLOOR so that two runs that both reached numerical zero tie instead of
producing an arbitrary ratio. A diverged run has loss +inf: it loses every comparison.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LOSS_FLOOR = 1e-10
RATIO_CAP = 1e12


def floored(loss: float | None) -> float:
    if loss is None or not math.isfinite(loss):
        return math.inf
    return max(loss, LOSS_FLOOR)


def median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=float))) if len(values) else math.nan


def median_ci(values: Sequence[float], *, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval for the median (deterministic: fixed resampling seed)."""
    data = np.asarray(values, dtype=float)
    if len(data) < 2 or not np.all(np.isfinite(data)):
        finite = data[np.isfinite(data)]
        low = float(finite.min()) if len(finite) else math.inf
        return (low, math.inf) if len(finite) < len(data) else (low, float(data.max()) if len(data) else low)
    if np.all(data == data[0]):
        return float(data[0]), float(data[0])
    result = stats.bootstrap((data,), np.median, confidence_level=confidence, n_resamples=2000,
                             method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_log_wilcoxon(candidate: Sequence[float], baseline: Sequence[float]) -> float:
    """Two-sided p-value of the paired Wilcoxon signed-rank test on log losses (1.0 if all tie)."""
    a = np.log(np.asarray([floored(x) for x in candidate]))
    b = np.log(np.asarray([floored(x) for x in baseline]))
    both_inf = np.isinf(a) & np.isinf(b)
    a, b = a[~both_inf], b[~both_inf]
    # An infinite side (divergence) is the worst possible rank: replace by a huge finite log loss.
    a = np.where(np.isinf(a), 1e6, a)
    b = np.where(np.isinf(b), 1e6, b)
    diff = a - b
    if len(diff) == 0 or np.all(diff == 0):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = stats.wilcoxon(a, b, zero_method="zsplit", alternative="two-sided").pvalue
    return float(p) if math.isfinite(p) else 1.0


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (scipy offers only BH/BY; statsmodels is too heavy a dependency)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted


def ratio(candidate_median: float, baseline_median: float) -> float:
    """candidate / baseline on floored losses, capped so a divergence still gives a finite number."""
    c, b = floored(candidate_median), floored(baseline_median)
    if math.isinf(c) and math.isinf(b):
        return 1.0
    if math.isinf(c):
        return RATIO_CAP
    if math.isinf(b):
        return 1.0 / RATIO_CAP
    return min(RATIO_CAP, max(1.0 / RATIO_CAP, c / b))


def geometric_mean(values: Sequence[float]) -> float | None:
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if not positive:
        return None
    return float(math.exp(sum(math.log(v) for v in positive) / len(positive)))


@dataclass(frozen=True)
class Comparison:
    """Candidate vs one baseline on one problem, paired by seed."""

    ratio: float
    p_value: float
    candidate_better: int
    baseline_better: int


def compare(candidate: Sequence[float | None], baseline: Sequence[float | None]) -> Comparison:
    cand = [floored(x) for x in candidate]
    base = [floored(x) for x in baseline]
    better = sum(c < b for c, b in zip(cand, base, strict=True))
    worse = sum(c > b for c, b in zip(cand, base, strict=True))
    return Comparison(ratio=ratio(median(cand), median(base)), p_value=paired_log_wilcoxon(cand, base),
                      candidate_better=better, baseline_better=worse)


def outcome_of(adjusted_p: float, ratio_value: float, alpha: float) -> str:
    if adjusted_p < alpha and ratio_value < 1.0:
        return "win"
    if adjusted_p < alpha and ratio_value > 1.0:
        return "loss"
    return "tie"


def overall_outcome(outcomes: Sequence[str]) -> str:
    wins, losses = outcomes.count("win"), outcomes.count("loss")
    if wins and not losses:
        return "win"
    if losses and not wins:
        return "loss"
    if wins and losses:
        return "mixed"
    return "tie"


def downsample(curve: Sequence[Sequence[float | None]], points: int) -> list[list[float | None]]:
    if len(curve) <= points:
        return [list(p) for p in curve]
    idx = np.unique(np.linspace(0, len(curve) - 1, points).round().astype(int))
    return [list(curve[i]) for i in idx]
