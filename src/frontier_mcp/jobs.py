"""Long work as jobs: a tool starts it, waits a bounded time, and hands back a job id to poll.

Hosts cut tool calls (Claude Desktop at about a minute), so a benchmark must outlive the call
that started it. Jobs run in the server's task group; their state is mirrored into the archive,
so a restarted server reports the jobs its predecessor left unfinished as interrupted.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .archive import Archive

log = logging.getLogger(__name__)

KEEP_FINISHED = 16  # each holds a full report; memory stays flat over thousands of benchmarks


class Interrupted(Exception):
    """The work lost what it ran on (a Ray cluster's head), through no fault of its own: the job ends
    `interrupted`, as one a restarted server finds unfinished, not `failed`."""


@dataclass
class Job:
    id: str
    kind: str
    experiment_id: int | None
    total: int
    done: int = 0
    message: str = "queued"
    status: str = "running"
    result: Any = None
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    finished: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope | None = None
    _last_saved: float = 0.0

    @property
    def elapsed(self) -> float:
        return time.time() - self.started_at


class Jobs:
    def __init__(self, archive: Archive, group: TaskGroup):
        self.archive = archive
        self.group = group
        self.jobs: dict[str, Job] = {}

    def start(self, kind: str, experiment_id: int | None, total: int,
              work: Callable[[Job], Awaitable[Any]]) -> Job:
        job = Job(id=f"{kind}-{uuid.uuid4().hex[:10]}", kind=kind, experiment_id=experiment_id, total=total)
        self.archive.add_job(job.id, kind, experiment_id, total)
        self.jobs[job.id] = job
        self.group.start_soon(self._run, job, work)
        return job

    async def _run(self, job: Job, work: Callable[[Job], Awaitable[Any]]) -> None:
        with anyio.CancelScope() as scope:
            job.scope = scope
            try:
                job.result = await work(job)
                job.status, job.message = "done", "finished"
            except Exception as exc:  # the job's failure is data for the model, not a server crash
                log.exception("job %s did not finish", job.id)
                while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
                    exc = exc.exceptions[0]  # a task group's wrapper says nothing the model can act on
                if isinstance(exc, ExceptionGroup):  # chunks that lost their cluster at the same moment
                    exc = exc.exceptions[0] if exc.split(Interrupted)[1] is None else exc
                job.status = "interrupted" if isinstance(exc, Interrupted) else "failed"
                job.error, job.message = str(exc) or type(exc).__name__, job.status
        if scope.cancelled_caught and job.status == "running":
            job.status, job.message = "cancelled", "cancelled"
        with anyio.CancelScope(shield=True):
            try:
                self.archive.update_job(job.id, status=job.status, done=job.done, total=job.total,
                                        message=job.message, error=job.error)
            except Exception:
                log.exception("could not record the end of job %s", job.id)
            job.finished.set()
            self._forget_old()

    def _forget_old(self) -> None:
        """Keep the newest finished jobs in memory; job_status rebuilds older ones from the archive."""
        finished = [j for j in self.jobs.values() if j.finished.is_set()]
        for old in finished[:-KEEP_FINISHED]:
            del self.jobs[old.id]

    def progress(self, job: Job, done: int, total: int, message: str) -> None:
        job.done, job.total, job.message = done, total, message
        now = time.monotonic()
        if now - job._last_saved > 2.0:
            job._last_saved = now
            try:
                self.archive.update_job(job.id, done=done, total=total, message=message)
            except Exception:
                log.exception("could not record progress of job %s", job.id)

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    async def wait(self, job: Job, seconds: float,
                   on_tick: Callable[[Job], Awaitable[None]] | None = None) -> bool:
        """Wait up to `seconds` for the job; True if it finished. Ticks twice a second for progress."""
        deadline = time.monotonic() + seconds
        while not job.finished.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with anyio.move_on_after(min(0.5, remaining)):
                await job.finished.wait()
            if on_tick is not None:
                await on_tick(job)
        return job.finished.is_set()

    def cancel(self, job: Job) -> None:
        if job.scope is not None and not job.finished.is_set():
            job.scope.cancel()

    def cancel_all(self) -> None:
        for job in self.jobs.values():
            self.cancel(job)
