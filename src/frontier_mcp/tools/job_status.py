"""job_status: wait on, or cancel, a running benchmark."""

from __future__ import annotations

import json
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import Field

from ..archive import is_hidden, load_report
from ..jobs import Job
from ..runtime import Runtime
from ._common import fail, hints, runtime
from ._errors import archive_errors
from .benchmark import BenchmarkStatus, BenchmarkStatusWire, describe, wait_and_describe
from .ui import UI_META, with_verdict


def register(server: MCPServer) -> None:
    @server.tool(title="Wait on or cancel a job", annotations=hints(read_only=False, idempotent=True), meta=UI_META)
    async def job_status(
        ctx: Context,
        job_id: Annotated[str, Field(description="The job id returned by benchmark or ablate.", min_length=1,
                                     max_length=64, pattern=r"^[a-z0-9-]+$")],
        wait_seconds: Annotated[float, Field(description="How long to wait for it to finish.", ge=0,
                                             le=600)] = 30.0,
        cancel: Annotated[bool, Field(description="Cancel the job instead of waiting.")] = False,
    ) -> Annotated[CallToolResult, BenchmarkStatusWire]:
        """Report a job's progress (a benchmark or an ablation), waiting up to wait_seconds for it to finish; with cancel=true, stop it (its processes are killed and nothing partial is archived). Finished jobs return the full benchmark report or the ablation's verdicts."""
        rt = runtime(ctx)
        job = rt.jobs.get(job_id)
        if job is None:
            with archive_errors():
                return with_verdict(ctx, describe(said_once(_from_archive(rt, job_id))))
        if cancel:
            rt.jobs.cancel(job)
            await rt.jobs.wait(job, 10)
            return describe(said_once(job))
        return with_verdict(ctx, await wait_and_describe(rt, ctx, job, wait_seconds))


def said_once(job: Job) -> Job:
    """A cancelled job's message repeats its status ("cancelled: cancelled"): say instead how far it got."""
    if job.status == "cancelled" and job.message in ("", "cancelled") and not job.error:
        job.message = (f"stopped after {job.done} of {job.total} harness runs; nothing partial was archived")
    return job


def _from_archive(rt: Runtime, job_id: str) -> Job:
    """A job of an earlier server process: rebuild what the archive knows of it."""
    row = rt.archive.job(job_id)
    if row is None:
        raise fail(f"no job {job_id!r}; job ids look like 'bench-quick-0123456789'.")
    job = Job(id=row["id"], kind=row["kind"], experiment_id=row["experiment_id"], total=row["total"],
              done=row["done"], message=row["message"], status=row["status"], error=row["error"],
              started_at=row["started_at"])
    reports = [(run["id"], run["suite"], load_report(run["summary"])) for run in rt.archive.runs_of_job(job_id)]
    shown = [(run_id, report) for run_id, suite, report in reports if not is_hidden(suite)]
    if shown:
        hidden = [report.summary() for _, suite, report in reports if is_hidden(suite)]
        job.result = {"benchmark_run_id": shown[0][0], "report": shown[0][1],
                      "holdout": hidden[0] if hidden else None}
    ablations = rt.archive.ablations_of_job(job_id)
    if ablations:
        job.result = {"ablation": {"suite": ablations[0]["suite"],
                                   "switches": {a["switch"]: json.loads(a["summary"]) for a in ablations}}}
    job.finished.set()
    return job


__all__ = ["BenchmarkStatus", "register"]
