"""The schema's migrations: ordered functions, each tested from the version before it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from frontier_mcp.archive import HIDDEN_SUITES, MIGRATIONS, SCHEMA_VERSION, Archive, ArchiveUnusable, schema


def lab_at(path: Path, version: int) -> sqlite_utils.Database:
    """A state.db as a frontier-mcp of schema `version` left it."""
    db = sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))
    schema.migrate(db, target=version)
    return db


def tables(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"))


def test_schema_version_is_the_number_of_migrations() -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) == 9
    assert [m.__name__ for m in MIGRATIONS] == ["create_tables", "add_leader", "add_ablations", "add_claim_tests",
                                               "add_listing_indexes", "add_pair_stats", "add_listing_counts",
                                               "add_field_experiments", "add_hidden_runs_index"]


def test_migrating_one_step_at_a_time_equals_migrating_at_once(tmp_path: Path) -> None:
    stepwise = lab_at(tmp_path / "a.db", 0)
    for version in range(1, SCHEMA_VERSION + 1):
        assert schema.migrate(stepwise, target=version) == [MIGRATIONS[version - 1].__name__]
        assert schema.version(stepwise) == version
    stepwise.close()
    Archive(tmp_path / "b.db").close()
    assert tables(tmp_path / "a.db") == tables(tmp_path / "b.db")


def test_a_version_1_lab_keeps_its_rows_and_gains_the_leaderboard(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = lab_at(path, 1)
    db.execute("INSERT INTO pairings VALUES (1, 'a', 'b', 'a|b', NULL, 0)")
    db.execute("INSERT INTO sources VALUES (1, 'h', 'n', 1, 'x')")
    db.execute("INSERT INTO experiments VALUES (1, 'old', 1, NULL, 1, 's', 'm', 'p', 'benchmarked', 0, 0)")
    for run_id, suite, ratio in ((1, "quick", 0.9), (2, "quick", 0.7), (3, "holdout", 0.1)):
        db.execute("INSERT INTO benchmark_runs VALUES (?, 1, NULL, ?, 'h', 'tie', ?, 0, 1, 0, '{}', '{}', 1, 0)",
                   (run_id, suite, ratio))
    db.close()
    archive = Archive(path)
    try:
        assert archive.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        rows, total = archive.leaderboard(limit=5, offset=0)
        assert total == 1 and rows[0]["geomean_ratio"] == 0.7  # the hidden suite's 0.1 never ranks
        assert archive.counts()["ablations"] == 0
    finally:
        archive.close()


def test_a_lab_newer_than_this_code_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Archive(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ArchiveUnusable, match="newer than this frontier-mcp"):
        Archive(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_a_version_4_lab_gains_the_listing_indexes_and_keeps_its_leaderboard(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = lab_at(path, 4)
    db.execute("INSERT INTO pairings VALUES (1, 'a', 'b', 'a|b', NULL, 0)")
    db.execute("INSERT INTO sources VALUES (1, 'h', 'n', 1, 'x')")
    for i in (1, 2):
        db.execute(f"INSERT INTO experiments VALUES ({i}, 'e{i}', 1, NULL, 1, 's', 'm', 'p', 'benchmarked', 0, 0, "
                   f"{0.5 * i})")
        db.execute(f"INSERT INTO leader VALUES ({i}, 'quick', {0.5 * i})")
    db.close()
    archive = Archive(path)
    try:
        indexes = {row["name"] for row in archive.query("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"idx_experiments_source", "idx_experiments_id", "idx_leader_suite_ratio_id"} <= indexes
        assert "idx_leader_suite_ratio" not in indexes
        assert [r["id"] for r in archive.leaderboard(limit=5, offset=0, suite="quick")[0]] == [1, 2]
        rows, total = archive.history(limit=5, offset=0)
        assert total == 2 and [(r["id"], r["duplicate_of"]) for r in rows] == [(2, 1), (1, None)]
    finally:
        archive.close()


def test_a_version_5_lab_gains_the_pair_summary_with_its_counts(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = lab_at(path, 5)
    db.execute("INSERT INTO pairings VALUES (1, 'a', 'b', 'a|b', NULL, 10)")
    db.execute("INSERT INTO pairings VALUES (2, 'b', 'a', 'a|b', NULL, 20)")
    db.execute("INSERT INTO pairings VALUES (3, 'a', 'c', 'a|c', NULL, 30)")
    db.execute("INSERT INTO sources VALUES (1, 'h', 'n', 1, 'x')")
    for i, pairing in ((1, 1), (2, 2), (3, 3)):
        db.execute(f"INSERT INTO experiments VALUES ({i}, 'e{i}', {pairing}, NULL, 1, 's', 'm', 'p', 'recorded', 0, "
                   "0, NULL)")
    for i, suite, ratio in ((1, "quick", 0.8), (2, "standard", 0.6), (2, "holdout", 0.1), (3, "quick", 2.0)):
        db.execute("INSERT INTO benchmark_runs (experiment_id, suite, harness_version, outcome, geomean_ratio, wins, "
                   f"ties, losses, summary, provenance, seconds, created_at) VALUES ({i}, '{suite}', 'h', 'tie', "
                   f"{ratio}, 0, 1, 0, '{{}}', '{{}}', 1, 0)")
    for i, verdict in ((1, "win"), (2, "broken"), (3, "loss")):
        db.execute(f"INSERT INTO verdicts (experiment_id, verdict, notes, lessons, evidence, created_at) "
                   f"VALUES ({i}, '{verdict}', '', '', '{{}}', 0)")
    db.close()
    archive = Archive(path)
    try:
        rows = {r["pair_key"]: r for r in archive.pairing_rows()}
        assert {k: (r["proposed"], r["experiments"], r["wins"], r["failures"], r["best_ratio"], r["last_proposed"])
                for k, r in rows.items()} == {"a|b": (2, 2, 1, 1, 0.6, 20), "a|c": (1, 1, 0, 1, 2.0, 30)}
        assert list(rows) == ["a|b", "a|c"]  # ordered by best visible ratio (the hidden 0.1 is not shown)
    finally:
        archive.close()


def test_a_version_6_lab_gains_the_listing_totals_and_the_lessons_by_field(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = lab_at(path, 6)
    db.execute("INSERT INTO pairings VALUES (1, 'a', 'b', 'a|b', NULL, 10)")
    db.execute("INSERT INTO pairings VALUES (2, 'a', 'c', 'a|c', NULL, 20)")
    db.execute("INSERT INTO sources VALUES (1, 'h', 'n', 1, 'x')")
    for i, pairing, status, ratio in ((1, 1, "recorded", 0.8), (2, 2, "recorded", None), (3, 2, "written", None)):
        db.execute("INSERT INTO experiments VALUES (?, ?, ?, NULL, 1, 's', 'm', 'p', ?, 0, 0, ?)",
                   (i, f"e{i}", pairing, status, ratio))
    db.execute("INSERT INTO leader VALUES (1, 'quick', 0.8)")
    for i, lessons, created in ((1, "lesson one", 5.0), (2, "lesson two", 6.0)):
        db.execute("INSERT INTO verdicts (experiment_id, verdict, notes, lessons, evidence, created_at) "
                   "VALUES (?, 'tie', '', ?, '{}', ?)", (i, lessons, created))
    db.close()
    archive = Archive(path)
    try:
        assert archive.history(limit=5, offset=0)[1] == 3
        assert archive.history(limit=5, offset=0, status="recorded")[1] == 2
        assert archive.history(limit=5, offset=0, field="a")[1] == 3
        assert archive.history(limit=5, offset=0, field="c", status="written")[1] == 1
        assert archive.leaderboard(limit=5, offset=0)[1] == 1
        assert archive.leaderboard(limit=5, offset=0, suite="quick")[1] == 1
        assert [r["lessons"] for r in archive.lessons_for_fields(["a"])] == ["lesson two", "lesson one"]
        assert [r["lessons"] for r in archive.lessons_for_fields(["b"])] == ["lesson one"]
    finally:
        archive.close()


def test_a_version_7_lab_files_its_experiments_by_field_and_keeps_them_filed(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = lab_at(path, 7)
    db.execute("INSERT INTO pairings VALUES (1, 'a', 'b', 'a|b', NULL, 10)")
    db.execute("INSERT INTO pairings VALUES (2, 'a', 'c', 'a|c', NULL, 20)")
    db.execute("INSERT INTO pair_stats (pair_key, proposed, best_ratio) VALUES ('a|b', 1, 0.9), ('a|c', 3, NULL)")
    db.execute("INSERT INTO sources VALUES (1, 'h', 'n', 1, 'x')")
    for i, pairing, status in ((1, 1, "recorded"), (2, 2, "recorded"), (3, 2, "written")):
        db.execute("INSERT INTO experiments VALUES (?, ?, ?, NULL, 1, 's', 'm', 'p', ?, 0, 0, NULL)",
                   (i, f"e{i}", pairing, status))
    db.close()
    archive = Archive(path)
    try:
        def filed(field: str, status: str | None = None) -> list[int]:
            return [r["id"] for r in archive.history(limit=9, offset=0, field=field, status=status)[0]]

        assert filed("a") == [3, 2, 1] and filed("b") == [1] and filed("c") == [3, 2]
        assert filed("c", "written") == [3] and filed("a", "recorded") == [2, 1]
        assert [r["id"] for r in archive.history(limit=9, offset=0, field="a", before=3)[0]] == [2, 1]
        # The triggers keep the filing as experiments are written, move status and are revised.
        with archive.transaction() as tx:
            tx.execute("INSERT INTO experiments VALUES (4, 'e4', 1, NULL, 1, 's', 'm', 'p', 'written', 0, 0, NULL)")
            tx.execute("UPDATE experiments SET status = 'compiled' WHERE id = 3")
            tx.execute("UPDATE experiments SET pairing_id = 1 WHERE id = 2")
            tx.execute("DELETE FROM experiments WHERE id = 1")
        assert filed("a") == [4, 3, 2] and filed("b") == [4, 2] and filed("c") == [3]
        assert filed("c", "written") == [] and filed("c", "compiled") == [3]
        assert [r["pair_key"] for r in archive.pairing_rows(limit=1)] == ["a|b"] and archive.pair_count() == 2
    finally:
        archive.close()


def test_a_version_8_lab_indexes_its_hidden_runs_for_the_holdout_gate(tmp_path: Path) -> None:
    """The partial index names the hidden suites as they were when it shipped: a new hidden suite needs a
    migration that indexes it too, or the gate would miss its runs' index (and fail on INDEXED BY)."""
    path = tmp_path / "state.db"
    db = lab_at(path, 8)
    db.execute("INSERT INTO pairings VALUES (1, 'a', 'b', 'a|b', NULL, 10)")
    db.execute("INSERT INTO sources VALUES (1, 'h', 'n', 1, 'x')")
    db.execute("INSERT INTO experiments VALUES (1, 'e1', 1, NULL, 1, 's', 'm', 'p', 'recorded', 0, 0, NULL)")
    for i, suite, created in ((1, "holdout", 5.0), (2, "quick", 6.0), (3, "holdout-neural", 7.0), (4, "holdout", 1.0)):
        db.execute("INSERT INTO benchmark_runs (id, experiment_id, suite, harness_version, outcome, wins, ties, "
                   "losses, summary, provenance, seconds, created_at) VALUES (?, 1, ?, 'h', 'win', 0, 0, 0, '{}', "
                   "'{}', 1, ?)", (i, suite, created))
    db.close()
    archive = Archive(path)
    try:
        runs = [(r["id"], r["suite"]) for r in archive.holdout_runs_since(2.0)]
        assert runs == [(1, "holdout"), (3, "holdout-neural")]
        (index,) = archive.query("SELECT sql FROM sqlite_master WHERE name = 'idx_runs_hidden'")
        assert index["sql"].endswith("WHERE suite IN (" + ", ".join(f"'{s}'" for s in HIDDEN_SUITES) + ")")
    finally:
        archive.close()
