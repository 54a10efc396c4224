"""Run untrusted processes (cargo on model code, the compiled candidate) with limits.

The boundary is bubblewrap: no network, read-only /usr, only the directories a step needs,
a private size-capped /tmp, a fresh PID namespace, an empty environment, and rlimits set
*inside* the sandbox by prlimit (set outside, RLIMIT_NPROC counts every process of the user).
The kernel does not enforce RLIMIT_NPROC for root, so a server running as root also puts each
sandbox in a pids cgroup of its own (when the cgroup filesystem is writable).

Ending a run kills, in order: the sandbox's PID 1 (bwrap reports it on --info-fd; the kernel then
kills every process of the PID namespace), every process left in the run's cgroup, and the
process group of the outer bwrap. Then the outer bwrap is reaped, so nothing outlives a run: no
orphan, no zombie. bwrap itself starts with a minimal environment: the sandbox's PID 1 is a
copy of it, and its /proc/1/environ is readable inside.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio.abc import ByteReceiveStream, Process

from .settings import Limits

log = logging.getLogger(__name__)

# Read-only pieces of /etc a compiler needs: `cc` is a symlink through /etc/alternatives.
_ETC_READ_ONLY = ("/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d")
_SANDBOX_UID = 65534
# What bwrap itself (not the sandboxed program: that gets --clearenv) runs with.
_LAUNCH_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
_CGROUP_PREFIX = "frontier-mcp-"
_cgroup_counter = itertools.count()
_swept: list[bool] = []


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here."""


@dataclass(frozen=True)
class Mount:
    path: Path
    writable: bool = False


@dataclass
class RunResult:
    returncode: int | None
    stdout: bytes
    stderr: bytes
    seconds: float
    timed_out: bool = False
    stdout_cut: bool = False
    stderr_cut: bool = False
    killed_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.killed_reason is None

    def name_the_signal(self) -> None:
        if self.returncode is not None and self.returncode < 0 and self.killed_reason is None:
            with contextlib.suppress(ValueError):
                self.killed_reason = f"killed by {signal.Signals(-self.returncode).name}"


@dataclass
class Sandbox:
    """One sandbox profile: how to wrap a command, and the limits to apply."""

    limits: Limits
    enabled: bool = True
    bwrap: str | None = None
    extra_read_only: list[Path] = field(default_factory=list)

    def bwrap_path(self) -> str | None:
        return self.bwrap or shutil.which("bwrap")

    def wrap(self, argv: Sequence[str], *, mounts: Sequence[Mount], env: dict[str, str], cwd: Path,
             cpu_seconds: int | None = None, info_fd: int | None = None, scratch: bool = True) -> list[str]:
        """The argv that runs `argv` inside the sandbox (or bare, with rlimits, if disabled).

        `scratch=False` leaves the sandbox without a single writable directory (no /tmp, /dev
        read-only): what benchmark runs get, so that no run can leave anything for the next one."""
        limits = self.limits
        prlimit = [
            "prlimit",
            f"--nproc={limits.processes}:{limits.processes}",
            f"--as={limits.memory_mb * 1024 * 1024}:{limits.memory_mb * 1024 * 1024}",
            f"--cpu={cpu_seconds or limits.cpu_seconds}:{cpu_seconds or limits.cpu_seconds}",
            f"--fsize={limits.file_size_mb * 1024 * 1024}:{limits.file_size_mb * 1024 * 1024}",
            "--core=0:0",
            "--",
        ]
        if not self.enabled:
            return ["/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()), *prlimit, *argv]
        bwrap = self.bwrap_path()
        if bwrap is None:
            raise SandboxUnavailable(sandbox_help("bubblewrap (bwrap) is not installed"))
        cmd: list[str] = [str(bwrap), "--ro-bind", "/usr", "/usr"]
        for name in ("bin", "lib", "lib64", "sbin"):
            if os.path.lexists(f"/{name}"):
                cmd += ["--symlink", f"usr/{name}", f"/{name}"]
        for path in _ETC_READ_ONLY:
            if os.path.exists(path):
                cmd += ["--ro-bind", path, path]
        cmd += ["--proc", "/proc", "--dev", "/dev"]
        if scratch:
            cmd += ["--size", str(limits.tmpfs_mb * 1024 * 1024), "--tmpfs", "/tmp"]
        cmd += ["--unshare-all", "--unshare-user", "--disable-userns",
                "--uid", str(_SANDBOX_UID), "--gid", str(_SANDBOX_UID),
                "--die-with-parent", "--new-session", "--clearenv"]
        if info_fd is not None:
            cmd += ["--info-fd", str(info_fd)]
        for extra in self.extra_read_only:
            cmd += ["--ro-bind", str(extra), str(extra)]
        for mount in mounts:
            cmd += ["--bind" if mount.writable else "--ro-bind", str(mount.path), str(mount.path)]
        # bwrap's root and /dev are tmpfs without a size cap: read-only, so only the capped /tmp
        # (if any) takes files.
        cmd += ["--remount-ro", "/", "--remount-ro", "/dev"]
        for key, value in env.items():
            cmd += ["--setenv", key, value]
        cmd += ["--chdir", str(cwd), "--", *prlimit, *argv]
        return cmd

    async def _spawn(self, argv: Sequence[str], *, mounts: Sequence[Mount], env: dict[str, str], cwd: Path,
                     cpu_seconds: int | None, scratch: bool, stdin: bool) -> tuple[Process, _Tree]:
        """Start `argv` in the sandbox, its own session, its own pids cgroup (as root)."""
        info_read, info_write = os.pipe() if self.enabled else (-1, -1)
        cgroup = PidsCgroup.create(self.limits.processes)
        try:
            command = self.wrap(argv, mounts=mounts, env=env, cwd=cwd, cpu_seconds=cpu_seconds,
                                info_fd=info_write if self.enabled else None, scratch=scratch)
            if cgroup is not None:
                # Join the cgroup before exec'ing bwrap, so not one fork escapes the count.
                command = ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(cgroup.path),
                           *command]
            process: Process = await anyio.open_process(
                command, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, cwd="/",
                env=_LAUNCH_ENV, pass_fds=(info_write,) if self.enabled else (),
            )
        except BaseException:
            if cgroup is not None:
                cgroup.destroy()
            if info_read >= 0:
                os.close(info_read)
            raise
        finally:
            if info_write >= 0:
                os.close(info_write)
        if info_read >= 0:
            os.set_blocking(info_read, False)
        return process, _Tree(process.pid, info_read, cgroup)

    async def run(self, argv: Sequence[str], *, mounts: Sequence[Mount], env: dict[str, str], cwd: Path,
                  timeout: float, stdin: bytes | None = None, output_limit: int | None = None,
                  on_stdout_line: Callable[[bytes], Awaitable[None] | None] | None = None,
                  cpu_seconds: int | None = None, scratch: bool = True) -> RunResult:
        """Run to completion, timeout, output overflow or cancellation; never leaves a process behind."""
        limit = output_limit or self.limits.output_kb * 1024
        started = time.perf_counter()
        result = RunResult(returncode=None, stdout=b"", stderr=b"", seconds=0.0)
        out_buf, err_buf = bytearray(), bytearray()
        process, tree = await self._spawn(argv, mounts=mounts, env=env, cwd=cwd, cpu_seconds=cpu_seconds,
                                          scratch=scratch, stdin=stdin is not None)

        async def pump(stream: ByteReceiveStream | None, buf: bytearray, is_stdout: bool) -> None:
            if stream is None:
                return
            pending = b""
            async for chunk in stream:
                room = limit - len(buf)
                if room <= 0:
                    if is_stdout:
                        result.stdout_cut = True
                    else:
                        result.stderr_cut = True
                    result.killed_reason = f"{'stdout' if is_stdout else 'stderr'} exceeded {limit} bytes"
                    tree.kill()
                    return
                buf.extend(chunk[:room])
                if is_stdout and on_stdout_line is not None:
                    pending += chunk[:room]
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        maybe = on_stdout_line(line)
                        if maybe is not None:
                            await maybe

        async def feed() -> None:
            if process.stdin is None:
                return
            try:
                if stdin:
                    await process.stdin.send(stdin)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, BrokenPipeError):
                pass
            finally:
                await process.stdin.aclose()

        try:
            with anyio.move_on_after(timeout) as scope:
                async with anyio.create_task_group() as group:
                    group.start_soon(feed)
                    group.start_soon(pump, process.stdout, out_buf, True)
                    group.start_soon(pump, process.stderr, err_buf, False)
                    await process.wait()
            if scope.cancelled_caught:
                result.timed_out = True
                result.killed_reason = f"wall-clock limit of {timeout:g} s reached"
        finally:
            # Runs on success, timeout and cancellation alike: the tree must not outlive us.
            with anyio.CancelScope(shield=True):
                tree.kill()
                await process.wait()
                tree.close()
        result.returncode = process.returncode
        result.stdout, result.stderr = bytes(out_buf), bytes(err_buf)
        result.seconds = time.perf_counter() - started
        result.name_the_signal()
        return result

    async def start(self, argv: Sequence[str], *, mounts: Sequence[Mount], env: dict[str, str], cwd: Path,
                    cpu_seconds: int | None = None, scratch: bool = True) -> LiveProcess:
        """Start a process that stays up, taking lines on stdin and answering lines on stdout, until
        `LiveProcess.close` or `kill` (the caller must call one of them: nothing else reaps it)."""
        process, tree = await self._spawn(argv, mounts=mounts, env=env, cwd=cwd, cpu_seconds=cpu_seconds,
                                          scratch=scratch, stdin=True)
        return LiveProcess(process, tree, self.limits.output_kb * 1024)


class LiveProcess:
    """A sandboxed process kept running across requests: `send` lines, `read_line` its answers.

    Its stderr is drained as it comes (a full pipe would stall it) and its tail kept for messages."""

    def __init__(self, process: Process, tree: _Tree, output_limit: int):
        self.process = process
        self.tree = tree
        self.started = time.perf_counter()
        self._pending = bytearray()
        self._stderr = bytearray()
        self._output_limit = output_limit  # what is kept of its stderr, and of stdout nobody read
        self._closed = False

    @property
    def stderr(self) -> bytes:
        return bytes(self._stderr)

    async def drain_stderr(self) -> None:
        """Read stderr to its end, keeping the last `output_limit` bytes (run it in a task group)."""
        if self.process.stderr is None:
            return
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            async for chunk in self.process.stderr:
                self._stderr.extend(chunk)
                del self._stderr[:-self._output_limit]

    async def send(self, data: bytes) -> bool:
        """Write to its stdin; False if it no longer reads."""
        if self.process.stdin is None:
            return False
        try:
            await self.process.stdin.send(data)
            return True
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, BrokenPipeError):
            return False

    async def read_line(self, max_bytes: int) -> bytes | None:
        """The next line of its stdout without the newline; None at end of output. A line longer than
        `max_bytes` is an error (ValueError): the process is not answering as agreed."""
        assert self.process.stdout is not None
        while True:
            end = self._pending.find(b"\n")
            if end >= 0:
                line = bytes(self._pending[:end])
                del self._pending[:end + 1]
                return line
            if len(self._pending) > max_bytes:
                raise ValueError(f"a line of stdout over {max_bytes} bytes")
            try:
                chunk = await self.process.stdout.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                return None
            self._pending.extend(chunk)

    def kill(self) -> None:
        """Kill everything it started, now (reaping is `close`'s)."""
        self.tree.kill()

    async def close(self, timeout: float) -> RunResult:
        """End its input, wait up to `timeout` for it to exit, then kill and reap whatever is left."""
        result = RunResult(returncode=None, stdout=b"", stderr=b"", seconds=0.0)
        with anyio.CancelScope(shield=True):
            if self.process.stdin is not None:
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, BrokenPipeError):
                    await self.process.stdin.aclose()
            with anyio.move_on_after(timeout) as scope:
                await self.process.wait()
            if scope.cancelled_caught:
                result.timed_out = True
                result.killed_reason = f"it did not exit within {timeout:g} s of the end of its input"
            self.tree.kill()
            await self.process.wait()
            self.tree.close()
            # Whatever it printed that nobody read (bounded: its writers are dead, so this ends).
            if self.process.stdout is not None:
                with anyio.move_on_after(1.0), contextlib.suppress(
                        anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    while len(self._pending) < self._output_limit:
                        self._pending.extend(await self.process.stdout.receive())
        result.stdout = bytes(self._pending)
        result.returncode = self.process.returncode
        result.stderr = self.stderr
        result.seconds = time.perf_counter() - self.started
        result.name_the_signal()
        return result


class _Tree:
    """Everything one run started: bwrap, the sandbox's PID 1 and its namespace, the cgroup."""

    def __init__(self, pid: int, info_fd: int, cgroup: PidsCgroup | None):
        self.pid = pid
        self.info_fd = info_fd
        self.info = b""
        self.cgroup = cgroup

    def inner_pid(self) -> int | None:
        """The sandbox's PID 1 as bwrap reported it, if it is still bwrap's child."""
        if self.info_fd >= 0:
            with contextlib.suppress(BlockingIOError, OSError):
                while chunk := os.read(self.info_fd, 4096):
                    self.info += chunk
        try:
            child = int(json.loads(self.info.decode() or "{}").get("child-pid", 0))
        except (ValueError, TypeError, AttributeError):
            return None
        if child <= 1:
            return None
        try:
            # Guard against pid reuse: only a process whose parent is our bwrap is killed.
            stat = Path(f"/proc/{child}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
        return child if ppid == self.pid else None

    def kill(self) -> None:
        inner = self.inner_pid()
        if inner is not None:
            # PID 1 of the namespace: the kernel kills every process in it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(inner, signal.SIGKILL)
        if self.cgroup is not None:
            self.cgroup.kill_all()
        kill_tree(self.pid)

    def close(self) -> None:
        if self.cgroup is not None:
            self.cgroup.destroy()
            self.cgroup = None
        if self.info_fd >= 0:
            os.close(self.info_fd)
            self.info_fd = -1


@dataclass
class PidsCgroup:
    """A pids cgroup for one run: the process cap root needs, and a handle on every process."""

    path: Path

    @classmethod
    def root(cls) -> Path | None:
        """Where this server may create pids cgroups: only as root, v1 or v2, else None."""
        if os.geteuid() != 0:
            return None
        v1 = Path("/sys/fs/cgroup/pids")
        if (v1 / "cgroup.procs").exists() and os.access(v1, os.W_OK):
            return v1
        v2 = Path("/sys/fs/cgroup")
        with contextlib.suppress(OSError):
            if "pids" in (v2 / "cgroup.subtree_control").read_text().split() and os.access(v2, os.W_OK):
                return v2
        return None

    @classmethod
    def create(cls, max_pids: int) -> PidsCgroup | None:
        base = cls.root()
        if base is None:
            return None
        if not _swept:
            _swept.append(True)
            cls.sweep(base)
        path = base / f"{_CGROUP_PREFIX}{os.getpid()}-{next(_cgroup_counter)}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(max_pids))
        except OSError as exc:
            log.warning("could not create the pids cgroup %s (%s): processes are not capped", path, exc)
            with contextlib.suppress(OSError):
                path.rmdir()
            return None
        return cls(path)

    @classmethod
    def sweep(cls, base: Path) -> None:
        """Remove the cgroups a server killed mid-run left behind (their server pid is gone)."""
        for stale in base.glob(f"{_CGROUP_PREFIX}*"):
            try:
                owner = int(stale.name[len(_CGROUP_PREFIX):].split("-")[0])
                os.kill(owner, 0)
            except ProcessLookupError:
                cls(stale).destroy()
            except (ValueError, PermissionError):
                continue

    def pids(self) -> list[int]:
        try:
            return [int(line) for line in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def kill_all(self) -> None:
        kill_file = self.path / "cgroup.kill"
        if kill_file.exists():
            with contextlib.suppress(OSError):
                kill_file.write_text("1")
        # pids.max bounds the forks racing this loop, so it converges.
        for _ in range(200):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)

    def destroy(self) -> None:
        for _ in range(200):
            self.kill_all()
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)  # the last processes are still being torn down
        log.warning("could not remove the cgroup %s", self.path)


def kill_tree(pid: int) -> None:
    """Kill the process group `pid` leads (children were started with start_new_session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def sandbox_help(problem: str) -> str:
    return (
        f"{problem}. The server compiles and runs model-written code only inside bubblewrap. Fix: install "
        "it (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: `sudo dnf install bubblewrap`), and "
        "on Ubuntu 24.04+ allow unprivileged user namespaces for bwrap (AppArmor profile or "
        "`sysctl kernel.apparmor_restrict_unprivileged_userns=0`). To run without a sandbox at your own risk, "
        "set FRONTIER_SANDBOX=off."
    )


def check_sandbox(sandbox: Sandbox) -> str | None:
    """None if the sandbox works here, else a message saying what is wrong and how to fix it."""
    if not sandbox.enabled:
        return None
    if sandbox.bwrap_path() is None:
        return sandbox_help("bubblewrap (bwrap) is not installed")
    argv = sandbox.wrap(["/usr/bin/true"], mounts=[], env={"PATH": "/usr/bin"}, cwd=Path("/"))
    try:
        done = subprocess.run(argv, capture_output=True, timeout=20, stdin=subprocess.DEVNULL,
                              env=_LAUNCH_ENV)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return sandbox_help(f"bubblewrap failed to start: {exc}")
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()[:300]
        return sandbox_help(f"bubblewrap cannot create its namespaces here ({detail})")
    return None
