"""Task groups for the benchmark path: steps that overlap fail as they did one after another."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
from anyio.abc import TaskGroup


@contextlib.asynccontextmanager
async def task_group() -> AsyncIterator[TaskGroup]:
    """A task group whose failure is its first error itself, not an ExceptionGroup: the tools catch
    HarnessError (and the job reports any error's message) as when these steps ran one after another."""
    try:
        async with anyio.create_task_group() as group:
            yield group
    except BaseExceptionGroup as errors:
        leaves: list[BaseException] = []
        pending: list[BaseException] = [errors]
        while pending:
            error = pending.pop(0)
            if isinstance(error, BaseExceptionGroup):
                pending[:0] = error.exceptions
            else:
                leaves.append(error)
        cancelled = anyio.get_cancelled_exc_class()
        first = next((e for e in leaves if not isinstance(e, cancelled)), None)
        if first is None:
            raise
        raise first from None
