"""The archive: the only owner of `state.db`.

Every write goes through `transaction()` (BEGIN IMMEDIATE ... COMMIT), so a killed process
leaves either the whole change or none of it. Reads for the query tools go through a separate
read-only connection, so a query can never write. Opening checks the file (`PRAGMA quick_check`)
and refuses a damaged, foreign or read-only one with `ArchiveUnusable` and one actionable line.
The check reads the whole file (~2 s for 100,000 experiments), so on a file above
`FULL_CHECK_BYTES` it is left to `frontier-mcp doctor` (`check="full"`): every other open (the
server's start, each CLI command) reads the header and the schema, and SQLite still refuses a
damaged page when a query meets it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import schema
from .errors import ArchiveError, ArchiveUnusable, translated, unusable
from .queries import Queries
from .schema import HIDDEN_SUITES

FINISHED_JOBS = frozenset({"done", "failed", "cancelled", "interrupted"})

# An experiment whose source never compiled may be revised in place under the same name.
REVISABLE = ("written", "compile_failed")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _pid_alive(pid: int) -> bool:
    """Whether `pid` is still a running frontier-mcp server (not a zombie, not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no procfs here: trust the signal check
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    if state in {"Z", "X"}:
        return False  # killed, not yet reaped by whoever started it
    return b"frontier" in cmdline


# What the read-only connection may do: read tables, call functions, recurse. Nothing else.
_READ_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                 getattr(sqlite3, "SQLITE_RECURSIVE", 33)}
QUERY_SECONDS = 10.0


def _read_only_authorizer(action: int, *_args: object) -> int:
    return sqlite3.SQLITE_OK if action in _READ_ACTIONS else sqlite3.SQLITE_DENY


class Database:
    """The writing connection, in autocommit mode (transactions are explicit). It was sqlite-utils'
    Database, of which only `execute` and `enable_wal` were used; importing sqlite-utils imports
    numpy (0.2-0.3 s), all of it on the server's path to `initialize`."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.conn.execute(sql, parameters)

    @property
    def journal_mode(self) -> str:
        return str(self.conn.execute("PRAGMA journal_mode").fetchone()[0])

    def enable_wal(self) -> None:
        if self.journal_mode != "wal":
            self.conn.execute("PRAGMA journal_mode = wal")

    def close(self) -> None:
        self.conn.close()


# Up to this size the whole file is checked at every open (~0.2 s); above it, by `doctor`.
FULL_CHECK_BYTES = 64 * 1024 * 1024


class Archive(Queries):
    """The lab's SQLite archive. Safe to share between threads; serialised by one lock."""

    def __init__(self, path: Path | str, *, check: str = "auto"):
        """`check`: "full" runs `PRAGMA quick_check` whatever the size; "auto" only up to FULL_CHECK_BYTES."""
        self.path = Path(path)
        self._full_check = check == "full"
        self._lock = threading.RLock()
        self._deadline = float("inf")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise unusable(self.path, exc) from None
        self.db = Database(conn)
        try:
            self._check_and_migrate()
            self._reader = self._open_reader()
        except ArchiveUnusable:
            conn.close()
            raise
        except (OSError, sqlite3.Error) as exc:
            conn.close()
            raise unusable(self.path, exc) from None

    def _check_and_migrate(self) -> None:
        self.db.execute("PRAGMA busy_timeout = 30000")
        self.db.execute("PRAGMA foreign_keys = ON")
        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0
        check = "PRAGMA quick_check(3)" if self._full_check or size <= FULL_CHECK_BYTES else "PRAGMA schema_version"
        problems = [row[0] for row in self.db.execute(check).fetchall()]
        if check.startswith("PRAGMA quick_check") and problems != ["ok"]:
            raise unusable(self.path, sqlite3.DatabaseError("quick_check: " + "; ".join(problems)))
        self.db.enable_wal()
        with self.transaction():
            found = schema.version(self.db)
            if found > schema.SCHEMA_VERSION:
                raise ArchiveUnusable(
                    f"the archive {self.path} has schema version {found}, newer than this frontier-mcp "
                    f"({schema.SCHEMA_VERSION}); upgrade frontier-mcp.")
            schema.migrate(self.db)

    def _open_reader(self) -> sqlite3.Connection:
        reader = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30, check_same_thread=False)
        reader.row_factory = sqlite3.Row
        reader.execute("PRAGMA query_only = ON")
        # Three locks on one door: a read-only file handle, query_only, and an authorizer that
        # denies anything but reading; plus limits so a query cannot run or grow without bound.
        reader.set_authorizer(_read_only_authorizer)
        reader.set_progress_handler(self._past_deadline, 10_000)
        reader.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 64 * 1024 * 1024)
        reader.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 256 * 1024)
        reader.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        return reader

    def _past_deadline(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    def close(self) -> None:
        with self._lock:
            self._reader.close()
            self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Database]:
        """BEGIN IMMEDIATE so two servers on one lab queue up instead of failing mid-way."""
        with self._lock, translated(self.path):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.conn.in_transaction:  # SQLite already rolled back after some errors (a full disk)
                    self.db.execute("ROLLBACK")
                raise

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        cursor = self.db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))
        return int(cursor.lastrowid or 0)

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        with self._lock, translated(self.path):
            self._deadline = time.monotonic() + QUERY_SECONDS
            try:
                return [dict(row) for row in self._reader.execute(sql, params).fetchall()]
            finally:
                self._deadline = float("inf")

    def tuples(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        """`query` as plain tuples, for reads of thousands of rows (no row object, no dict per row)."""
        with self._lock, translated(self.path):
            self._deadline = time.monotonic() + QUERY_SECONDS
            try:
                cursor = self._reader.cursor()
                cursor.row_factory = None
                return cursor.execute(sql, params).fetchall()
            finally:
                self._deadline = float("inf")

    def rebuild_leader(self) -> None:
        with self.transaction():
            schema.rebuild_leader(self.db)
            schema.rebuild_pair_stats(self.db)

    def _bump_pair(self, experiment_id: int, assignments: str, params: tuple[Any, ...] = ()) -> None:
        """Update the pair_stats row of an experiment's pairing (inside the caller's transaction)."""
        self.db.execute(f"UPDATE pair_stats SET {assignments} WHERE pair_key = (SELECT p.pair_key FROM "
                        "experiments e JOIN pairings p ON p.id = e.pairing_id WHERE e.id = ?)",
                        (*params, experiment_id))

    # -- pairings and experiments -----------------------------------------------------------

    def add_pairing(self, field_a: str, field_b: str, seed: int | None) -> int:
        key = "|".join(sorted((field_a, field_b)))
        now = time.time()
        with self.transaction():
            self.db.execute(
                "INSERT INTO pair_stats (pair_key, proposed, last_proposed) VALUES (?, 1, ?) ON CONFLICT (pair_key) "
                "DO UPDATE SET proposed = proposed + 1, last_proposed = MAX(last_proposed, excluded.last_proposed)",
                (key, now))
            return self._insert("pairings", {"field_a": field_a, "field_b": field_b, "pair_key": key,
                                             "seed": seed, "created_at": now})

    def add_experiment(self, *, name: str, pairing_id: int, parent_id: int | None, source: str,
                       normalized_sha256: str, statement: str, mechanism: str, prediction: str
                       ) -> tuple[int, bool]:
        """Insert a new experiment, or revise one that has not compiled yet; (id, revised)."""
        now = time.time()
        digest = sha256_text(source)
        with self.transaction():
            if self.db.execute("SELECT 1 FROM pairings WHERE id = ?", (pairing_id,)).fetchone() is None:
                raise ArchiveError(f"pairing {pairing_id} does not exist; call propose_pairing first.")
            if parent_id is not None and self.db.execute(
                "SELECT 1 FROM experiments WHERE id = ?", (parent_id,)
            ).fetchone() is None:
                raise ArchiveError(f"parent experiment {parent_id} does not exist.")
            existing = self.db.execute("SELECT id, status, pairing_id FROM experiments WHERE name = ?",
                                       (name,)).fetchone()
            if existing and (existing[1] not in REVISABLE or existing[2] != pairing_id):
                raise ArchiveError(
                    f"experiment {existing[0]} is already named {name!r} (status {existing[1]}); only an "
                    "experiment of the same pairing that has not compiled yet can be revised. Choose a new "
                    f"name, with parent_id={existing[0]} to keep the lineage.")
            if parent_id is not None and existing and existing[0] in self._ancestors(parent_id):
                raise ArchiveError(f"experiment {parent_id} descends from experiment {existing[0]} (or is it): "
                                   "a parent must be an ancestor, not a descendant.")
            found = self.db.execute("SELECT id FROM sources WHERE sha256 = ?", (digest,)).fetchone()
            source_id = found[0] if found else self._insert(
                "sources", {"sha256": digest, "normalized_sha256": normalized_sha256,
                            "bytes": len(source.encode()), "text": source})
            fields = {"pairing_id": pairing_id, "parent_id": parent_id, "source_id": source_id,
                      "statement": statement, "mechanism": mechanism, "prediction": prediction,
                      "status": "written", "updated_at": now}
            if existing:
                assignments = ", ".join(f"{key} = ?" for key in fields)
                self.db.execute(f"UPDATE experiments SET {assignments} WHERE id = ?",
                                (*fields.values(), existing[0]))
                return int(existing[0]), True
            experiment_id = self._insert("experiments", {"name": name, "created_at": now, **fields})
            self._bump_pair(experiment_id, "experiments = experiments + 1")
            return experiment_id, False

    def _ancestors(self, experiment_id: int) -> set[int]:
        """The experiment and its ancestors, read inside the caller's transaction."""
        rows = self.db.execute(
            """WITH RECURSIVE chain(id, parent_id) AS (
                   SELECT id, parent_id FROM experiments WHERE id = ?
                   UNION SELECT e.id, e.parent_id FROM experiments e JOIN chain ON e.id = chain.parent_id)
               SELECT id FROM chain""", (experiment_id,)).fetchall()
        return {row[0] for row in rows}

    def add_build(self, experiment_id: int, *, ok: bool, seconds: float, errors: int, warnings: int,
                  diagnostics: list[dict[str, Any]], provenance: dict[str, Any]) -> int:
        with self.transaction():
            build_id = self._insert("builds", {
                "experiment_id": experiment_id, "ok": int(ok), "seconds": seconds, "errors": errors,
                "warnings": warnings, "diagnostics": json.dumps(diagnostics),
                "provenance": json.dumps(provenance), "created_at": time.time()})
            self.db.execute(
                "UPDATE experiments SET status = ?, updated_at = ? WHERE id = ? AND status != 'recorded'",
                ("compiled" if ok else "compile_failed", time.time(), experiment_id))
            return build_id

    # -- jobs -------------------------------------------------------------------------------

    def add_job(self, job_id: str, kind: str, experiment_id: int | None, total: int) -> None:
        with self.transaction():
            self._insert("jobs", {"id": job_id, "kind": kind, "experiment_id": experiment_id,
                                  "status": "running", "total": total, "server_pid": os.getpid(),
                                  "started_at": time.time()})

    def update_job(self, job_id: str, **fields: Any) -> None:
        if fields.get("status") in FINISHED_JOBS:
            fields.setdefault("finished_at", time.time())
        assignments = ", ".join(f"{key} = ?" for key in fields)
        with self.transaction():
            self.db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*fields.values(), job_id))

    def mark_orphaned_jobs(self) -> int:
        """Jobs left 'running' by a server that no longer exists were interrupted."""
        running = self.running_jobs()
        dead = [row["id"] for row in running
                if row["server_pid"] == os.getpid() or not _pid_alive(row["server_pid"])]
        for job_id in dead:
            self.update_job(job_id, status="interrupted",
                            message="the server stopped before the job finished; run it again")
        return len(dead)

    # -- results ----------------------------------------------------------------------------

    def add_benchmark_run(self, experiment_id: int, *, job_id: str | None, suite: str,
                          harness_version: str, outcome: str, geomean_ratio: float | None,
                          wins: int, ties: int, losses: int, summary: dict[str, Any],
                          provenance: dict[str, Any], seconds: float,
                          trials: list[dict[str, Any]]) -> int:
        """The run, its trials and the experiment's status land together or not at all."""
        with self.transaction():
            run_id = self._insert("benchmark_runs", {
                "experiment_id": experiment_id, "job_id": job_id, "suite": suite,
                "harness_version": harness_version, "outcome": outcome, "geomean_ratio": geomean_ratio,
                "wins": wins, "ties": ties, "losses": losses, "summary": json.dumps(summary),
                "provenance": json.dumps(provenance), "seconds": seconds, "created_at": time.time()})
            for trial in trials:
                self._insert("trials", {"benchmark_run_id": run_id, **trial})
            self.db.execute(
                "UPDATE experiments SET status = 'benchmarked', updated_at = ? "
                "WHERE id = ? AND status != 'recorded'", (time.time(), experiment_id))
            if geomean_ratio is not None and suite not in HIDDEN_SUITES:
                self.db.execute(
                    "INSERT INTO leader (experiment_id, suite, best_ratio) VALUES (?, ?, ?) ON CONFLICT "
                    "(experiment_id, suite) DO UPDATE SET best_ratio = MIN(best_ratio, excluded.best_ratio)",
                    (experiment_id, suite, geomean_ratio))
                self.db.execute("UPDATE experiments SET best_ratio = MIN(COALESCE(best_ratio, ?), ?) WHERE id = ?",
                                (geomean_ratio, geomean_ratio, experiment_id))
                self._bump_pair(experiment_id, "best_ratio = MIN(COALESCE(best_ratio, ?), ?)",
                                (geomean_ratio, geomean_ratio))
            return run_id

    def add_ablations(self, experiment_id: int, *, job_id: str | None, suite: str,
                      results: dict[str, dict[str, Any]]) -> None:
        """Every switch's comparison of one ablation job lands together."""
        with self.transaction():
            for switch, result in results.items():
                self._insert("ablations", {
                    "experiment_id": experiment_id, "job_id": job_id, "suite": suite, "switch": switch,
                    "mattered": int(result["mattered"]), "geomean_ratio": result["geomean_ratio"],
                    "summary": json.dumps(result), "created_at": time.time()})

    def add_claim_test(self, experiment_id: int, *, scope: str, p_value: float,
                       level_of: Callable[[int, list[int]], float]) -> dict[str, Any]:
        """Test a claim as the next in the lab's online sequence: `level_of(t, discoveries)` gives the
        t-th test's level from the positions of earlier discoveries; read and write in one transaction,
        so two servers never test at the same position."""
        with self.transaction():
            earlier = self.db.execute("SELECT discovery FROM claim_tests ORDER BY id").fetchall()
            position = len(earlier) + 1
            level = level_of(position, [i + 1 for i, (found,) in enumerate(earlier) if found])
            discovery = p_value <= level
            self._insert("claim_tests", {"experiment_id": experiment_id, "scope": scope, "p_value": p_value,
                                         "level": level, "discovery": int(discovery), "created_at": time.time()})
            return {"test": position, "level": level, "p_value": p_value, "discovery": discovery}

    def add_verdict(self, experiment_id: int, *, verdict: str, benchmark_run_id: int | None,
                    notes: str, lessons: str, evidence: dict[str, Any]) -> int:
        with self.transaction():
            if self.db.execute("SELECT 1 FROM verdicts WHERE experiment_id = ?",
                               (experiment_id,)).fetchone():
                raise ArchiveError(
                    f"experiment {experiment_id} already has a recorded verdict; verdicts are final. "
                    "Write a child experiment (parent_id) to try again.")
            verdict_id = self._insert("verdicts", {
                "experiment_id": experiment_id, "verdict": verdict, "benchmark_run_id": benchmark_run_id,
                "notes": notes, "lessons": lessons, "evidence": json.dumps(evidence),
                "created_at": time.time()})
            self.db.execute("UPDATE experiments SET status = 'recorded', updated_at = ? WHERE id = ?",
                            (time.time(), experiment_id))
            if verdict == "win":
                self._bump_pair(experiment_id, "wins = wins + 1")
            elif verdict in ("loss", "broken"):
                self._bump_pair(experiment_id, "failures = failures + 1")
            return verdict_id
