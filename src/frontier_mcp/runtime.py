"""What the server holds while it runs: settings, archive, lab, sandbox, toolchain, jobs.

The lifespan builds one Runtime; tools reach it through their Context. The first build of the
scaffold (the warm-up crate) starts in the background at start-up, so `initialize` is instant and
the model's first `compile` only waits for whatever is left of it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import anyio

from .archive import Archive
from .cargo import BuildOutcome, Toolchain, build_crate, build_harness
from .jobs import Jobs
from .sandbox import Sandbox, check_sandbox
from .scaffold import WARMUP_NAME, Lab
from .settings import Settings

log = logging.getLogger(__name__)


class NotReady(RuntimeError):
    """The lab cannot build: cargo or the sandbox is missing, or the scaffold failed to build."""


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
