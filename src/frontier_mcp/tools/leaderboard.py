"""leaderboard: experiments ranked by their best geometric-mean loss ratio against the best baseline."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from ..archive.cursors import leaderboard_cursor, parse_leaderboard_cursor
from ..protocol.suites import VisibleSuite
from ..render.text import page_text
from ._common import hints, reply, runtime
from ._errors import archive_errors
from .history import Page


class LeaderRow(BaseModel):
    rank: int
    id: int
    name: str
    field_a: str
    field_b: str
    geomean_ratio: float = Field(description="<1 means lower final loss than the best tuned baseline")
    suite: str | None = Field(None, description="the suite whose run gave this ratio (suites differ in problems)")
    outcome: str | None
    verdict: str | None


class LeaderboardPage(Page):
    rows: list[LeaderRow]  # type: ignore[assignment]


def register(server: MCPServer) -> None:
    @server.tool(title="Leaderboard", annotations=hints(read_only=True, idempotent=True))
    async def leaderboard(
        ctx: Context,
        suite: Annotated[VisibleSuite | None, Field(
            description="Rank by this suite only (default: any).")] = None,
        limit: Annotated[int, Field(description="Rows per page.", ge=1, le=100)] = 20,
        offset: Annotated[int, Field(description="Rows to skip (paging).", ge=0)] = 0,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page: continue after it "
                                            "(offset then skips rows after it).", max_length=80)] = None,
    ) -> Annotated[CallToolResult, LeaderboardPage]:
        """Rank benchmarked experiments by their best geometric-mean ratio of final loss to the best tuned baseline (lower is better; below 1 beats the baselines), over any visible suite unless `suite` is given; each row names the suite of its ratio. Read-only, paged."""
        rt = runtime(ctx)
        with archive_errors():
            position, after = parse_leaderboard_cursor(cursor) if cursor else (0, None)
            rows, total = rt.archive.leaderboard(limit=limit, offset=offset, suite=suite, after=after)
        start = position + offset
        ranked = [LeaderRow(rank=start + i + 1, **row) for i, row in enumerate(rows)]
        more = len(rows) == limit and start + len(rows) < total  # a short page is the last
        result = LeaderboardPage(
            total=total, offset=start, rows=ranked, next_offset=start + len(rows) if start + len(rows) < total else None,
            next_cursor=leaderboard_cursor(start + len(rows), rows[-1]["geomean_ratio"], rows[-1]["id"]) if more
            else None)
        lines = [page_text("Leaderboard", total, start, len(rows))
                 + (f"; or cursor={result.next_cursor}" if result.next_cursor else "")]
        lines += [f"{r.rank}. #{r.id} {r.name} ratio={r.geomean_ratio:.3g} ({r.suite or '-'}) outcome={r.outcome} "
                  f"verdict={r.verdict or '-'} [{r.field_a} × {r.field_b}]" for r in ranked]
        return reply(result, "\n".join(lines))
