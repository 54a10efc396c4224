"""Run harness processes as Ray tasks, for a lab that has outgrown one machine (`frontier-mcp[ray]`).

`Harness.run` still chunks the plan, collects results by id and retries after a crash; a
`RayExecutor` only changes where each `<binary> run` process runs: in a Ray task that writes the
shipped binary to a temporary file on its node and runs the same sandboxed command as a local
chunk (`Harness.run_process` without an executor), so results are the same as the local runner's.
Every node needs bubblewrap and `frontier-mcp[ray]` installed, and the server's CPU model when the
lab compiles with `-C target-cpu=native`.

`ray` is imported here only, and only when a lab's settings select the Ray runner.
"""

from __future__ import annotations

import logging
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from .bench import Harness, HarnessError
from .sandbox import RunResult, Sandbox, SandboxUnavailable, check_sandbox
from .settings import Limits, Settings


def executor_for(settings: Settings) -> RayExecutor | None:
    """The executor the settings select for `Harness`: None runs harness processes locally."""
    return RayExecutor(settings.ray_address) if settings.runner == "ray" else None


def run_on_node(binary_name: str, binary: bytes, sandbox: Sandbox, limits: Limits,
                stdin: bytes) -> tuple[RunResult, list[bytes]]:
    """The body of a Ray task: on whichever node runs it, the same sandboxed process a local chunk runs."""
    problem = check_sandbox(sandbox)
    if problem:
        raise SandboxUnavailable(f"on Ray node {socket.gethostname()}: {problem}")
    lines: list[bytes] = []
    with tempfile.TemporaryDirectory(prefix="frontier-ray-") as folder:
        path = Path(folder) / binary_name
        path.write_bytes(binary)
        path.chmod(0o755)
        local = Harness(binary=path, sandbox=sandbox, limits=limits, workers=1)
        outcome = anyio.run(local.run_process, stdin, lines.append)
    return outcome, lines


class RayExecutor:
    """Runs each harness process as a Ray task; connects to Ray on first use."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address
        self._lock = threading.Lock()
        self._task: Any = None
        self._shipped: tuple[tuple[str, int, int], Any] | None = None

    def _connect(self) -> Any:
        try:
            import ray
        except ImportError:
            raise HarnessError("the Ray runner (FRONTIER_RUNNER=ray) needs the Ray extra: "
                               "pip install 'frontier-mcp[ray]'") from None
        with self._lock:
            if not ray.is_initialized():
                ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING)
            if self._task is None:
                self._task = ray.remote(run_on_node)
        return ray

    def _ship(self, binary: Path) -> tuple[Any, Any]:
        """Ray, the remote task and the binary's bytes in the object store (put once per build)."""
        ray = self._connect()
        stat = binary.stat()
        key = (str(binary), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if self._shipped is None or self._shipped[0] != key:
                self._shipped = (key, ray.put(binary.read_bytes()))
            return ray, self._shipped[1]

    async def __call__(self, harness: Harness, stdin: bytes, on_line: Callable[[bytes], None]) -> RunResult:
        ray, binary = await anyio.to_thread.run_sync(self._ship, harness.binary)
        ref = self._task.remote(harness.binary.name, binary, harness.sandbox, harness.limits, stdin)
        try:
            outcome, lines = await anyio.to_thread.run_sync(ray.get, ref, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            ray.cancel(ref, force=True)  # kills the task's worker; bwrap dies with its parent
            raise
        for line in lines:
            on_line(line)
        return outcome
