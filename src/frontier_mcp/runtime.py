"""What the server (and the CLI commands that build) hold while they run: settings, archive, lab,
sandbox, toolchain, jobs.

`Runtime.open(settings)` assembles them, for the server's lifespan and for the CLI alike; tools
reach the runtime through their Context. The server starts the first build of the scaffold (the
warm-up crate) in the background, so `initialize` is instant and the model's first `compile` only
waits for whatever is left of it.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, cast

import anyio

from .archive import Archive, ArchiveUnusable
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
        import scipy.stats  # noqa: F401  (the module stats.py imports lazily, into sys.modules)
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
        cargo = self.settings.cargo_path()
        if cargo is None:
            self.problem = ("cargo was not found (looked at FRONTIER_CARGO, PATH and ~/.cargo/bin). "
                            "Install Rust from https://rustup.rs or set FRONTIER_CARGO to cargo's path.")
            return
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
        if self.problem or self.toolchain is None:
            raise NotReady(self.problem or "the toolchain is unavailable")
        return self.toolchain

    @property
    def rustflags(self) -> str:
        return "-C target-cpu=native" if self.settings.native_cpu else ""
