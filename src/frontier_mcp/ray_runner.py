"""Run harness processes as Ray tasks, for a lab that has outgrown one machine (`frontier-mcp[ray]`).

`Harness.run` still chunks the plan, collects results by id and retries after a crash; a
`RayExecutor` only changes where each chunk's harness process runs: in one Ray task per chunk (so
Ray's per-task cost is paid once per hundreds of runs, not per run), which receives the lab's harness
and the candidate's binary from the object store, checks their SHA-256, writes them to a temporary
folder on its node and runs the same sandboxed command a local chunk runs (`Harness.run_process`
without an executor). Results are the same as the local runner's, number for number.

The Ray driver is a child process of the server (`python -m frontier_mcp.ray_runner`), never the
server itself: Ray ends a driver whose cluster head stops answering (after Ray's
`RAY_gcs_rpc_server_reconnect_timeout_s`, 60 s by default), and it prints to stdout, which is the
server's MCP channel. When the child dies, every chunk in flight ends in `ClusterLost`, and its job
as `interrupted`; the next benchmark starts a new child. A worker node lost mid-task is Ray's to
handle: the task runs again on another node (up to MAX_TASK_RETRIES times) from its first run, and
runs are deterministic, so the verdict does not change.

Every node needs bubblewrap and the same `frontier-mcp[ray]` as the server (checked per task), and
the server's CPU model when the lab compiles with `-C target-cpu=native`.
`ray` is imported in the driver child and on the nodes only, never in the server process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.from_thread
import anyio.lowlevel

from . import __version__
from .jobs import Interrupted
from .protocol import Harness, HarnessError
from .sandbox import RunResult, Sandbox, SandboxUnavailable, check_sandbox
from .settings import Limits, Settings

log = logging.getLogger(__name__)

# A task whose node died runs again elsewhere this many times before its chunk fails.
MAX_TASK_RETRIES = 3
_FRAME = struct.Struct(">I")


class ClusterLost(HarnessError, Interrupted):
    """The Ray cluster went away while a chunk was in flight: the job is interrupted, not failed."""


# -- on a node -------------------------------------------------------------------------------------

Shipped = tuple[str, bytes, str]  # file name, contents, sha256

_sandbox_checked: set[str] = set()


def run_on_node(harness: Shipped, candidate: Shipped | None, sandbox: Sandbox, limits: Limits,
                stdin: bytes, server_version: str) -> tuple[RunResult, list[bytes]]:
    """The body of a Ray task: on whichever node runs it, the same sandboxed process a local chunk runs."""
    node = socket.gethostname()
    if server_version != __version__:
        raise HarnessError(f"Ray node {node} has frontier-mcp {__version__}, the server {server_version}: "
                           "install the server's version on every node")
    profile = repr(sandbox)
    if profile not in _sandbox_checked:  # a bwrap start per task would cost more than the check is worth
        problem = check_sandbox(sandbox)
        if problem:
            raise SandboxUnavailable(f"on Ray node {node}: {problem}")
        _sandbox_checked.add(profile)
    lines: list[bytes] = []
    with tempfile.TemporaryDirectory(prefix="frontier-ray-") as folder:
        paths: list[Path] = []
        for name, contents, digest in (s for s in (harness, candidate) if s is not None):
            if hashlib.sha256(contents).hexdigest() != digest:
                raise HarnessError(f"on Ray node {node}: {name} arrived corrupted (SHA-256 mismatch)")
            path = Path(folder) / name
            path.write_bytes(contents)
            path.chmod(0o555)
            paths.append(path)
        local = Harness(binary=paths[0], candidate=paths[1] if candidate else None, sandbox=sandbox,
                        limits=limits, workers=1)
        outcome = anyio.run(local.run_process, stdin, lines.append)
    return outcome, lines


# -- the frames between the server and its driver child ---------------------------------------------

def _send(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any | None:
    """The next message, or None at the end of the stream."""
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None
    data = stream.read(_FRAME.unpack(head)[0])
    return pickle.loads(data)  # the peer is this program's own parent or child, over a private pipe


# -- the driver child -------------------------------------------------------------------------------

def drive(address: str | None, runtime_env: dict[str, Any] | None) -> None:
    """The driver process: joins the cluster, then turns each request into a Ray task until stdin ends."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # Ray and its libraries print; none of it may reach the frames
    requests = sys.stdin.buffer
    lock = threading.Lock()

    def reply(message: Any) -> None:
        with lock, contextlib.suppress(OSError):
            _send(replies, message)

    try:
        import ray

        ray.init(address=address, runtime_env=runtime_env, include_dashboard=False,
                 logging_level=logging.WARNING)
        task = ray.remote(num_cpus=1, max_retries=MAX_TASK_RETRIES, scheduling_strategy="SPREAD")(run_on_node)
        cpus = ray.cluster_resources().get("CPU", 0)
    except Exception as exc:
        reply(("fatal", f"{type(exc).__name__}: {exc}"))
        return
    reply(("ready", f"{len(ray.nodes())} node(s), {cpus:g} CPUs"))

    shipped: dict[tuple[str, int, int], Any] = {}
    in_flight: dict[int, Any] = {}

    def ship(path: str | None) -> Any:
        """A binary as (name, bytes, sha256) in the object store: put once per build, fetched once per node."""
        if path is None:
            return None
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size)
        if key not in shipped:
            contents = Path(path).read_bytes()
            for old in [k for k in shipped if k[0] == path]:
                del shipped[old]
            shipped[key] = ray.put((Path(path).name, contents, hashlib.sha256(contents).hexdigest()))
        return shipped[key]

    def wait(request: int, ref: Any) -> None:
        try:
            outcome, lines = ray.get(ref)
            reply(("done", request, outcome, lines))
        except ray.exceptions.TaskCancelledError:
            pass
        except ray.exceptions.RayTaskError as exc:  # the task body raised: a node without a sandbox, ...
            reply(("error", request, str(exc.cause) if exc.cause is not None else str(exc)))
        except Exception as exc:
            reply(("error", request, f"the Ray task failed after {MAX_TASK_RETRIES} retries: "
                                     f"{type(exc).__name__}: {str(exc)[:500]}"))
        finally:
            in_flight.pop(request, None)

    while (message := _receive(requests)) is not None:
        if message[0] == "run":
            _, request, harness, candidate, sandbox, limits, stdin = message
            try:
                ref = task.remote(ship(harness), ship(candidate), sandbox, limits, stdin, __version__)
            except Exception as exc:
                reply(("error", request, f"the Ray task could not be submitted: {type(exc).__name__}: {exc}"))
                continue
            in_flight[request] = ref
            threading.Thread(target=wait, args=(request, ref), daemon=True).start()
        elif message[0] == "cancel" and (ref := in_flight.pop(message[1], None)) is not None:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)  # kills the task's worker; bwrap dies with its parent
    os._exit(0)  # the server is gone; Ray ends this job's tasks when its driver disappears


# -- in the server ----------------------------------------------------------------------------------

@dataclass
class _Pending:
    done: anyio.Event
    token: Any
    answer: tuple[Any, ...] | None = None


@dataclass
class _Driver:
    """One driver child and the chunks it has in flight."""

    address: str | None
    process: subprocess.Popen[bytes]
    pending: dict[int, _Pending] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    joined: threading.Event = field(default_factory=threading.Event)
    failure: str | None = None  # why the child cannot take requests (set once it is dead)
    ready: bool = False
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    stderr_read: threading.Event = field(default_factory=threading.Event)

    def alive(self) -> bool:
        return self.failure is None and self.process.poll() is None

    def read_replies(self) -> None:
        assert self.process.stdout is not None
        while (message := _receive(self.process.stdout)) is not None:
            if message[0] == "ready":
                log.info("joined the Ray cluster at %s: %s", self.address or "(default)", message[1])
                self.ready = True
                self.joined.set()
            elif message[0] == "fatal":
                self.failure = f"could not join the Ray cluster at {self.address or '(default)'}: {message[1]}"
            else:
                with self.lock:
                    pending = self.pending.pop(message[1], None)
                if pending is not None:  # else it was cancelled meanwhile
                    self._deliver(pending, message)
        self.process.wait()
        self.stderr_read.wait(timeout=5)  # Ray's last words say why it ended
        if self.failure is None:
            self.failure = self._lost_reason()
        self.joined.set()
        with self.lock:
            orphans, self.pending = list(self.pending.values()), {}
        for pending in orphans:
            self._deliver(pending, ("lost", None, self.failure))

    @staticmethod
    def _deliver(pending: _Pending, message: tuple[Any, ...]) -> None:
        pending.answer = message
        with contextlib.suppress(RuntimeError):  # the event loop has ended
            anyio.from_thread.run_sync(pending.done.set, token=pending.token)

    def _lost_reason(self) -> str:
        # Ray says why it ended the driver in its last error line (typically: GCS unreachable).
        errors = [line for line in self.stderr_tail if "GCS" in line or " E " in line or "Error" in line]
        said = (errors or list(self.stderr_tail) or ["no message"])[-1].strip()
        said = re.sub(r"^\[[^\]]*\]\s*[\w.]+:\d+:\s*", "", said)  # Ray's log prefix: time, pid, source line
        return (f"the Ray cluster at {self.address or '(default)'} was lost (its driver exited with code "
                f"{self.process.returncode}: {said[:400]})")

    def pump_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.stderr_tail.append(line)
                log.info("ray: %s", line)
        self.stderr_read.set()

    def send(self, message: tuple[Any, ...]) -> None:
        assert self.process.stdin is not None
        with self.lock:
            _send(self.process.stdin, message)


class RayExecutor:
    """Runs each harness process as a Ray task, through a driver child started on first use."""

    def __init__(self, address: str | None = None, runtime_env: dict[str, Any] | None = None) -> None:
        self.address = address
        self.runtime_env = runtime_env
        self._lock = threading.Lock()
        self._driver: _Driver | None = None
        self._requests = iter(range(1, sys.maxsize))

    def _start(self) -> _Driver:
        with self._lock:
            if self._driver is not None and self._driver.alive():
                return self._driver
            process = subprocess.Popen(
                [sys.executable, "-c", "import sys; from frontier_mcp.ray_runner import main; main(sys.argv[1:])",
                 self.address or "", json.dumps(self.runtime_env or {})],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")
            driver = _Driver(self.address, process)
            threading.Thread(target=driver.read_replies, name="ray-driver-replies", daemon=True).start()
            threading.Thread(target=driver.pump_stderr, name="ray-driver-log", daemon=True).start()
            self._driver = driver
            return driver

    def _joined(self) -> _Driver:
        driver = self._start()
        driver.joined.wait()
        if not driver.ready:  # never joined: a wrong address or a cluster that is down
            raise HarnessError(f"{driver.failure}; check FRONTIER_RAY_ADDRESS and that the cluster is up")
        return driver

    def close(self) -> None:
        """Ends the driver child (and with it this server's Ray job)."""
        with self._lock:
            driver, self._driver = self._driver, None
        if driver is not None and driver.process.poll() is None:
            with contextlib.suppress(OSError):
                assert driver.process.stdin is not None
                driver.process.stdin.close()
            try:
                driver.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                driver.process.kill()
                driver.process.wait()

    async def __call__(self, harness: Harness, stdin: bytes, on_line: Callable[[bytes], None]) -> RunResult:
        driver = await anyio.to_thread.run_sync(self._joined, abandon_on_cancel=True)
        request = next(self._requests)
        pending = _Pending(anyio.Event(), anyio.lowlevel.current_token())
        with driver.lock:
            if driver.failure is not None:
                raise ClusterLost(self._interrupted(driver.failure))
            driver.pending[request] = pending
        message = ("run", request, str(harness.binary), str(harness.candidate) if harness.candidate else None,
                   harness.sandbox, harness.limits, stdin)
        try:
            await anyio.to_thread.run_sync(driver.send, message)
            await pending.done.wait()
        except BrokenPipeError:
            raise ClusterLost(self._interrupted(driver.failure or "the Ray driver exited")) from None
        except anyio.get_cancelled_exc_class():
            with driver.lock:
                driver.pending.pop(request, None)
            with contextlib.suppress(OSError), anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(driver.send, ("cancel", request))
            raise
        answer = pending.answer
        assert answer is not None
        if answer[0] == "lost":
            raise ClusterLost(self._interrupted(answer[2]))
        if answer[0] == "error":
            raise HarnessError(answer[2])
        outcome, lines = answer[2], answer[3]
        for line in lines:
            on_line(line)
        return outcome

    @staticmethod
    def _interrupted(reason: str) -> str:
        return (f"{reason}; the benchmark was interrupted and none of its results were recorded: call benchmark "
                "again once the cluster is back")


_executors: dict[tuple[str | None, str], RayExecutor] = {}
_executors_lock = threading.Lock()


def executor_for(settings: Settings) -> RayExecutor | None:
    """The executor the settings select for `Harness`: None runs harness processes locally. One per
    cluster for the whole server, so every benchmark shares one driver and its shipped binaries."""
    if settings.runner != "ray":
        return None
    key = (settings.ray_address, repr(settings.ray_runtime_env))
    with _executors_lock:
        if key not in _executors:
            _executors[key] = RayExecutor(settings.ray_address, settings.ray_runtime_env)
        return _executors[key]


def main(argv: list[str]) -> None:
    drive(argv[0] or None, json.loads(argv[1]) or None)
