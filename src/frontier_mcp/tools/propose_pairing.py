"""propose_pairing: two rarely connected fields to conjecture from."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from ..pairing import FieldCard, NoPairLeft, catalog, choose_pair
from ._common import fail, hints, reply, runtime
from ._errors import archive_errors
from .record_result import LESSONS_SHOWN, clip


class Lesson(BaseModel):
    experiment_id: int
    name: str
    verdict: str
    lessons: str


class PairingResult(BaseModel):
    pairing_id: int = Field(description="pass this to write_crate")
    field_a: FieldCard
    field_b: FieldCard
    times_pair_tried_before: int
    lessons: list[Lesson] = Field(description="lessons recorded by earlier experiments on either field (in full)")
    next_step: str


def register(server: MCPServer) -> None:
    @server.tool(title="Propose a pairing of two fields", annotations=hints(read_only=False))
    async def propose_pairing(
        ctx: Context,
        include: Annotated[list[str] | None, Field(
            description=("Fields the pair must contain (0, 1 or 2), by id or name in any case "
                         "('random-matrix-theory' or 'Random matrix theory'). Two fix the pair."),
            max_length=2)] = None,
        exclude: Annotated[list[str] | None, Field(
            description="Fields never to use (ids or names).", max_length=200)] = None,
        seed: Annotated[int | None, Field(description="Seed for a reproducible choice.", ge=0,
                                          le=2**63 - 1)] = None,
        allow_repeat: Annotated[bool, Field(
            description="Allow a pair that was proposed before (default: never repeat).")] = False,
    ) -> Annotated[CallToolResult, PairingResult]:
        """Start a research iteration: two rarely connected fields of mathematics, physics or theoretical CS, with key objects, theorems and why each might matter for high-dimensional non-convex optimization; pairs the archive has not tried are favoured. Conjecture an optimizer that bridges them, then call write_crate with the pairing_id."""
        rt = runtime(ctx)
        with archive_errors():
            usage = rt.archive.pair_usage()
        try:
            a, b = choose_pair(usage, include=include or [], exclude=exclude or [], seed=seed, allow_repeat=allow_repeat)
        except (ValueError, NoPairLeft) as exc:
            raise fail(str(exc)) from None
        before = usage.get("|".join(sorted((a, b))), {}).get("proposed", 0)
        with archive_errors():
            pairing_id = rt.archive.add_pairing(a, b, seed)
            lessons = [Lesson(**row) for row in rt.archive.lessons_for_fields([a, b])]
        cards = catalog()
        result = PairingResult(
            pairing_id=pairing_id, field_a=cards[a], field_b=cards[b], times_pair_tried_before=before,
            lessons=lessons,
            next_step=("Conjecture a contrarian, falsifiable optimizer mechanism bridging the two fields; "
                       f"then call write_crate(pairing_id={pairing_id}, ...). The prompt 'translate' shows "
                       "the Rust contract."))
        text = [f"Pairing {pairing_id}: {cards[a].name} × {cards[b].name}"]
        for card in (cards[a], cards[b]):
            text.append(f"\n## {card.name} ({card.area})\nObjects: " + "; ".join(card.objects)
                        + "\nTheorems: " + "; ".join(card.theorems)
                        + f"\nOptimization angle: {card.optimization_angle}")
        if lessons:
            text.append("\nLessons from earlier experiments on these fields:")
            text += [f"- #{lesson.experiment_id} {lesson.name} ({lesson.verdict}): {clip(lesson.lessons, LESSONS_SHOWN)}"
                     for lesson in lessons]
        text.append("\n" + result.next_step)
        return reply(result, "\n".join(text))
