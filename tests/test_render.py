"""Rendering from recorded reports, without cargo: HTML pages, the terminal tables, the model's text."""

from __future__ import annotations

import io
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from frontier_mcp.archive import Archive, load_report
from frontier_mcp.protocol import BenchmarkReport
from frontier_mcp.render import terminal
from frontier_mcp.render.html import render_experiment, render_index, write_reports
from frontier_mcp.render.svg import Series, loss_plot

from .render_fixtures import SOURCE, build_archive, recorded


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1


def tags(page: str) -> dict[str, int]:
    parser = Tags()
    parser.feed(page)
    return parser.counts


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    info = build_archive(tmp_path_factory.mktemp("render") / "state.db")
    archive = Archive(info["path"])
    yield {**info, "archive": archive}
    archive.close()


def test_recorded_reports_load_through_the_one_model() -> None:
    for name in ("quick", "standard"):
        report = load_report(json.dumps(recorded(name)))
        assert isinstance(report, BenchmarkReport) and report.suite == name and report.problems
        assert load_report(recorded(name)) == report == load_report(report)


def test_an_old_report_missing_later_fields_still_loads() -> None:
    old = recorded("quick")
    for key in ("timing", "performance_profile", "indistinguishable_from", "geomean_speedup", "rediscovery_of"):
        old.pop(key, None)
    for problem in old["problems"]:
        problem.pop("speedup")
        problem["candidate"].pop("knobs", None)
        problem["candidate"].pop("evals_per_step", None)
    report = load_report(old)
    assert report.performance_profile == {} and report.indistinguishable_from == [] and report.timing is None
    assert report.problems[0].speedup is None and report.problems[0].candidate.knobs == {}
    empty = load_report({})
    assert empty.problems == [] and empty.suite == "" and empty.geomean_ratio is None


def test_an_experiment_page_escapes_everything_the_model_wrote(lab: dict[str, Any]) -> None:
    page = render_experiment(lab["archive"], lab["parent"])
    counts = tags(page)
    assert counts.get("script", 0) == 0 and counts.get("img", 0) == 0 and counts.get("b", 0) == 0
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in page
    assert "a &amp; b &lt; c &gt; d &#34;quoted&#34;" in page
    assert "plain SGD &lt;b&gt;is&lt;/b&gt; SGD" in page and "root &lt;i&gt;note&lt;/i&gt;" in page
    assert "mismatched types &lt;b&gt;here&lt;/b&gt;" in page  # compiler output quotes model code
    assert "rustc 1.0 &lt;x&gt;" in page
    assert "Content-Security-Policy" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert page.count('<td class="n">') == SOURCE.count("\n")
    assert '<tr id="L2" class="diag">' in page  # the line the compiler flagged
    for heading in ("Conjecture", "Lineage", "Results", "Verdict", "Compile log", "Source (optimizer.rs)",
                    "Provenance"):
        assert f">{heading}</h2>" in page, heading


def test_a_page_draws_every_visible_problem_and_links_its_family(lab: dict[str, Any]) -> None:
    report = lab["report"]
    page = render_experiment(lab["archive"], lab["child"])
    counts = tags(page)
    assert counts["svg"] == len(report["problems"]) and counts["polyline"] >= 2 * len(report["problems"])
    for problem in report["problems"]:
        assert problem["problem"] in page and f"{problem['ratio']:.3g}" in page and f"{problem['p_holm']:.3g}" in page
    assert f'href="experiment-{lab["parent"]}.html"' in page
    assert f'href="experiment-{lab["child"]}.html"' in render_experiment(lab["archive"], lab["parent"])


def test_a_hidden_suite_shows_its_verdict_never_its_problems(lab: dict[str, Any]) -> None:
    page = render_experiment(lab["archive"], lab["child"])
    assert "hidden suite “holdout”" in page and f"on {len(lab['report']['problems'])} problems" in page
    assert "secret-problem" not in page and "31337" not in page


def test_the_index_and_the_written_pages(lab: dict[str, Any], tmp_path: Path) -> None:
    index = render_index(lab["archive"])
    assert "2 experiment(s)" in index and "render_parent" in index
    written = write_reports(lab["archive"], tmp_path, [lab["child"]])
    assert written == [tmp_path / f"experiment-{lab['child']}.html"] and (tmp_path / "index.html").exists()
    assert not list(tmp_path.glob("*.tmp"))


def test_a_plot_breaks_at_a_diverged_point_and_escapes_its_labels() -> None:
    svg = loss_plot([Series("<b>cand</b>", [[0, 1.0], [1, 0.5], [2, None], [3, 0.1], [4, 0.05]], "#000"),
                     Series("adam", [[0, 1.0], [4, 0.2]], "#111", dashed=True)], title="t & <x>")
    assert svg.count("<polyline") == 3 and "diverged" in svg and "stroke-dasharray" in svg
    assert "&lt;b&gt;cand&lt;/b&gt;" in svg and "t &amp; &lt;x&gt;" in svg and "loss (log scale)" in svg
    assert "no finite loss recorded" in loss_plot([Series("x", [[0, None]], "#000")], title="empty")
    assert "loss (log scale)" not in loss_plot([Series("x", [[0, -1.0], [1, 0.5]], "#000")], title="linear")


def test_the_terminal_table_shows_each_problem(lab: dict[str, Any]) -> None:
    report = load_report(recorded("standard"))
    console = Console(file=io.StringIO(), width=250)
    console.print(terminal.report_table(report))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    for problem in report.problems:
        assert problem.problem in text
    assert terminal.sparkline([1.0, 0.1, 0.01, None]) == "█▄▁ "


def test_the_text_report_gives_every_tuned_setting_edge_eval_count_and_a_short_curve() -> None:
    from frontier_mcp.render.text import render_table

    report = BenchmarkReport.model_validate(recorded("standard"))
    first = report.problems[0]
    first.candidate.settings = {"lr": 0.001, "gamma": 0.5, "warmup": 0.0, "decay": "cosine"}
    first.candidate.at_edge = ["lr"]
    first.candidate.evals_per_step = 2.0
    adam = next(b for b in first.baselines if b.optimizer == "adam")
    adam.settings = {"lr": 0.316, "beta2": 0.99, "warmup": 0.05, "decay": "constant"}
    adam.at_edge = ["beta2"]
    text = render_table(report)
    line = next(t for t in text.splitlines() if t.startswith(f"{first.problem}: candidate"))
    # The candidate's knob and decay, the edge flagged; adam's hyperparameter and warm-up, its edge flagged;
    # settings at their neutral values (no warm-up, constant schedule) are left out.
    assert "candidate lr 0.001* gamma 0.5 decay cosine;" in line and "adam lr 0.316 beta2 0.99* warmup 0.05;" in line
    assert "candidate evals/step 2, diverged 0/12" in line
    for b in first.baselines:
        assert f"; {b.optimizer} lr " in line
    curve = text.splitlines()[text.splitlines().index(line) + 1]
    start, end = first.curves["candidate"][0], first.curves["candidate"][-1]
    assert curve.startswith(f"  curve {int(start[0])}: ") and f"{int(end[0])}: " in curve
    assert curve.count(" / ") == 4
