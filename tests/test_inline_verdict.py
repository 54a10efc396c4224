"""The inline verdict (MCP Apps, `io.modelcontextprotocol/ui`): benchmark, job_status and experiment link a
`ui://` view that renders the verdict in hosts that support the extension.

The fast tests render recorded reports (escaping, self-containment, the claim and its gate). The slow ones
benchmark the demo candidate (the scaffold's example optimizer) through the real server over stdio, with a
client that declares the extension and one that does not, and open the view in headless Chromium twice:
as the resource that embeds an experiment's recorded verdict, and inside a host page that speaks the
extension's postMessage protocol and hands it the real tool result.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp_types import CallToolResult

from frontier_mcp.archive import Archive, load_report
from frontier_mcp.protocol import SuiteSummary
from frontier_mcp.protocol.report import ClassVerdict
from frontier_mcp.render import app
from frontier_mcp.tools.ui import (
    APP_MIME_TYPE,
    EXTENSION_ID,
    UI_META,
    VERDICT_META_KEY,
    VERDICT_URI,
)

from .conftest import compiled, example_source, server_params
from .render_fixtures import INJECTED, add_run, build_archive, recorded

CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome")
                 if (found := shutil.which(name))), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install "
                                                              "chromium): the view could not be opened in a browser")
APPS = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
LINKED_TOOLS = ("benchmark", "job_status", "experiment")


def external_urls(html: str) -> list[str]:
    """Every URL the document could fetch or link to (the SVG namespace is a name, not a fetch)."""
    return [u for u in re.findall(r"(?:https?:)?//[\w.-]+[^\s\"'<>)]*", html) if u != "http://www.w3.org/2000/svg"]


def script_bodies(html: str) -> list[str]:
    return re.findall(r"<script[^>]*>(.*?)</script>", html, flags=re.S)


class Attributes(HTMLParser):
    """Every element's name and attributes, as a browser would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Attributes()
    parser.feed(html)
    return parser.elements


def assert_self_contained(html: str) -> None:
    assert external_urls(html) == []
    found = elements(html)
    loads = [(tag, a) for tag, attrs in found for a in attrs if a in ("src", "href", "action", "srcset")]
    assert loads == [], "nothing may be loaded or linked"
    assert [a for _, attrs in found for a in attrs if a.startswith("on")] == [], "no inline handler"
    assert [tag for tag, _ in found if tag in ("img", "iframe", "object", "embed", "link", "form")] == []
    (body,) = script_bodies(html)  # the bridge, and only it
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp is not None
    assert csp.group(1).startswith("default-src 'none'; script-src 'sha256-") and f"'sha256-{digest}'" in csp.group(1)
    assert "unsafe-inline" not in csp.group(1).split("style-src")[0], "no inline script beyond the hashed one"


def hostile_report() -> dict[str, Any]:
    """A recorded quick report with today's fields and model-controlled strings where the model reaches them:
    knob names, the candidate's panic messages and their locations."""
    report = recorded("quick")
    for i, p in enumerate(report["problems"]):
        p["problem_class"] = "smooth" if i < 2 else "stochastic"
        p["ratio_ci"] = [p["ratio"] * 0.8, p["ratio"] * 1.25]
        p["candidate"]["knobs"] = {f"beta{INJECTED}": 0.9}
    report["problems"][0]["candidate_errors"] = [{"message": f"panicked: {INJECTED}", "location": "optimizer.rs:3:5",
                                                  "runs": 2}]
    report["rediscovery_of"] = None
    report["classes"] = {"smooth": ClassVerdict(outcome="loss", problems=["a"], wins=0, ties=0, losses=2,
                                                geomean_ratio=3.0, pooled_p=0.9, pairs=16).model_dump(),
                         "stochastic": ClassVerdict(outcome="tie", problems=["b"], wins=0, ties=1, losses=0,
                                                    geomean_ratio=1.1, pooled_p=0.4, pairs=8).model_dump()}
    return report


def test_view_escapes_every_string_from_the_report_and_fetches_nothing() -> None:
    report = hostile_report()
    status = {"status": "done", "job_id": "bench-quick-0123", "experiment_id": 4, "benchmark_run_id": 9,
              "report": report, "holdout": None, "holdout_budget": None}
    fragment = app.fragment_for_status(status)
    assert fragment is not None
    html = app.document(fragment)
    assert_self_contained(html)
    assert "<img" not in html and "pwned" in html
    assert html.count("&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;") >= 1  # the panic message
    for p in report["problems"]:
        assert f'<tr data-problem="{p["problem"]}">' in html
        assert f"[{p['ratio_ci'][0]:.3g}, {p['ratio_ci'][1]:.3g}]" in html
    assert html.count("<svg") == len(report["problems"]) + 1  # a curve plot each, and the interval plot
    assert 'data-class="smooth"' in html and 'data-class="stochastic"' in html
    assert "the quick suite is for iterating" in html
    # Nothing to show for a job still running: the view falls back to the tool's text.
    assert app.fragment_for_status({**status, "status": "running", "report": None}) is None


def test_the_static_view_waits_for_the_host() -> None:
    html = app.document(None)
    assert_self_contained(html)
    assert 'data-source="waiting"' in html and app.WAITING in html
    (body,) = script_bodies(html)
    # The bridge reads the key the server writes, and speaks the protocol's methods.
    assert f'"{VERDICT_META_KEY}"' in body
    for method in ("ui/initialize", "ui/notifications/initialized", "ui/notifications/tool-result",
                   "ui/notifications/size-changed", "ui/resource-teardown"):
        assert f'"{method}"' in body, method


def verdict(report: dict[str, Any], holdout: SuiteSummary | None = None, budget: str | None = None) -> app.Verdict:
    return app.Verdict(report=load_report(report), holdout=holdout, holdout_budget=budget)


def test_the_claim_and_its_gate_as_record_result_would_meet_them() -> None:
    base = {**hostile_report(), "suite": "standard"}
    smooth_win = {**base, "outcome": "mixed", "classes": {
        **base["classes"], "smooth": {**base["classes"]["smooth"], "outcome": "win", "wins": 2, "losses": 0}}}
    gate = SuiteSummary(suite="holdout", passed=False, classes={"smooth": True, "stochastic": False}, problems=9)

    scoped = verdict(smooth_win, gate).claim
    assert (scoped.scope, scoped.holdout) == (["smooth"], "passed")  # the scope's gate, not the whole suite's
    whole = verdict({**smooth_win, "outcome": "win"}, gate).claim
    assert (whole.scope, whole.holdout) == ([], "not passed")
    spent = verdict({**smooth_win, "outcome": "win"}, None, "0 of 2 left for this lineage").claim
    assert (spent.holdout, spent.holdout_note) == ("not consulted", "0 of 2 left for this lineage")
    lost = verdict({**base, "outcome": "loss"}).claim
    assert lost.scope is None and lost.holdout == "not applicable" and "no win to claim" in lost.why
    copy = verdict({**smooth_win, "outcome": "win", "rediscovery_of": "adam"}, gate).claim
    assert copy.scope is None and "rediscovery" in copy.why
    quick = verdict({**smooth_win, "suite": "quick", "outcome": "win"}).claim
    assert quick.scope is None and quick.holdout == "not applicable"


def test_an_experiments_view_shows_its_gate_never_the_hidden_problems(tmp_path: Path) -> None:
    info = build_archive(tmp_path / "state.db")
    shown = {**hostile_report(), "suite": "standard", "outcome": "win", "wins": 1, "ties": 2, "losses": 0}
    hidden = {**shown, "suite": "holdout", "losses": 0, "geomean_ratio": 0.9, "classes": {},
              "problems": [{**p, "problem": f"secret-problem-{i}"} for i, p in enumerate(shown["problems"])]}
    archive = Archive(info["path"])
    try:
        archive.add_job("bench-standard-0a", "bench-standard", info["child"], 2)
        add_run(archive, info["child"], shown, job_id="bench-standard-0a")
        add_run(archive, info["child"], hidden, suite="holdout", job_id="bench-standard-0a")
        archive.add_verdict(info["child"], verdict="win", benchmark_run_id=None, notes="", lessons="", evidence={
            "claim": {"scope": "all", "p_value": 0.001, "level": 0.0125, "test": 1, "discovery": True}})
        page = app.experiment_document(archive, info["child"])
    finally:
        archive.close()
    assert_self_contained(page)
    assert "secret-problem" not in page
    assert "win on the whole suite" in page and ">passed</span> holdout: 3 problems never shown" in page
    assert page.count("<tr data-problem=") == len(shown["problems"])
    assert ("recorded verdict</dt><dd><span class=\"badge win\">win</span> claim on all: pooled p 0.001 within the "
            "lab-wide level 0.0125 (test 1)") in page


# -- the real server, the demo candidate ----------------------------------------------------------------

def dumped(result: CallToolResult) -> dict[str, Any]:
    """A tool result as it travels (and as a host hands it to the view)."""
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


async def _benchmark_demo(home: Path) -> dict[str, Any]:
    async with Client(server_params(home), read_timeout_seconds=600, extensions=[APPS], mode="legacy") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        resources = {str(r.uri): r for r in (await client.list_resources()).resources}
        exp_id = await compiled(client, "inline_verdict_demo", example_source())
        result = await client.call_tool("benchmark", {"experiment_id": exp_id, "suite": "quick"})
        while not result.is_error and (result.structured_content or {}).get("status") == "running":
            result = await client.call_tool("job_status", {"job_id": result.structured_content["job_id"],
                                                           "wait_seconds": 60})
        assert not result.is_error and result.structured_content is not None, result.content
        assert result.structured_content["status"] == "done", result.structured_content
        view = (await client.read_resource(VERDICT_URI)).contents[0]
        embedded = (await client.read_resource(f"ui://frontier-mcp/verdict/{exp_id}")).contents[0]
        detail = await client.call_tool("experiment", {"experiment_id": exp_id})
    return {"home": home, "experiment_id": exp_id, "tools": tools, "resources": resources, "result": result,
            "report": result.structured_content["report"], "view": view, "embedded": embedded, "detail": detail}


@pytest.fixture(scope="module")
def demo(lab_home: Path) -> dict[str, Any]:
    return anyio.run(_benchmark_demo, lab_home)


def assert_shows_the_report(html: str, report: dict[str, Any]) -> None:
    problems = report["problems"]
    assert len(problems) == 3
    for p in problems:
        assert re.search(rf'<tr data-problem="{re.escape(p["problem"])}">', html), p["problem"]
        assert f">{p['ratio']:.3g}<" in html
        assert p["ratio_ci"] and f"[{p['ratio_ci'][0]:.3g}, {p['ratio_ci'][1]:.3g}]" in html
    assert html.count("<svg") == len(problems) + 1
    assert html.count("<polyline") >= 2 * len(problems)  # the candidate's curve and the best baseline's
    assert ">Claim</h2>" in html and "hidden holdout gate" in html and "the quick suite is for iterating" in html


@pytest.mark.slow
def test_a_client_that_declares_apps_gets_the_link_and_the_rendered_verdict(demo: dict[str, Any]) -> None:
    for name in LINKED_TOOLS:
        assert demo["tools"][name].meta == UI_META, name
    assert demo["tools"]["record_result"].meta is None
    listed = demo["resources"][VERDICT_URI]
    assert listed.mime_type == APP_MIME_TYPE
    view = demo["view"]
    assert view.mime_type == APP_MIME_TYPE and view.meta == {"ui": {"prefersBorder": True}}
    assert_self_contained(view.text)
    assert 'data-source="waiting"' in view.text

    result = demo["result"]
    assert result.meta is not None
    rendered = result.meta[VERDICT_META_KEY]
    assert_shows_the_report(rendered, demo["report"])
    # The model's halves are the same as ever: the structured result carries no HTML.
    assert "<svg" not in json.dumps(result.structured_content) and "<svg" not in result.content[0].text

    embedded = demo["embedded"]
    assert embedded.mime_type == APP_MIME_TYPE
    assert_self_contained(embedded.text)
    assert_shows_the_report(embedded.text, demo["report"])
    assert f"Experiment #{demo['experiment_id']}" in embedded.text
    detail = demo["detail"]
    assert detail.meta is not None and f"Experiment #{demo['experiment_id']}" in detail.meta[VERDICT_META_KEY]


async def _same_calls(home: Path, job_id: str, exp_id: int) -> dict[str, list[CallToolResult]]:
    """job_status (a job of an earlier server: read back from the archive, so both answers come from the same
    rows) and experiment, from a client with the extension and one without."""
    out: dict[str, list[CallToolResult]] = {}
    for label, extensions in (("apps", [APPS]), ("plain", [])):
        async with Client(server_params(home), read_timeout_seconds=600, extensions=extensions,
                          mode="legacy") as client:
            out[label] = [await client.call_tool("job_status", {"job_id": job_id, "wait_seconds": 0}),
                          await client.call_tool("experiment", {"experiment_id": exp_id})]
    return out


def drop_clock(structured: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (structured or {}).items() if k != "elapsed_seconds"}


@pytest.mark.slow
def test_a_client_without_the_extension_gets_todays_results(demo: dict[str, Any]) -> None:
    got = anyio.run(_same_calls, demo["home"], demo["result"].structured_content["job_id"], demo["experiment_id"])
    for with_apps, plain in zip(got["apps"], got["plain"], strict=True):
        assert not plain.is_error and VERDICT_META_KEY not in (plain.meta or {})
        assert with_apps.meta is not None and VERDICT_META_KEY in with_apps.meta
        # Everything but the view's payload is identical, byte for byte.
        assert dumped(plain)["content"] == dumped(with_apps)["content"]
        # (A job of an earlier server counts its elapsed time up to now: the two calls were seconds apart.)
        assert drop_clock(plain.structured_content) == drop_clock(with_apps.structured_content)
    report = got["plain"][0].structured_content["report"]
    assert report["problems"] == demo["report"]["problems"]  # the same recorded numbers


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={profile}"]
    done = subprocess.run([*flags, *args], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def screenshot(url: str, shot: Path, profile: Path, size: str = "1100,1700") -> None:
    chromium(f"--window-size={size}", "--virtual-time-budget=5000", f"--screenshot={shot}", url, profile=profile)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a blank page compresses to a few KB


@pytest.mark.slow
@needs_chromium
def test_the_embedded_verdict_renders_in_headless_chromium(demo: dict[str, Any], tmp_path: Path) -> None:
    page = tmp_path / "verdict.html"
    page.write_text(demo["embedded"].text)
    dom = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile").stdout
    assert 'id="verdict"' in dom and 'data-source="embedded"' in dom  # no host: the embedded verdict stays
    assert_shows_the_report(dom, demo["report"])
    screenshot(page.as_uri(), tmp_path / "verdict.png", tmp_path / "profile")


# A host as the extension describes it, reduced to what the view needs: it renders the view's HTML in a sandboxed
# iframe, answers ui/initialize, waits for ui/notifications/initialized, then sends the tool's input and result.
HOST_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>host</title>
<style>body{margin:0;font:13px sans-serif;background:#e9ecef}iframe{border:1px solid #9aa3ad;width:1000px;
height:400px;background:#fff;margin:8px}</style></head><body>
<p id="log">host: loading the view</p><iframe id="view" sandbox="allow-scripts allow-same-origin"></iframe>
<div id="captured" hidden></div>
<script>
const VIEW = __VIEW__, INPUT = __INPUT__, RESULT = __RESULT__;
const frame = document.getElementById("view"), log = document.getElementById("log");
const seen = [];
window.addEventListener("message", (event) => {
  if (event.source !== frame.contentWindow) return;
  const m = event.data; seen.push(m.method || ("response " + m.id));
  const reply = (result) => frame.contentWindow.postMessage({jsonrpc: "2.0", id: m.id, result}, "*");
  const notify = (method, params) => frame.contentWindow.postMessage({jsonrpc: "2.0", method, params}, "*");
  if (m.method === "ui/initialize") {
    reply({protocolVersion: "2026-01-26", hostInfo: {name: "test-host", version: "1"}, hostCapabilities: {},
           hostContext: {displayMode: "inline", theme: "light"}, appInfo: m.params.appInfo});
  } else if (m.method === "ui/notifications/initialized") {
    notify("ui/notifications/tool-input", {arguments: INPUT});
    notify("ui/notifications/tool-result", RESULT);
  } else if (m.method === "ui/notifications/size-changed") {
    frame.style.height = m.params.height + "px";
    const doc = frame.contentDocument, verdict = doc.getElementById("verdict");
    const captured = document.getElementById("captured");
    captured.dataset.source = verdict.dataset.source;
    captured.innerHTML = verdict.innerHTML;
  }
  log.textContent = "host: " + seen.join(", ");
});
frame.srcdoc = VIEW;
</script></body></html>"""


def host_page(view_html: str, arguments: dict[str, Any], result: dict[str, Any]) -> str:
    def js(value: Any) -> str:
        return json.dumps(value).replace("</", "<\\/")

    return (HOST_PAGE.replace("__VIEW__", js(view_html)).replace("__INPUT__", js(arguments))
            .replace("__RESULT__", js(result)))


@pytest.mark.slow
@needs_chromium
def test_the_view_renders_the_tool_result_a_host_hands_it(demo: dict[str, Any], tmp_path: Path) -> None:
    page = tmp_path / "host.html"
    arguments = {"experiment_id": demo["experiment_id"], "suite": "quick"}
    page.write_text(host_page(demo["view"].text, arguments, dumped(demo["result"])))
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", page.as_uri(), profile=tmp_path / "profile").stdout
    log = re.search(r'<p id="log">(.*?)</p>', dom)
    assert log is not None
    said = log.group(1).removeprefix("host: ").split(", ")
    # The handshake first; then the view reports its size as it changes (the verdict made it taller).
    assert said[:3] == ["ui/initialize", "ui/notifications/initialized", "ui/notifications/size-changed"], said
    captured = re.search(r'<div id="captured" hidden="" data-source="([^"]*)">(.*)</div>\s*<script>', dom, re.S)
    assert captured is not None, dom[-3000:]
    assert captured.group(1) == "tool-result"
    assert_shows_the_report(captured.group(2), demo["report"])
    screenshot(page.as_uri(), tmp_path / "host.png", tmp_path / "profile", size="1020,1800")

    # Without the server's rendering (a host that drops _meta), the view shows the tool's own text.
    text_only = {k: v for k, v in dumped(demo["result"]).items() if k != "_meta"}
    page.write_text(host_page(demo["view"].text, arguments, text_only))
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", page.as_uri(), profile=tmp_path / "profile").stdout
    captured = re.search(r'<div id="captured" hidden="" data-source="([^"]*)">(.*)</div>\s*<script>', dom, re.S)
    assert captured is not None and captured.group(1) == "text"
    assert "<svg" not in captured.group(2) and f"Benchmark {demo['result'].structured_content['job_id']} done" in \
        captured.group(2)
