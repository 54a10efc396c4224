"""history: the archive's experiments, newest first, paged."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from ..archive.cursors import history_cursor, parse_history_cursor
from ..render.text import page_text, ratio
from ._common import hints, reply, runtime
from ._errors import archive_errors


class ExperimentRow(BaseModel):
    id: int
    name: str
    status: str = Field(description="written, compile_failed, compiled, benchmarked or recorded")
    parent_id: int | None
    field_a: str
    field_b: str
    statement: str
    outcome: str | None = Field(description="measured outcome of the latest benchmark")
    geomean_ratio: float | None = Field(description="latest benchmark's geometric-mean loss ratio vs best baseline")
    verdict: str | None
    rediscovery_of: str | None = Field(None, description="the baseline the latest benchmark found it reproduces")
    duplicate_of: int | None = Field(
        None, description="an earlier experiment with the same source (ignoring comments and whitespace)")


class Page(BaseModel):
    total: int
    offset: int
    rows: list[Any]
    next_offset: int | None
    next_cursor: str | None = Field(None, description="pass as cursor for the next page (at any depth, as fast "
                                    "as the first; offset walks every row before it)")


class HistoryPage(Page):
    rows: list[ExperimentRow]  # type: ignore[assignment]


def register(server: MCPServer) -> None:
    @server.tool(title="Experiment history", annotations=hints(read_only=True, idempotent=True))
    async def history(
        ctx: Context,
        limit: Annotated[int, Field(description="Rows per page.", ge=1, le=100)] = 20,
        offset: Annotated[int, Field(description="Rows to skip (paging).", ge=0)] = 0,
        status: Annotated[str | None, Field(
            description="Only experiments with this status.",
            pattern="^(written|compile_failed|compiled|benchmarked|recorded)$")] = None,
        field: Annotated[str | None, Field(description="Only experiments pairing this field id.",
                                           max_length=80)] = None,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page: continue after it "
                                            "(offset then skips rows after it).", max_length=80)] = None,
    ) -> Annotated[CallToolResult, HistoryPage]:
        """List experiments, newest first: name, fields, status, measured outcome and verdict. Read-only, paged."""
        rt = runtime(ctx)
        with archive_errors():
            position, before = parse_history_cursor(cursor) if cursor else (0, None)
            rows, total = rt.archive.history(limit=limit, offset=offset, status=status, field=field, before=before)
        start = position + offset
        more = len(rows) == limit and start + len(rows) < total  # a short page is the last
        result = HistoryPage(total=total, offset=start, rows=[ExperimentRow(**row) for row in rows],
                             next_offset=start + len(rows) if start + len(rows) < total else None,
                             next_cursor=history_cursor(start + len(rows), rows[-1]["id"]) if more else None)
        lines = [page_text("Experiments", total, start, len(rows))
                 + (f"; or cursor={result.next_cursor}" if result.next_cursor else "")]
        for row in result.rows:
            lines.append(f"#{row.id} {row.name} [{row.field_a} × {row.field_b}] status={row.status} "
                         f"outcome={row.outcome or '-'} ratio={ratio(row.geomean_ratio)} verdict={row.verdict or '-'}"
                         + (f" parent=#{row.parent_id}" if row.parent_id else "")
                         + (f" REDISCOVERY of {row.rediscovery_of}" if row.rediscovery_of else "")
                         + (f" DUPLICATE of #{row.duplicate_of}" if row.duplicate_of else ""))
        return reply(result, "\n".join(lines))
