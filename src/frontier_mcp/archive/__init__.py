"""The archive: the only owner of `state.db` (SQLite, WAL).

    store      Archive: opening (checks, migrations), transactions, every write
    queries    every read, through a read-only, time-limited connection
    cursors    where the next page of a paged listing starts (keyset), as the tools and the CLI spell it
    schema     the tables, as ordered migration functions; SCHEMA_VERSION
    records    typed shapes of what reads return; `load_report`, the one decoder of archived reports
    errors     ArchiveError, ArchiveUnusable, and SQLite's errors made actionable
"""

from .errors import ArchiveError, ArchiveUnusable
from .records import ExperimentSummary, PairingRow, Relatives, is_hidden, load_report, visible_report
from .schema import HIDDEN_SUITES, MIGRATIONS, SCHEMA_VERSION
from .store import FINISHED_JOBS, QUERY_SECONDS, REVISABLE, Archive, sha256_text

__all__ = [
    "FINISHED_JOBS",
    "HIDDEN_SUITES",
    "MIGRATIONS",
    "QUERY_SECONDS",
    "REVISABLE",
    "SCHEMA_VERSION",
    "Archive",
    "ArchiveError",
    "ArchiveUnusable",
    "ExperimentSummary",
    "PairingRow",
    "Relatives",
    "is_hidden",
    "load_report",
    "sha256_text",
    "visible_report",
]
