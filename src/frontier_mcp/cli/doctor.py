"""`frontier-mcp doctor` and `verify-baselines`: the commands that build the lab's harness.

Both exit 2 when cargo or the sandbox is missing (the message says how to fix it), 1 when something
else is wrong."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import anyio
from rich.text import Text

from ..archive import Archive
from ..render.terminal import verify_table
from ..runtime import Runtime
from ..settings import Settings
from .checks import CARGO_MISSING, missing_prerequisites
from .consoles import err, out


def doctor(settings: Settings) -> int:
    from ..cargo import Toolchain
    from ..sandbox import Sandbox, check_sandbox

    ok = True

    def line(good: bool, what: str, detail: str) -> None:
        nonlocal ok
        ok &= good
        out.print(Text.from_markup(f"[{'green' if good else 'red'}]{'ok ' if good else 'BAD'}[/] {what}: ")
                  + Text(detail))

    line(sys.version_info >= (3, 11), "python", sys.version.split()[0])
    cargo = settings.cargo_path()
    line(cargo is not None, "cargo", str(cargo) if cargo else CARGO_MISSING)
    if cargo is not None:
        toolchain = Toolchain.discover(cargo)
        line(True, "rustc", f"{toolchain.version} at {toolchain.sysroot}")
    sandbox = Sandbox(limits=settings.limits, enabled=settings.sandbox, bwrap=settings.bwrap)
    problem = check_sandbox(sandbox)
    line(problem is None, "sandbox", "disabled by FRONTIER_SANDBOX=off (unsafe)" if not settings.sandbox
         else (problem or f"bubblewrap works ({sandbox.bwrap_path()})"))
    try:
        archive = Archive(settings.db_path, check="full")  # every page, however large the file
        line(True, "archive", f"{settings.db_path} ({archive.counts()['experiments']} experiments)")
        archive.close()
    except Exception as exc:
        line(False, "archive", str(exc))
        return 1
    if not ok:
        return 2  # cargo or the sandbox: the lines above say how to fix it

    async def prepare() -> str | None:
        async with Runtime.open(settings) as rt:
            await rt.prepare()
            return rt.problem

    started = time.perf_counter()
    with err.status("preparing the lab's benchmark harness (built once per lab)..."):
        problem = anyio.run(prepare)
    line(problem is None, "harness", problem or f"ready in {time.perf_counter() - started:.1f} s "
         f"({settings.home / 'target'})")
    return 0 if ok else 1


def verify_baselines(settings: Settings, reference_path: Path) -> int:
    from ..verify import RunCheck, verify

    try:
        reference = json.loads(reference_path.read_text())
        runs = reference["runs"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        err.print(f"[red]cannot read {reference_path}: {exc}[/red]")
        return 2
    problems = missing_prerequisites(settings)
    if problems:
        for problem in problems:
            print(f"frontier-mcp verify-baselines: {problem}", file=sys.stderr)
        return 2

    async def check() -> list[RunCheck] | str:
        async with Runtime.open(settings) as rt:
            with err.status("preparing the lab's benchmark harness (built once per lab)..."):
                await rt.prepare()
            harness = rt.lab.harness()  # the lab's trusted harness (frontier-bench) replays the baselines
            if rt.problem or harness is None:
                return rt.problem or "the lab's harness is not installed; run `frontier-mcp doctor`"
            return await verify(reference, harness, rt.sandbox)

    checks = anyio.run(check)
    if isinstance(checks, str):
        print(f"frontier-mcp verify-baselines: {checks}", file=sys.stderr)
        return 2
    out.print(verify_table(checks, len(runs), reference_path))
    failed = sum(not c.ok for c in checks)
    out.print(f"{len(checks) - failed} passed, {failed} failed")
    return 1 if failed or not checks else 0
