"""The inline verdict: one benchmark's verdict as an MCP Apps view (`io.modelcontextprotocol/ui`).

A host that supports MCP Apps renders the `ui://` document in a sandboxed iframe beside the tool
result: per-problem loss ratios with their intervals, loss curves against the best baseline, the
claim the numbers support (whole suite or scoped to classes) and its hidden holdout gate.

One renderer, two ways in. The server renders the verdict here, with the same Jinja2 templates and
SVG plots as the HTML reports (autoescaped: knob names and error messages come from model code);
the document is the page template plus a small script that speaks the host's postMessage protocol:

- in a host, the tool's result reaches the view as `ui/notifications/tool-result`; the server put
  the rendered verdict in that result's `_meta` (for hosts that declared the extension only), and
  the script places it. The view holds no second renderer of the report in JavaScript.
- read as `ui://frontier-mcp/verdict/{experiment_id}`, the document carries that experiment's
  recorded verdict already rendered, so it shows without a host (a browser, a test, a host that
  only reads resources).

The document fetches nothing: its Content-Security-Policy allows no source but inline styles,
`data:` images and the bridge script by its SHA-256, so even a missed escape could not run code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from markupsafe import Markup

from .. import __version__
from ..archive import Archive, is_hidden, load_report
from ..protocol import CLAIM_SUITES, SUITES, BenchmarkReport, SuiteSummary
from .env import ENV
from .html import problem_plots

BRIDGE_TEMPLATE = "app_bridge.js"


@dataclass
class ClassRow:
    name: str
    outcome: str
    wins: int
    ties: int
    losses: int
    geomean_ratio: float | None
    pooled_p: float
    holdout: bool | None  # None: the gate has no answer for this class (not consulted)


@dataclass
class Claim:
    """What the numbers support, and where the hidden gate stands on it."""

    scope: list[str] | None  # None: no claim; [] the whole suite; else the classes won
    why: str
    holdout: str  # passed, not passed, not consulted, not applicable
    holdout_note: str
    recorded: dict[str, Any] | None = None  # the verdict the archive holds, with its claim test


@dataclass
class Verdict:
    report: BenchmarkReport
    experiment_id: int | None = None
    benchmark_run_id: int | None = None
    job_id: str | None = None
    holdout: SuiteSummary | None = None
    holdout_budget: str | None = None
    recorded: dict[str, Any] | None = None
    claim: Claim = field(init=False)

    def __post_init__(self) -> None:
        self.claim = claim_of(self)


def claim_of(verdict: Verdict) -> Claim:
    """The claim a win could rest on, read off the report and the gate as record_result would meet them:
    descriptive only (record_result still judges, and runs the lab-wide test)."""
    report, gate = verdict.report, verdict.holdout
    won_classes = sorted(name for name, c in report.classes.items() if c.outcome == "win")
    recorded = None
    if verdict.recorded is not None:
        evidence = verdict.recorded.get("evidence") or {}
        if isinstance(evidence, str):
            evidence = json.loads(evidence or "{}")
        recorded = {"verdict": verdict.recorded.get("verdict"), "claim": evidence.get("claim")}
    if report.rediscovery_of:
        return Claim(None, f"the candidate reproduces {report.rediscovery_of}: a rediscovery, not a win",
                     "not applicable", "", recorded)
    if report.suite not in CLAIM_SUITES:
        return Claim(None, f"the {report.suite} suite is for iterating; a claim rests on "
                           f"{' or '.join(CLAIM_SUITES)}", "not applicable",
                     "no hidden gate follows this suite", recorded)
    if report.outcome == "win":
        scope: list[str] = []
        why = "won on the whole suite (a problem won, none lost)"
    elif won_classes:
        scope = won_classes
        those = "those classes" if len(won_classes) > 1 else "that class"
        why = f"won on {', '.join(won_classes)} only: a claim scoped to {those}"
    else:
        return Claim(None, f"no win to claim: {report.outcome} ({report.wins} won, {report.ties} tied, "
                           f"{report.losses} lost)", "not applicable", "the gate runs only after a win", recorded)
    if gate is None:
        note = verdict.holdout_budget or "the gate was not consulted (cancelled, interrupted or out of budget)"
        return Claim(scope, why, "not consulted", note, recorded)
    passed = gate.passed if not scope else all(gate.classes.get(c, False) for c in scope)
    note = f"{SUITES[report.suite].holdout}: {gate.problems} problems never shown"
    if verdict.holdout_budget:
        note += f"; {verdict.holdout_budget}"
    return Claim(scope, why, "passed" if passed else "not passed", note, recorded)


def class_rows(verdict: Verdict) -> list[ClassRow]:
    gate = verdict.holdout.classes if verdict.holdout is not None else {}
    return [ClassRow(name, c.outcome, c.wins, c.ties, c.losses, c.geomean_ratio, c.pooled_p, gate.get(name))
            for name, c in verdict.report.classes.items()]


# The interval plot: one row per problem, the ratio's 95% interval on a log axis, with the lines a win
# (0.95) and a loss (1/0.95) must clear.
WIN_LINE, LOSS_LINE = 0.95, 1 / 0.95


def ratio_plot(report: BenchmarkReport) -> Markup:
    label_w, plot_w, right, row_h, top, bottom = 170, 380, 16, 24, 28, 34
    values = [v for p in report.problems for v in (p.ratio, *(p.ratio_ci or ()))
              if v is not None and math.isfinite(v) and v > 0]
    logs = [math.log10(v) for v in [*values, WIN_LINE, LOSS_LINE]]
    low, high = min(logs), max(logs)
    pad = max((high - low) * 0.06, 0.05)
    low, high = low - pad, high + pad

    def px(value: float) -> float:
        value = min(max(value, 10 ** low), 10 ** high)
        return label_w + (math.log10(value) - low) / (high - low) * plot_w

    rows = []
    for i, p in enumerate(report.problems):
        y = top + row_h * i + row_h / 2
        ci = [v for v in (p.ratio_ci or []) if v is not None and math.isfinite(v) and v > 0]
        rows.append({"problem": p.problem, "outcome": p.outcome, "y": f"{y:.1f}",
                     "x": f"{px(p.ratio):.1f}" if math.isfinite(p.ratio) and p.ratio > 0 else None,
                     "ci": (f"{px(ci[0]):.1f}", f"{px(ci[-1]):.1f}") if len(ci) == 2 else None})
    first, last = math.ceil(low), math.floor(high)
    stride = max(1, math.ceil((last - first + 1) / 7))
    ticks = [(f"{px(10.0 ** k):.1f}", _decade(k)) for k in range(first, last + 1, stride)]
    height = top + row_h * len(report.problems) + bottom
    return Markup(ENV.get_template("ratios.svg.j2").render(
        width=label_w + plot_w + right, height=height, left=label_w, plot_w=plot_w, top=top,
        plot_h=row_h * len(report.problems), rows=rows, ticks=ticks,
        lines=[(f"{px(WIN_LINE):.1f}", "#135c2a", True), (f"{px(1.0):.1f}", "#3a414a", False),
               (f"{px(LOSS_LINE):.1f}", "#8a1c12", True)]))


def _decade(k: int) -> str:
    return format(10.0 ** k, "g") if -2 <= k <= 3 else f"1e{k}"


def verdict_fragment(verdict: Verdict) -> Markup:
    """The verdict as an HTML fragment (the body of the view): also what a tool result's `_meta` carries."""
    report = verdict.report
    return Markup(ENV.get_template("verdict.html.j2").render(
        v=verdict, r=report, claim=verdict.claim, classes=class_rows(verdict),
        ratios=ratio_plot(report) if report.problems else None, plots=problem_plots(report)))


def fragment_for_status(status: Mapping[str, Any]) -> str | None:
    """The verdict of a benchmark or job_status result (their structured content), if it carries a report."""
    if status.get("status") != "done" or not status.get("report"):
        return None
    holdout = status.get("holdout")
    return str(verdict_fragment(Verdict(
        report=load_report(status["report"]), experiment_id=status.get("experiment_id"),
        benchmark_run_id=status.get("benchmark_run_id"), job_id=status.get("job_id"),
        holdout=SuiteSummary.model_validate(holdout) if holdout else None,
        holdout_budget=status.get("holdout_budget"))))


def experiment_verdict(archive: Archive, experiment_id: int) -> Verdict | None:
    """An experiment's latest visible benchmark, the gate its job consulted, and the recorded verdict."""
    runs = archive.benchmark_runs(experiment_id)
    visible = [run for run in runs if not is_hidden(run["suite"])]
    if not visible:
        return None
    latest = visible[-1]
    gate = next((run for run in runs if is_hidden(run["suite"]) and latest["job_id"] is not None
                 and run["job_id"] == latest["job_id"]), None)
    return Verdict(report=load_report(latest["summary"]), experiment_id=experiment_id,
                   benchmark_run_id=latest["id"], job_id=latest["job_id"],
                   holdout=load_report(gate["summary"]).summary() if gate else None,
                   recorded=archive.verdict(experiment_id))


def fragment_for_experiment(archive: Archive, experiment_id: int) -> str | None:
    verdict = experiment_verdict(archive, experiment_id)
    return None if verdict is None else str(verdict_fragment(verdict))


@cache
def bridge() -> tuple[Markup, Markup]:
    """The view's only script and its CSP hash source."""
    loader = ENV.loader
    assert loader is not None
    source, _, _ = loader.get_source(ENV, BRIDGE_TEMPLATE)
    digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
    return Markup(source), Markup(f"'sha256-{digest}'")


WAITING = "Waiting for a benchmark result from frontier-mcp…"


def document(fragment: Markup | str | None, title: str = "verdict", waiting: str = WAITING) -> str:
    """The whole view: the page template, the verdict (or `waiting` until the host sends one), the bridge."""
    script, script_hash = bridge()
    return ENV.get_template("app.html.j2").render(
        title=title, fragment=Markup(fragment) if fragment is not None else None, waiting=waiting,
        bridge=script, script_hash=script_hash, version=__version__)


def experiment_document(archive: Archive, experiment_id: int) -> str:
    """The view with an experiment's recorded verdict in it (the `ui://frontier-mcp/verdict/{id}` resource)."""
    experiment = archive.require_experiment(experiment_id)
    fragment = fragment_for_experiment(archive, experiment_id)
    return document(fragment, title=f"#{experiment_id} {experiment['name']}",
                    waiting=f"Experiment #{experiment_id} has no benchmark yet.")
