"""The terminal: rich tables and trees of the archive for `frontier-mcp history`, `show`, `lineage`...

Every listing is a `Listing`: a table when the table fits the console, else one block per row (the
row's label, then `column: value` pairs packed into lines). Rich shrinks a table that is too wide by
cutting its cells to `2.41…`; a listing never lets it, so every number reads in full at any width.

This module imports neither the protocol nor the HTML renderer (numpy, scipy, jinja2): the read-only
views that use it must start fast.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from ..archive import ExperimentSummary, PairingRow
    from ..protocol import BenchmarkReport, OptimizerSummary, ProblemResult

SPARK = "▁▂▃▄▅▆▇█"
NATURAL = 10**6  # a width no table reaches: measuring at it gives a table's unshrunk width


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


def field_name(field_id: str) -> str:
    """A field's display name from the catalog, else its id (the archive holds ids)."""
    try:
        from ..pairing import catalog

        card = catalog().get(field_id)
    except Exception:  # the catalog is a convenience here
        card = None
    return card.name if card is not None else field_id


@dataclass(frozen=True)
class Column:
    header: str
    right: bool = False


@dataclass
class Listing:
    """Rows of cells (rich markup; escape what a model wrote) under a title.

    Rendered as a table if its natural width fits the console; else as a table of the `narrow`
    columns (an overview: a note names what it leaves out) if that fits; else stacked: for each row a
    line with its label (the first `label_columns` cells, or the row's own label), then
    `column: value` pairs packed into lines that fit, a pair never split unless it alone is wider than
    the console."""

    title: str
    columns: Sequence[Column]
    label_columns: int = 1
    narrow: Sequence[str] = ()
    narrow_note: str = ""
    rows: list[tuple[list[str], str | None]] = field(default_factory=list)

    def add_row(self, *cells: str, label: str | None = None) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append((list(cells), label))

    def table(self, headers: Sequence[str] | None = None) -> Table:
        keep = [i for i, c in enumerate(self.columns) if headers is None or c.header in headers]
        table = Table(title=self.title)
        for i in keep:
            column = self.columns[i]
            table.add_column(column.header, justify="right" if column.right else "left", no_wrap=True)
        for cells, _ in self.rows:
            table.add_row(*(cells[i] for i in keep))
        return table

    def stacked(self, width: int) -> Group:
        parts: list[Text] = [Text.from_markup(self.title, style="table.title", justify="left")]
        for cells, label in self.rows:
            head = label if label is not None else " ".join(c for c in cells[:self.label_columns] if c)
            parts.append(Text.from_markup(head, style="bold"))
            pairs = [Text.assemble((f"{column.header}: ", "dim"), Text.from_markup(cell))
                     for column, cell in zip(self.columns[self.label_columns:], cells[self.label_columns:],
                                             strict=True) if cell]
            parts.extend(_packed(pairs, width, indent=2))
        return Group(*parts)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        def fits(table: Table) -> bool:
            return Measurement.get(console, options.update_width(NATURAL), table).maximum <= options.max_width

        full = self.table()
        if fits(full):
            yield full
            return
        if self.narrow:
            dropped = ", ".join(c.header for c in self.columns if c.header not in self.narrow)
            wide = Measurement.get(console, options.update_width(NATURAL), full).maximum
            narrow = self.table(self.narrow)
            if fits(narrow):
                yield narrow
                yield Text(f"Not shown: {dropped} (a terminal ≥ {wide} columns shows them){self.narrow_note}",
                           style="dim")
                return
        yield self.stacked(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(1, options.max_width)


def _packed(pairs: Iterable[Text], width: int, *, indent: int) -> list[Text]:
    """The pairs on as few lines as fit in `width`, three spaces apart, each line indented."""
    lines: list[Text] = []
    line: Text | None = None
    for pair in pairs:
        if line is not None and line.cell_len + 3 + pair.cell_len <= width:
            line.append("   ")
            line.append_text(pair)
            continue
        if line is not None:
            lines.append(line)
        line = Text(" " * indent, overflow="fold")
        line.append_text(pair)
    if line is not None:
        lines.append(line)
    return lines


def _best_of(problem: ProblemResult) -> OptimizerSummary | None:
    return next((b for b in problem.baselines if b.optimizer == problem.best_baseline), None)


def _outcome(outcome: str | None) -> str:
    style = {"win": "green", "loss": "red", "broken": "red"}.get(outcome or "", "yellow")
    return f"[{style}]{escape(outcome or '-')}[/{style}]"


def _interval(timing: dict[str, Any] | None) -> str:
    return f" [{fmt(timing['ci_low'])}, {fmt(timing['ci_high'])}] on {timing['problem']}" if timing else ""


REPORT_COLUMNS = [Column("problem"), Column("ratio", True), Column("p (Holm)", True), Column("outcome"),
                  Column("candidate loss [95% CI]", True), Column("lr", True), Column("best baseline"),
                  Column("baseline loss", True), Column("diverged", True), Column("speed-up", True),
                  Column("test acc", True), Column("curve (cand / base)")]


def report_table(report: BenchmarkReport) -> Listing:
    """One benchmark run: per problem the ratio to the best tuned baseline (below 1: the candidate's
    final loss is lower), its Holm-corrected p-value and the outcome, then the detail."""
    listing = Listing(
        title=escape(f"suite '{report.suite}': outcome {report.outcome}, geometric-mean loss ratio "
                     f"{fmt(report.geomean_ratio)} (below 1: lower loss than the best tuned baseline); "
                     f"time/step vs Adam {fmt(report.time_ratio_vs_adam)}{_interval(report.timing)}"),
        columns=REPORT_COLUMNS)
    for p in report.problems:
        cand, best = p.candidate, _best_of(p)
        spark = (sparkline([pt[1] for pt in p.curves.get("candidate", [])]) + " / "
                 + sparkline([pt[1] for pt in p.curves.get(p.best_baseline, [])]))
        listing.add_row(escape(p.problem), fmt(p.ratio), fmt(p.p_holm), _outcome(p.outcome),
                        f"{fmt(cand.median_final_loss)} [{fmt(cand.ci_low)}, {fmt(cand.ci_high)}]", fmt(cand.lr),
                        escape(f"{p.best_baseline} (lr {fmt(best.lr if best else None)})"),
                        fmt(best.median_final_loss if best else None), f"{cand.diverged}/{cand.runs}",
                        fmt(p.speedup), fmt(cand.median_test_accuracy), spark)
    return listing


def history_table(rows: list[dict[str, Any]], total: int, db_path: Path) -> Listing:
    listing = Listing(title=escape(f"{total} experiment(s) in {db_path}"), label_columns=2,
                      narrow=("id", "name", "outcome", "ratio", "verdict"),
                      narrow_note="; `frontier-mcp show ID` shows one in full", columns=[
        Column("id", True), Column("name"), Column("fields"), Column("status"), Column("outcome"),
        Column("ratio", True), Column("verdict"), Column("parent", True), Column("flags")])
    for row in rows:
        flags = ", ".join(([f"rediscovers {row['rediscovery_of']}"] if row["rediscovery_of"] else [])
                          + ([f"duplicate of #{row['duplicate_of']}"] if row["duplicate_of"] else []))
        listing.add_row(str(row["id"]), escape(row["name"]), escape(f"{row['field_a']} × {row['field_b']}"),
                        escape(row["status"]), _outcome(row["outcome"]), fmt(row["geomean_ratio"]),
                        _outcome(row["verdict"]), str(row["parent_id"] or ""), escape(flags),
                        label=f"#{row['id']} {escape(row['name'])}")
    return listing


def leaderboard_table(rows: list[dict[str, Any]], total: int) -> Listing:
    listing = Listing(
        title=f"Leaderboard ({total} benchmarked): geometric-mean final-loss ratio vs the best tuned baseline "
              "(below 1: lower loss than it)", label_columns=3,
        narrow=("rank", "id", "name", "ratio", "outcome", "verdict"),
        narrow_note="; `frontier-mcp show ID` shows one in full",
        columns=[Column("rank", True), Column("id", True), Column("name"), Column("fields"), Column("ratio", True),
                 Column("outcome"), Column("verdict")])
    for rank, row in enumerate(rows, 1):
        listing.add_row(str(rank), str(row["id"]), escape(row["name"]), escape(f"{row['field_a']} × {row['field_b']}"),
                        fmt(row["geomean_ratio"]), _outcome(row["outcome"]), _outcome(row["verdict"]),
                        label=f"{rank}. #{row['id']} {escape(row['name'])}")
    return listing


def node_label(row: ExperimentSummary, *, this: bool = False) -> str:
    """One experiment as a line of a lineage tree: status, latest visible run, holdout, verdict."""
    style = {"win": "green", "loss": "red", "broken": "red"}.get(row["verdict"] or row["outcome"] or "", "yellow")
    run = (f"{row['outcome']} on {row['suite']}, ratio {fmt(row['geomean_ratio'])}" if row["outcome"]
           else "not benchmarked")
    holdout = f", holdout {row['holdout']}" if row["holdout"] else ""
    name = f"[bold]#{row['id']} {escape(row['name'])}[/bold]" + (" ◀ this" if this else "")
    return (f"{name}  {escape(row['status'])}  [{style}]{escape(run + holdout)}[/{style}]  "
            f"verdict [{style}]{escape(row['verdict'] or '-')}[/{style}]")


def pairings_table(rows: list[PairingRow], limit: int) -> Listing:
    listing = Listing(title=f"{len(rows)} field pair(s) proposed (best ratio over the visible suites; failures: "
                            "verdict loss or broken)",
                      columns=[Column("fields"), Column("proposed", True), Column("experiments", True),
                               Column("best ratio", True), Column("wins", True), Column("failures", True),
                               Column("last proposed", True)])
    for row in rows[:limit]:
        a, _, b = row["pair_key"].partition("|")
        style = "green" if row["wins"] else ("red" if row["failures"] else "")
        listing.add_row(escape(f"{field_name(a)} × {field_name(b)}"), str(row["proposed"]), str(row["experiments"]),
                        fmt(row["best_ratio"]), str(row["wins"]),
                        f"[{style}]{row['failures']}[/{style}]" if style else str(row["failures"]),
                        time.strftime("%Y-%m-%d %H:%M", time.localtime(row["last_proposed"])))
    return listing


def verify_table(checks: list[Any], runs: int, reference_path: Path) -> Listing:
    listing = Listing(title=escape(f"{runs} reference runs from {reference_path} "
                                   "(every coordinate, every step; tolerance 1e-12 + 1e-10·|x| unless the run "
                                   "names its own)"),
                      columns=[Column("run"), Column("baseline"), Column("worst |diff|", True),
                               Column("worst diff / tol", True), Column("at step", True), Column("result")])
    for check in checks:
        result = "[green]pass[/green]" if check.ok else f"[red]FAIL[/red] {escape(check.error or '')}"
        listing.add_row(escape(check.label), escape(check.optimizer or "-"), fmt(check.worst_abs, ".2e"),
                        fmt(check.worst_ratio, ".2e"), str(check.worst_step), result)
    return listing
