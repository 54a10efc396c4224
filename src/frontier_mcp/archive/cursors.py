"""Cursors of the paged listings (`history`, `leaderboard`): where the next page starts.

A cursor names the last row of a page by its key in the listing's order (keyset paging): the next page
is one range of an index from there, at any depth, where an `offset` walks every row before it. It also
carries that row's position, so a page read from a cursor still reports its offset and ranks; the
position is as of the page that gave the cursor (rows written since then move later pages' positions,
never their rows). The text is the tools' and the CLI's: "POSITION:ID" for history (newest first: the
next page has smaller ids) and "POSITION:RATIO:ID" for the leaderboard (lowest ratio first, ties by id;
the ratio in Python's repr, which reads back exactly). Any well-formed cursor is a valid place to start.
"""

from __future__ import annotations

import math

from .errors import ArchiveError


def history_cursor(position: int, last_id: int) -> str:
    """The cursor after a history row: `position` rows come before the next page."""
    return f"{position}:{last_id}"


def leaderboard_cursor(position: int, ratio: float, last_id: int) -> str:
    return f"{position}:{ratio!r}:{last_id}"


def parse_history_cursor(text: str) -> tuple[int, int]:
    """(rows before the next page, the id the next page starts below)."""
    parts = text.split(":")
    if len(parts) == 2 and all(_is_count(part) for part in parts):
        return int(parts[0]), int(parts[1])
    raise _malformed(text, "history", "POSITION:ID")


def parse_leaderboard_cursor(text: str) -> tuple[int, tuple[float, int]]:
    """(rows before the next page, the (ratio, id) the next page starts after)."""
    parts = text.split(":")
    if len(parts) == 3 and _is_count(parts[0]) and _is_count(parts[2]):
        try:
            ratio = float(parts[1])
        except ValueError:
            ratio = math.nan
        if math.isfinite(ratio):
            return int(parts[0]), (ratio, int(parts[2]))
    raise _malformed(text, "leaderboard", "POSITION:RATIO:ID")


def _is_count(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 18


def _malformed(text: str, listing: str, shape: str) -> ArchiveError:
    return ArchiveError(f"cursor {text[:60]!r} is not a {listing} cursor ({shape}); pass the next_cursor of the "
                        f"previous {listing} page, or page with offset.")
