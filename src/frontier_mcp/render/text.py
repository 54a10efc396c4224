"""Text for the model: the readable half of a tool's reply (some clients show only this)."""

from __future__ import annotations

from typing import Any

from ..protocol import BenchmarkReport, SuiteSummary
from ..protocol.report import OptimizerSummary


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def compact(report: BenchmarkReport | SuiteSummary) -> dict[str, Any]:
    """The numbers a model iterates on, without per-baseline tables and curves."""
    if isinstance(report, SuiteSummary):
        return report.model_dump()
    return {"outcome": report.outcome, "wins": report.wins, "ties": report.ties, "losses": report.losses,
            "geomean_ratio": report.geomean_ratio, "geomean_speedup": report.geomean_speedup,
            "reached_target": report.reached_target, "time_ratio_vs_adam": report.time_ratio_vs_adam,
            "rediscovery_of": report.rediscovery_of, "indistinguishable_from": report.indistinguishable_from,
            "problems": [{"problem": p.problem, "ratio": p.ratio, "p_holm": p.p_holm, "outcome": p.outcome,
                          "candidate_loss": p.candidate.median_final_loss, "candidate_lr": p.candidate.lr,
                          "diverged": p.candidate.diverged, "best_baseline": p.best_baseline, "speedup": p.speedup}
                         for p in report.problems]}


def page_text(title: str, total: int, offset: int, count: int) -> str:
    more = f"; next page: offset={offset + count}" if offset + count < total else ""
    return f"{title}: {count} of {total} (offset {offset}{more})"


def experiment_text(detail: Any, reports: list[tuple[int, str, BenchmarkReport | SuiteSummary]],
                    include_source: bool) -> str:
    """An `ExperimentDetail` (tools/experiment.py) and its runs' reports as lines for the model."""
    chain = " → ".join(f"#{a['id']} {a['name']}" for a in detail.lineage)
    lines = [f"Experiment #{detail.id} {detail.name} [{detail.field_a} × {detail.field_b}] status={detail.status}",
             f"Lineage: {chain}", f"Statement: {detail.statement}", f"Mechanism: {detail.mechanism[:600]}",
             f"Prediction: {detail.prediction}"]
    build = detail.last_build
    if build is not None:
        lines.append(f"Last build: {'ok' if build['ok'] else 'failed'} ({build['errors']} errors, "
                     f"{build['warnings']} warnings, {build['seconds']:.2f} s)")
    for run_id, suite, report in reports:
        if isinstance(report, SuiteSummary):  # a hidden suite: only what its summary chooses to show
            shown = " ".join(f"{key}={value}" for key, value in report.model_dump().items() if key != "suite")
            lines.append(f"Benchmark run {run_id} ({suite}, hidden): {shown}")
            continue
        lines.append(f"Benchmark run {run_id} ({suite}): outcome={report.outcome} geomean ratio={report.geomean_ratio}")
        lines += [f"  {p.problem}: ratio {p.ratio:.3g} vs {p.best_baseline}, p_holm {p.p_holm:.3g}, {p.outcome}"
                  for p in report.problems]
    if detail.vs_parent:
        for suite in dict.fromkeys(r["suite"] for r in detail.vs_parent):
            rows = [r for r in detail.vs_parent if r["suite"] == suite]
            counts = {change: sum(r["change"] == change for r in rows) for change in ("better", "worse", "same")}
            lines.append(f"Against parent #{detail.parent_id} on '{suite}': better on {counts['better']}, worse on "
                         f"{counts['worse']}, the same on {counts['same']} of {len(rows)} problems: "
                         + ", ".join(f"{r['problem']} {r['parent_ratio']:.3g}→{r['ratio']:.3g}" for r in rows[:10]))
    if detail.parent_diff:
        lines.append("Diff against the parent:\n" + "\n".join(detail.parent_diff.splitlines()[:60]))
    kin = detail.relatives
    if kin["count"]:
        best, worst = kin["best"], kin["worst"]
        lines.append(f"Family: {kin['count']} relative(s)"
                     + (f"; best #{best['id']} {best['name']} (ratio {best['best_ratio']:.3g}), worst "
                        f"#{worst['id']} {worst['name']} (ratio {worst['best_ratio']:.3g})" if best else ""))
        lines += [f"  lesson of #{r['id']} {r['name']} ({r['verdict']}): {r['lesson']}" for r in kin["lessons"][:5]]
    for ablation in detail.ablations:
        lines.append(f"Ablation ({ablation['suite']}) of '{ablation['switch']}': "
                     + ("mattered (worse without it on " + ", ".join(ablation["worse_without_it"]) + ")"
                        if ablation["mattered"] else "did not matter")
                     + ("; better without it on " + ", ".join(ablation["better_without_it"])
                        if ablation.get("better_without_it") else ""))
    verdict = detail.verdict
    if verdict is not None:
        lines.append(f"Verdict: {verdict['verdict']}. Notes: {verdict['notes'][:500]} "
                     f"Lessons: {verdict['lessons'][:500]}")
    if include_source:
        lines.append("Source:\n" + (detail.source or ""))
    return "\n".join(lines)


def render_table(report: BenchmarkReport) -> str:
    """A compact plain-text table for the tool's text content (clients that ignore structure)."""
    lines = [f"suite={report.suite} outcome={report.outcome} (wins {report.wins}, ties {report.ties}, "
             f"losses {report.losses}); geomean loss ratio vs best baseline = {_fmt(report.geomean_ratio)}; "
             f"time/step vs Adam = {_fmt(report.time_ratio_vs_adam)}"
             + (f" [{_fmt(report.timing['ci_low'])}, {_fmt(report.timing['ci_high'])}]" if report.timing else "")]
    if report.rediscovery_of:
        lines.append(f"REDISCOVERY: the candidate reproduces {report.rediscovery_of}'s loss curves.")
    if report.indistinguishable_from:
        lines.append("Indistinguishable (no significant difference on any problem) from: "
                     + ", ".join(report.indistinguishable_from))
    lines.append(f"Reached the target on {report.reached_target} problems; geomean speed-up to target vs best "
                 f"baseline = {_fmt(report.geomean_speedup)}; performance profile (tau=1,2,10): "
                 + ", ".join(f"{k} {v['1']:.2f}/{v['2']:.2f}/{v['10']:.2f}"
                             for k, v in report.performance_profile.items() if k in ("candidate", "adam", "sgd")))
    if report.classes:
        lines.append("By class (a win there can be claimed with record_result(..., classes=[...])): " + "; ".join(
            f"{name} {c.outcome} ({c.wins}W/{c.ties}T/{c.losses}L, geomean {_fmt(c.geomean_ratio)}, pooled p "
            f"{c.pooled_p:.2g} over {c.pairs} pairs)" for name, c in report.classes.items()))
    lines.append(f"{'problem':<24} {'cand lr':>8} {'cand loss':>10} {'best baseline':>14} {'base loss':>10} "
                 f"{'ratio':>8} {'95% CI':>17} {'p(holm)':>8} {'div':>4} {'speedup':>8} {'test acc c/b':>12} outcome")
    for r in report.problems:
        best = next(b for b in r.baselines if b.optimizer == r.best_baseline)
        accuracy = (f"{_fmt(r.candidate.median_test_accuracy)}/{_fmt(best.median_test_accuracy)}"
                    if best.median_test_accuracy is not None else "-")
        lines.append(f"{r.problem:<24} {r.candidate.lr:>8.3g} {_fmt(r.candidate.median_final_loss):>10} "
                     f"{r.best_baseline:>14} {_fmt(best.median_final_loss):>10} {_fmt(r.ratio):>8} "
                     f"{_interval(r.ratio_ci):>17} {r.p_holm:>8.3g} {r.candidate.diverged:>4} "
                     f"{_fmt(r.speedup):>8} {accuracy:>12} {r.outcome}")
    lines.append("Per problem: each optimizer's tuned settings (* = still at an edge of its range: widen or "
                 "distrust it), the candidate's oracle calls per step, and the median loss curves (step: "
                 "candidate / best baseline).")
    for r in report.problems:
        lines.append(f"{r.problem}: " + "; ".join(_tuned(s) for s in (r.candidate, *r.baselines))
                     + f"; candidate evals/step {_fmt(r.candidate.evals_per_step)}, diverged "
                     f"{r.candidate.diverged}/{r.candidate.runs}")
        curve = _short_curve(r.curves.get("candidate") or [], r.curves.get(r.best_baseline) or [])
        if curve:
            lines.append(f"  curve {curve}")
    for r in report.problems:
        if r.accuracy_target is not None:
            lines.append(f"{r.problem}: steps to held-out accuracy {r.accuracy_target:.2g}: candidate "
                         f"{_fmt(r.steps_to_accuracy)}, {r.best_baseline} {_fmt(r.best_baseline_steps_to_accuracy)} "
                         "(- : never within the budget)")
        if r.all_tuning_failed:
            lines.append(f"ALL tuning runs of the candidate FAILED on {r.problem}: its tuned settings mean nothing.")
        for e in r.candidate_errors:
            where = f" at {e['location']}" if e.get("location") else ""
            lines.append(f"failed runs on {r.problem} ({e['runs']}): {e['message']}{where}")
    return "\n".join(lines)


def _tuned(summary: OptimizerSummary) -> str:
    """`adam lr 0.01 beta2 0.99*`: the setting evaluated, starred where tuning left it at an edge."""
    settings = summary.settings or {"lr": summary.lr, **summary.knobs}
    shown = [f"{name} {_fmt(value) if isinstance(value, float | int) else value}"
             + ("*" if name in summary.at_edge else "")
             for name, value in settings.items() if name == "lr" or value not in (0, 0.0, "constant")]
    return f"{summary.optimizer} " + " ".join(shown)


def _short_curve(candidate: list[list[float | None]], baseline: list[list[float | None]], points: int = 4) -> str:
    """Four points of the median curves, candidate / best baseline, at the candidate's steps."""
    at = {step: loss for step, loss in baseline}
    chosen = [candidate[round(i * (len(candidate) - 1) / (points - 1))] for i in range(points)] if len(
        candidate) >= points else candidate
    return ", ".join(f"{'-' if step is None else int(step)}: {_fmt(loss)} / {_fmt(at.get(step))}"
                     for step, loss in chosen)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _interval(ci: list[float] | None) -> str:
    return "-" if not ci else f"[{ci[0]:.3g}, {ci[1]:.3g}]"
