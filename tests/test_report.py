"""The person-facing archive views: HTML reports opened in a real headless Chromium, lineage, pairings.

The archive is built through the real MCP tools over stdio (propose_pairing, write_crate, compile,
benchmark, record_result), a parent and a child, the parent's statement carrying a script that
must render as text and never run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from frontier_mcp.archive import Archive

from .conftest import call, example_source, server_params
from .test_validate import GOOD

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

INJECTED = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"
CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome")
                 if (found := shutil.which(name))), None)


async def _finished(client: Client, exp_id: int) -> dict[str, Any]:
    built = await call(client, "compile", {"experiment_id": exp_id})
    assert built["ok"], built
    status = await call(client, "benchmark", {"experiment_id": exp_id, "suite": "quick"})
    while status["status"] == "running":
        status = await call(client, "job_status", {"job_id": status["job_id"], "wait_seconds": 60})
    assert status["status"] == "done", status
    return dict(status["report"])


async def _build_archive(home: Path) -> dict[str, Any]:
    async with Client(server_params(home), read_timeout_seconds=600) as client:
        pairing = await call(client, "propose_pairing", {"include": ["knot-theory", "fluid-dynamics"],
                                                         "allow_repeat": True})
        parent = await call(client, "write_crate", {
            "pairing_id": pairing["pairing_id"], "name": "report_parent", "source": GOOD,
            "statement": f"Plain SGD as the root of a lineage. {INJECTED}",
            "mechanism": "x <- x - lr * g; a & b < c > d \"quoted\".",
            "prediction": "Loses to momentum on the ill-conditioned quadratic."})
        parent_report = await _finished(client, parent["experiment_id"])
        await call(client, "record_result", {"experiment_id": parent["experiment_id"],
                                             "verdict": parent_report["outcome"], "notes": "root of the chain",
                                             "lessons": "plain SGD <b>is</b> SGD"})
        child = await call(client, "write_crate", {
            "pairing_id": pairing["pairing_id"], "name": "report_child", "source": example_source(),
            "parent_id": parent["experiment_id"], "statement": "Adam with sign-agreement damping, evolved from SGD.",
            "mechanism": "Adam's moments, damped where gradient and momentum disagree.",
            "prediction": "Beats its parent on the quadratic."})
        child_report = await _finished(client, child["experiment_id"])
        await call(client, "record_result", {"experiment_id": child["experiment_id"],
                                             "verdict": child_report["outcome"], "notes": "child of the root",
                                             "lessons": "moments help"})
    return {"home": home, "pairing": pairing, "parent": parent["experiment_id"], "child": child["experiment_id"],
            "parent_report": parent_report, "child_report": child_report}


@pytest.fixture(scope="module")
def archive_built(lab_home: Path) -> dict[str, Any]:
    return anyio.run(_build_archive, lab_home)


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "frontier_mcp", "--home", str(home), *args], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "220"}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


class Tags(HTMLParser):
    """Tag counts and the document's own <title> (not the SVG plots' titles)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.title = ""
        self._svg_depth = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self._svg_depth += tag == "svg"
        self._in_title = tag == "title" and self._svg_depth == 0

    def handle_endtag(self, tag: str) -> None:
        self._svg_depth -= tag == "svg"
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def parse(text: str) -> Tags:
    tags = Tags()
    tags.feed(text)
    return tags


def test_report_writes_escaped_self_contained_pages(archive_built: dict[str, Any]) -> None:
    home, parent, child = archive_built["home"], archive_built["parent"], archive_built["child"]
    done = cli(home, "report", str(child))
    paths = [Path(line) for line in done.stdout.splitlines() if line.strip()]
    assert paths[0] == home / "reports" / f"experiment-{child}.html"
    assert home / "reports" / f"experiment-{parent}.html" in paths  # the page links to it, so it is written
    page = paths[0].read_text()
    tags = parse(page)
    problems = archive_built["child_report"]["problems"]
    assert tags.counts.get("script", 0) == 0
    assert tags.counts["svg"] == len(problems) and tags.counts["polyline"] >= 2 * len(problems)
    assert f'href="experiment-{parent}.html"' in page
    for problem in problems:
        assert problem["problem"] in page
        assert f"{problem['ratio']:.3g}" in page and f"{problem['p_holm']:.3g}" in page
    for heading in ("Conjecture", "Lineage", "Results", "Verdict", "Compile log", "Source (optimizer.rs)",
                    "Provenance"):
        assert f">{heading}</h2>" in page, heading
    assert "Content-Security-Policy" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")

    parent_page = (home / "reports" / f"experiment-{parent}.html").read_text()
    assert f'href="experiment-{child}.html"' in parent_page
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in parent_page
    assert "<script" not in parent_page and "<img" not in parent_page and "<b>is</b>" not in parent_page
    assert "plain SGD &lt;b&gt;is&lt;/b&gt; SGD" in parent_page
    assert "a &amp; b &lt; c &gt; d &#34;quoted&#34;" in parent_page
    # the source, escaped, with a number per line
    assert parent_page.count('<td class="n">') == GOOD.count("\n")

    everything = cli(home, "report", "--all")
    pages = [Path(line) for line in everything.stdout.splitlines() if line.strip()]
    assert {paths[0], home / "reports" / f"experiment-{parent}.html"} <= set(pages)
    index = (home / "reports" / "index.html").read_text()
    assert f'href="experiment-{child}.html"' in index and "report_parent" in index


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium): "
                                              "the page could not be opened in a real browser")
def test_report_renders_in_headless_chromium(archive_built: dict[str, Any], tmp_path: Path) -> None:
    assert CHROMIUM is not None
    home, parent, child = archive_built["home"], archive_built["parent"], archive_built["child"]
    cli(home, "report", str(child))
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}"]
    for experiment_id, name in ((parent, "report_parent"), (child, "report_child")):
        url = (home / "reports" / f"experiment-{experiment_id}.html").as_uri()
        dumped = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=180)
        assert dumped.returncode == 0, dumped.stderr[-2000:]
        dom = dumped.stdout
        tags = parse(dom)
        # The injected script neither ran (the title is the page's own) nor became an element.
        assert tags.title == f"frontier-mcp · #{experiment_id} {name}", tags.title
        assert "pwned" not in tags.title and tags.counts.get("script", 0) == 0 and tags.counts.get("img", 0) == 0
        problems = archive_built["child_report" if experiment_id == child else "parent_report"]["problems"]
        assert tags.counts["svg"] == len(problems)
        assert tags.counts["polyline"] >= 2 * len(problems)
        assert all(len(points.split()) >= 2 for points in re.findall(r'<polyline points="([^"]+)"', dom))
        assert tags.counts["circle"] >= 2 * sum(len(p["curves"]["candidate"]) for p in problems) // 2
        assert "p (Holm)" in dom and "candidate loss [95% CI]" in dom
        for problem in problems:
            assert f"{problem['ratio']:.3g}" in dom
    assert "&lt;script&gt;document.title=" in subprocess.run(
        [*flags, "--dump-dom", (home / "reports" / f"experiment-{parent}.html").as_uri()],
        capture_output=True, text=True, timeout=180).stdout

    shot = tmp_path / "report.png"
    taken = subprocess.run([*flags, "--window-size=1280,2400", f"--screenshot={shot}",
                            (home / "reports" / f"experiment-{child}.html").as_uri()],
                           capture_output=True, text=True, timeout=180)
    assert taken.returncode == 0 and shot.exists(), taken.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a blank page compresses to a few KB


def test_lineage_shows_ancestors_and_descendants(archive_built: dict[str, Any]) -> None:
    home, parent, child = archive_built["home"], archive_built["parent"], archive_built["child"]
    from_child = cli(home, "lineage", str(child)).stdout
    assert "1 ancestor(s), 0 descendant(s)" in from_child
    lines = from_child.splitlines()[1:]  # below the header: the tree
    parent_line = next(i for i, line in enumerate(lines) if f"#{parent} report_parent" in line)
    child_line = next(i for i, line in enumerate(lines) if f"#{child} report_child" in line)
    assert parent_line < child_line and "◀ this" in lines[child_line]
    assert f"verdict {archive_built['child_report']['outcome']}" in lines[child_line]
    assert "quick" in lines[child_line] and f"{archive_built['child_report']['geomean_ratio']:.3g}" in lines[child_line]
    from_parent = cli(home, "lineage", str(parent)).stdout
    assert "0 ancestor(s), 1 descendant(s)" in from_parent and f"#{child} report_child" in from_parent
    missing = subprocess.run([sys.executable, "-m", "frontier_mcp", "--home", str(home), "lineage", "999999"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_pairings_table_counts_proposals_experiments_and_best_ratio(archive_built: dict[str, Any]) -> None:
    home = archive_built["home"]
    text = cli(home, "pairings").stdout
    row = next(line for line in text.splitlines() if "Fluid dynamics" in line and "Knot theory" in line)
    cells = [cell.strip() for cell in row.split("│") if cell.strip()]
    db = Archive(home / "state.db")
    try:
        expected = db.one(
            """SELECT COUNT(DISTINCT p.id) AS proposed, COUNT(DISTINCT e.id) AS experiments,
                      MIN(b.geomean_ratio) AS best FROM pairings p LEFT JOIN experiments e ON e.pairing_id = p.id
                      LEFT JOIN benchmark_runs b ON b.experiment_id = e.id AND b.suite != 'holdout'
               WHERE p.pair_key = 'fluid-dynamics|knot-theory'""")
    finally:
        db.close()
    assert expected is not None and expected["experiments"] >= 2
    assert cells[1:4] == [str(expected["proposed"]), str(expected["experiments"]), f"{expected['best']:.3g}"]


def test_hidden_suite_pages_show_the_verdict_not_the_problems(archive_built: dict[str, Any], tmp_path: Path) -> None:
    """A holdout run in the archive: its outcome reaches the page, its problems and seeds do not."""
    from frontier_mcp.render.html import render_experiment

    source = Archive(archive_built["home"] / "state.db")
    run = source.benchmark_runs(archive_built["child"])[-1]
    source.close()
    summary = json.loads(run["summary"])
    hidden = {**summary, "suite": "holdout",
              "problems": [{**p, "problem": f"secret-problem-{i}"} for i, p in enumerate(summary["problems"])],
              "provenance": {**summary["provenance"], "eval_seeds": [31337]}}
    archive = Archive(tmp_path / "state.db")
    try:
        pairing = archive.add_pairing("knot-theory", "fluid-dynamics", None)
        exp_id, _ = archive.add_experiment(name="holdout_page", pairing_id=pairing, parent_id=None, source=GOOD,
                                           normalized_sha256="x", statement="A page with a holdout run.",
                                           mechanism="None.", prediction="Its problems stay hidden.")
        for suite, report in (("quick", summary), ("holdout", hidden)):
            archive.add_benchmark_run(exp_id, job_id=None, suite=suite, harness_version="test",
                                      outcome=report["outcome"], geomean_ratio=report["geomean_ratio"],
                                      wins=report["wins"], ties=report["ties"], losses=report["losses"],
                                      summary=report, provenance=report["provenance"], seconds=1.0, trials=[])
        page = render_experiment(archive, exp_id)
    finally:
        archive.close()
    assert "hidden suite “holdout”" in page and f"on {len(hidden['problems'])} problems" in page
    assert "secret-problem" not in page and "31337" not in page
    assert parse(page).counts["svg"] == len(summary["problems"])  # the visible run's plots only
