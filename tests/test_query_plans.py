"""Every archive listing is an index search, not a table scan: `EXPLAIN QUERY PLAN` of each query the
read methods send, on a real state.db with a few thousand rows, with and without `ANALYZE`.

The statements are captured as the methods run them (a trace callback on the read-only connection),
so a query added to a listed method is checked too; a new read method must be added to LISTINGS (or,
if it reads a whole table by design, to WHOLE_TABLE) or `test_every_read_method_is_checked` fails.
At 100,000 experiments a scan costs 25 ms to 3 s per call (docs/performance.md); a search, < 1 ms.
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
from typing import Any

import pytest

from frontier_mcp.archive import Archive
from frontier_mcp.archive.queries import Queries

# Tables that grow with the number of experiments; a scan of any of them fails the test.
GUARDED = ("experiments", "benchmark_runs", "trials", "verdicts", "builds", "jobs", "claim_tests", "pairings")

# Read methods that return (or count) every row of a table by design: not listings.
WHOLE_TABLE = {
    "experiment_ids": "every id, for rendering every page",
    "counts": "COUNT(*) of each table",
    "next_claim_position": "the lab-wide online test needs every earlier claim, in order",
    "pair_usage": "one row per pair of fields (pair_stats: bounded by the field list, not the experiments)",
    "pairing_rows": "one row per pair of fields (pair_stats: bounded by the field list, not the experiments)",
}

N_EXPERIMENTS = 3000


def populate(path: Path, n: int = N_EXPERIMENTS, seed: int = 0) -> dict[str, Any]:
    """A lab with the shapes the tools write: pairings, sources (some shared), lineage, builds, jobs,
    runs on visible and hidden suites, trials, verdicts, ablations, claim tests."""
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
    for i in range(1, n + 1):
        db.execute("INSERT INTO sources VALUES (?, ?, ?, 10, 'fn x() {}')", (i, f"{i:064x}", f"{i % (n // 2):064x}"))
        parent = rng.randrange(1, i) if i > 1 and rng.random() < 0.3 else None
        status = rng.choice(["recorded"] * 7 + ["benchmarked", "compiled", "written"])
        db.execute("INSERT INTO experiments (id, name, pairing_id, parent_id, source_id, statement, mechanism, "
                   "prediction, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 's', 'm', 'p', ?, ?, ?)",
                   (i, f"exp_{i}", rng.randrange(1, pairings + 1), parent, i, status, now + i, now + i))
        db.execute("INSERT INTO builds (experiment_id, ok, seconds, errors, warnings, diagnostics, provenance, "
                   "created_at) VALUES (?, 1, 0.1, 0, 0, '[]', '{}', ?)", (i, now + i))
        if status in ("recorded", "benchmarked"):
            job = f"job-{i}"
            db.execute("INSERT INTO jobs (id, kind, experiment_id, status, server_pid, started_at) "
                       "VALUES (?, 'benchmark', ?, 'done', 1, ?)", (job, i, now + i))
            for suite in ["quick"] + (["standard"] if i % 5 == 0 else []) + (["holdout"] if i % 50 == 0 else []):
                ratio = rng.lognormvariate(0.3, 0.5)
                cursor = db.execute(
                    "INSERT INTO benchmark_runs (experiment_id, job_id, suite, harness_version, outcome, "
                    "geomean_ratio, wins, ties, losses, summary, provenance, seconds, created_at) "
                    "VALUES (?, ?, ?, 'h', 'tie', ?, 0, 1, 0, ?, '{}', 1, ?)",
                    (i, job, suite, ratio, json.dumps({"suite": suite}), now + i))
                for seed_ in range(2):
                    db.execute("INSERT INTO trials (benchmark_run_id, phase, problem, optimizer, lr, seed, "
                               "final_loss, diverged) VALUES (?, 'eval', 'p', 'candidate', 0.1, ?, 1.0, 0)",
                               (cursor.lastrowid, seed_))
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
    return {"field": "field-3", "norm": f"{7:064x}", "job": "job-100", "since": now + n // 2}


def listings(archive: Archive, known: dict[str, Any]) -> dict[str, Callable[[], object]]:
    """Every read method, with the arguments that exercise each of its query shapes."""
    leaf = archive.one("SELECT MAX(id) AS id FROM experiments WHERE parent_id IS NOT NULL")["id"]
    mid = N_EXPERIMENTS // 2
    return {
        "history": lambda: [archive.history(limit=20, offset=offset, status=status, field=field)
                            for offset in (0, N_EXPERIMENTS // 2) for status in (None, "recorded")
                            for field in (None, known["field"])],
        "leaderboard": lambda: [archive.leaderboard(limit=20, offset=offset, suite=suite)
                                for offset in (0, N_EXPERIMENTS // 4) for suite in (None, "quick", "standard")],
        "experiment": lambda: archive.experiment(mid),
        "require_experiment": lambda: archive.require_experiment(mid),
        "experiment_summary": lambda: archive.experiment_summary(mid),
        "children": lambda: archive.children(1),
        "lineage": lambda: archive.lineage(leaf),
        "descendants": lambda: archive.descendants(1),
        "linked_ids": lambda: archive.linked_ids(leaf),
        "relatives": lambda: archive.relatives(leaf),
        "experiments_with_source": lambda: archive.experiments_with_source(known["norm"]),
        "lessons_for_fields": lambda: archive.lessons_for_fields([known["field"], "field-4"]),
        "builds": lambda: archive.builds(mid),
        "last_build": lambda: archive.last_build(mid),
        "job": lambda: archive.job(known["job"]),
        "benchmark_runs": lambda: archive.benchmark_runs(mid),
        "runs_of_job": lambda: archive.runs_of_job(known["job"]),
        "holdout_runs_since": lambda: archive.holdout_runs_since(known["since"]),
        "ablations": lambda: archive.ablations(100),
        "ablations_of_job": lambda: archive.ablations_of_job(known["job"]),
        "verdict": lambda: archive.verdict(mid),
    }


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
        if table in GUARDED and "USING INDEX" not in detail and "USING COVERING INDEX" not in detail \
                and "USING INTEGER PRIMARY KEY" not in detail:
            bad.append(f"{detail} (table {table})")
    return bad


@pytest.fixture(scope="module", params=[False, True], ids=["as-written", "analyzed"])
def populated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[Archive, dict[str, Any]]]:
    path = tmp_path_factory.mktemp("plans") / "state.db"
    known = populate(path)
    if request.param:
        with sqlite3.connect(path) as conn:
            conn.execute("ANALYZE")
    archive = Archive(path)
    try:
        yield archive, known
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


def test_every_read_method_is_checked(populated: tuple[Archive, dict[str, Any]]) -> None:
    archive, known = populated
    methods = {name for name, _ in inspect.getmembers(Queries, inspect.isfunction)
               if not name.startswith("_") and name not in ("query", "one")}
    assert set(listings(archive, known)) == set(LISTINGS)
    assert methods - set(LISTINGS) - set(WHOLE_TABLE) == set()


LISTINGS = ("history", "leaderboard", "experiment", "require_experiment", "experiment_summary", "children",
            "lineage", "descendants", "linked_ids", "relatives", "experiments_with_source", "lessons_for_fields",
            "builds", "last_build", "job", "benchmark_runs", "runs_of_job", "holdout_runs_since", "ablations",
            "ablations_of_job", "verdict")


@pytest.mark.parametrize("name", LISTINGS)
def test_no_listing_scans_a_growing_table(populated: tuple[Archive, dict[str, Any]], name: str) -> None:
    archive, known = populated
    statements = captured(archive, listings(archive, known)[name])
    assert statements, f"{name} sent no query"
    scans = {sql: found for sql in statements if (found := scans_of(archive, sql))}
    assert not scans, f"{name} scans a table:\n" + "\n".join(f"{found}\n  in {sql}" for sql, found in scans.items())


def test_the_checker_sees_a_scan(populated: tuple[Archive, dict[str, Any]]) -> None:
    archive, _ = populated
    assert scans_of(archive, "SELECT * FROM experiments e WHERE e.statement = 'x'")
    assert scans_of(archive, "SELECT id FROM benchmark_runs WHERE seconds > 1")
    assert not scans_of(archive, "SELECT * FROM experiments WHERE id = 1")


def test_the_pair_summary_kept_by_the_writes_equals_the_one_derived_from_scratch(tmp_path: Path) -> None:
    """pair_stats is updated by add_pairing, add_experiment, add_benchmark_run and add_verdict; after
    a random mix of them it must equal what rebuild_leader derives from the tables."""
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
    for eid in experiments:
        for suite in rng.sample(["quick", "standard", "holdout"], rng.randrange(0, 3)):
            archive.add_benchmark_run(eid, job_id=None, suite=suite, harness_version="h", outcome="tie",
                                      geomean_ratio=rng.lognormvariate(0, 1), wins=0, ties=1, losses=0, summary={},
                                      provenance={}, seconds=1.0, trials=[])
        if rng.random() < 0.7:
            archive.add_verdict(eid, verdict=rng.choice(["win", "loss", "tie", "broken", "mixed"]),
                                benchmark_run_id=None, notes="", lessons="", evidence={})
    incremental = archive.query("SELECT * FROM pair_stats ORDER BY pair_key")
    usage = archive.pair_usage()
    archive.rebuild_leader()
    derived = archive.query("SELECT * FROM pair_stats ORDER BY pair_key")
    assert incremental == derived
    assert sum(r["proposed"] for r in derived) == len(pairings)
    assert sum(r["experiments"] for r in derived) == len(experiments)
    assert {k: v["failures"] for k, v in usage.items()} == {r["pair_key"]: r["failures"] for r in derived}
    archive.close()
