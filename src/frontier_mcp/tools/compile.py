"""compile: cargo build of the experiment's crate in the sandbox, diagnostics in the model's lines."""

from __future__ import annotations

from typing import Annotated

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from ..archive import ArchiveError
from ..cargo import Diagnostic, build_crate, file_sha256
from ..runtime import NotReady
from ._common import fail, hints, reply, runtime

# Unresolved imports, names, types or fields, methods that are not the trait's, missing trait items,
# wrong signatures: the usual signs of code written without the contract.
CONTRACT_ERRORS = frozenset({"E0405", "E0407", "E0412", "E0425", "E0432", "E0433", "E0046", "E0050", "E0053",
                             "E0186", "E0599", "E0609", "E0616", "E0624"})


class CompileResult(BaseModel):
    experiment_id: int
    ok: bool
    status: str = Field(description="built, failed, or preparing (the lab's first build is still running)")
    errors: int
    warnings: int
    diagnostics: list[Diagnostic] = Field(description="errors first; lines are in your optimizer.rs")
    seconds: float = Field(description="wall-clock time of the cargo build, sandbox included")
    note: str | None = None
    next_step: str


def register(server: MCPServer) -> None:
    @server.tool(title="Compile the optimizer", annotations=hints(read_only=False, idempotent=True))
    async def compile(
        ctx: Context,
        experiment_id: Annotated[int, Field(description="The id returned by write_crate.", ge=1)],
    ) -> Annotated[CallToolResult, CompileResult]:
        """Build the experiment's crate with cargo (release, offline, sandboxed) and return rustc's errors and warnings with line and column in your optimizer.rs and the rendered snippet. If it fails, fix the source, write_crate again with the same name (revised in place), and compile again."""
        rt = runtime(ctx)
        try:
            experiment = rt.archive.require_experiment(experiment_id)
        except ArchiveError as exc:
            raise fail(str(exc)) from None
        with anyio.move_on_after(rt.settings.wait_seconds):
            await rt.ready.wait()
        if not rt.ready.is_set():
            result = CompileResult(
                experiment_id=experiment_id, ok=False, status="preparing", errors=0, warnings=0,
                diagnostics=[], seconds=0.0, note="the lab is building its benchmark harness (once per lab)",
                next_step="call compile again in a few seconds")
            return reply(result, "The lab is still building its harness (first use). Call compile again.")
        try:
            toolchain = await rt.require_ready()
        except NotReady as exc:
            raise fail(str(exc)) from None
        name = experiment["name"]
        crate = rt.lab.crate_dir(name)
        # The archive is the truth and the crate is derived from it: rewrite it if it is missing, stale,
        # or was written before the lab's first build produced the Cargo.lock template.
        if (not (crate / "Cargo.lock").exists() or not (crate / "src" / "optimizer.rs").exists()
                or rt.lab.source_sha(name) != experiment["source_sha256"]):
            rt.lab.write_crate(name, experiment["source"])
        outcome = await build_crate(rt.lab, name, toolchain, rt.sandbox, timeout=rt.settings.limits.compile_seconds,
                                    native_cpu=rt.settings.native_cpu, jobs=rt.settings.workers)
        provenance = {"rustc": toolchain.version, "rustflags": rt.rustflags,
                      "source_sha256": experiment["source_sha256"],
                      "cargo_lock_sha256": file_sha256(crate / "Cargo.lock"),
                      "scaffold_sha256": rt.lab.scaffold_digest()}
        rt.archive.add_build(experiment_id, ok=outcome.ok, seconds=outcome.seconds, errors=outcome.errors,
                             warnings=outcome.warnings,
                             diagnostics=[d.model_dump() for d in outcome.diagnostics], provenance=provenance)
        next_step = (f"call benchmark(experiment_id={experiment_id})" if outcome.ok else
                     f"fix the errors, call write_crate again with name={name!r} (revises experiment "
                     f"{experiment_id}), then compile again")
        if not outcome.ok and any(d.code in CONTRACT_ERRORS for d in outcome.diagnostics):
            next_step = ("read the resource frontier://contract (the trait, the types, what StepContext "
                         "offers, a complete example): these errors are about the contract. Then " + next_step)
        result = CompileResult(experiment_id=experiment_id, ok=outcome.ok,
                               status="built" if outcome.ok else "failed", errors=outcome.errors,
                               warnings=outcome.warnings, diagnostics=outcome.diagnostics,
                               seconds=round(outcome.seconds, 3), note=outcome.note, next_step=next_step)
        head = (f"Build {'succeeded' if outcome.ok else 'FAILED'} in {outcome.seconds:.2f} s: "
                f"{outcome.errors} error(s), {outcome.warnings} warning(s).")
        body = [d.rendered for d in outcome.diagnostics[:8]]
        if outcome.note:
            body.insert(0, outcome.note)
        return reply(result, "\n\n".join([head, *body, f"Next: {next_step}."]))
