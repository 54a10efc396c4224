"""Every archive listing is an index search, not a table scan: `EXPLAIN QUERY PLAN` of each statement
the listings send, on a real state.db with a few thousand rows, with and without `ANALYZE`.

The listings come from the code: `archive.queries.LISTINGS`, filled by the `@listing` decorator with
the argument shapes of each case; a public read method registered neither as a listing nor as a
whole-table read (`@whole_table`) fails `test_every_read_method_is_registered`. The statements are
captured as the methods run them (a trace callback on the read-only connection), so a query added to
a listing is checked too. At 1,000,000 experiments a scan costs 0.1-30 s per call; a search, < 1 ms.
"""

from __future__ import annotations

import inspect
import json
import random
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from frontier_mcp.archive import Archive, schema
from frontier_mcp.archive.queries import LISTINGS, WHOLE_TABLE, Probe, Queries

# Tables that grow with the experiments; a scan of any of them fails. (pair_stats is bounded by the
# field catalogue and listing_counts by fields x statuses: reading them whole is a listing's job.)
GUARDED = ("experiments", "sources", "benchmark_runs", "trials", "verdicts", "builds", "jobs", "claim_tests",
           "pairings", "leader", "ablations", "field_lessons", "field_experiments")

N_EXPERIMENTS = 3000


def populate(path: Path, n: int = N_EXPERIMENTS, seed: int = 0) -> None:
    """A lab with the shapes the tools write: pairings, sources (some shared), lineage, builds, jobs,
    runs on visible and hidden suites, trials, verdicts with and without lessons, ablations, claim tests."""
    Archive(path).close()
    rng = random.Random(seed)
    fields = [f"field-{k}" for k in range(40)]
    now = time.time() - n
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    pairings = max(1, n // 20)
    for i in range(1, pairings + 1):
        a, b = rng.sample(fields, 2)
        db.execute("INSERT INTO pairings VALUES (?, ?, ?, ?, NULL, ?)", (i, a, b, "|".join(sorted((a, b))), now + i))
    db.executemany("INSERT INTO sources VALUES (?, ?, ?, 10, 'fn x() {}')",
                   ((i, f"{i:064x}", f"{i % (n // 2):064x}") for i in range(1, n + 1)))
    statuses = {i: rng.choice(["recorded"] * 7 + ["benchmarked", "compiled", "written"]) for i in range(1, n + 1)}
    db.executemany("INSERT INTO experiments (id, name, pairing_id, parent_id, source_id, statement, mechanism, "
                   "prediction, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 's', 'm', 'p', ?, ?, ?)",
                   ((i, f"exp_{i}", rng.randrange(1, pairings + 1),
                     rng.randrange(1, i) if i > 1 and rng.random() < 0.3 else None, i, status, now + i, now + i)
                    for i, status in statuses.items()))
    db.executemany("INSERT INTO builds (experiment_id, ok, seconds, errors, warnings, diagnostics, provenance, "
                   "created_at) VALUES (?, 1, 0.1, 0, 0, '[]', '{}', ?)", ((i, now + i) for i in statuses))
    for i, status in statuses.items():
        if status in ("recorded", "benchmarked"):
            job = f"job-{i}"
            db.execute("INSERT INTO jobs (id, kind, experiment_id, status, server_pid, started_at) "
                       "VALUES (?, 'benchmark', ?, ?, 1, ?)", (job, i, "running" if i % 500 == 0 else "done", now + i))
            for suite in ["quick"] + (["standard"] if i % 5 == 0 else []) + (["holdout"] if i % 50 == 0 else []):
                cursor = db.execute(
                    "INSERT INTO benchmark_runs (experiment_id, job_id, suite, harness_version, outcome, "
                    "geomean_ratio, wins, ties, losses, summary, provenance, seconds, created_at) "
                    "VALUES (?, ?, ?, 'h', 'tie', ?, 0, 1, 0, ?, '{}', 1, ?)",
                    (i, job, suite, rng.lognormvariate(0.3, 0.5), json.dumps({"suite": suite}), now + i))
                db.executemany("INSERT INTO trials (benchmark_run_id, phase, problem, optimizer, lr, seed, "
                               "final_loss, diverged) VALUES (?, 'eval', 'p', 'candidate', 0.1, ?, 1.0, 0)",
                               ((cursor.lastrowid, seed_) for seed_ in range(2)))
        if status == "recorded":
            verdict = rng.choice(["win", "loss", "tie", "broken"])
            db.execute("INSERT INTO verdicts (experiment_id, verdict, notes, lessons, evidence, created_at) "
                       "VALUES (?, ?, '', ?, '{}', ?)", (i, verdict, rng.choice(["", "a lesson"]), now + i))
            if verdict == "win":
                db.execute("INSERT INTO claim_tests (experiment_id, scope, p_value, level, discovery, created_at) "
                           "VALUES (?, 'all', 0.01, 0.02, 1, ?)", (i, now + i))
        if i % 100 == 0:
            db.execute("INSERT INTO ablations (experiment_id, job_id, suite, switch, mattered, summary, created_at) "
                       "VALUES (?, ?, 'quick', 'momentum', 1, '{}', ?)", (i, f"job-{i}", now + i))
    db.execute("COMMIT")
    db.close()
    archive = Archive(path)
    archive.rebuild_leader()
    archive.close()


def scans_of(archive: Archive, sql: str) -> list[str]:
    plan = archive._reader.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
    aliases = {alias: table for table, alias in re.findall(r"\b(?:FROM|JOIN)\s+(\w+)\s+(?:AS\s+)?(\w+)", sql, re.I)}
    bad = []
    for row in plan:
        detail = row["detail"]
        m = re.match(r"SCAN (\w+)", detail)
        if not m:
            continue
        table = aliases.get(m.group(1), m.group(1))
        # A walk of an index in its order is bounded only by a LIMIT (a page); without one it reads it all.
        walk = any(f"USING {kind}" in detail for kind in ("INDEX", "COVERING INDEX", "INTEGER PRIMARY KEY"))
        if table in GUARDED and not (walk and re.search(r"\bLIMIT\b", sql, re.I)):
            bad.append(f"{detail} (table {table})")
    return bad


@pytest.fixture(scope="module", params=[False, True], ids=["as-written", "analyzed"])
def populated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[Archive, Probe]]:
    path = tmp_path_factory.mktemp("plans") / "state.db"
    populate(path)
    if request.param:
        with sqlite3.connect(path) as conn:
            conn.execute("ANALYZE")
    archive = Archive(path)
    try:
        yield archive, Probe.of(archive)
    finally:
        archive.close()


def captured(archive: Archive, run: Callable[[], object]) -> list[str]:
    statements: list[str] = []
    archive._reader.set_trace_callback(statements.append)
    try:
        run()
    finally:
        archive._reader.set_trace_callback(None)
    return [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]


def test_every_read_method_is_registered() -> None:
    methods = {name for name, _ in inspect.getmembers(Queries, inspect.isfunction)
               if not name.startswith("_") and name not in ("query", "tuples", "one")}
    assert methods - set(LISTINGS) - set(WHOLE_TABLE) == set(), "register it with @listing or @whole_table"
    assert set(LISTINGS) & set(WHOLE_TABLE) == set()
    assert {"history", "leaderboard", "lessons_for_fields", "pair_usage", "running_jobs"} <= set(LISTINGS)


@pytest.mark.parametrize("name", list(LISTINGS))
def test_no_listing_scans_a_growing_table(populated: tuple[Archive, Probe], name: str) -> None:
    archive, probe = populated
    for label, arguments in LISTINGS[name]:
        kwargs = arguments(probe)
        statements = captured(archive, lambda: getattr(archive, name)(**kwargs))  # noqa: B023 (called at once)
        assert statements, f"{name} ({label}) sent no query"
        scans = {sql: found for sql in statements if (found := scans_of(archive, sql))}
        assert not scans, f"{name} ({label}) scans a table:\n" + "\n".join(
            f"{found}\n  in {sql}" for sql, found in scans.items())


def test_the_checker_sees_a_scan(populated: tuple[Archive, Probe]) -> None:
    archive, _ = populated
    assert scans_of(archive, "SELECT * FROM experiments e WHERE e.statement = 'x'")
    assert scans_of(archive, "SELECT id FROM benchmark_runs WHERE seconds > 1")
    assert scans_of(archive, "SELECT id FROM experiments INDEXED BY idx_experiments_id ORDER BY id")
    assert not scans_of(archive, "SELECT id FROM experiments INDEXED BY idx_experiments_id ORDER BY id LIMIT 5")
    assert not scans_of(archive, "SELECT * FROM experiments WHERE id = 1")


def test_the_listings_answer_what_a_count_or_a_scan_would(populated: tuple[Archive, Probe]) -> None:
    """The totals kept by triggers, the lessons by field and the id prefixes, against the plain queries."""
    archive, probe = populated
    status_count = archive.one("SELECT COUNT(*) AS n FROM experiments WHERE status = 'recorded'")
    assert archive.history(limit=1, offset=0, status="recorded")[1] == status_count["n"]  # type: ignore[index]
    field_count = archive.one("SELECT COUNT(*) AS n FROM experiments e JOIN pairings p ON p.id = e.pairing_id "
                              "WHERE ? IN (p.field_a, p.field_b) AND e.status = 'recorded'", (probe.field,))
    assert archive.history(limit=1, offset=0, field=probe.field, status="recorded")[1] == field_count["n"]  # type: ignore[index]
    for offset in (1, 7, N_EXPERIMENTS // 2, N_EXPERIMENTS - 3, N_EXPERIMENTS + 5):  # ids 1..N: the page from the key
        walked = archive.query("SELECT id FROM experiments ORDER BY id DESC LIMIT 5 OFFSET ?", (offset,))
        assert [r["id"] for r in archive.history(limit=5, offset=offset)[0]] == [r["id"] for r in walked]
    fields = [probe.field, probe.other_field]
    plain = archive.query(
        "SELECT e.id AS experiment_id FROM verdicts v JOIN experiments e ON e.id = v.experiment_id "
        "JOIN pairings p ON p.id = e.pairing_id WHERE (p.field_a IN (?, ?) OR p.field_b IN (?, ?)) AND v.lessons != '' "
        "ORDER BY v.created_at DESC, v.id DESC LIMIT 7", (*fields, *fields))
    assert [r["experiment_id"] for r in archive.lessons_for_fields(fields, limit=7)] == \
        [r["experiment_id"] for r in plain]
    assert archive.lessons_for_fields([probe.unused_field]) == []
    for prefix in ("", "1", "2", "15", "299", "3000", "0", "9", "x"):
        like = archive.query("SELECT id FROM experiments WHERE CAST(id AS TEXT) LIKE ? ORDER BY id DESC LIMIT 30",
                             (f"{prefix}%",)) if prefix.isdigit() or not prefix else []
        assert archive.experiment_ids_starting_with(prefix, 30) == [r["id"] for r in like], prefix


def test_the_summaries_kept_by_the_writes_equal_those_derived_from_scratch(tmp_path: Path) -> None:
    """pair_stats (kept by the store's writes) and listing_counts, field_lessons and field_experiments (kept
    by triggers): after a random mix of the store's writes, each equals what a rebuild derives from the tables."""
    archive = Archive(tmp_path / "state.db")
    rng = random.Random(3)
    fields = ["a", "b", "c", "d"]
    pairings = [archive.add_pairing(*rng.sample(fields, 2), seed=None) for _ in range(12)]
    experiments = []
    for i in range(40):
        eid, _ = archive.add_experiment(name=f"e{i}", pairing_id=rng.choice(pairings), parent_id=None,
                                        source=f"fn f{i}() {{}}", normalized_sha256=f"{i:064x}", statement="s",
                                        mechanism="m", prediction="p")
        experiments.append(eid)
        if rng.random() < 0.3:
            pairings.append(archive.add_pairing(*rng.sample(fields, 2), seed=None))
        if rng.random() < 0.2:  # a revision before it compiles (same pairing, same name)
            archive.add_experiment(name=f"e{i}", pairing_id=archive.experiment(eid)["pairing_id"],  # type: ignore[index]
                                   parent_id=None, source=f"fn g{i}() {{}}", normalized_sha256=f"{i:063x}1",
                                   statement="s", mechanism="m", prediction="p")
    for eid in experiments:
        if rng.random() < 0.8:
            archive.add_build(eid, ok=rng.random() < 0.8, seconds=0.1, errors=0, warnings=0, diagnostics=[],
                              provenance={})
        for suite in rng.sample(["quick", "standard", "holdout"], rng.randrange(0, 3)):
            archive.add_benchmark_run(eid, job_id=None, suite=suite, harness_version="h", outcome="tie",
                                      geomean_ratio=rng.lognormvariate(0, 1), wins=0, ties=1, losses=0, summary={},
                                      provenance={}, seconds=1.0, trials=[])
        if rng.random() < 0.7:
            archive.add_verdict(eid, verdict=rng.choice(["win", "loss", "tie", "broken", "mixed"]),
                                benchmark_run_id=None, notes="", lessons=rng.choice(["", "a lesson"]), evidence={})
    tables = {"pair_stats": "SELECT * FROM pair_stats ORDER BY pair_key",
              "listing_counts": "SELECT * FROM listing_counts WHERE n != 0 ORDER BY key",
              "field_lessons": "SELECT * FROM field_lessons ORDER BY field, created_at, verdict_id",
              "field_experiments": "SELECT * FROM field_experiments ORDER BY field, experiment_id"}
    incremental = {name: archive.query(sql) for name, sql in tables.items()}
    filed = archive.query("SELECT field, experiment_id, status FROM field_experiments ORDER BY field, experiment_id")
    assert filed == archive.query(
        "SELECT p.field_a AS field, e.id AS experiment_id, e.status FROM experiments e JOIN pairings p "
        "ON p.id = e.pairing_id UNION SELECT p.field_b, e.id, e.status FROM experiments e JOIN pairings p "
        "ON p.id = e.pairing_id ORDER BY 1, 2")
    assert len({r["status"] for r in filed}) > 1  # filed as written, moved on by builds and runs
    usage = archive.pair_usage()
    archive.rebuild_leader()
    with archive.transaction() as db:  # the triggers' tables too (rebuild_leader derives pair_stats only)
        schema.rebuild_listing_counts(db)
        schema.rebuild_field_experiments(db)
    derived = {name: archive.query(sql) for name, sql in tables.items()}
    assert incremental == derived
    assert sum(r["proposed"] for r in derived["pair_stats"]) == len(pairings)
    assert sum(r["experiments"] for r in derived["pair_stats"]) == len(experiments)
    assert {k: v["failures"] for k, v in usage.items()} == {r["pair_key"]: r["failures"] for r in derived["pair_stats"]}
    counts = {r["key"]: r["n"] for r in derived["listing_counts"]}
    assert counts["experiments"] == len(experiments) == sum(n for k, n in counts.items() if k.startswith("status="))
    assert derived["field_lessons"], "some verdicts have lessons"
    archive.close()


def test_a_history_page_is_right_when_ids_have_gaps(tmp_path: Path) -> None:
    """Ids missing (a row deleted outside frontier-mcp): the page is walked, not computed from the key."""
    path = tmp_path / "state.db"
    Archive(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO pairings VALUES (1, 'a', 'b', 'a|b', NULL, 0)")
        db.execute("INSERT INTO sources VALUES (1, 'h', 'n', 1, 'x')")
        for i in (1, 2, 3, 5, 6):
            db.execute("INSERT INTO experiments (id, name, pairing_id, source_id, statement, mechanism, prediction, "
                       "status, created_at, updated_at) VALUES (?, ?, 1, 1, 's', 'm', 'p', 'written', 0, 0)",
                       (i, f"e{i}"))
        db.execute("DELETE FROM experiments WHERE id = 3")
    archive = Archive(path)
    try:
        rows, total = archive.history(limit=2, offset=1)
        assert total == 4 and [r["id"] for r in rows] == [5, 2]
    finally:
        archive.close()
