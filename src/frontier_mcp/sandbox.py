"""Run untrusted processes (cargo on model code, the compiled candidate) with limits.

The boundary is bubblewrap: no network, read-only /usr, only the directories a step needs,
a private size-capped /tmp, a fresh PID namespace, an empty environment, and rlimits set
*inside* the sandbox by prlimit (set outside, RLIMIT_NPROC counts every process of the user).
Every child starts in its own session so a timeout or a cancel kills the whole tree.
"""

from __future__ import annotations

import contextlib
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
             cpu_seconds: int | None = None) -> list[str]:
        """The argv that runs `argv` inside the sandbox (or bare, with rlimits, if disabled)."""
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
        cmd += ["--proc", "/proc", "--dev", "/dev",
                "--size", str(limits.tmpfs_mb * 1024 * 1024), "--tmpfs", "/tmp",
                "--unshare-all", "--unshare-user", "--disable-userns",
                "--uid", str(_SANDBOX_UID), "--gid", str(_SANDBOX_UID),
                "--die-with-parent", "--new-session", "--clearenv"]
        for extra in self.extra_read_only:
            cmd += ["--ro-bind", str(extra), str(extra)]
        for mount in mounts:
            cmd += ["--bind" if mount.writable else "--ro-bind", str(mount.path), str(mount.path)]
        for key, value in env.items():
            cmd += ["--setenv", key, value]
        cmd += ["--chdir", str(cwd), "--", *prlimit, *argv]
        return cmd

    async def run(self, argv: Sequence[str], *, mounts: Sequence[Mount], env: dict[str, str], cwd: Path,
                  timeout: float, stdin: bytes | None = None, output_limit: int | None = None,
                  on_stdout_line: Callable[[bytes], Awaitable[None] | None] | None = None,
                  cpu_seconds: int | None = None) -> RunResult:
        """Run to completion, timeout, output overflow or cancellation; never leaves a process behind."""
        command = self.wrap(argv, mounts=mounts, env=env, cwd=cwd, cpu_seconds=cpu_seconds)
        limit = output_limit or self.limits.output_kb * 1024
        started = time.perf_counter()
        result = RunResult(returncode=None, stdout=b"", stderr=b"", seconds=0.0)
        out_buf, err_buf = bytearray(), bytearray()
        process: Process = await anyio.open_process(
            command, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, cwd="/",
        )

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
                    kill_tree(process.pid)
                    return
                buf.extend(chunk[:room])
                if is_stdout and on_stdout_line is not None:
                    pending += chunk
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
            kill_tree(process.pid)
            with anyio.CancelScope(shield=True):
                await process.wait()
        result.returncode = process.returncode
        result.stdout, result.stderr = bytes(out_buf), bytes(err_buf)
        result.seconds = time.perf_counter() - started
        return result


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
        done = subprocess.run(argv, capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return sandbox_help(f"bubblewrap failed to start: {exc}")
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()[:300]
        return sandbox_help(f"bubblewrap cannot create its namespaces here ({detail})")
    return None
