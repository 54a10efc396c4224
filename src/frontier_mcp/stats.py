"""Statistics behind a verdict: paired tests across seeds, intervals, multiple-comparison control.

Losses are compared on a log scale (a 10x improvement counts the same at 1e-2 as at 1e-8), after
flooring at LOSS_FLOOR so that two runs that both reached numerical zero tie instead of
producing an arbitrary ratio. A diverged run has loss +inf: it loses every comparison.
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# numpy and scipy are imported on first use, and the server warms scipy on a thread after start: one
# lock for both imports, so a tool's first use never meets a half-imported numpy from the other thread.
_HEAVY_IMPORTS = threading.Lock()

if TYPE_CHECKING:
    import numpy as np
else:
    class _Numpy:
        """numpy on first use (the proxy then replaces itself): its 0.1-0.3 s import stays off the
        server's path to `initialize`, which reaches this module through the tools' imports."""

        def __getattr__(self, name: str) -> Any:
            with _HEAVY_IMPORTS:
                import numpy

            globals()["np"] = numpy
            return getattr(numpy, name)

    np = _Numpy()


def scipy_stats() -> Any:
    """scipy.stats (~0.7-1.8 s to import the first time), under the same lock as numpy."""
    with _HEAVY_IMPORTS:
        from scipy import stats

    return stats


LOSS_FLOOR = 1e-10
TIE_LOG_TOLERANCE = 1e-6  # |log(a) - log(b)| below this (a 1e-6 relative difference) is a tie
RATIO_CAP = 1e12


def floored(loss: float | None) -> float:
    if loss is None or not math.isfinite(loss):
        return math.inf
    return max(loss, LOSS_FLOOR)


def median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=float))) if len(values) else math.nan


def median_ci(values: Sequence[float], *, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval for the median (deterministic: fixed resampling seed)."""
    return _median_ci(tuple(float(v) for v in values), confidence, seed)


# Cached: the baselines' intervals are the same for every candidate benchmarked against them.
@functools.lru_cache(maxsize=4096)
def _median_ci(values: tuple[float, ...], confidence: float, seed: int) -> tuple[float, float]:
    data = np.asarray(values, dtype=float)
    if len(data) < 2 or not np.all(np.isfinite(data)):
        finite = data[np.isfinite(data)]
        low = float(finite.min()) if len(finite) else math.inf
        return (low, math.inf) if len(finite) < len(data) else (low, float(data.max()) if len(data) else low)
    if np.all(data == data[0]):
        return float(data[0]), float(data[0])
    stats = scipy_stats()

    result = stats.bootstrap((data,), np.median, confidence_level=confidence, n_resamples=2000,
                             method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def ratio_of_medians_ci(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95,
                        seed: int = 0) -> tuple[float, float]:
    """Paired percentile-bootstrap interval of median(a) / median(b) (pairs resampled together)."""
    stats = scipy_stats()

    result = stats.bootstrap((np.asarray(a, dtype=float), np.asarray(b, dtype=float)),
                             lambda x, y, axis=-1: np.median(x, axis=axis) / np.median(y, axis=axis),
                             paired=True, vectorized=True, confidence_level=confidence, n_resamples=2000,
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
    # Differences at rounding level (a re-typed formula) are ties, not evidence: without this the
    # signed-rank test, which ignores magnitudes, calls 1e-15 differences of one sign significant.
    diff = np.where(np.abs(diff) <= TIE_LOG_TOLERANCE, 0.0, diff)
    if len(diff) == 0 or np.all(diff == 0):
        return 1.0
    stats = scipy_stats()

    # Zero differences are no evidence either way: drop them (Wilcoxon's own rule) and use the exact
    # null distribution, which scipy computes in ~1 ms (with zeros kept it falls back to a ~1 s
    # permutation test). Beyond 50 pairs the normal approximation is accurate.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = stats.wilcoxon(diff, zero_method="wilcox", alternative="two-sided",
                           method="exact" if np.count_nonzero(diff) <= 50 else "approx").pvalue
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
    def differs(c: float, b: float) -> bool:
        return math.isinf(c) != math.isinf(b) or (
            not math.isinf(c) and abs(math.log(c) - math.log(b)) > TIE_LOG_TOLERANCE)

    better = sum(c < b and differs(c, b) for c, b in zip(cand, base, strict=True))
    worse = sum(c > b and differs(c, b) for c, b in zip(cand, base, strict=True))
    return Comparison(ratio=ratio(median(cand), median(base)), p_value=paired_log_wilcoxon(cand, base),
                      candidate_better=better, baseline_better=worse)


# The smallest improvement a verdict may call a win: the paired interval of the ratio must lie
# entirely below it (and entirely above its inverse for a loss that needs no test).
MIN_EFFECT = 0.95


def paired_log_ratios(candidate: Sequence[float | None], baseline: Sequence[float | None]) -> np.ndarray:
    """Per-seed log(candidate / baseline) on floored losses; a divergence is the capped ratio."""
    cap = math.log(RATIO_CAP)
    out = []
    for c, b in zip(candidate, baseline, strict=True):
        fc, fb = floored(c), floored(b)
        if math.isinf(fc) and math.isinf(fb):
            out.append(0.0)
        elif math.isinf(fc) or math.isinf(fb):
            out.append(cap if math.isinf(fc) else -cap)
        else:
            out.append(max(-cap, min(cap, math.log(fc) - math.log(fb))))
    return np.asarray(out, dtype=float)


def paired_ratio_ci(candidate: Sequence[float | None], baseline: Sequence[float | None], *,
                    confidence: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median per-seed ratio candidate / baseline (divergences
    capped at RATIO_CAP), deterministic."""
    logs = paired_log_ratios(candidate, baseline)
    if len(logs) == 0:
        return (math.nan, math.nan)
    low, high = _median_ci(tuple(float(x) for x in logs), confidence, 0)
    return float(math.exp(low)), float(math.exp(high))


def outcome_of(adjusted_p: float, ratio_value: float, alpha: float, ci: tuple[float, float] | None = None,
               min_effect: float = MIN_EFFECT) -> str:
    """win: significant and the whole interval below `min_effect`; loss: significantly worse, or the
    whole interval above 1/`min_effect` (worse by more than the smallest effect, even underpowered)."""
    low, high = ci if ci is not None else (ratio_value, ratio_value)
    if adjusted_p < alpha and ratio_value < 1.0 and high < min_effect:
        return "win"
    if (adjusted_p < alpha and ratio_value > 1.0) or low > 1.0 / min_effect:
        return "loss"
    return "tie"


def pooled_improvement_p(log_ratios: Sequence[float]) -> float:
    """One-sided p-value that the candidate is better (log ratios below 0), pooled over every
    (problem, seed) pair of a claim: the Wilcoxon signed-rank test on the pooled pairs."""
    diff = np.asarray(log_ratios, dtype=float)
    diff = np.where(np.abs(diff) <= TIE_LOG_TOLERANCE, 0.0, diff)
    if len(diff) == 0 or np.all(diff == 0):
        return 1.0
    stats = scipy_stats()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = stats.wilcoxon(diff, zero_method="wilcox", alternative="less",
                           method="exact" if np.count_nonzero(diff) <= 50 else "approx").pvalue
    return float(p) if math.isfinite(p) else 1.0


def pairs_needed(level: float) -> int:
    """The fewest untied pairs with which a one-sided signed-rank test can reach `level` at all
    (when every pair favours the candidate its p-value is 2^-n)."""
    return max(1, math.ceil(math.log2(1.0 / level))) if level > 0 else 10**9


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


def log_target(best_final: float, initial: float, fraction: float = 0.05) -> float:
    """The loss at which a run has made (1 - fraction) of the best optimizer's progress, on a log scale.

    Losses span many orders of magnitude (1e3 down to 1e-10), so progress is measured in log-loss:
    a run reaches the target when log(loss) <= log(best) + fraction * (log(initial) - log(best)).
    """
    best, start = floored(best_final), floored(initial)
    if not math.isfinite(best) or not math.isfinite(start) or start <= best:
        return best
    return float(math.exp(math.log(best) + fraction * (math.log(start) - math.log(best))))


def steps_to_accuracy(curve: Sequence[Sequence[float | None]], target: float) -> float:
    """First recorded step at which held-out accuracy reaches `target` (no interpolation: accuracy
    moves in jumps, as in grokking); inf if it never does."""
    for step, accuracy in curve:
        if accuracy is not None and accuracy >= target:
            return float(step or 0.0)
    return math.inf


def steps_to_target(curve: Sequence[Sequence[float | None]], target: float) -> float:
    """First step at which the curve reaches `target`, interpolated in log-loss between curve points."""
    previous: tuple[float, float] | None = None
    for point in curve:
        step, loss = float(point[0] or 0.0), floored(point[1])
        if loss <= target:
            if previous is None or not math.isfinite(previous[1]):
                return step
            s0, l0 = previous
            span = math.log(l0) - math.log(loss)
            share = (math.log(l0) - math.log(target)) / span if span > 0 else 1.0
            return s0 + share * (step - s0)
        previous = (step, loss)
    return math.inf


def performance_profile(costs: dict[str, list[float]], taus: Sequence[float]) -> dict[str, dict[str, float]]:
    """Dolan–Moré profiles: for each solver, the share of problems solved within tau x the best cost.

    `costs[solver][p]` is the cost on problem p (inf if the solver never reached the target).
    """
    solvers = list(costs)
    problems = len(next(iter(costs.values()), []))
    best = [min(costs[s][p] for s in solvers) for p in range(problems)]
    profile: dict[str, dict[str, float]] = {}
    for solver in solvers:
        # A problem no solver solved (best = inf) counts for none of them, as in Dolan and Moré.
        ratios = [costs[solver][p] / best[p] if math.isfinite(best[p]) and best[p] > 0 else
                  (1.0 if costs[solver][p] == best[p] == 0 else math.inf) for p in range(problems)]
        profile[solver] = {f"{tau:g}": sum(r <= tau for r in ratios) / problems if problems else 0.0
                           for tau in taus}
    return profile
