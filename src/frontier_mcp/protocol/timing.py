"""Time per step of the candidate against Adam, measured alternating in one harness process."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .. import stats
from .harness import Harness
from .suites import CANDIDATE, Suite

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
