"""The archive: the only owner of `state.db`.

Every write goes through `transaction()` (BEGIN IMMEDIATE ... COMMIT), so a killed process
leaves either the whole change or none of it. Reads for the query tools go through a separate
read-only connection, so a query can never write.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

SCHEMA_VERSION = 3

# Suites whose problems the model never sees (bench.SUITES[...].hidden): kept out of the listings.
HIDDEN_SUITES = ("holdout",)
_HIDDEN = ", ".join(f"'{name}'" for name in HIDDEN_SUITES)

# Each migration moves the schema from version i to i+1; never edit a shipped one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE pairings (
        id INTEGER PRIMARY KEY,
        field_a TEXT NOT NULL,
        field_b TEXT NOT NULL,
        pair_key TEXT NOT NULL,
        seed INTEGER,
        created_at REAL NOT NULL
    );
    CREATE INDEX idx_pairings_pair ON pairings(pair_key);

    CREATE TABLE sources (
        id INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL UNIQUE,
        normalized_sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        text TEXT NOT NULL
    );
    CREATE INDEX idx_sources_norm ON sources(normalized_sha256);

    CREATE TABLE experiments (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        pairing_id INTEGER NOT NULL REFERENCES pairings(id),
        parent_id INTEGER REFERENCES experiments(id),
        source_id INTEGER NOT NULL REFERENCES sources(id),
        statement TEXT NOT NULL,
        mechanism TEXT NOT NULL,
        prediction TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX idx_experiments_parent ON experiments(parent_id);
    CREATE INDEX idx_experiments_pairing ON experiments(pairing_id);
    CREATE INDEX idx_experiments_created ON experiments(created_at);

    CREATE TABLE builds (
        id INTEGER PRIMARY KEY,
        experiment_id INTEGER NOT NULL REFERENCES experiments(id),
        ok INTEGER NOT NULL,
        seconds REAL NOT NULL,
        errors INTEGER NOT NULL,
        warnings INTEGER NOT NULL,
        diagnostics TEXT NOT NULL,
        provenance TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX idx_builds_experiment ON builds(experiment_id);

    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        experiment_id INTEGER REFERENCES experiments(id),
        status TEXT NOT NULL,
        done INTEGER NOT NULL DEFAULT 0,
        total INTEGER NOT NULL DEFAULT 0,
        message TEXT NOT NULL DEFAULT '',
        error TEXT,
        server_pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL
    );

    CREATE TABLE benchmark_runs (
        id INTEGER PRIMARY KEY,
        experiment_id INTEGER NOT NULL REFERENCES experiments(id),
        job_id TEXT REFERENCES jobs(id),
        suite TEXT NOT NULL,
        harness_version TEXT NOT NULL,
        outcome TEXT NOT NULL,
        geomean_ratio REAL,
        wins INTEGER NOT NULL,
        ties INTEGER NOT NULL,
        losses INTEGER NOT NULL,
        summary TEXT NOT NULL,
        provenance TEXT NOT NULL,
        seconds REAL NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX idx_runs_experiment ON benchmark_runs(experiment_id);
    CREATE INDEX idx_runs_ratio ON benchmark_runs(geomean_ratio);

    CREATE TABLE trials (
        id INTEGER PRIMARY KEY,
        benchmark_run_id INTEGER NOT NULL REFERENCES benchmark_runs(id),
        phase TEXT NOT NULL,
        problem TEXT NOT NULL,
        optimizer TEXT NOT NULL,
        lr REAL NOT NULL,
        seed INTEGER NOT NULL,
        final_loss REAL,
        best_loss REAL,
        diverged INTEGER NOT NULL,
        test_accuracy REAL,
        ns_per_step REAL,
        grad_evals INTEGER,
        error TEXT
    );
    CREATE INDEX idx_trials_run ON trials(benchmark_run_id);

    CREATE TABLE verdicts (
        id INTEGER PRIMARY KEY,
        experiment_id INTEGER NOT NULL UNIQUE REFERENCES experiments(id),
        verdict TEXT NOT NULL,
        benchmark_run_id INTEGER REFERENCES benchmark_runs(id),
        notes TEXT NOT NULL,
        lessons TEXT NOT NULL,
        evidence TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    """,
    # 2: listings that stay fast at 100,000 experiments: each experiment's best visible ratio is
    # kept as it is written (experiments.best_ratio overall, leader per suite), not regrouped per query.
    """
    ALTER TABLE experiments ADD COLUMN best_ratio REAL;
    CREATE TABLE leader (
        experiment_id INTEGER NOT NULL REFERENCES experiments(id),
        suite TEXT NOT NULL,
        best_ratio REAL NOT NULL,
        PRIMARY KEY (experiment_id, suite)
    );
    CREATE INDEX idx_leader_suite_ratio ON leader(suite, best_ratio);
    CREATE INDEX idx_experiments_best ON experiments(best_ratio) WHERE best_ratio IS NOT NULL;
    CREATE INDEX idx_experiments_status ON experiments(status);
    CREATE INDEX idx_runs_experiment_suite ON benchmark_runs(experiment_id, suite, id);
    """,
    # 3: ablations: a candidate benchmarked with one declared mechanism switched off.
    """
    CREATE TABLE ablations (
        id INTEGER PRIMARY KEY,
        experiment_id INTEGER NOT NULL REFERENCES experiments(id),
        job_id TEXT REFERENCES jobs(id),
        suite TEXT NOT NULL,
        switch TEXT NOT NULL,
        mattered INTEGER NOT NULL,
        geomean_ratio REAL,
        summary TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX idx_ablations_experiment ON ablations(experiment_id)
    """,
]

# Derives the listings' denormalized columns from benchmark_runs (run by migration 2 and by tools
# that load runs with plain SQL).
REBUILD_LEADER = [
    "DELETE FROM leader",
    f"""INSERT INTO leader SELECT experiment_id, suite, MIN(geomean_ratio) FROM benchmark_runs
       WHERE geomean_ratio IS NOT NULL AND suite NOT IN ({_HIDDEN}) GROUP BY experiment_id, suite""",
    "UPDATE experiments SET best_ratio = (SELECT MIN(best_ratio) FROM leader l WHERE l.experiment_id = experiments.id)",
]


FINISHED_JOBS = frozenset({"done", "failed", "cancelled", "interrupted"})

# An experiment whose source never compiled may be revised in place under the same name.
REVISABLE = ("written", "compile_failed")


class ArchiveError(Exception):
    """A request the archive cannot satisfy (unknown id, duplicate name, ...)."""


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


class Archive:
    """The lab's SQLite archive. Safe to share between threads; serialised by one lock."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA busy_timeout = 30000")
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.enable_wal()
        self._lock = threading.RLock()
        self._deadline = float("inf")
        self._migrate()
        self._reader = self._open_reader()

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

    # -- schema ---------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self.transaction():
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ArchiveError(
                    f"{self.path} has schema version {version}, newer than this frontier-mcp "
                    f"({SCHEMA_VERSION}); upgrade frontier-mcp."
                )
            for index in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[index].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                if index == 1:
                    for statement in REBUILD_LEADER:
                        self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """BEGIN IMMEDIATE so two servers on one lab queue up instead of failing mid-way."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        cursor = self.db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))
        return int(cursor.lastrowid or 0)

    # -- reads ----------------------------------------------------------------------------

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            self._deadline = time.monotonic() + QUERY_SECONDS
            try:
                return [dict(row) for row in self._reader.execute(sql, params).fetchall()]
            finally:
                self._deadline = float("inf")

    def one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    # -- pairings -------------------------------------------------------------------------

    def add_pairing(self, field_a: str, field_b: str, seed: int | None) -> int:
        key = "|".join(sorted((field_a, field_b)))
        with self.transaction():
            return self._insert("pairings", {"field_a": field_a, "field_b": field_b, "pair_key": key,
                                             "seed": seed, "created_at": time.time()})

    def pairing(self, pairing_id: int) -> dict[str, Any] | None:
        return self.one("SELECT * FROM pairings WHERE id = ?", (pairing_id,))

    def pair_usage(self) -> dict[str, dict[str, int]]:
        """Per unordered pair: how often proposed, used by an experiment, and lost."""
        rows = self.query(
            """
            SELECT p.pair_key AS pair_key,
                   COUNT(DISTINCT p.id) AS proposed,
                   COUNT(DISTINCT e.id) AS experiments,
                   COUNT(DISTINCT CASE WHEN v.verdict IN ('loss', 'broken') THEN e.id END) AS failures
            FROM pairings p
            LEFT JOIN experiments e ON e.pairing_id = p.id
            LEFT JOIN verdicts v ON v.experiment_id = e.id
            GROUP BY p.pair_key
            """
        )
        return {row["pair_key"]: row for row in rows}

    def lessons_for_fields(self, fields: list[str], limit: int = 5) -> list[dict[str, Any]]:
        marks = ", ".join("?" for _ in fields)
        return self.query(
            f"""
            SELECT e.id AS experiment_id, e.name AS name, v.verdict AS verdict, v.lessons AS lessons
            FROM verdicts v JOIN experiments e ON e.id = v.experiment_id
            JOIN pairings p ON p.id = e.pairing_id
            WHERE (p.field_a IN ({marks}) OR p.field_b IN ({marks})) AND v.lessons != ''
            ORDER BY v.created_at DESC LIMIT ?
            """,
            (*fields, *fields, limit),
        )

    # -- experiments ----------------------------------------------------------------------

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
            return self._insert("experiments", {"name": name, "created_at": now, **fields}), False

    def _ancestors(self, experiment_id: int) -> set[int]:
        """The experiment and its ancestors, read inside the caller's transaction."""
        rows = self.db.execute(
            """WITH RECURSIVE chain(id, parent_id) AS (
                   SELECT id, parent_id FROM experiments WHERE id = ?
                   UNION SELECT e.id, e.parent_id FROM experiments e JOIN chain ON e.id = chain.parent_id)
               SELECT id FROM chain""", (experiment_id,)).fetchall()
        return {row[0] for row in rows}

    def experiments_with_source(self, normalized_sha256: str) -> list[dict[str, Any]]:
        return self.query(
            """SELECT e.id, e.name FROM experiments e JOIN sources s ON s.id = e.source_id
               WHERE s.normalized_sha256 = ? ORDER BY e.id""", (normalized_sha256,))

    def experiment(self, experiment_id: int) -> dict[str, Any] | None:
        return self.one(
            """SELECT e.*, s.sha256 AS source_sha256, s.text AS source, s.bytes AS source_bytes,
                      p.field_a, p.field_b
               FROM experiments e JOIN sources s ON s.id = e.source_id
               JOIN pairings p ON p.id = e.pairing_id WHERE e.id = ?""", (experiment_id,))

    def require_experiment(self, experiment_id: int) -> dict[str, Any]:
        found = self.experiment(experiment_id)
        if found is None:
            raise ArchiveError(f"experiment {experiment_id} does not exist; see `history` for ids.")
        return found

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

    def last_build(self, experiment_id: int) -> dict[str, Any] | None:
        return self.one("SELECT * FROM builds WHERE experiment_id = ? ORDER BY id DESC LIMIT 1",
                        (experiment_id,))

    # -- jobs -----------------------------------------------------------------------------

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

    def job(self, job_id: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM jobs WHERE id = ?", (job_id,))

    def mark_orphaned_jobs(self) -> int:
        """Jobs left 'running' by a server that no longer exists were interrupted."""
        running = self.query("SELECT id, server_pid FROM jobs WHERE status = 'running'")
        dead = [row["id"] for row in running
                if row["server_pid"] == os.getpid() or not _pid_alive(row["server_pid"])]
        for job_id in dead:
            self.update_job(job_id, status="interrupted",
                            message="the server stopped before the job finished; run it again")
        return len(dead)

    # -- benchmark runs -------------------------------------------------------------------

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

    def ablations(self, experiment_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM ablations WHERE experiment_id = ? ORDER BY id", (experiment_id,))

    def benchmark_runs(self, experiment_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM benchmark_runs WHERE experiment_id = ? ORDER BY id",
                          (experiment_id,))

    # -- verdicts -------------------------------------------------------------------------

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
            return verdict_id

    def verdict(self, experiment_id: int) -> dict[str, Any] | None:
        return self.one("SELECT * FROM verdicts WHERE experiment_id = ?", (experiment_id,))

    # -- listings -------------------------------------------------------------------------

    def history(self, *, limit: int, offset: int, status: str | None = None,
                field: str | None = None) -> tuple[list[dict[str, Any]], int]:
        where, params = [], []
        if status:
            where.append("e.status = ?")
            params.append(status)
        if field:
            where.append("(p.field_a = ? OR p.field_b = ?)")
            params += [field, field]
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        base = f"FROM experiments e JOIN pairings p ON p.id = e.pairing_id {clause}"
        # Without a field filter the count needs no join (and uses the status index).
        count_from = base if field else f"FROM experiments e {clause}"
        total = self.query(f"SELECT COUNT(*) AS n {count_from}", tuple(params))[0]["n"]
        latest = f"""(SELECT {{}} FROM benchmark_runs b WHERE b.experiment_id = e.id
                      AND b.suite NOT IN ({_HIDDEN}) ORDER BY b.id DESC LIMIT 1)"""
        rows = self.query(
            f"""SELECT e.id, e.name, e.status, e.parent_id, e.created_at, p.field_a, p.field_b,
                       substr(e.statement, 1, 160) AS statement,
                       (SELECT verdict FROM verdicts v WHERE v.experiment_id = e.id) AS verdict,
                       {latest.format("geomean_ratio")} AS geomean_ratio,
                       {latest.format("outcome")} AS outcome,
                       {latest.format("json_extract(summary, '$.rediscovery_of')")} AS rediscovery_of,
                       (SELECT MIN(e2.id) FROM sources s2 JOIN experiments e2 ON e2.source_id = s2.id
                        WHERE s2.normalized_sha256 = (SELECT normalized_sha256 FROM sources WHERE id = e.source_id)
                          AND e2.id < e.id) AS duplicate_of
                {base} ORDER BY e.id DESC LIMIT ? OFFSET ?""", (*params, limit, offset))
        return rows, total

    def rebuild_leader(self) -> None:
        with self.transaction():
            for statement in REBUILD_LEADER:
                self.db.execute(statement)

    def leaderboard(self, *, limit: int, offset: int, suite: str | None = None
                    ) -> tuple[list[dict[str, Any]], int]:
        """Experiments by their best geometric-mean loss ratio (visible suites), lowest first."""
        params: tuple[str, ...]
        if suite:
            source, ratio, params = "leader l JOIN experiments e ON e.id = l.experiment_id", "l.best_ratio", (suite,)
            where = "l.suite = ?"
        else:
            source, ratio, params = "experiments e", "e.best_ratio", ()
            where = "e.best_ratio IS NOT NULL"
        total = self.query(f"SELECT COUNT(*) AS n FROM {source} WHERE {where}", params)[0]["n"]
        rows = self.query(
            f"""SELECT e.id, e.name, p.field_a, p.field_b, {ratio} AS geomean_ratio,
                       (SELECT outcome FROM benchmark_runs b WHERE b.experiment_id = e.id
                        AND b.suite NOT IN ({_HIDDEN}) AND b.geomean_ratio = {ratio} LIMIT 1) AS outcome,
                       (SELECT verdict FROM verdicts v WHERE v.experiment_id = e.id) AS verdict
                FROM {source} JOIN pairings p ON p.id = e.pairing_id
                WHERE {where} ORDER BY {ratio} ASC, e.id ASC LIMIT ? OFFSET ?""", (*params, limit, offset))
        return rows, total

    def children(self, experiment_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT id, name, status FROM experiments WHERE parent_id = ? ORDER BY id",
                          (experiment_id,))

    def lineage(self, experiment_id: int, max_depth: int = 50) -> list[dict[str, Any]]:
        """Ancestors, oldest first, ending with the experiment itself."""
        return list(reversed(self.query(
            """WITH RECURSIVE chain(id, parent_id, name, depth) AS (
                   SELECT id, parent_id, name, 0 FROM experiments WHERE id = ?
                   UNION ALL
                   SELECT e.id, e.parent_id, e.name, chain.depth + 1
                   FROM experiments e JOIN chain ON e.id = chain.parent_id WHERE chain.depth < ?)
               SELECT id, parent_id, name FROM chain ORDER BY depth""", (experiment_id, max_depth))))

    def counts(self) -> dict[str, int]:
        return {table: self.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
                for table in ("pairings", "experiments", "builds", "benchmark_runs", "trials", "verdicts",
                              "jobs", "ablations")}
