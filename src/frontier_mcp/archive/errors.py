"""The archive's exceptions, and the translation of SQLite's errors into messages a person (or a
model) can act on.

    ArchiveError          a request the archive cannot satisfy (unknown id, duplicate name, disk
                          full, a number SQLite cannot store); the message says what to do
    └── ArchiveUnusable   state.db itself cannot be used (not SQLite, corrupted, read-only,
                          newer than this code); one line: which file, what is wrong, what to do
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

MAX_INTEGER = 2**63 - 1  # SQLite stores signed 64-bit integers


class ArchiveError(Exception):
    """A request the archive cannot satisfy (unknown id, duplicate name, ...)."""


class ArchiveUnusable(ArchiveError):
    """state.db cannot be opened or used at all; the message is one actionable line."""


def _code(exc: sqlite3.Error) -> int:
    return int(getattr(exc, "sqlite_errorcode", -1)) & 0xFF  # the primary code, without extended bits


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        _code(exc) == getattr(sqlite3, "SQLITE_FULL", 13) or "disk is full" in str(exc))


def disk_full(path: Path) -> ArchiveError:
    return ArchiveError(
        f"the disk holding the archive {path} is full (or the database hit its size limit); nothing was written. "
        "Free some space on that disk, then call this again.")


def too_large() -> ArchiveError:
    return ArchiveError(f"a number in this request is too large for the archive: ids, seeds and counts must be at "
                        f"most {MAX_INTEGER} (2**63 - 1); use an id that `history` lists.")


def unusable(path: Path, exc: BaseException) -> ArchiveUnusable:
    """What is wrong with state.db (or its folder), and what the user can do about it."""
    detail = str(exc) or type(exc).__name__
    lowered = detail.lower()
    code = _code(exc) if isinstance(exc, sqlite3.Error) else -1
    if isinstance(exc, PermissionError) or code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN,
                                                    sqlite3.SQLITE_PERM) or "readonly" in lowered:
        return ArchiveUnusable(
            f"cannot write the archive {path} ({detail}): make the file and its folder writable by this user "
            "(SQLite writes state.db-wal and state.db-shm beside it), or choose another lab with --home or "
            "FRONTIER_HOME.")
    if is_disk_full(exc):
        return ArchiveUnusable(f"cannot open the archive {path}: its disk is full ({detail}); free some space.")
    foreign = code == sqlite3.SQLITE_NOTADB or "not a database" in lowered
    what = "is not an SQLite database" if foreign else "is damaged"
    return ArchiveUnusable(
        f"the archive {path} {what} ({detail}): move it aside (mv {path} {path}.broken) and frontier-mcp "
        "starts a new, empty one; or restore it from a backup (`sqlite3 state.db .recover` may save its rows).")


@contextlib.contextmanager
def translated(path: Path) -> Iterator[None]:
    """SQLite's errors that the caller cannot act on as they are, turned into ones it can."""
    try:
        yield
    except OverflowError:
        raise too_large() from None
    except sqlite3.OperationalError as exc:
        if is_disk_full(exc):
            raise disk_full(path) from exc
        raise
    except sqlite3.DatabaseError as exc:
        if _code(exc) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            raise unusable(path, exc) from exc
        raise
