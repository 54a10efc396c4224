"""record_result: the model's verdict, checked against the measured evidence, closes an experiment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from ..archive import ArchiveError, is_hidden, load_report
from ..protocol import holdout_passed
from ._common import fail, hints, reply, runtime

Verdict = Literal["win", "loss", "tie", "mixed", "inconclusive", "broken"]

# A claim of a win needs the suite built for claims, not the one built for iterating.
WIN_SUITE = "standard"


class Recorded(BaseModel):
    experiment_id: int
    verdict: str
    benchmark_run_id: int | None
    evidence: dict[str, Any] = Field(description="the measured numbers the server attached")
    next_step: str


def evidence_of(rt: Any, experiment_id: int) -> tuple[dict[str, Any], int | None]:
    runs = rt.archive.benchmark_runs(experiment_id)
    build = rt.archive.last_build(experiment_id)
    evidence: dict[str, Any] = {
        "build": None if build is None else {"ok": bool(build["ok"]), "errors": build["errors"],
                                              "seconds": build["seconds"]},
        "benchmarks": [],
    }
    for run in runs:
        if is_hidden(run["suite"]):
            # One bit: the model must not learn the hidden suite's numbers from the evidence either.
            evidence["benchmarks"].append({
                "benchmark_run_id": run["id"], "job_id": run["job_id"], "suite": run["suite"],
                "passed": holdout_passed(run["losses"], run["geomean_ratio"])})
            continue
        report = load_report(run["summary"])
        item = {"benchmark_run_id": run["id"], "job_id": run["job_id"], "suite": run["suite"],
                "outcome": run["outcome"], "geomean_ratio": run["geomean_ratio"], "wins": run["wins"],
                "ties": run["ties"], "losses": run["losses"], "rediscovery_of": report.rediscovery_of,
                "per_problem": {p.problem: {"ratio": p.ratio, "p_holm": p.p_holm, "outcome": p.outcome,
                                            "best_baseline": p.best_baseline} for p in report.problems}}
        evidence["benchmarks"].append(item)
    latest = runs[-1]["id"] if runs else None
    return evidence, latest


def refusal(verdict: str, evidence: dict[str, Any], job_running: Callable[[str | None], bool]) -> str | None:
    """Why the numbers do not support this verdict, or None if they do."""
    benchmarks = evidence["benchmarks"]
    if verdict == "broken":
        return None
    if verdict == "inconclusive":
        return None
    if not benchmarks:
        return (f"there is no benchmark of this experiment, so '{verdict}' has no evidence; run benchmark, "
                "or record 'broken' (did not compile / did not run) or 'inconclusive'.")
    if verdict == "win":
        claims = [b for b in benchmarks if b["suite"] == WIN_SUITE]
        if not claims:
            return (f"a win must be supported by the '{WIN_SUITE}' suite; run benchmark(suite='{WIN_SUITE}') "
                    "first (the quick suite is for iterating).")
        last = claims[-1]
        if last["rediscovery_of"]:
            return f"the candidate reproduces {last['rediscovery_of']} exactly: that is a rediscovery, not a win."
        if last["outcome"] != "win":
            return (f"the latest '{WIN_SUITE}' benchmark (run {last['benchmark_run_id']}) measured "
                    f"'{last['outcome']}' ({last['wins']} wins, {last['ties']} ties, {last['losses']} losses after "
                    "Holm correction); a win needs at least one significant win and no significant loss.")
        holdout = next((b for b in benchmarks if is_hidden(b["suite"]) and b["job_id"] == last["job_id"]), None)
        if holdout is None:
            if job_running(last["job_id"]):
                return (f"the hidden holdout suite is still running after the '{WIN_SUITE}' win; wait with "
                        f"job_status(job_id='{last['job_id']}') and record the verdict when it is done.")
            return (f"the hidden holdout gate was not consulted after the '{WIN_SUITE}' win (run "
                    f"{last['benchmark_run_id']}: cancelled, interrupted, or its daily budget was spent); run "
                    f"benchmark(suite='{WIN_SUITE}') again later.")
        if not holdout["passed"]:
            return (f"the win on '{WIN_SUITE}' did not pass the hidden holdout gate (other functions, dimensions, "
                    "datasets and instances). The candidate looks tuned to the suites it was shown; record "
                    "'mixed' or 'loss', or evolve it.")
    return None


def register(server: MCPServer) -> None:
    @server.tool(title="Record the verdict", annotations=hints(read_only=False))
    async def record_result(
        ctx: Context,
        experiment_id: Annotated[int, Field(description="The experiment to close.", ge=1)],
        verdict: Annotated[Verdict, Field(
            description="win / loss / tie / mixed against the baselines, inconclusive, or broken (did not "
                        "compile or run). A win is refused unless the 'standard' suite measured one.")],
        notes: Annotated[str, Field(description="What happened, in your words: which problems, which numbers.",
                                    max_length=8000)] = "",
        lessons: Annotated[str, Field(description="What the next conjecture should learn from this one: "
                                      "shown to later pairings of the same fields.", max_length=4000)] = "",
    ) -> Annotated[CallToolResult, Recorded]:
        """Close an experiment with your verdict, notes and lessons. The server attaches the measured evidence (builds, every benchmark run, per-problem ratios and p-values) and refuses a verdict the numbers do not support (a 'win' needs a significant win on the standard suite with no significant loss, confirmed by the hidden holdout suite: no loss there and a geometric-mean loss ratio below 1). Verdicts are final; evolve the idea as a child experiment (parent_id) instead."""
        rt = runtime(ctx)
        try:
            rt.archive.require_experiment(experiment_id)
        except ArchiveError as exc:
            raise fail(str(exc)) from None
        evidence, latest = evidence_of(rt, experiment_id)
        problem = refusal(verdict, evidence, lambda job_id: job_id is not None and any(
            job.id == job_id and job.status == "running" for job in rt.jobs.jobs.values()))
        if problem:
            raise fail(f"verdict '{verdict}' not recorded: {problem}")
        try:
            rt.archive.add_verdict(experiment_id, verdict=verdict, benchmark_run_id=latest, notes=notes,
                                   lessons=lessons, evidence=evidence)
        except ArchiveError as exc:
            raise fail(str(exc)) from None
        result = Recorded(experiment_id=experiment_id, verdict=verdict, benchmark_run_id=latest,
                          evidence=evidence,
                          next_step="call propose_pairing for a new idea, or write a child experiment "
                                    f"with parent_id={experiment_id}")
        measured = ", ".join(
            f"{b['suite']}: gate {'passed' if b['passed'] else 'not passed'}" if "passed" in b else
            f"{b['suite']}: {b['outcome']} (geomean ratio {b['geomean_ratio']:.3g})"
            for b in evidence["benchmarks"] if "passed" in b or b["geomean_ratio"] is not None) or "no benchmark"
        return reply(result, f"Recorded '{verdict}' for experiment {experiment_id}. Measured: {measured}. "
                             f"Next: {result.next_step}.")
