"""ablate: benchmark a candidate with each declared mechanism switched off, to see which part mattered."""

from __future__ import annotations

import json
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import Field

from ..jobs import Job
from ..protocol import SUITES, benchmark, compare_variant, runs_per_optimizer
from ..protocol.suites import VisibleSuite
from ..runtime import Runtime
from ._common import fail, harness_for, hints, require_built, runtime
from .benchmark import BenchmarkStatusWire, wait_and_describe


async def run_ablation(rt: Runtime, job: Job, experiment: dict[str, Any], suite_name: str,
                       switches: list[str]) -> dict[str, Any]:
    toolchain = await rt.require_ready()
    suite = SUITES[suite_name]
    harness = harness_for(rt, experiment)
    build = rt.archive.last_build(experiment["id"]) or {}
    provenance = {**json.loads(build.get("provenance") or "{}"), "suite": suite_name}
    per_variant = runs_per_optimizer(suite)

    async def variant(off: tuple[str, ...], index: int) -> list[dict[str, Any]]:
        def progress(done: int, _total: int, _message: str) -> None:
            finished = index * per_variant + done
            total = per_variant * (len(switches) + 1)
            rt.jobs.progress(job, finished, total, f"{finished}/{total} harness runs")

        _, trials = await benchmark(harness, suite, cache_dir=rt.lab.cache, toolchain_version=toolchain.version,
                                    provenance=provenance, progress=progress, switched_off=off)
        return trials

    full = await variant((), 0)
    results = {}
    for index, switch in enumerate(switches, start=1):
        results[switch] = compare_variant(suite, full, await variant((switch,), index))
    rt.archive.add_ablations(experiment["id"], job_id=job.id, suite=suite_name, results=results)
    return {"ablation": {"suite": suite_name, "switches": results}}


def register(server: MCPServer) -> None:
    @server.tool(title="Ablate the optimizer's mechanisms", annotations=hints(read_only=False))
    async def ablate(
        ctx: Context,
        experiment_id: Annotated[int, Field(description="A compiled experiment whose source declares switches.",
                                            ge=1)],
        suite: Annotated[VisibleSuite, Field(
            description="The suite to compare on (default 'standard', the suite a win is claimed on).")
        ] = "standard",
        wait_seconds: Annotated[float | None, Field(
            description="How long to wait before returning a job id (default: the server's setting).", ge=0,
            le=600)] = None,
    ) -> Annotated[CallToolResult, BenchmarkStatusWire]:
        """Find out which part of an optimizer matters: the source declares mechanisms with `fn switches(&self) -> Vec<&'static str>` and reads `ctx.switch("name")`; the server benchmarks the full candidate and, per switch, a variant with it off (re-tuned on the same budget), compared on paired seeds (Wilcoxon, Holm). A mechanism 'mattered' if some problem is significantly worse without it. Archived with the experiment; runs as a job (poll job_status)."""
        rt = runtime(ctx)
        experiment = require_built(rt, experiment_id)
        harness = harness_for(rt, experiment)
        try:
            switches = (await harness.declared())["switches"]
        except Exception as exc:  # the harness's own message says what is wrong with the declaration
            raise fail(str(exc)) from None
        if not switches:
            raise fail("the source declares no switches: add `fn switches(&self) -> Vec<&'static str> { vec![\"name\"] }` "
                       "to your Optimizer impl, read `ctx.switch(\"name\")` where the mechanism acts, write_crate and "
                       "compile again.")
        total = runs_per_optimizer(SUITES[suite]) * (len(switches) + 1)
        job = rt.jobs.start(f"ablate-{suite}", experiment_id, total,
                            lambda job: run_ablation(rt, job, experiment, suite, switches))
        return await wait_and_describe(rt, ctx, job, rt.settings.wait_seconds if wait_seconds is None else wait_seconds)
