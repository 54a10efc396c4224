"""Run harness processes as Ray tasks, for a lab that has outgrown one machine (`frontier-mcp[ray]`).

`Harness.run` still chunks the plan, collects results by id and retries after a crash; a
`RayExecutor` only changes where each harness process runs: in a Ray task that writes the shipped
binaries (the lab's harness and the candidate's) to a temporary folder on its node, checks their
hashes, and runs the same sandboxed command as a local chunk (`Harness.run_process` without an
executor), so results are the same as the local runner's.
Every node needs bubblewrap and `frontier-mcp[ray]` installed, and the server's CPU model when the
lab compiles with `-C target-cpu=native`.

`ray` is imported here only, and only when a lab's settings select the Ray runner.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from .protocol import Harness, HarnessError
from .sandbox import RunResult, Sandbox, SandboxUnavailable, check_sandbox
from .settings import Limits, Settings


def executor_for(settings: Settings) -> RayExecutor | None:
    """The executor the settings select for `Harness`: None runs harness processes locally."""
    return RayExecutor(settings.ray_address) if settings.runner == "ray" else None


Shipped = tuple[str, bytes, str]  # file name, contents, sha256


def run_on_node(harness: Shipped, candidate: Shipped | None, sandbox: Sandbox, limits: Limits,
                stdin: bytes) -> tuple[RunResult, list[bytes]]:
    """The body of a Ray task: on whichever node runs it, the same sandboxed process a local chunk runs."""
    problem = check_sandbox(sandbox)
    if problem:
        raise SandboxUnavailable(f"on Ray node {socket.gethostname()}: {problem}")
    lines: list[bytes] = []
    with tempfile.TemporaryDirectory(prefix="frontier-ray-") as folder:
        paths: list[Path] = []
        for name, contents, digest in (s for s in (harness, candidate) if s is not None):
            if hashlib.sha256(contents).hexdigest() != digest:
                raise HarnessError(f"on Ray node {socket.gethostname()}: {name} arrived corrupted (hash mismatch)")
            path = Path(folder) / name
            path.write_bytes(contents)
            path.chmod(0o755)
            paths.append(path)
        local = Harness(binary=paths[0], candidate=paths[1] if candidate else None, sandbox=sandbox,
                        limits=limits, workers=1)
        outcome = anyio.run(local.run_process, stdin, lines.append)
    return outcome, lines


class RayExecutor:
    """Runs each harness process as a Ray task; connects to Ray on first use."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address
        self._lock = threading.Lock()
        self._task: Any = None
        self._shipped: dict[tuple[str, int, int], Any] = {}

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

    def _ship(self, binary: Path | None) -> Any:
        """A binary's (name, bytes, sha256) in the object store, put once per build."""
        if binary is None:
            return None
        ray = self._connect()
        stat = binary.stat()
        key = (str(binary), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key not in self._shipped:
                contents = binary.read_bytes()
                self._shipped = {k: v for k, v in self._shipped.items() if k[0] != key[0]}
                self._shipped[key] = ray.put((binary.name, contents, hashlib.sha256(contents).hexdigest()))
            return self._shipped[key]

    async def __call__(self, harness: Harness, stdin: bytes, on_line: Callable[[bytes], None]) -> RunResult:
        ray = await anyio.to_thread.run_sync(self._connect)
        shipped = await anyio.to_thread.run_sync(self._ship, harness.binary)
        candidate = await anyio.to_thread.run_sync(self._ship, harness.candidate)
        ref = self._task.remote(shipped, candidate, harness.sandbox, harness.limits, stdin)
        try:
            outcome, lines = await anyio.to_thread.run_sync(ray.get, ref, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            ray.cancel(ref, force=True)  # kills the task's worker; bwrap dies with its parent
            raise
        for line in lines:
            on_line(line)
        return outcome
