"""Judging the numbers: per-problem summaries, paired tests with Holm correction, steps to target,
indistinguishable baselines, ablated variants and rediscovery of a baseline."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from .. import stats
from .classes import class_of
from .report import BenchmarkReport, ClassVerdict, OptimizerSummary, ProblemResult, class_outcome
from .suites import CANDIDATE, PROFILE_TAUS, ProblemSpec, Suite


def _summary(optimizer: str, rows: list[dict[str, Any]]) -> OptimizerSummary:
    finals = [stats.floored(r["final_loss"]) for r in rows]
    diverged = sum(1 for r in rows if r["diverged"])
    med = stats.median(finals)
    low, high = stats.median_ci(finals)
    best = [stats.floored(r["best_loss"]) for r in rows]
    accuracies = [r["test_accuracy"] for r in rows if r.get("test_accuracy") is not None]
    times = [r["ns_per_step"] for r in rows if r.get("ns_per_step")]
    evals = evals_per_step(rows)

    return OptimizerSummary(
        optimizer=optimizer, lr=rows[0]["lr"] if rows else math.nan, knobs=rows[0].get("knobs") or {} if rows else {},
        median_final_loss=_finite(med),
        ci_low=_finite(low), ci_high=_finite(high), median_best_loss=_finite(stats.median(best)),
        diverged=diverged, runs=len(rows),
        median_test_accuracy=stats.median(accuracies) if accuracies else None,
        ns_per_step=stats.median(times) if times else None,
        evals_per_step=stats.median(evals) if evals else None)


def evals_per_step(rows: list[dict[str, Any]]) -> list[float]:
    """Oracle evaluations per completed step, one value per run that ended cleanly.

    The harness counts step t's gradient before the step runs; a run that stops inside step t (its loss
    went bad, the optimizer panicked or changed the tensors) has that gradient, and any oracle calls of
    the failed step, counted while steps_done stays t-1: a plain gradient-only optimizer that diverges at
    step 2 reads 2 evaluations a step. So runs that diverged or failed are not counted here."""
    return [r["oracle_evals"] / r["steps_done"] for r in rows
            if r.get("steps_done") and not r.get("diverged") and not r.get("error")]


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
    tuning: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in candidate:
        if row["phase"] == "tune":
            tuning[row["problem"]].append(row)
    for spec in suite.problems:
        cand_rows = evals[(CANDIDATE, spec.name)]
        summaries = {name: _summary(name, evals[(name, spec.name)]) for name in suite.baselines}
        best = min(suite.baselines, key=lambda n: (stats.floored(summaries[n].median_final_loss), n))
        mine_finals = [r["final_loss"] for r in cand_rows]
        best_finals = [r["final_loss"] for r in evals[(best, spec.name)]]
        # Paired by seed: compare refuses runs of unequal number (a missing run is a bug upstream).
        comparison = stats.compare(mine_finals, best_finals)
        steps = _steps_to_target(spec, optimizers, evals)
        for name in optimizers:
            costs[name].append(max(1.0, steps["by_optimizer"][name]))
        partial.append({"spec": spec, "cand": _summary(CANDIDATE, cand_rows), "best": best,
                        "logs": stats.paired_log_ratios(mine_finals, best_finals),
                        "ci": stats.paired_ratio_ci(mine_finals, best_finals),
                        "baselines": list(summaries.values()), "cmp": comparison, "steps": steps,
                        "curves": {CANDIDATE: _median_curve(cand_rows, 12),
                                   best: _median_curve(evals[(best, spec.name)], 12)}})
    adjusted = stats.holm([item["cmp"].p_value for item in partial])
    results: list[ProblemResult] = []
    for item, p_holm in zip(partial, adjusted, strict=True):
        cmp, steps, best, ci = item["cmp"], item["steps"], item["best"], item["ci"]
        mine, theirs = steps["by_optimizer"][CANDIDATE], steps["by_optimizer"][best]
        results.append(ProblemResult(
            problem=item["spec"].name, steps=item["spec"].steps, candidate=item["cand"],
            best_baseline=best, baselines=item["baselines"], ratio=cmp.ratio, p_value=cmp.p_value,
            p_holm=p_holm, ratio_ci=list(ci), problem_class=class_of(item["spec"].name),
            outcome=stats.outcome_of(p_holm, cmp.ratio, suite.alpha, ci),
            target_loss=steps["target"], steps_to_target=_finite(mine), best_baseline_steps=_finite(theirs),
            speedup=(theirs / mine) if math.isfinite(mine) and math.isfinite(theirs) and mine > 0 else None,
            curves=item["curves"], **_accuracy_steps(item["spec"], best, evals),
            candidate_errors=failures(tuning[item["spec"].name] + evals[(CANDIDATE, item["spec"].name)]),
            all_tuning_failed=bool(tuning[item["spec"].name]) and all(
                r["diverged"] for r in tuning[item["spec"].name])))
    outcomes = [r.outcome for r in results]
    speedups = [r.speedup for r in results if r.speedup is not None]
    pooled = [float(x) for item in partial for x in item["logs"]]
    return BenchmarkReport(
        suite=suite.name, harness_version=harness_version, outcome=stats.overall_outcome(outcomes),
        wins=outcomes.count("win"), ties=outcomes.count("tie"), losses=outcomes.count("loss"),
        geomean_ratio=stats.geometric_mean([r.ratio for r in results]),
        geomean_speedup=stats.geometric_mean(speedups),
        reached_target=f"{sum(r.steps_to_target is not None for r in results)}/{len(results)}",
        performance_profile=stats.performance_profile(costs, PROFILE_TAUS),
        indistinguishable_from=indistinguishable(suite, evals), time_ratio_vs_adam=None,
        rediscovery_of=rediscovery(candidate, baselines, suite), problems=results,
        classes=class_verdicts(results, {item["spec"].name: item["logs"] for item in partial}),
        pooled_p=stats.pooled_improvement_p(pooled), pairs=sum(1 for x in pooled if abs(x) > stats.TIE_LOG_TOLERANCE),
        trials=trials,
        baseline_cache=cache_state, seconds=seconds, provenance=provenance)


def failures(rows: list[dict[str, Any]], limit: int = 3) -> list[dict[str, Any]]:
    """The first distinct error messages of these runs, with where they happened and how often."""
    seen: dict[tuple[str, str | None], int] = {}
    for row in rows:
        if row.get("error"):
            key = (str(row["error"])[:500], row.get("error_location"))
            seen[key] = seen.get(key, 0) + 1
    return [{"message": message, "location": location, "runs": runs}
            for (message, location), runs in list(seen.items())[:limit]]


def class_verdicts(results: list[ProblemResult], logs: dict[str, Any]) -> dict[str, ClassVerdict]:
    """Per class: its problems' outcomes, geometric-mean ratio and the pooled one-sided test."""
    verdicts: dict[str, ClassVerdict] = {}
    for name in dict.fromkeys(r.problem_class for r in results):
        members = [r for r in results if r.problem_class == name]
        outcomes = [r.outcome for r in members]
        pooled = [float(x) for r in members if logs.get(r.problem) is not None for x in logs[r.problem]]
        geomean = stats.geometric_mean([r.ratio for r in members])
        verdicts[name] = ClassVerdict(
            outcome=class_outcome(outcomes, geomean), problems=[r.problem for r in members],
            wins=outcomes.count("win"), ties=outcomes.count("tie"), losses=outcomes.count("loss"),
            geomean_ratio=geomean, pooled_p=stats.pooled_improvement_p(pooled),
            pairs=sum(1 for x in pooled if abs(x) > stats.TIE_LOG_TOLERANCE))
    return verdicts


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


def _accuracy_steps(spec: ProblemSpec, best: str,
                    evals: dict[tuple[str, str], list[dict[str, Any]]]) -> dict[str, float | None]:
    """Median first step at held-out accuracy >= the problem's target, candidate and best baseline."""
    if spec.accuracy_target is None:
        return {}
    target = spec.accuracy_target

    def median_steps(name: str) -> float | None:
        per_seed = [stats.steps_to_accuracy(r.get("accuracy_curve") or [], target) for r in evals[(name, spec.name)]]
        return _finite(stats.median(per_seed)) if per_seed else None

    return {"accuracy_target": target, "steps_to_accuracy": median_steps(CANDIDATE),
            "best_baseline_steps_to_accuracy": median_steps(best)}


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


REDISCOVERY_RTOL = 1e-3


def rediscovery(candidate: list[dict[str, Any]], baselines: list[dict[str, Any]], suite: Suite) -> str | None:
    """The baseline whose every evaluation curve the candidate reproduces to 1e-3 relative, if any.

    Not bit for bit: the same update rule written another way (`b1*m + (1-b1)*g` vs a lerp) differs
    in the last bits, and chaotic problems at high rates (Rosenbrock at lr 1 on a rotated instance)
    grow that to ~1e-5 over a run. A different optimizer does not stay within 0.1 % of every point."""
    def curves(rows: list[dict[str, Any]], name: str) -> dict[tuple[str, int], list[float]]:
        return {(r["problem"], r["seed"]): [stats.floored(p[1]) for p in (r.get("curve") or [])]
                + [stats.floored(r["final_loss"])] for r in rows
                if r["phase"] == "eval" and r["optimizer"] == name}

    def close(a: float, b: float) -> bool:
        if math.isinf(a) or math.isinf(b):  # inf - x <= rtol * inf would call any divergence close
            return math.isinf(a) and math.isinf(b)
        return abs(a - b) <= REDISCOVERY_RTOL * max(abs(a), abs(b)) + 1e-12

    mine = curves(candidate, CANDIDATE)
    for name in suite.baselines:
        theirs = curves(baselines, name)
        if mine and mine.keys() == theirs.keys() and all(
            len(mine[k]) == len(theirs[k]) and all(map(close, mine[k], theirs[k])) for k in mine
        ):
            return name
    return None
