"""`frontier-mcp demo`: the whole loop through a real MCP client talking to a real server over stdio,
on the built-in example, with a deliberate compile error on the way.

The demo runs in its own lab (`<lab>/demo-lab`) unless a home is given with --home: its canned
experiment must not reach the user's lessons, pairings or leaderboard."""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text

from ..settings import Settings
from .checks import missing_prerequisites
from .consoles import out

if TYPE_CHECKING:
    from ..protocol import BenchmarkReport

BUG = "\nfn unused_scale() -> f64 {\n    let scale: f64 = \"0.5\";\n    scale\n}\n"
DEMO_LAB = "demo-lab"


class DemoFailed(Exception):
    """A step of the demo failed: its message is the whole story (no traceback)."""


def demo_settings(settings: Settings, *, home_given: bool) -> Settings:
    """The lab the demo runs in: the given home, else `demo-lab` inside the user's lab."""
    return settings if home_given else settings.model_copy(update={"home": settings.home / DEMO_LAB})


def demo(settings: Settings, *, suite: str, home_given: bool = False) -> int:
    """The whole loop through a real MCP client talking to a real server over stdio."""
    import anyio

    problems = missing_prerequisites(settings)
    if problems:
        for problem in problems:
            print(f"frontier-mcp demo: {problem}", file=sys.stderr)
        return 2
    lab = demo_settings(settings, home_given=home_given)
    try:
        return anyio.run(_demo, lab, suite, None if home_given else settings)
    except DemoFailed as exc:
        print(f"frontier-mcp demo: {exc}", file=sys.stderr)
        return 1
    except BaseExceptionGroup as group:  # raised inside the client's task group
        failed, rest = group.split(DemoFailed)
        if failed is None or rest is not None:
            raise
        for failure in failed.exceptions:
            print(f"frontier-mcp demo: {failure}", file=sys.stderr)
        return 1


def server_env(settings: Settings) -> dict[str, str]:
    """The server's environment: a host's bare one, plus the lab and the settings that find cargo and
    the sandbox (they may come from the user's frontier.toml, which the demo's lab does not have)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/"),
           "FRONTIER_LOG_LEVEL": "WARNING"}
    env.update({key: value for key, value in os.environ.items()
                if key.startswith("FRONTIER_") and key not in ("FRONTIER_HOME", "FRONTIER_LOG_LEVEL")})
    env["FRONTIER_HOME"] = str(settings.home)
    cargo = settings.cargo_path()
    if cargo is not None:
        env["FRONTIER_CARGO"] = str(cargo)
    if settings.bwrap:
        env["FRONTIER_BWRAP"] = settings.bwrap
    if not settings.sandbox:
        env["FRONTIER_SANDBOX"] = "off"
    return env


def step(title: str) -> None:
    """A rule with the step's title, or the title above a plain rule when the terminal is too narrow
    for both (rich would cut the title)."""
    if Text.from_markup(title).cell_len + 6 <= out.width:
        out.rule(title)
    else:
        out.rule()
        out.print(title)


def lesson(report: BenchmarkReport, suite: str) -> str:
    """What the demo's numbers say, and nothing they do not (kept under the 300 characters a summary shows)."""
    from ..render.terminal import fmt

    ratios = sorted((p.ratio, p.problem) for p in report.problems)
    spread = (f"ratios {fmt(ratios[0][0])} ({ratios[0][1]}) to {fmt(ratios[-1][0])} ({ratios[-1][1]}), "
              if ratios else "")
    return (f"Demo of the built-in example (Adam + sign-agreement damping) on '{suite}' vs the best tuned baseline: "
            f"{report.wins} win(s), {report.ties} tie(s), {report.losses} loss(es); {spread}geometric mean "
            f"{fmt(report.geomean_ratio)} (above 1 = higher final loss).")


def meaning(report: BenchmarkReport) -> str:
    """The closing sentence on the demo's own numbers."""
    from ..render.terminal import fmt

    counts = (f"{report.wins} win(s), {report.ties} tie(s), {report.losses} loss(es) over "
              f"{len(report.problems)} problems")
    if report.geomean_ratio is None:
        return f"Here no problem gave a ratio ({counts})."
    if report.geomean_ratio > 1:
        verdict = "the example ended with a higher loss than the best tuned baseline"
    elif report.geomean_ratio < 1:
        verdict = ("the example ended with a lower loss than the best tuned baseline; a claimed win also needs "
                   "the standard suite and the hidden holdout")
    else:
        verdict = "the example matched the best tuned baseline"
    return f"Here the geometric mean is {fmt(report.geomean_ratio)}: {verdict} ({counts})."


async def _demo(settings: Settings, suite: str, user: Settings | None) -> int:
    from mcp import Client, StdioServerParameters

    from ..archive import load_report
    from ..render.terminal import fmt, report_table
    from ..scaffold import shipped_dir

    example = (shipped_dir("rust_scaffold") / "template" / "optimizer.rs").read_text()
    params = StdioServerParameters(command=sys.executable, args=["-m", "frontier_mcp", "serve"],
                                   env=server_env(settings))
    step("[bold]frontier-mcp demo[/bold]")
    out.print("The research loop driven over MCP (stdio) by a script instead of a model.")
    out.print(f"lab: {escape(str(settings.home))}"
              + (" (the demo's own; your lab is untouched)" if user is not None else ""))
    async with Client(params, read_timeout_seconds=900) as client:
        tools = await client.list_tools()
        out.print(f"server offers {len(tools.tools)} tools: {', '.join(t.name for t in tools.tools)}")

        async def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
            result = await client.call_tool(name, args)
            if result.is_error:
                text = " ".join(getattr(c, "text", "") for c in result.content)
                raise DemoFailed(f"{name} failed: {text}")
            return result.structured_content or {}

        step("1. propose_pairing")
        pairing = await call("propose_pairing", {"allow_repeat": True})
        a, b = pairing["field_a"], pairing["field_b"]
        out.print(f"pairing {pairing['pairing_id']}: [bold]{escape(a['name'])}[/bold] × "
                  f"[bold]{escape(b['name'])}[/bold]")
        out.print(f"  {a['optimization_angle']}\n  {b['optimization_angle']}", markup=False)

        step("2. write_crate (with a deliberate bug)")
        name = f"demo_{int(time.time())}"
        conjecture = {
            "pairing_id": pairing["pairing_id"], "name": name,
            "statement": "A momentum method damped where gradient and momentum disagree in sign explores less "
                         "wastefully in ill-conditioned valleys than Adam.",
            "mechanism": "Adam's moments plus a per-coordinate damping factor that shrinks the step where the "
                         "gradient's sign disagrees with the momentum's (the built-in example optimizer).",
            "prediction": "At least matches Adam on rotated ill-conditioned quadratics; no gain on logistic "
                          "regression.",
        }
        written = await call("write_crate", {**conjecture, "source": example + BUG})
        experiment_id = written["experiment_id"]
        out.print(f"experiment {experiment_id} written ({written['source_lines']} lines)")

        step("3. compile: the error comes back on the model's own line")
        built = await call("compile", {"experiment_id": experiment_id})
        while built["status"] == "preparing":
            out.print("  the lab is building its harness (first use only)...")
            built = await call("compile", {"experiment_id": experiment_id})
        bug_line = (example + BUG).splitlines().index('    let scale: f64 = "0.5";') + 1
        for diagnostic in built["diagnostics"][:1]:
            out.print(f"  {diagnostic['level']} {diagnostic['code'] or ''} at {diagnostic['file']}:"
                      f"{diagnostic['line']}:{diagnostic['column']} (the bug is on line {bug_line}): "
                      f"{diagnostic['message']}", markup=False)
            out.print(diagnostic["rendered"], markup=False, highlight=False)
        if built["note"]:
            out.print(f"  note: {built['note']}", markup=False)
        out.print(f"  ok={built['ok']} in {built['seconds']:.2f} s")

        step("4. fix, re-write under the same name, compile again")
        await call("write_crate", {**conjecture, "source": example})
        built = await call("compile", {"experiment_id": experiment_id})
        out.print(f"  ok={built['ok']} in {built['seconds']:.2f} s, {built['warnings']} warning(s)")
        if not built["ok"]:
            raise DemoFailed(f"the fixed example did not compile: {built.get('note') or built['diagnostics'][:1]}")

        step(f"5. benchmark (suite '{suite}'): tuned baselines, paired seeds")
        started = time.perf_counter()
        status = await call("benchmark", {"experiment_id": experiment_id, "suite": suite})
        while status["status"] == "running":
            out.print(f"  job {status['job_id']}: {status['done']}/{status['total']} runs...")
            status = await call("job_status", {"job_id": status["job_id"], "wait_seconds": 30})
        if status["status"] != "done":
            raise DemoFailed(f"benchmark {status['status']}: {status.get('error')}")
        report = load_report(status["report"])
        out.print(report_table(report))
        out.print(f"  {report.trials} harness runs in {time.perf_counter() - started:.1f} s "
                  f"(baseline cache {report.baseline_cache})")

        step("6. record_result: the verdict the numbers support")
        measured = report.outcome
        verdict = measured if measured != "win" else "inconclusive"  # a win needs the standard suite
        recorded = await call("record_result", {
            "experiment_id": experiment_id, "verdict": verdict,
            "notes": f"demo run; measured outcome on '{suite}': {measured}, geomean ratio "
                     f"{fmt(report.geomean_ratio)}",
            "lessons": lesson(report, suite)})
        out.print(f"  recorded verdict '{recorded['verdict']}' with the measured evidence attached")

        step("7. history and leaderboard")
        page = await call("history", {"limit": 5})
        for row in page["rows"]:
            out.print(f"  #{row['id']} {row['name']} {row['status']} outcome={row['outcome']} "
                      f"verdict={row['verdict']}", markup=False)
        board = await call("leaderboard", {"limit": 5})
        for row in board["rows"]:
            out.print(f"  {row['rank']}. #{row['id']} {row['name']} ratio={fmt(row['geomean_ratio'])}", markup=False)

    out.print()
    step("[bold green]The loop ran end to end[/bold green]")
    out.print("Ratio = the candidate's median final loss ÷ the best tuned baseline's, on the same problems and "
              f"seeds: below 1 is better, above 1 worse. {meaning(report)}", markup=False)
    out.print(f"The demo's lab: {settings.home}"
              + (f" (kept apart from your lab, {user.home})" if user is not None else ""), markup=False)
    out.print(f"Look again: frontier-mcp --home {settings.home} show {experiment_id}", markup=False)
    out.print("Next: connect a model. `frontier-mcp config` prints the block for Claude Desktop, Claude Code, "
              "Cursor or VS Code; then ask the model to \"run the research loop\".", markup=False)
    return 0
