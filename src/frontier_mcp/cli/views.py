"""The archive, read by a person: history, show, leaderboard, report (HTML), lineage, pairings."""

from __future__ import annotations

import json

from rich.markup import escape
from rich.panel import Panel
from rich.tree import Tree

from ..archive import Archive, ArchiveError, visible_report
from ..archive.cursors import history_cursor, leaderboard_cursor, parse_history_cursor, parse_leaderboard_cursor
from ..render import terminal
from ..render.terminal import field_name
from ..settings import Settings
from .consoles import err, out


def history(settings: Settings, *, limit: int, offset: int = 0, cursor: str | None = None) -> int:
    position, before = parse_history_cursor(cursor) if cursor else (0, None)
    rows, total = Archive(settings.db_path).history(limit=limit, offset=offset, before=before)
    out.print(terminal.history_table(rows, total, settings.db_path))
    start = position + offset
    if len(rows) == limit and start + limit < total:
        _next_page(start, limit, total, history_cursor(start + limit, rows[-1]["id"]))
    return 0


def leaderboard(settings: Settings, *, limit: int, suite: str | None, offset: int = 0,
                cursor: str | None = None) -> int:
    position, after = parse_leaderboard_cursor(cursor) if cursor else (0, None)
    rows, total = Archive(settings.db_path).leaderboard(limit=limit, offset=offset, suite=suite, after=after)
    start = position + offset
    table = terminal.leaderboard_table(rows, total)
    # The table numbers its rows from 1; a later page's ranks continue from the rows before it.
    for i, (cells, label) in enumerate(table.rows):
        cells[0] = str(start + i + 1)
        table.rows[i] = (cells, f"{start + i + 1}.{label.partition('.')[2]}" if label else label)
    out.print(table)
    if len(rows) == limit and start + limit < total:
        _next_page(start, limit, total,
                   leaderboard_cursor(start + limit, rows[-1]["geomean_ratio"], rows[-1]["id"]))
    return 0


def _next_page(start: int, limit: int, total: int, cursor: str) -> None:
    err.print(f"rows {start + 1:,}-{start + limit:,} of {total:,}; next page: --cursor {cursor} "
              f"(or --offset {start + limit}, which walks every row before it)", markup=False, highlight=False)


def show(settings: Settings, experiment_id: int, *, with_source: bool) -> int:
    from ..protocol import SuiteSummary

    archive = Archive(settings.db_path)
    row = archive.experiment(experiment_id)
    if row is None:
        out.print(f"[red]no experiment {experiment_id}[/red]")
        return 1
    chain = " → ".join(f"#{a['id']} {a['name']}" for a in archive.lineage(experiment_id))
    # The panel's title is short (rich cuts a title wider than the panel); the rest is in its body.
    out.print(Panel(f"[bold]{escape(row['name'])}[/bold] · {escape(field_name(row['field_a']))} × "
                    f"{escape(field_name(row['field_b']))} · {escape(row['status'])}\n\n"
                    f"[bold]{escape(row['statement'])}[/bold]\n\nMechanism: {escape(row['mechanism'])}\n\n"
                    f"Prediction: {escape(row['prediction'])}\n\nLineage: {escape(chain)}",
                    title=f"experiment #{row['id']}"))
    build = archive.last_build(experiment_id)
    if build is not None:
        out.print(f"Last build: {'ok' if build['ok'] else 'FAILED'} in {build['seconds']:.2f} s, "
                  f"{build['errors']} error(s), {build['warnings']} warning(s)")
        for diagnostic in json.loads(build["diagnostics"])[:5]:
            out.print(diagnostic["rendered"], markup=False, highlight=False)
    for run in archive.benchmark_runs(experiment_id):
        report = visible_report(run)
        if isinstance(report, SuiteSummary):  # a hidden suite: its verdict, never its problems (as on the pages)
            classes = ", ".join(f"{name} {'passed' if ok else 'not passed'}" for name, ok in report.classes.items())
            out.print(f"suite '{escape(report.suite)}' (hidden, {report.problems} problems): "
                      f"{'passed' if report.passed else 'not passed'}" + (f" ({escape(classes)})" if classes else ""))
        else:
            out.print(terminal.report_table(report))
    verdict = archive.verdict(experiment_id)
    if verdict is not None:
        out.print(Panel(f"Notes: {escape(verdict['notes'])}\n\nLessons: {escape(verdict['lessons'])}",
                        title=f"verdict: {escape(verdict['verdict'])}"))
    if with_source:
        from rich.syntax import Syntax

        out.print(Syntax(row["source"], "rust", line_numbers=True, word_wrap=True))  # wrapped, never cropped
    return 0


def report(settings: Settings, experiment_id: int | None, *, every: bool) -> int:
    """HTML pages in <lab>/reports/: one experiment and its lineage, or every experiment."""
    from ..render.html import write_reports

    archive = Archive(settings.db_path)
    reports_dir = settings.home / "reports"
    if every:
        ids = archive.experiment_ids()
    else:
        assert experiment_id is not None
        try:
            archive.require_experiment(experiment_id)
        except ArchiveError as exc:
            err.print(f"[red]{exc}[/red]")
            return 1
        # The page links to its ancestors' and descendants' pages: write those too.
        ids = [experiment_id] + [i for i in archive.linked_ids(experiment_id) if i != experiment_id]
    paths = write_reports(archive, reports_dir, ids)
    for path in paths:
        print(path)
    err.print(f"{len(paths)} page(s) and {reports_dir / 'index.html'} written")
    return 0


def lineage(settings: Settings, experiment_id: int) -> int:
    """A tree from the oldest ancestor down: the chain to this experiment, and everything below it."""
    archive = Archive(settings.db_path)
    try:
        target = archive.experiment_summary(experiment_id)
    except ArchiveError as exc:
        err.print(f"[red]{exc}[/red]")
        return 1
    chain = archive.lineage(experiment_id)
    root = archive.experiment_summary(chain[0]["id"])
    tree = Tree(terminal.node_label(root, this=root["id"] == experiment_id))
    node = tree
    for ancestor in chain[1:]:
        row = archive.experiment_summary(ancestor["id"])
        node = node.add(terminal.node_label(row, this=row["id"] == experiment_id))
    nodes = {experiment_id: node}
    below = archive.descendants(experiment_id)
    for child in sorted(below, key=lambda r: (r["depth"], r["id"])):
        parent = nodes.get(child["parent_id"])
        if parent is not None:
            nodes[child["id"]] = parent.add(terminal.node_label(archive.experiment_summary(child["id"])))
    out.print(f"Lineage of #{experiment_id} {target['name']} "
              f"[{field_name(target['field_a'])} × {field_name(target['field_b'])}]: "
              f"{len(chain) - 1} ancestor(s), {len(below)} descendant(s)", markup=False, highlight=False)
    out.print(tree)
    return 0


def pairings(settings: Settings, *, limit: int) -> int:
    """Every pair of fields proposed so far: how often, how many experiments, best ratio, failures. The
    first `limit` pairs are read in the table's order from an index; the rest are only counted."""
    archive = Archive(settings.db_path)
    rows, total = archive.pairing_rows(limit=limit), archive.pair_count()
    table = terminal.pairings_table(rows, limit)
    table.title = f"{total}{table.title.removeprefix(str(len(rows)))}"  # the table counts the rows it is given
    out.print(table)
    if total > limit:
        out.print(f"... {total - limit} more (--limit)")
    return 0
