"""The terminal: rich tables and trees of the archive for `frontier-mcp history`, `show`, `lineage`..."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from ..archive import ExperimentSummary, PairingRow
from ..protocol import BenchmarkReport
from .html import best_of, field_name

SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    """Loss curve on a log scale, one character per point."""
    logs = [math.log10(v) for v in values if v is not None and v > 0]
    if not logs:
        return ""
    low, high = min(logs), max(logs)
    span = (high - low) or 1.0
    return "".join(" " if v is None or v <= 0 else SPARK[int((math.log10(v) - low) / span * (len(SPARK) - 1))]
                   for v in values)


def fmt(value: Any, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def _interval(timing: dict[str, Any] | None) -> str:
    return f" [{fmt(timing['ci_low'])}, {fmt(timing['ci_high'])}] on {timing['problem']}" if timing else ""


def report_table(report: BenchmarkReport) -> Table:
    table = Table(title=f"suite '{report.suite}': outcome {report.outcome} "
                        f"(geomean loss ratio {fmt(report.geomean_ratio)}, time/step vs Adam "
                        f"{fmt(report.time_ratio_vs_adam)}{_interval(report.timing)})")
    for column in ("problem", "candidate lr", "candidate loss [95% CI]", "best baseline", "baseline loss",
                   "ratio", "p (Holm)", "diverged", "speed-up", "test acc", "outcome", "curve (cand / base)"):
        table.add_column(column, justify="right" if column not in ("problem", "best baseline", "outcome") else "left")
    for p in report.problems:
        cand, best = p.candidate, best_of(p)
        spark = (sparkline([pt[1] for pt in p.curves.get("candidate", [])]) + " / "
                 + sparkline([pt[1] for pt in p.curves.get(p.best_baseline, [])]))
        style = {"win": "green", "loss": "red"}.get(p.outcome, "yellow")
        table.add_row(p.problem, fmt(cand.lr),
                      f"{fmt(cand.median_final_loss)} [{fmt(cand.ci_low)}, {fmt(cand.ci_high)}]",
                      f"{p.best_baseline} (lr {fmt(best.lr if best else None)})",
                      fmt(best.median_final_loss if best else None), fmt(p.ratio), fmt(p.p_holm),
                      f"{cand.diverged}/{cand.runs}", fmt(p.speedup), fmt(cand.median_test_accuracy),
                      f"[{style}]{p.outcome}[/{style}]", spark)
    return table


def history_table(rows: list[dict[str, Any]], total: int, db_path: Path) -> Table:
    table = Table(title=f"{total} experiment(s) in {db_path}")
    for column in ("id", "name", "fields", "status", "outcome", "ratio", "verdict", "parent", "flags"):
        table.add_column(column)
    for row in rows:
        flags = ", ".join(([f"rediscovers {row['rediscovery_of']}"] if row["rediscovery_of"] else [])
                          + ([f"duplicate of #{row['duplicate_of']}"] if row["duplicate_of"] else []))
        table.add_row(str(row["id"]), row["name"], f"{row['field_a']} × {row['field_b']}", row["status"],
                      row["outcome"] or "-", fmt(row["geomean_ratio"]), row["verdict"] or "-",
                      str(row["parent_id"] or ""), flags)
    return table


def leaderboard_table(rows: list[dict[str, Any]], total: int) -> Table:
    table = Table(title=f"Leaderboard ({total} benchmarked): geometric-mean final-loss ratio vs best tuned baseline")
    for column in ("rank", "id", "name", "fields", "ratio", "outcome", "verdict"):
        table.add_column(column)
    for rank, row in enumerate(rows, 1):
        table.add_row(str(rank), str(row["id"]), row["name"], f"{row['field_a']} × {row['field_b']}",
                      fmt(row["geomean_ratio"]), row["outcome"] or "-", row["verdict"] or "-")
    return table


def node_label(row: ExperimentSummary, *, this: bool = False) -> str:
    """One experiment as a line of a lineage tree: status, latest visible run, holdout, verdict."""
    style = {"win": "green", "loss": "red", "broken": "red"}.get(row["verdict"] or row["outcome"] or "", "yellow")
    run = (f"{row['outcome']} on {row['suite']}, ratio {fmt(row['geomean_ratio'])}" if row["outcome"]
           else "not benchmarked")
    holdout = f", holdout {row['holdout']}" if row["holdout"] else ""
    name = f"[bold]#{row['id']} {escape(row['name'])}[/bold]" + (" ◀ this" if this else "")
    return (f"{name}  {row['status']}  [{style}]{run}{holdout}[/{style}]  "
            f"verdict [{style}]{row['verdict'] or '-'}[/{style}]")


def pairings_table(rows: list[PairingRow], limit: int) -> Table:
    table = Table(title=f"{len(rows)} field pair(s) proposed (best ratio over the visible suites; failures: "
                        "verdict loss or broken)")
    for column in ("fields", "proposed", "experiments", "best ratio", "wins", "failures", "last proposed"):
        table.add_column(column, justify="left" if column == "fields" else "right")
    for row in rows[:limit]:
        a, _, b = row["pair_key"].partition("|")
        style = "green" if row["wins"] else ("red" if row["failures"] else "")
        table.add_row(f"{field_name(a)} × {field_name(b)}", str(row["proposed"]), str(row["experiments"]),
                      fmt(row["best_ratio"]), str(row["wins"]),
                      f"[{style}]{row['failures']}[/{style}]" if style else str(row["failures"]),
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(row["last_proposed"])))
    return table


def verify_table(checks: list[Any], runs: int, reference_path: Path) -> Table:
    table = Table(title=f"{runs} reference runs from {reference_path} "
                        f"(tolerance 1e-12 + 1e-10·|x| per coordinate, every step)")
    for column in ("run", "baseline", "worst |diff|", "worst diff / tol", "at step", "result"):
        table.add_column(column)
    for check in checks:
        result = "[green]pass[/green]" if check.ok else f"[red]FAIL[/red] {check.error or ''}"
        table.add_row(check.label, check.optimizer or "-", fmt(check.worst_abs, ".2e"),
                      fmt(check.worst_ratio, ".2e"), str(check.worst_step), result)
    return table
