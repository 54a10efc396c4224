"""Archive-wide error control: LORD++ (Ramdas, Yang, Wainwright & Jordan 2017, "Online control of the
false discovery rate with decaying memory"; Javanmard & Montanari 2018).

Holm keeps one benchmark's problems honest; it does nothing about a lab that tests thousands of
candidates, where some will "win" by chance. Every claim of a win (overall or scoped to classes)
that passes every other gate is a test in one online sequence for the whole lab: the t-th test is
run at the level

    alpha_t = gamma_t * W0 + (alpha - W0) * gamma_{t - tau_1} + alpha * sum_{j >= 2} gamma_{t - tau_j}

where tau_j are the positions of earlier discoveries and gamma a fixed decreasing sequence summing
to 1. This keeps the false discovery rate among recorded wins at `alpha` at every moment, whatever
order claims arrive in. Each test spends wealth, refused or not; each discovery earns some back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# gamma_j = C log(max(j, 2)) / (j exp(sqrt(log j))), C chosen so the series sums to 1 (LORD++'s default).
_GAMMA_C = 0.07720838


def gamma(j: int) -> float:
    if j < 1:
        return 0.0
    return _GAMMA_C * math.log(max(j, 2)) / (j * math.exp(math.sqrt(math.log(j))))


def lord_level(t: int, discoveries: Sequence[int], alpha: float, w0: float | None = None) -> float:
    """The level of the t-th test (1-based), given the 1-based positions of earlier discoveries."""
    w0 = alpha / 2 if w0 is None else w0
    earlier = sorted(d for d in discoveries if d < t)
    level = gamma(t) * w0
    for index, tau in enumerate(earlier):
        level += (alpha - w0 if index == 0 else alpha) * gamma(t - tau)
    return level
