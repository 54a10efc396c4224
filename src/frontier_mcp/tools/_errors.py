"""The archive's failures as tool errors: the model reads the archive's own message."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from mcp.server.mcpserver.exceptions import ToolError

from ..archive import ArchiveError


@contextlib.contextmanager
def archive_errors() -> Iterator[None]:
    """An unknown id, a full disk, a number too large, an unusable state.db: said, not crashed on."""
    try:
        yield
    except ArchiveError as exc:
        raise ToolError(str(exc)) from None
