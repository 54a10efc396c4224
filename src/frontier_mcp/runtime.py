"""What the server (and the CLI commands that build) hold while they run: settings, archive, lab,
sandbox, toolchain, jobs.

`Runtime.open(settings)` assembles them, for the server's lifespan and for the CLI alike; tools
reach the runtime through their Context. The server starts the first build of the scaffold (the
warm-up crate) in the background, so `initialize` is instant and the model's first `compile` only
waits for whatever is left of it.

A server whose machine lacks cargo or bubblewrap (a host installed it from a bundle, which cannot ship
them) answers every tool call with one message that says how to install them, until they are there:
the tools reach the archive through a gate that checks for both (a few stat calls, no process), and
the lab is prepared as soon as they appear, without a restart.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, cast

import anyio

from .archive import Archive, ArchiveError, ArchiveUnusable
from .cargo import BuildOutcome, Toolchain, build_crate, build_harness
from .jobs import Jobs
from .sandbox import Sandbox, check_sandbox
from .scaffold import WARMUP_NAME, Lab
from .settings import Settings

log = logging.getLogger(__name__)

# Seconds after the lifespan starts before scipy is imported in the background: the client's
# `initialize` arrives with the process and is answered in milliseconds, before this.
WARM_DELAY_SECONDS = 0.5


def _import_statistics() -> None:
    try:
        from . import stats

        stats.scipy_stats()  # stats.py's own lazy import, under its lock
    except Exception:  # a broken scipy shows up, with its message, at the first benchmark instead
        log.debug("warming scipy.stats failed", exc_info=True)


class NotReady(RuntimeError):
    """The lab cannot build: cargo or the sandbox is missing, or the scaffold failed to build."""


class UnusableArchive:
    """Stands in for an archive that could not be opened, so a server still starts and answers every
    tool with the one line that says what is wrong, instead of the client seeing the process end."""

    def __init__(self, problem: ArchiveUnusable, path: Path):
        self.problem = problem
        self.path = path

    def close(self) -> None:
        pass

    def mark_orphaned_jobs(self) -> int:
        return 0

    def __getattr__(self, name: str) -> NoReturn:
        raise ArchiveUnusable(str(self.problem))


class ToolchainMissing(ArchiveError):
    """cargo or bubblewrap is not installed. Raised where a tool first uses the archive, so that every tool
    answers with its message through the path it already has for the archive's own errors."""


def missing_toolchain(settings: Settings, sandbox: Sandbox) -> str | None:
    """One actionable message if cargo or bubblewrap (when the sandbox is on) is not installed, else None.
    Cheap enough for every tool call: it looks for files and starts no process."""
    needed: list[str] = []
    missing: list[str] = []
    fixes: list[str] = []
    if settings.cargo_path() is None:
        needed.append("cargo")
        missing.append(f"cargo was not found (FRONTIER_CARGO={settings.cargo} does not exist)" if settings.cargo
                       else "cargo was not found (looked at FRONTIER_CARGO, PATH and ~/.cargo/bin)")
        fixes.append("install Rust from https://rustup.rs (`curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs "
                     "| sh`), or set FRONTIER_CARGO to cargo's absolute path")
    bwrap = sandbox.bwrap_path() if sandbox.enabled else None
    if sandbox.enabled and (bwrap is None or not Path(bwrap).exists()):
        needed.append("bubblewrap")
        missing.append("bubblewrap (bwrap), the sandbox model-written code runs in, is not installed"
                       + (f" (FRONTIER_BWRAP={bwrap} does not exist)" if bwrap else ""))
        fixes.append("install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: `sudo dnf "
                     "install bubblewrap`), or set FRONTIER_BWRAP to its absolute path")
    if not missing:
        return None
    return (f"frontier-mcp needs {' and '.join(needed)} before any of its tools works: {' and '.join(missing)}. "
            f"To fix: {'; '.join(fixes)}. MCP hosts start servers with a short PATH, so absolute paths are "
            "safest. No restart is needed: call the tool again after installing.")


class ToolchainGate:
    """The archive as the server's tools reach it: while cargo or bubblewrap is missing, every use raises
    ToolchainMissing with the message that says how to install them; once both are there, the archive."""

    def __init__(self, archive: Archive, settings: Settings, sandbox: Sandbox):
        self._archive = archive
        self._settings = settings
        self._sandbox = sandbox
        self._open = False

    def __getattr__(self, name: str) -> Any:
        if not self._open:
            problem = missing_toolchain(self._settings, self._sandbox)
            if problem:
                raise ToolchainMissing(problem)
            self._open = True
        return getattr(self._archive, name)


@dataclass
class Runtime:
    settings: Settings
    archive: Archive
    lab: Lab
    sandbox: Sandbox
    jobs: Jobs
    toolchain: Toolchain | None = None
    problem: str | None = None
    ready: anyio.Event = field(default_factory=anyio.Event)
    warmup: BuildOutcome | None = None
    # Harness processes across every job of this server (see Harness.slots).
    harness_slots: anyio.CapacityLimiter | None = None
    # The last preparation stopped because cargo or bubblewrap is missing (prepared again once they are there).
    toolchain_missing: bool = False

    def slots(self) -> anyio.CapacityLimiter:
        if self.harness_slots is None:
            self.harness_slots = anyio.CapacityLimiter(self.settings.workers)
        return self.harness_slots

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings, *, tolerate_unusable_archive: bool = False) -> AsyncIterator[Runtime]:
        """Archive, lab, sandbox and jobs, assembled; on exit the jobs are cancelled and the archive closed.

        With `tolerate_unusable_archive` (the server), a state.db that cannot be used is logged and
        every use of the archive raises its ArchiveUnusable; otherwise (the CLI) it raises here."""
        try:
            archive: Archive = Archive(settings.db_path)
        except ArchiveUnusable as exc:
            if not tolerate_unusable_archive:
                raise
            log.error("%s", exc)
            archive = cast(Archive, UnusableArchive(exc, settings.db_path))
        try:
            lab = Lab(settings.home)
            lab.ensure_dirs()
            sandbox = Sandbox(limits=settings.limits, enabled=settings.sandbox, bwrap=settings.bwrap)
            async with anyio.create_task_group() as group:
                runtime = cls(settings=settings, archive=archive, lab=lab, sandbox=sandbox, jobs=Jobs(archive, group))
                try:
                    yield runtime
                finally:
                    runtime.jobs.cancel_all()
                    group.cancel_scope.cancel()
        finally:
            archive.close()

    def prepare_in_background(self) -> None:
        """The server: prepare the lab in the background, and until cargo and bubblewrap are found, answer
        every tool with how to install them (the tools reach the archive through the gate). An unusable
        state.db keeps its own message: it is said first."""
        if not isinstance(self.archive, UnusableArchive | ToolchainGate):
            self.archive = cast(Archive, ToolchainGate(self.archive, self.settings, self.sandbox))
        self.jobs.group.start_soon(self.prepare)

    def warm_statistics_in_background(self, delay: float = WARM_DELAY_SECONDS) -> None:
        """The server (never the CLI): import scipy.stats (1-1.8 s) on a daemon thread `delay` seconds
        after the lifespan starts, past the `initialize` handshake, so the first benchmark does not pay it.
        A daemon thread, so that a server closed meanwhile exits at once instead of waiting for the import."""
        async def warm() -> None:
            await anyio.sleep(delay)
            if "scipy.stats" not in sys.modules:
                threading.Thread(target=_import_statistics, name="frontier-warm-scipy", daemon=True).start()

        self.jobs.group.start_soon(warm)

    async def prepare(self) -> None:
        """Install the scaffold and prebuild the harness once per lab; record any problem found."""
        try:
            await self._prepare()
        except Exception as exc:
            log.exception("lab preparation failed")
            self.problem = f"the lab could not be prepared: {exc}"
        finally:
            self.ready.set()

    async def _prepare(self) -> None:
        missing = missing_toolchain(self.settings, self.sandbox)
        cargo = self.settings.cargo_path()
        if missing or cargo is None:
            self.problem = missing or "cargo was not found"
            self.toolchain_missing = True
            return
        self.toolchain_missing = False
        self.toolchain = await anyio.to_thread.run_sync(Toolchain.discover, cargo)
        sandbox_problem = await anyio.to_thread.run_sync(check_sandbox, self.sandbox)
        if sandbox_problem:
            self.problem = sandbox_problem
            return
        changed = await anyio.to_thread.run_sync(self.lab.install_scaffold)
        warm = self.lab.crate_dir(WARMUP_NAME)
        if changed or not (warm / "Cargo.lock").exists() or not self.lab.binary(WARMUP_NAME).exists():
            self.lab.remove_crate(WARMUP_NAME)
            self.lab.write_crate(WARMUP_NAME, self.lab.example_source())
            log.info("building the harness for this lab (once)")
            self.warmup = await build_crate(
                self.lab, WARMUP_NAME, self.toolchain, self.sandbox,
                timeout=max(600.0, self.settings.limits.compile_seconds), native_cpu=self.settings.native_cpu,
                jobs=self.settings.workers, frozen=False)
            if not self.warmup.ok:
                detail = self.warmup.note or "; ".join(d.message for d in self.warmup.diagnostics[:3])
                self.problem = f"the scaffold failed to build in this lab: {detail}"
                return
        if changed or self.lab.harness() is None:
            log.info("building the lab's trusted harness (once)")
            _, failure = await build_harness(
                self.lab, self.toolchain, self.sandbox, timeout=max(600.0, self.settings.limits.compile_seconds),
                native_cpu=self.settings.native_cpu, jobs=self.settings.workers)
            if failure:
                self.problem = failure

    async def require_ready(self) -> Toolchain:
        await self.ready.wait()
        if self.toolchain_missing and missing_toolchain(self.settings, self.sandbox) is None:
            # Installed since the lab was last prepared: prepare it now, without a restart.
            self.toolchain_missing, self.problem, self.ready = False, None, anyio.Event()
            self.jobs.group.start_soon(self.prepare)
            raise NotReady("what was missing is installed now: the lab is building its benchmark harness (once, "
                           "a few minutes); call again in a minute.")
        if self.problem or self.toolchain is None:
            raise NotReady(self.problem or "the toolchain is unavailable")
        return self.toolchain

    @property
    def rustflags(self) -> str:
        return "-C target-cpu=native" if self.settings.native_cpu else ""
