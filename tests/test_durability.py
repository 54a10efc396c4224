"""Nothing is lost: a server killed mid-benchmark, two servers on one lab, read-only queries."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
import uuid
from pathlib import Path

import anyio
import pytest
from mcp import Client

from frontier_mcp.archive import Archive

from .conftest import call, compiled, server_params
from .test_validate import GOOD

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


def pid_with_marker(marker: str) -> int:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if marker.encode() in (proc / "environ").read_bytes():
                    return int(proc.name)
    raise AssertionError("server not found")


def live_processes_matching(needle: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if needle in cmdline or (state == "Z" and needle in (proc / "comm").read_text()):
                    found.append(f"{proc.name} {state} {cmdline[:160]}")
    return found


def db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{home / 'state.db'}?mode=ro", uri=True)


async def test_kill_9_mid_benchmark_leaves_an_interrupted_job_and_no_partial_rows(lab_home: Path) -> None:
    marker = "KILLME-" + uuid.uuid4().hex
    name = "durable_killed"
    async with Client(server_params(lab_home, FRONTIER_TEST_MARKER=marker), read_timeout_seconds=600) as first:
        exp_id = await compiled(first, name, GOOD)
        status = await call(first, "benchmark", {"experiment_id": exp_id, "suite": "standard", "wait_seconds": 0})
        job_id = status["job_id"]
        # In the middle: some runs done and a candidate process live (baselines may run first and
        # alongside, so the first finished run does not mean a candidate process is running yet).
        deadline = time.monotonic() + 120
        while (status["done"] == 0 or not live_processes_matching(f"cand_{name}")) and time.monotonic() < deadline:
            status = await call(first, "job_status", {"job_id": job_id, "wait_seconds": 0.2})
        assert status["status"] == "running" and status["done"] > 0, status
        assert live_processes_matching(f"cand_{name}"), "the benchmark should be running"
        killed_pid = pid_with_marker(marker)
        os.kill(killed_pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await call(first, "history", {"limit": 1})
    # --die-with-parent: the sandboxes die with the server, none is left behind. (30 s: a loaded CI machine
    # once took longer than 10 s to tear a killed server's sandboxes down; the processes are named if not.)
    deadline = time.monotonic() + 30
    while (left := live_processes_matching(f"cand_{name}")) and time.monotonic() < deadline:
        await anyio.sleep(0.1)
    assert not left, f"sandboxed processes outlived the killed server: {left}"
    with db(lab_home) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()[0] == "running"
        assert conn.execute("SELECT COUNT(*) FROM benchmark_runs WHERE job_id = ?", (job_id,)).fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM trials WHERE benchmark_run_id NOT IN "
                            "(SELECT id FROM benchmark_runs)").fetchone()[0] == 0
    async with Client(server_params(lab_home), read_timeout_seconds=600) as second:
        job = await call(second, "job_status", {"job_id": job_id})
        assert job["status"] == "interrupted", job
        assert "run it again" in job["message"] and "benchmark again" in job["next_step"]
        again = await call(second, "benchmark", {"experiment_id": exp_id, "suite": "quick"})
        while again["status"] == "running":
            again = await call(second, "job_status", {"job_id": again["job_id"], "wait_seconds": 60})
        assert again["status"] == "done", again
    with db(lab_home) as conn:
        runs = conn.execute("SELECT job_id FROM benchmark_runs WHERE experiment_id = ?", (exp_id,)).fetchall()
    assert runs == [(again["job_id"],)]
    # As root, the killed server's pids cgroups were swept by the next server.
    for base in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
        assert not list(base.glob(f"frontier-mcp-{killed_pid}-*"))


async def test_two_servers_twenty_concurrent_calls_lose_and_duplicate_nothing(lab_home: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    with db(lab_home) as conn:
        pairings_before = conn.execute("SELECT COUNT(*) FROM pairings").fetchone()[0]
        experiments_before = conn.execute("SELECT COUNT(*) FROM experiments").fetchone()[0]
    async with Client(server_params(lab_home), read_timeout_seconds=600) as a, \
            Client(server_params(lab_home), read_timeout_seconds=600) as b:
        pairing = await call(a, "propose_pairing", {"allow_repeat": True})
        results: dict[str, dict] = {}

        async def one(client: Client, key: str) -> None:
            if key.startswith("pair"):
                results[key] = await call(client, "propose_pairing", {"allow_repeat": True})
            else:
                results[key] = await call(client, "write_crate", {
                    "pairing_id": pairing["pairing_id"], "name": f"c_{tag}_{key}", "source": GOOD,
                    "statement": "Concurrent writes.", "mechanism": "Two servers, one lab.",
                    "prediction": "Nothing lost or duplicated."})

        async with anyio.create_task_group() as group:
            for index in range(20):
                client = a if index % 2 else b
                group.start_soon(one, client, f"pair{index}" if index < 10 else f"w{index}")
        # Both servers write the same name at once: one experiment, not two.
        same = {"pairing_id": pairing["pairing_id"], "name": f"c_{tag}_same", "source": GOOD,
                "statement": "The same name twice.", "mechanism": "Two servers race.",
                "prediction": "One experiment results."}
        async with anyio.create_task_group() as group:
            for client in (a, b):
                group.start_soon(call, client, "write_crate", same)
    pairing_ids = [r["pairing_id"] for k, r in results.items() if k.startswith("pair")]
    experiment_ids = [r["experiment_id"] for k, r in results.items() if k.startswith("w")]
    assert len(set(pairing_ids)) == 10 and len(set(experiment_ids)) == 10
    with db(lab_home) as conn:
        assert conn.execute("SELECT COUNT(*) FROM pairings").fetchone()[0] == pairings_before + 11
        assert conn.execute("SELECT COUNT(*) FROM experiments").fetchone()[0] == experiments_before + 11
        names = [row[0] for row in conn.execute("SELECT name FROM experiments WHERE name LIKE ?", (f"c_{tag}_%",))]
        assert sorted(names) == sorted([f"c_{tag}_w{i}" for i in range(10, 20)] + [f"c_{tag}_same"])
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_read_only_queries_cannot_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = Archive(tmp_path / "state.db")
    try:
        archive.add_pairing("a", "b", None)
        before = archive.counts()
        for sql in ("INSERT INTO pairings (field_a, field_b, pair_key, created_at) VALUES ('x', 'y', 'x|y', 0)",
                    "UPDATE pairings SET field_a = 'z'", "DELETE FROM pairings", "DROP TABLE pairings",
                    "PRAGMA query_only = OFF", f"ATTACH DATABASE '{tmp_path / 'other.db'}' AS other",
                    "CREATE TEMP TABLE t (x)", "PRAGMA user_version = 99"):
            with pytest.raises(sqlite3.DatabaseError):
                archive.query(sql)
        assert archive.counts() == before
        assert archive.one("SELECT field_a FROM pairings")["field_a"] == "a"  # type: ignore[index]
        assert not (tmp_path / "other.db").exists()
        # A runaway query is interrupted instead of holding the archive.
        monkeypatch.setattr("frontier_mcp.archive.store.QUERY_SECONDS", 0.5)
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="interrupted"):
            archive.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c")
        assert time.monotonic() - started < 5
        assert archive.query("SELECT COUNT(*) AS n FROM pairings")[0]["n"] == 1
    finally:
        archive.close()
