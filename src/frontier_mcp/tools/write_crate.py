"""write_crate: the model's conjecture and Rust source become an experiment and a crate."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from ..archive import ArchiveError
from ..validate import NAME_PATTERN, check_name, check_source, normalized_hash
from ._common import fail, hints, reply, runtime

MAX_SOURCE_CHARS = 1_000_000  # the schema's hard cap; the lab's byte limit is checked after


class CrateWritten(BaseModel):
    experiment_id: int = Field(description="pass this to compile, benchmark and record_result")
    name: str
    crate_path: str = Field(description="where the crate lives in the lab")
    source_sha256: str
    source_lines: int
    parent_id: int | None
    revised: bool = Field(description="true if this replaced the source of an experiment that had not compiled")
    duplicate_of: list[int] = Field(
        description="earlier experiments with the same source (ignoring comments and whitespace)")
    next_step: str


def register(server: MCPServer) -> None:
    @server.tool(title="Write the optimizer crate", annotations=hints(read_only=False))
    async def write_crate(
        ctx: Context,
        pairing_id: Annotated[int, Field(description="The id returned by propose_pairing.", ge=1)],
        name: Annotated[str, Field(
            description="Short unique snake_case name for this experiment and its crate, e.g. "
                        "'padic_vortex_momentum'.", min_length=1, max_length=40, pattern=NAME_PATTERN)],
        statement: Annotated[str, Field(
            description="The conjecture in one or two sentences.", min_length=10, max_length=4000)],
        mechanism: Annotated[str, Field(
            description="How the optimizer realizes the conjecture: the update rule and why it should "
                        "help on high-dimensional non-convex landscapes.", min_length=10, max_length=8000)],
        prediction: Annotated[str, Field(
            description="A falsifiable prediction the benchmark can refute, e.g. 'beats Adam on "
                        "ill-conditioned quadratics, loses on Rastrigin'.", min_length=10, max_length=4000)],
        source: Annotated[str, Field(
            description="The complete Rust file optimizer.rs, as the resource frontier://contract says: "
                        "`pub fn build() -> impl Optimizer + 'static`; std only, no unsafe, no I/O.",
            min_length=1, max_length=MAX_SOURCE_CHARS)],
        parent_id: Annotated[int | None, Field(
            description="The experiment this one evolves from, if any (lineage).", ge=1)] = None,
    ) -> Annotated[CallToolResult, CrateWritten]:
        """Turn a conjecture and its Rust implementation into an experiment (read the resource frontier://contract first: the Optimizer trait, Tensor, StepContext and its oracle budget, knobs, rules, an example). Validates the name and source (one file, std only, no unsafe, no I/O), archives the conjecture with its lineage and writes the crate; nothing is written if validation fails. Returns the experiment id: call compile next. To fix a source that failed to compile, call again with the same name (revised in place)."""
        rt = runtime(ctx)
        problem = check_name(name)
        if problem:
            raise fail(problem)
        findings = check_source(source, rt.settings.max_source_bytes)
        if findings:
            listed = "\n".join(f"- {finding}" for finding in findings[:20])
            raise fail(f"the source was not accepted ({len(findings)} problem(s)); fix and call write_crate "
                       f"again:\n{listed}")
        normalized = normalized_hash(source)
        try:
            experiment_id, revised = rt.archive.add_experiment(
                name=name, pairing_id=pairing_id, parent_id=parent_id, source=source,
                normalized_sha256=normalized, statement=statement, mechanism=mechanism, prediction=prediction)
        except ArchiveError as exc:
            raise fail(str(exc)) from None
        duplicates = [row["id"] for row in rt.archive.experiments_with_source(normalized)
                      if row["id"] != experiment_id]
        crate = rt.lab.crate_dir(name)
        if rt.ready.is_set() and rt.problem is None:
            rt.lab.write_crate(name, source)
        # else: the lab is still (re)installing its scaffold; compile writes the crate from the archive.
        experiment = rt.archive.require_experiment(experiment_id)
        result = CrateWritten(
            experiment_id=experiment_id, name=name, crate_path=str(crate),
            source_sha256=experiment["source_sha256"], source_lines=source.count("\n") + 1,
            parent_id=parent_id, revised=revised, duplicate_of=duplicates,
            next_step=f"call compile(experiment_id={experiment_id})")
        verb = "revised" if revised else "written"
        text = f"Experiment {experiment_id} '{name}' {verb} ({result.source_lines} lines)."
        if duplicates:
            text += (f" Note: the same source (ignoring comments/whitespace) was already tried as experiment(s) "
                     f"{duplicates}; see `experiment` for their results before spending compute.")
        return reply(result, text + f" Next: {result.next_step}.")
