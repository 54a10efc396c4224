import sqlite3
from pathlib import Path

import pytest

from frontier_mcp.archive import SCHEMA_VERSION, Archive, ArchiveError


def make(tmp_path: Path) -> tuple[Archive, int]:
    archive = Archive(tmp_path / "state.db")
    return archive, archive.add_pairing("p-adic-analysis", "fluid-dynamics", seed=1)


def add(archive: Archive, pairing: int, name: str = "alpha", source: str = "fn a() {}", **kw):
    return archive.add_experiment(name=name, pairing_id=pairing, parent_id=kw.get("parent_id"), source=source,
                                  normalized_sha256="n-" + source, statement="s" * 12, mechanism="m" * 12,
                                  prediction="p" * 12)


def test_schema_is_migrated_and_wal(tmp_path: Path) -> None:
    archive, _ = make(tmp_path)
    assert archive.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert archive.db.journal_mode == "wal"
    archive.close()
    reopened = Archive(tmp_path / "state.db")  # idempotent re-open
    assert reopened.counts()["pairings"] == 1


def test_revision_only_before_a_successful_build(tmp_path: Path) -> None:
    archive, pairing = make(tmp_path)
    exp_id, revised = add(archive, pairing)
    assert not revised
    again, revised = add(archive, pairing, source="fn b() {}")
    assert (again, revised) == (exp_id, True)
    archive.add_build(exp_id, ok=True, seconds=0.1, errors=0, warnings=0, diagnostics=[], provenance={})
    with pytest.raises(ArchiveError, match="new name"):
        add(archive, pairing, source="fn c() {}")
    assert archive.require_experiment(exp_id)["source"] == "fn b() {}"


def test_bad_references_write_nothing(tmp_path: Path) -> None:
    archive, pairing = make(tmp_path)
    before = archive.counts()
    with pytest.raises(ArchiveError, match="pairing 999"):
        add(archive, 999)
    with pytest.raises(ArchiveError, match="parent experiment 42"):
        add(archive, pairing, parent_id=42)
    assert archive.counts() == before


def test_benchmark_run_is_all_or_nothing(tmp_path: Path) -> None:
    archive, pairing = make(tmp_path)
    exp_id, _ = add(archive, pairing)
    good = {"phase": "eval", "problem": "q", "optimizer": "candidate", "lr": 0.1, "seed": 1, "final_loss": 1.0,
            "best_loss": 1.0, "diverged": 0, "test_accuracy": None, "ns_per_step": 5.0, "grad_evals": 1,
            "error": None}
    bad = {**good, "no_such_column": 1}
    before = archive.counts()
    with pytest.raises(sqlite3.OperationalError):
        archive.add_benchmark_run(exp_id, job_id=None, suite="quick", harness_version="h", outcome="tie",
                                  geomean_ratio=1.0, wins=0, ties=1, losses=0, summary={}, provenance={},
                                  seconds=1.0, trials=[good, bad])
    assert archive.counts() == before
    assert archive.require_experiment(exp_id)["status"] == "written"


def test_verdicts_are_final(tmp_path: Path) -> None:
    archive, pairing = make(tmp_path)
    exp_id, _ = add(archive, pairing)
    archive.add_verdict(exp_id, verdict="broken", benchmark_run_id=None, notes="", lessons="x", evidence={})
    with pytest.raises(ArchiveError, match="final"):
        archive.add_verdict(exp_id, verdict="loss", benchmark_run_id=None, notes="", lessons="", evidence={})
    assert archive.lessons_for_fields(["fluid-dynamics"])[0]["lessons"] == "x"


def test_queries_cannot_write(tmp_path: Path) -> None:
    archive, _ = make(tmp_path)
    with pytest.raises(sqlite3.DatabaseError):
        archive.query("DELETE FROM pairings")
    assert archive.counts()["pairings"] == 1


def test_lineage_history_and_leaderboard(tmp_path: Path) -> None:
    archive, pairing = make(tmp_path)
    root, _ = add(archive, pairing, name="root")
    child, _ = add(archive, pairing, name="child", source="fn c() {}", parent_id=root)
    assert [row["id"] for row in archive.lineage(child)] == [root, child]
    for exp_id, ratio in ((root, 1.5), (child, 0.8)):
        archive.add_benchmark_run(exp_id, job_id=None, suite="quick", harness_version="h", outcome="tie",
                                  geomean_ratio=ratio, wins=0, ties=1, losses=0, summary={}, provenance={},
                                  seconds=1.0, trials=[])
    archive.add_benchmark_run(root, job_id=None, suite="holdout", harness_version="h", outcome="win",
                              geomean_ratio=0.1, wins=1, ties=0, losses=0, summary={}, provenance={},
                              seconds=1.0, trials=[])  # hidden: never ranks, never shows in history
    archive.add_benchmark_run(root, job_id=None, suite="standard", harness_version="h", outcome="loss",
                              geomean_ratio=1.2, wins=0, ties=9, losses=1, summary={}, provenance={},
                              seconds=1.0, trials=[])
    rows, total = archive.leaderboard(limit=10, offset=0)
    assert total == 2 and [r["id"] for r in rows] == [child, root]
    # Each row names the suite its best ratio comes from (suites differ in problems).
    assert [(r["geomean_ratio"], r["suite"], r["outcome"]) for r in rows] == [(0.8, "quick", "tie"),
                                                                            (1.2, "standard", "loss")]
    assert archive.leaderboard(limit=10, offset=0, suite="quick")[1] == 2
    rows, total = archive.history(limit=2, offset=0)
    assert total == 2 and rows[0]["id"] == child and rows[0]["geomean_ratio"] == 0.8
    assert rows[1]["geomean_ratio"] == 1.2 and rows[1]["outcome"] == "loss"
    again, _ = add(archive, pairing, name="again")  # the root's source once more
    rows, _ = archive.history(limit=3, offset=0)
    assert [(r["id"], r["duplicate_of"]) for r in rows] == [(again, root), (child, None), (root, None)]


def test_orphaned_jobs_are_marked_interrupted(tmp_path: Path) -> None:
    archive, _ = make(tmp_path)
    archive.add_job("bench-quick-1", "bench-quick", None, 10)
    archive.db.execute("UPDATE jobs SET server_pid = 2147483646")  # a pid that cannot be alive
    assert archive.mark_orphaned_jobs() == 1
    assert archive.job("bench-quick-1")["status"] == "interrupted"


def test_hidden_suites_are_the_same_everywhere() -> None:
    from frontier_mcp.archive import HIDDEN_SUITES
    from frontier_mcp.protocol import SUITES

    assert tuple(name for name, suite in SUITES.items() if suite.hidden) == HIDDEN_SUITES


def test_a_revision_cannot_make_a_parent_cycle(tmp_path: Path) -> None:
    archive, pairing = make(tmp_path)
    first, _ = add(archive, pairing, name="first")
    second, _ = add(archive, pairing, name="second", source="fn s() {}", parent_id=first)
    with pytest.raises(ArchiveError, match="descends from"):
        add(archive, pairing, name="first", source="fn f2() {}", parent_id=second)
    assert archive.require_experiment(first)["parent_id"] is None
