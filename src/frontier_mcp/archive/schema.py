"""The schema of `state.db`, as ordered migrations: function i moves a lab from version i to i + 1.

The version lives in `PRAGMA user_version` (labs written before this module kept it there too).
Never edit a shipped migration: add one. sqlite-utils' `Migrations` helper records applied names
in a table of its own, which labs at versions 1-3 lack; a plain ordered list keeps their number.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, Protocol


class Executes(Protocol):
    """What a migration needs of a connection (sqlite3's, the store's Database, sqlite-utils')."""

    def execute(self, sql: str, parameters: Any = ..., /) -> sqlite3.Cursor: ...

# Suites whose problems the model never sees (protocol.SUITES[...].hidden): kept out of the listings.
HIDDEN_SUITES = ("holdout", "holdout-neural")
HIDDEN_SQL = ", ".join(f"'{name}'" for name in HIDDEN_SUITES)


def _run(db: Executes, *statements: str) -> None:
    for statement in statements:
        db.execute(statement)


def create_tables(db: Executes) -> None:
    """1: pairings, sources, experiments, builds, jobs, benchmark runs, trials, verdicts."""
    _run(db, """
    CREATE TABLE pairings (
        id INTEGER PRIMARY KEY,
        field_a TEXT NOT NULL,
        field_b TEXT NOT NULL,
        pair_key TEXT NOT NULL,
        seed INTEGER,
        created_at REAL NOT NULL
    )""", "CREATE INDEX idx_pairings_pair ON pairings(pair_key)", """
    CREATE TABLE sources (
        id INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL UNIQUE,
        normalized_sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        text TEXT NOT NULL
    )""", "CREATE INDEX idx_sources_norm ON sources(normalized_sha256)", """
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
    )""",
         "CREATE INDEX idx_experiments_parent ON experiments(parent_id)",
         "CREATE INDEX idx_experiments_pairing ON experiments(pairing_id)",
         "CREATE INDEX idx_experiments_created ON experiments(created_at)", """
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
    )""", "CREATE INDEX idx_builds_experiment ON builds(experiment_id)", """
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
    )""", """
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
    )""",
         "CREATE INDEX idx_runs_experiment ON benchmark_runs(experiment_id)",
         "CREATE INDEX idx_runs_ratio ON benchmark_runs(geomean_ratio)", """
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
    )""", "CREATE INDEX idx_trials_run ON trials(benchmark_run_id)", """
    CREATE TABLE verdicts (
        id INTEGER PRIMARY KEY,
        experiment_id INTEGER NOT NULL UNIQUE REFERENCES experiments(id),
        verdict TEXT NOT NULL,
        benchmark_run_id INTEGER REFERENCES benchmark_runs(id),
        notes TEXT NOT NULL,
        lessons TEXT NOT NULL,
        evidence TEXT NOT NULL,
        created_at REAL NOT NULL
    )""")


def add_leader(db: Executes) -> None:
    """2: listings that stay fast at 100,000 experiments: each experiment's best visible ratio is
    kept as it is written (experiments.best_ratio overall, leader per suite), not regrouped per query."""
    _run(db, "ALTER TABLE experiments ADD COLUMN best_ratio REAL", """
    CREATE TABLE leader (
        experiment_id INTEGER NOT NULL REFERENCES experiments(id),
        suite TEXT NOT NULL,
        best_ratio REAL NOT NULL,
        PRIMARY KEY (experiment_id, suite)
    )""",
         "CREATE INDEX idx_leader_suite_ratio ON leader(suite, best_ratio)",
         "CREATE INDEX idx_experiments_best ON experiments(best_ratio) WHERE best_ratio IS NOT NULL",
         "CREATE INDEX idx_experiments_status ON experiments(status)",
         "CREATE INDEX idx_runs_experiment_suite ON benchmark_runs(experiment_id, suite, id)")
    rebuild_leader(db)


def add_ablations(db: Executes) -> None:
    """3: ablations: a candidate benchmarked with one declared mechanism switched off."""
    _run(db, """
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
    )""", "CREATE INDEX idx_ablations_experiment ON ablations(experiment_id)")


def add_claim_tests(db: Executes) -> None:
    """4: claim_tests: every claim of a win tested against the lab's online error control (LORD++)."""
    _run(db, """
    CREATE TABLE claim_tests (
        id INTEGER PRIMARY KEY,
        experiment_id INTEGER NOT NULL REFERENCES experiments(id),
        scope TEXT NOT NULL,
        p_value REAL NOT NULL,
        level REAL NOT NULL,
        discovery INTEGER NOT NULL,
        created_at REAL NOT NULL
    )""", "CREATE INDEX idx_claim_tests_experiment ON claim_tests(experiment_id)")


def add_listing_indexes(db: Executes) -> None:
    """5: every listing stays an index search at 100,000 experiments (tests/test_query_plans.py checks
    each query's plan): `history`'s duplicate_of looks experiments up by source, job_status its runs
    by job, the holdout gate the hidden runs by time, propose_pairing the lessons by field, newest first."""
    _run(db, "CREATE INDEX idx_experiments_source ON experiments(source_id)",
         # Narrow, ordered by id: pages of `history` (no filter; by status; by pairing) and the leaderboard.
         "CREATE INDEX idx_experiments_id ON experiments(id)",
         "CREATE INDEX idx_experiments_pairing_status ON experiments(pairing_id, status)",
         "CREATE INDEX idx_leader_suite_ratio_id ON leader(suite, best_ratio, experiment_id)",
         "DROP INDEX idx_leader_suite_ratio",
         "CREATE INDEX idx_runs_job ON benchmark_runs(job_id) WHERE job_id IS NOT NULL",
         "CREATE INDEX idx_runs_suite_created ON benchmark_runs(suite, created_at)",
         "CREATE INDEX idx_ablations_job ON ablations(job_id) WHERE job_id IS NOT NULL",
         "CREATE INDEX idx_pairings_field_a ON pairings(field_a)",
         "CREATE INDEX idx_pairings_field_b ON pairings(field_b)",
         "CREATE INDEX idx_verdicts_created ON verdicts(created_at)")


def add_pair_stats(db: Executes) -> None:
    """6: pair_stats: per unordered pair of fields, the counts `propose_pairing` and `pairings` list
    (kept by the store's writes, like `leader`), so neither aggregates every pairing on each call."""
    _run(db, """
    CREATE TABLE pair_stats (
        pair_key TEXT PRIMARY KEY,
        proposed INTEGER NOT NULL DEFAULT 0,
        experiments INTEGER NOT NULL DEFAULT 0,
        wins INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        best_ratio REAL,
        last_proposed REAL
    ) WITHOUT ROWID""")
    rebuild_pair_stats(db)


def _pairing_fields(pairing_id: str) -> str:
    """The fields of a pairing (a pair has two distinct fields; UNION counts one field once anyway)."""
    return (f"SELECT field_a AS f FROM pairings WHERE id = {pairing_id} "
            f"UNION SELECT field_b FROM pairings WHERE id = {pairing_id}")


def _count_experiment(row: str, delta: int) -> str:
    """Add `delta` to every listing_counts key the experiment `row` is counted under."""
    fields = _pairing_fields(f"{row}.pairing_id")
    keys = (f"SELECT 'experiments' AS key UNION ALL SELECT 'status=' || {row}.status "
            f"UNION ALL SELECT 'field=' || f FROM ({fields}) "
            f"UNION ALL SELECT 'field=' || f || '&status=' || {row}.status FROM ({fields})")
    return _bump(keys, str(delta))


def _bump(keys: str, delta: str) -> str:
    return (f"INSERT INTO listing_counts (key, n) SELECT key, {delta} FROM ({keys}) WHERE true "
            "ON CONFLICT (key) DO UPDATE SET n = n + excluded.n;")


def _file_lessons(row: str) -> str:
    return (f"INSERT OR IGNORE INTO field_lessons (field, created_at, verdict_id) "
            f"SELECT f, {row}.created_at, {row}.id FROM "
            f"({_pairing_fields(f'(SELECT pairing_id FROM experiments WHERE id = {row}.experiment_id)')}) "
            f"WHERE {row}.lessons != '';")


def _unfile_lessons(row: str) -> str:
    return f"DELETE FROM field_lessons WHERE verdict_id = {row}.id AND created_at = {row}.created_at;"


def add_listing_counts(db: Executes) -> None:
    """7: every listing <= 50 ms at 1,000,000 experiments. The totals of `history` (overall, by status,
    by field, by both) and of `leaderboard` (overall, by suite) are kept in listing_counts instead of
    counted on every call (COUNT over 700,000 index entries took 20-40 ms); the lessons propose_pairing
    shows for two fields come from field_lessons, newest first per field, instead of every experiment of
    every pairing with either field. Both are kept by triggers, so every write keeps them exact (a status
    that moves, a revision, a leader row); pairings and verdicts are never rewritten by frontier-mcp.
    The jobs still marked running, read at every server start, are found by a partial index."""
    _run(db, """
    CREATE TABLE listing_counts (
        key TEXT PRIMARY KEY,
        n INTEGER NOT NULL
    ) WITHOUT ROWID""", """
    CREATE TABLE field_lessons (
        field TEXT NOT NULL,
        created_at REAL NOT NULL,
        verdict_id INTEGER NOT NULL REFERENCES verdicts(id),
        PRIMARY KEY (field, created_at, verdict_id)
    ) WITHOUT ROWID""",
         "CREATE INDEX idx_jobs_running ON jobs(status) WHERE status = 'running'",
         f"""CREATE TRIGGER count_experiment_insert AFTER INSERT ON experiments BEGIN
             {_count_experiment("NEW", 1)}
             {_bump("SELECT 'ranked' AS key WHERE NEW.best_ratio IS NOT NULL", "1")} END""",
         f"""CREATE TRIGGER count_experiment_delete AFTER DELETE ON experiments BEGIN
             {_count_experiment("OLD", -1)}
             {_bump("SELECT 'ranked' AS key WHERE OLD.best_ratio IS NOT NULL", "-1")} END""",
         f"""CREATE TRIGGER count_experiment_update AFTER UPDATE OF status, pairing_id ON experiments
             WHEN OLD.status IS NOT NEW.status OR OLD.pairing_id IS NOT NEW.pairing_id BEGIN
             {_count_experiment("OLD", -1)}
             {_count_experiment("NEW", 1)} END""",
         f"""CREATE TRIGGER count_experiment_ranked AFTER UPDATE OF best_ratio ON experiments
             WHEN (OLD.best_ratio IS NULL) IS NOT (NEW.best_ratio IS NULL) BEGIN
             {_bump("SELECT 'ranked' AS key", "CASE WHEN NEW.best_ratio IS NULL THEN -1 ELSE 1 END")} END""",
         f"""CREATE TRIGGER count_leader_insert AFTER INSERT ON leader BEGIN
             {_bump("SELECT 'suite=' || NEW.suite AS key", "1")} END""",
         f"""CREATE TRIGGER count_leader_delete AFTER DELETE ON leader BEGIN
             {_bump("SELECT 'suite=' || OLD.suite AS key", "-1")} END""",
         f"""CREATE TRIGGER count_leader_update AFTER UPDATE OF suite ON leader WHEN OLD.suite IS NOT NEW.suite BEGIN
             {_bump("SELECT 'suite=' || OLD.suite AS key", "-1")}
             {_bump("SELECT 'suite=' || NEW.suite AS key", "1")} END""",
         f"""CREATE TRIGGER file_lessons_insert AFTER INSERT ON verdicts BEGIN
             {_file_lessons("NEW")} END""",
         f"""CREATE TRIGGER file_lessons_delete AFTER DELETE ON verdicts BEGIN
             {_unfile_lessons("OLD")} END""",
         f"""CREATE TRIGGER file_lessons_update AFTER UPDATE OF lessons, created_at, experiment_id ON verdicts BEGIN
             {_unfile_lessons("OLD")}
             {_file_lessons("NEW")} END""")
    rebuild_listing_counts(db)


def _file_experiment(row: str) -> str:
    return (f"INSERT OR IGNORE INTO field_experiments (field, experiment_id, status) "
            f"SELECT f, {row}.id, {row}.status FROM ({_pairing_fields(f'{row}.pairing_id')}) WHERE true;")


def _unfile_experiment(row: str) -> str:
    return (f"DELETE FROM field_experiments WHERE experiment_id = {row}.id "
            f"AND field IN ({_pairing_fields(f'{row}.pairing_id')});")


def add_field_experiments(db: Executes) -> None:
    """8: pages of `history` by field and of `pairings` cost their rows, not the archive. Each experiment
    is filed under its pairing's fields in field_experiments, newest last (kept by triggers, like
    field_lessons), so a page by field (and status) is one range of one index, at any depth from a
    cursor; before, every experiment of every pairing with the field was read and sorted (~20,000 at
    1,000,000 experiments). pair_stats gets an index in the order `pairings` lists it, so its first rows
    are read without sorting every pair of the catalogue."""
    # No REFERENCES: the rows go with their experiment by trigger, and a foreign key would make SQLite
    # look for them on every delete of an experiment, in a table with no index on experiment_id alone.
    _run(db, """
    CREATE TABLE field_experiments (
        field TEXT NOT NULL,
        experiment_id INTEGER NOT NULL,
        status TEXT NOT NULL,
        PRIMARY KEY (field, experiment_id)
    ) WITHOUT ROWID""")
    rebuild_field_experiments(db)  # before the second index: one sort per index, not a random insert per row
    _run(db, "CREATE INDEX idx_field_experiments_status ON field_experiments(field, status, experiment_id)",
         "CREATE INDEX idx_pair_stats_rank ON pair_stats(best_ratio IS NULL, best_ratio, proposed DESC, pair_key)",
         f"""CREATE TRIGGER file_experiment_insert AFTER INSERT ON experiments BEGIN
             {_file_experiment("NEW")} END""",
         f"""CREATE TRIGGER file_experiment_delete AFTER DELETE ON experiments BEGIN
             {_unfile_experiment("OLD")} END""",
         f"""CREATE TRIGGER file_experiment_update AFTER UPDATE OF status, pairing_id ON experiments
             WHEN OLD.status IS NOT NEW.status OR OLD.pairing_id IS NOT NEW.pairing_id BEGIN
             {_unfile_experiment("OLD")}
             {_file_experiment("NEW")} END""")


def add_hidden_runs_index(db: Executes) -> None:
    """9: the holdout gate's window of hidden runs from one small index that holds every column it reads
    (partial: the hidden suites' runs only, ~1 % of runs), instead of each run's row (~1 KB with its
    summary) looked up from (suite, created_at): 6.1 -> 0.6 ms for ~750 runs at 100,000 experiments.
    The suites are written out, as they were when this shipped: HIDDEN_SUITES may grow, this may not
    (tests/test_migrations.py fails until a new migration indexes a new hidden suite)."""
    _run(db, "CREATE INDEX idx_runs_hidden ON benchmark_runs(created_at, experiment_id, suite, job_id, outcome) "
             "WHERE suite IN ('holdout', 'holdout-neural')")


MIGRATIONS: list[Callable[[Executes], None]] = [create_tables, add_leader, add_ablations, add_claim_tests,
                                                add_listing_indexes, add_pair_stats, add_listing_counts,
                                                add_field_experiments, add_hidden_runs_index]
SCHEMA_VERSION = len(MIGRATIONS)


def rebuild_leader(db: Executes) -> None:
    """Derive the listings' denormalized columns from benchmark_runs."""
    _run(db, "DELETE FROM leader",
         f"""INSERT INTO leader SELECT experiment_id, suite, MIN(geomean_ratio) FROM benchmark_runs
             WHERE geomean_ratio IS NOT NULL AND suite NOT IN ({HIDDEN_SQL}) GROUP BY experiment_id, suite""",
         "UPDATE experiments SET best_ratio = "
         "(SELECT MIN(best_ratio) FROM leader l WHERE l.experiment_id = experiments.id)")


def rebuild_pair_stats(db: Executes) -> None:
    """Derive pair_stats from pairings, experiments, verdicts and the visible benchmark runs."""
    _run(db, "DELETE FROM pair_stats", f"""
    INSERT INTO pair_stats (pair_key, proposed, experiments, wins, failures, best_ratio, last_proposed)
    SELECT p.pair_key, COUNT(DISTINCT p.id), COUNT(DISTINCT e.id),
           COUNT(DISTINCT CASE WHEN v.verdict = 'win' THEN e.id END),
           COUNT(DISTINCT CASE WHEN v.verdict IN ('loss', 'broken') THEN e.id END),
           (SELECT MIN(b.geomean_ratio) FROM benchmark_runs b
            JOIN experiments e2 ON e2.id = b.experiment_id JOIN pairings p2 ON p2.id = e2.pairing_id
            WHERE p2.pair_key = p.pair_key AND b.suite NOT IN ({HIDDEN_SQL})),
           MAX(p.created_at)
    FROM pairings p
    LEFT JOIN experiments e ON e.pairing_id = p.id
    LEFT JOIN verdicts v ON v.experiment_id = e.id
    GROUP BY p.pair_key""")


def rebuild_listing_counts(db: Executes) -> None:
    """Derive listing_counts and field_lessons from experiments, pairings, leader and verdicts."""
    by_field = ("SELECT e.id, e.status, p.field_a AS f FROM experiments e JOIN pairings p ON p.id = e.pairing_id "
                "UNION SELECT e.id, e.status, p.field_b FROM experiments e JOIN pairings p ON p.id = e.pairing_id")
    _run(db, "DELETE FROM listing_counts", f"""
    INSERT INTO listing_counts (key, n)
    SELECT 'experiments', COUNT(*) FROM experiments
    UNION ALL SELECT 'status=' || status, COUNT(*) FROM experiments GROUP BY status
    UNION ALL SELECT 'field=' || f, COUNT(*) FROM ({by_field}) GROUP BY f
    UNION ALL SELECT 'field=' || f || '&status=' || status, COUNT(*) FROM ({by_field}) GROUP BY f, status
    UNION ALL SELECT 'ranked', COUNT(*) FROM experiments WHERE best_ratio IS NOT NULL
    UNION ALL SELECT 'suite=' || suite, COUNT(*) FROM leader GROUP BY suite""",
         "DELETE FROM field_lessons", """
    INSERT OR IGNORE INTO field_lessons (field, created_at, verdict_id)
    SELECT p.field_a, v.created_at, v.id FROM verdicts v JOIN experiments e ON e.id = v.experiment_id
    JOIN pairings p ON p.id = e.pairing_id WHERE v.lessons != ''
    UNION SELECT p.field_b, v.created_at, v.id FROM verdicts v JOIN experiments e ON e.id = v.experiment_id
    JOIN pairings p ON p.id = e.pairing_id WHERE v.lessons != ''""")


def rebuild_field_experiments(db: Executes) -> None:
    """Derive field_experiments from experiments and pairings."""
    _run(db, "DELETE FROM field_experiments", """
    INSERT OR IGNORE INTO field_experiments (field, experiment_id, status)
    SELECT p.field_a, e.id, e.status FROM experiments e JOIN pairings p ON p.id = e.pairing_id
    UNION ALL SELECT p.field_b, e.id, e.status FROM experiments e JOIN pairings p ON p.id = e.pairing_id
    ORDER BY 1, 2""")


def version(db: Executes) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: Executes, target: int = SCHEMA_VERSION) -> list[str]:
    """Apply the migrations from the lab's version up to `target`, inside the caller's transaction;
    the names of those applied. A lab newer than this code is the caller's to refuse."""
    applied = []
    for index in range(version(db), target):
        MIGRATIONS[index](db)
        applied.append(MIGRATIONS[index].__name__)
    if applied:
        db.execute(f"PRAGMA user_version = {int(target)}")
    return applied
