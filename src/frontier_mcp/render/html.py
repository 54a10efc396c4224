"""HTML reports: one self-contained page per experiment, read from the archive only.

A page tells an experiment's story to a person: the conjecture, its fields and lineage, the
source, the last compile log, loss curves of the candidate against the best tuned baseline on
every problem of every visible benchmark run, the statistics, the hidden holdout's verdict (never
its problems), the recorded verdict and the provenance.

Everything the model wrote is untrusted: the templates (`templates/`) autoescape every value, and
the page carries a Content-Security-Policy that forbids scripts, so even a missed escape could not
run one. This module gathers the data; the templates hold the markup.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from .. import __version__
from ..archive import Archive, is_hidden, load_report
from ..protocol import BenchmarkReport, OptimizerSummary, ProblemResult
from .env import ENV, fmt
from .svg import Series, loss_plot

CANDIDATE_COLOR = "#1f5fbf"
BASELINE_COLOR = "#d9731a"


def field_name(field_id: str) -> str:
    try:
        from ..pairing import catalog

        card = catalog().get(field_id)
    except Exception:  # the catalog is a convenience here; the archive holds the ids
        card = None
    return card.name if card is not None else field_id


def page_name(experiment_id: int) -> str:
    return f"experiment-{experiment_id}.html"


def best_of(problem: ProblemResult) -> OptimizerSummary | None:
    """The problem's best tuned baseline, if the report lists it."""
    return next((b for b in problem.baselines if b.optimizer == problem.best_baseline), None)


def problem_plots(report: BenchmarkReport) -> list[Markup]:
    """Per problem, the candidate's median loss curve (solid) against its best tuned baseline's (dashed)."""
    plots = []
    for p in report.problems:
        best, base = best_of(p), p.best_baseline
        plots.append(loss_plot([
            Series(f"candidate (lr {fmt(p.candidate.lr)})", p.curves.get("candidate", []), CANDIDATE_COLOR),
            Series(f"{base} (lr {fmt(best.lr if best else None)})", p.curves.get(base, []), BASELINE_COLOR, True),
        ], title=f"{p.problem}: ratio {fmt(p.ratio)}, {p.outcome}"))
    return plots


@dataclass
class RunView:
    row: dict[str, Any]
    report: BenchmarkReport
    hidden: bool
    problems: list[tuple[ProblemResult, OptimizerSummary | None]] = field(default_factory=list)
    plots: list[Markup] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)


def _run_view(row: dict[str, Any]) -> RunView:
    report = load_report(row["summary"])
    view = RunView(row=row, report=report, hidden=is_hidden(row["suite"]))
    if view.hidden:
        return view
    view.problems = [(p, best_of(p)) for p in report.problems]
    view.plots = problem_plots(report)
    provenance = report.provenance or json.loads(row.get("provenance") or "{}")
    view.provenance = {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in provenance.items()}
    return view


def _compile_log(experiment: dict[str, Any], builds: list[dict[str, Any]]) -> dict[str, Any]:
    """The last build's diagnostics as one log, and the source lines it flagged."""
    if not builds:
        return {"same_source": True, "marked": set(), "text": ""}
    last = builds[-1]
    diagnostics = json.loads(last["diagnostics"] or "[]")
    provenance = json.loads(last["provenance"] or "{}")
    same_source = provenance.get("source_sha256") in (None, experiment["source_sha256"])
    marked = {int(d["line"]) for d in diagnostics
              if same_source and d.get("file") == "optimizer.rs" and isinstance(d.get("line"), int)}
    text = "".join(d.get("rendered") or f"{d.get('level')}: {d.get('message')}\n" for d in diagnostics)
    return {"same_source": same_source, "marked": marked, "text": text}


def render_experiment(archive: Archive, experiment_id: int) -> str:
    """The whole page for one experiment, as a string of self-contained HTML."""
    experiment = archive.require_experiment(experiment_id)
    chain = archive.lineage(experiment_id)
    lineage = [(depth, archive.experiment_summary(row["id"]), row["id"] == experiment_id)
               for depth, row in enumerate(chain)]
    lineage += [(len(chain) - 1 + node["depth"], archive.experiment_summary(node["id"]), False)
                for node in archive.descendants(experiment_id)]
    builds = archive.builds(experiment_id)
    last_build = builds[-1] if builds else None
    return ENV.get_template("experiment.html.j2").render(
        title=f"#{experiment['id']} {experiment['name']}", experiment=experiment,
        fields=f"{field_name(experiment['field_a'])} × {field_name(experiment['field_b'])}",
        summary=archive.experiment_summary(experiment_id), verdict=archive.verdict(experiment_id),
        lineage=lineage, runs=[_run_view(row) for row in archive.benchmark_runs(experiment_id)],
        builds=builds, compile_log=_compile_log(experiment, builds),
        source_lines=experiment["source"].splitlines() or [""],
        build_provenance=json.loads(last_build["provenance"] or "{}") if last_build else {},
        version=__version__, now=time.time(), db_path=archive.path)


def render_index(archive: Archive) -> str:
    rows = []
    for experiment_id in archive.experiment_ids():
        row = archive.experiment_summary(experiment_id)
        rows.append((row, f"{field_name(row['field_a'])} × {field_name(row['field_b'])}"))
    return ENV.get_template("index.html.j2").render(title="all experiments", rows=rows, db_path=archive.path)


def write_reports(archive: Archive, reports_dir: Path, experiment_ids: Iterable[int]) -> list[Path]:
    """Write one page per experiment, plus the index; returns the experiment pages' paths."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for experiment_id in experiment_ids:
        path = reports_dir / page_name(experiment_id)
        _write(path, render_experiment(archive, experiment_id))
        written.append(path)
    _write(reports_dir / "index.html", render_index(archive))
    return written


def _write(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
