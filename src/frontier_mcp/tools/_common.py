"""What every tool module shares: reaching the runtime, annotations, and the two-part reply."""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel

from ..archive import ArchiveError
from ..protocol import Harness
from ..ray_runner import executor_for
from ..runtime import Runtime

# Text content is what clients that ignore structured output (Claude Desktop) show the model.
TEXT_BUDGET = 12_000


def runtime(ctx: Context) -> Runtime:
    rt: Runtime = ctx.request_context.lifespan_context  # type: ignore[assignment]
    return rt


def hints(*, read_only: bool, destructive: bool = False, idempotent: bool = False) -> ToolAnnotations:
    """All four hints, always: the tools touch only the local lab, never the open world."""
    return ToolAnnotations(read_only_hint=read_only, destructive_hint=destructive,
                           idempotent_hint=idempotent, open_world_hint=False)


def reply(model: BaseModel, text: str) -> CallToolResult:
    """Structured content for clients that read it, and a readable summary for those that don't."""
    if len(text) > TEXT_BUDGET:
        text = text[:TEXT_BUDGET] + "\n... (cut; the structured result has everything)"
    # Some hosts (Claude Code, VS Code) hand the model only the structured content: it carries the
    # readable summary too.
    data = model.model_dump(mode="json")
    data.setdefault("summary", text)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


def fail(message: str) -> ToolError:
    return ToolError(message)


def harness_for(rt: Runtime, experiment: dict[str, Any]) -> Harness:
    """The lab's trusted harness running the experiment's binary (one process per run), in the sandbox,
    on the configured runner (local or Ray)."""
    trusted = rt.lab.harness()
    if trusted is None:
        raise fail("the lab's harness binary is missing or was modified; restart the server (it rebuilds it), "
                   "or run `frontier-mcp doctor`.")
    return Harness(binary=trusted, candidate=rt.lab.binary(experiment["name"]), secret=rt.lab.secret(),
                   sandbox=rt.sandbox, limits=rt.settings.limits, workers=rt.settings.workers,
                   executor=executor_for(rt.settings), slots=None if rt.settings.runner == "ray" else rt.slots())


def require_built(rt: Runtime, experiment_id: int) -> dict[str, Any]:
    """The experiment, if its current source has a successful build whose binary is in the lab."""
    try:
        experiment = rt.archive.require_experiment(experiment_id)
    except ArchiveError as exc:
        raise fail(str(exc)) from None
    build = rt.archive.last_build(experiment_id)
    if build is None or not build["ok"]:
        raise fail(f"experiment {experiment_id} has no successful build; call compile first.")
    if json.loads(build["provenance"] or "{}").get("source_sha256") != experiment["source_sha256"]:
        raise fail(f"experiment {experiment_id} was revised after its last build; call compile again.")
    if not rt.lab.binary(experiment["name"]).exists():
        raise fail(f"the binary of experiment {experiment_id} is missing from the lab; call compile again.")
    return experiment
