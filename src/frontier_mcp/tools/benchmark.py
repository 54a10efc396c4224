"""benchmark: the protocol as a job that outlives the call; results or a job id to poll."""

from __future__ import annotations

import json
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from .. import holdout
from ..jobs import Job
from ..protocol import (
    CLAIM_SUITES,
    SUITES,
    TRIAL_COLUMNS,
    BenchmarkReport,
    SuiteSummary,
    benchmark,
    runs_per_optimizer,
)
from ..protocol.classes import CLASSES
from ..protocol.suites import VisibleSuite
from ..render.text import render_table
from ..runtime import Runtime
from ._common import fail, harness_for, hints, reply, require_built, runtime
from .ui import UI_META, with_verdict


class BenchmarkStatus(BaseModel):
    job_id: str
    experiment_id: int | None
    status: str = Field(description="running, done, failed, cancelled or interrupted")
    done: int = Field(description="harness runs finished")
    total: int
    message: str
    elapsed_seconds: float
    benchmark_run_id: int | None = Field(None, description="archive id of the finished run")
    report: BenchmarkReport | None = Field(None, description="present when status is done")
    holdout: SuiteSummary | None = Field(
        None, description="after a win on 'standard' (overall or in some class): whether the hidden holdout gate "
                          "passed, overall and per class (nothing else is shown)")
    holdout_budget: str | None = Field(
        None, description="after a win on 'standard': how many holdout consultations are left, or why none ran")
    error: str | None = None
    ablation: dict[str, Any] | None = Field(
        None, description="for an ablation job: per switched-off mechanism, whether it mattered and per-problem "
                          "ratios (variant / full candidate)")
    next_step: str


REPORT_SCHEMA_URI = "frontier://schema/benchmark-report"


class BenchmarkStatusWire(BaseModel):
    """BenchmarkStatus as the tools declare it: the same fields, with the report and the holdout as
    plain objects whose fields are documented once, in a resource. Three tools return it; spelling
    the report's schema out in each made `tools/list` 66k characters."""

    job_id: str
    experiment_id: int | None
    status: str = Field(description="running, done, failed, cancelled or interrupted")
    done: int = Field(description="harness runs finished")
    total: int
    message: str
    elapsed_seconds: float
    benchmark_run_id: int | None = Field(None, description="archive id of the finished run")
    report: dict[str, Any] | None = Field(
        None, description=f"present when status is done: the full report (per problem: ratios with intervals, "
                          f"p-values, outcomes, tuned settings, curves, errors); every field is described in "
                          f"{REPORT_SCHEMA_URI}")
    holdout: dict[str, Any] | None = Field(
        None, description="after a win on a claim suite: whether its hidden holdout gate passed "
                          "({passed, problems, classes: {class: passed}}; nothing else is shown)")
    holdout_budget: str | None = Field(None, description="how many holdout consultations are left, or why none ran")
    error: str | None = None
    ablation: dict[str, Any] | None = Field(
        None, description="for an ablation job: per switched-off mechanism, whether it mattered and per-problem "
                          "ratios (variant / full candidate)")
    next_step: str
    summary: str | None = Field(None, description="the whole result as compact text")


def report_schema() -> dict[str, Any]:
    """The report's JSON schema with every field's description (served at REPORT_SCHEMA_URI)."""
    return BenchmarkReport.model_json_schema()


async def run_benchmark_job(rt: Runtime, job: Job, experiment: dict, suite_name: str) -> dict:
    """The suite, then, if it measured a win and has a hidden holdout gate, that gate."""
    toolchain = await rt.require_ready()
    harness = harness_for(rt, experiment)
    build = rt.archive.last_build(experiment["id"]) or {}
    provenance = {**json.loads(build.get("provenance") or "{}"), "command": f"{harness.binary} run"}

    async def run_suite(name: str) -> tuple[BenchmarkReport, int]:
        report, trials = await benchmark(
            harness, SUITES[name], cache_dir=rt.lab.cache, toolchain_version=toolchain.version,
            provenance={**provenance, "suite": name},
            progress=lambda done, total, message: rt.jobs.progress(job, done, total, f"{name}: {message}"))
        rows = [{k: trial.get(k) for k in TRIAL_COLUMNS} for trial in trials]
        run_id = rt.archive.add_benchmark_run(
            experiment["id"], job_id=job.id, suite=name, harness_version=report.harness_version,
            outcome=report.outcome, geomean_ratio=report.geomean_ratio, wins=report.wins, ties=report.ties,
            losses=report.losses, summary=report.model_dump(mode="json"), provenance=report.provenance,
            seconds=report.seconds, trials=rows)
        return report, run_id

    report, run_id = await run_suite(suite_name)
    result: dict = {"benchmark_run_id": run_id, "report": report, "holdout": None, "holdout_budget": None}
    # A scoped claim needs its class's holdout too: consult it after any class won, not only the suite.
    gate = SUITES[suite_name].holdout
    if gate and (report.outcome == "win" or any(c.outcome == "win" for c in report.classes.values())):
        allowance = holdout.budget(rt.archive, experiment["id"])
        if allowance.available:
            hidden, _ = await run_suite(gate)
            result["holdout"] = hidden.summary()
            allowance = holdout.budget(rt.archive, experiment["id"])
            result["holdout_budget"] = allowance.describe()
        else:
            result["holdout_budget"] = ("the holdout was not consulted: its budget is spent (" + allowance.describe()
                                        + "); the win cannot be confirmed before the window frees up")
    return result


async def wait_and_describe(rt: Runtime, ctx: Context, job: Job, wait_seconds: float) -> CallToolResult:
    async def tick(current: Job) -> None:
        await ctx.report_progress(current.done, current.total or None, current.message)

    await rt.jobs.wait(job, wait_seconds, tick)
    await tick(job)  # a job that finished within the first tick still reports where it ended
    return describe(job)


def describe(job: Job) -> CallToolResult:
    result = job.result or {}
    report: BenchmarkReport | None = result.get("report")
    if job.status == "running":
        next_step = f"call job_status(job_id='{job.id}') to wait for the result"
    elif job.status == "done":
        next_step = (f"call record_result(experiment_id={job.experiment_id}, ...) with an honest verdict, "
                     "or evolve the conjecture (prompt 'iterate')")
    else:
        next_step = "call benchmark again to re-run it"
    status = BenchmarkStatus(
        job_id=job.id, experiment_id=job.experiment_id, status=job.status, done=job.done, total=job.total,
        message=job.message, elapsed_seconds=round(job.elapsed, 2),
        benchmark_run_id=result.get("benchmark_run_id"), report=report, holdout=result.get("holdout"),
        holdout_budget=result.get("holdout_budget"),
        error=job.error, ablation=result.get("ablation"), next_step=next_step)
    if status.ablation is not None:
        lines = [f"Ablation {job.id} on '{status.ablation['suite']}' done: each declared mechanism switched off "
                 "in turn, re-tuned with the same budget, compared with the full candidate on paired seeds."]
        for switch, res in status.ablation["switches"].items():
            verdict = (f"MATTERED: worse without it on {', '.join(res['worse_without_it'])}" if res["mattered"]
                       else "did not matter (no problem significantly worse without it)")
            extra = f"; better without it on {', '.join(res['better_without_it'])}" if res["better_without_it"] else ""
            lines.append(f"- {switch}: {verdict}{extra}; geomean ratio variant/full {res['geomean_ratio']:.3g}")
        text = "\n".join(lines)
    elif report is not None:
        text = (f"Benchmark {job.id} done in {report.seconds:.1f} s ({report.trials} harness runs, baseline "
                f"cache {report.baseline_cache}).\n{render_table(report)}")
        if status.holdout is not None:
            per_class = ", ".join(f"{name} {'passed' if ok else 'not passed'}"
                                  for name, ok in status.holdout.classes.items())
            text += (f"\nHidden holdout gate ({status.holdout.problems} problems not shown): "
                     f"{'PASSED' if status.holdout.passed else 'NOT PASSED'}" + (f"; per class: {per_class}." if
                                                                                  per_class else "."))
        if status.holdout_budget:
            text += f"\nHoldout: {status.holdout_budget}."
        text += f"\nNext: {next_step}."
    elif job.status == "running":
        text = (f"Benchmark {job.id} is running: {job.done}/{job.total} harness runs after "
                f"{job.elapsed:.0f} s. Next: {next_step}.")
    else:
        text = f"Benchmark {job.id} {job.status}: {job.error or job.message}. Next: {next_step}."
    return reply(status, text)


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names)


def _suite_choices() -> str:
    """One sentence per visible suite, generated from SUITES; a baseline list equal to an earlier
    suite's is not repeated (tools/list is read on every turn)."""
    seen: dict[tuple[str, ...], str] = {}
    parts = []
    for name, suite in SUITES.items():
        if suite.hidden:
            continue
        baselines = f"the baselines of '{seen[suite.baselines]}'" if suite.baselines in seen else (
            f"baselines {_names(suite.baselines)}")
        seen.setdefault(suite.baselines, name)
        parts.append(f"'{name}': {suite.purpose} ({len(suite.problems)} problems x {len(suite.eval_seeds)} "
                     f"evaluation seeds; {baselines}).")
    return " ".join(parts)


SUITE_CHOICES = _suite_choices()

DESCRIPTION = (
    "Run the benchmark protocol on a compiled experiment: every optimizer, the candidate and each baseline, is "
    "tuned on the same budget (learning-rate grid, then its own hyperparameters) on tuning seeds, then run on fresh "
    "evaluation seeds. Returns per problem the candidate's and the best baseline's median final loss, their ratio "
    "with a paired 95% interval, a Holm-corrected paired Wilcoxon p-value and the outcome (a win needs the whole "
    "interval below 0.95), a verdict per problem class (" + _names(tuple(CLASSES)) + "), curves and time per "
    "step. After a win on a suite built for claims (" + _names(CLAIM_SUITES) + ") its hidden holdout runs too "
    "(a few times per lineage and day) and tells only whether its gate passed. Long runs return a job id: poll "
    "job_status.")


def register(server: MCPServer) -> None:
    @server.tool(name="benchmark", title="Benchmark the optimizer", description=DESCRIPTION,
                 annotations=hints(read_only=False), meta=UI_META)
    async def benchmark_tool(
        ctx: Context,
        experiment_id: Annotated[int, Field(description="A compiled experiment.", ge=1)],
        suite: Annotated[VisibleSuite, Field(description=SUITE_CHOICES)
        ] = "quick",
        wait_seconds: Annotated[float | None, Field(
            description="How long to wait for the result before returning a job id (default: the server's "
                        "setting, under a minute).", ge=0, le=600)] = None,
    ) -> Annotated[CallToolResult, BenchmarkStatusWire]:

        rt = runtime(ctx)
        experiment = require_built(rt, experiment_id)
        if rt.archive.verdict(experiment_id) is not None:
            raise fail(f"experiment {experiment_id} has a recorded verdict, and its evidence is final; to measure "
                       f"more, write a child experiment (parent_id={experiment_id}). `ablate` still works on it.")
        for job in rt.jobs.jobs.values():
            if job.kind == f"bench-{suite}" and job.experiment_id == experiment_id and job.status == "running":
                described = await wait_and_describe(rt, ctx, job, wait_seconds or rt.settings.wait_seconds)
                return with_verdict(ctx, described)
        total = runs_per_optimizer(SUITES[suite])
        job = rt.jobs.start(f"bench-{suite}", experiment_id, total,
                            lambda job: run_benchmark_job(rt, job, experiment, suite))
        wait = rt.settings.wait_seconds if wait_seconds is None else wait_seconds
        return with_verdict(ctx, await wait_and_describe(rt, ctx, job, wait))
