"""Server: start to `initialize`; `history` and `leaderboard` with 100,000 experiments.

Targets (issue 5): start -> initialize <= 1 s; history and leaderboard <= 50 ms with 100,000
experiments in state.db.

Start-up: a real MCP client spawns `python -m frontier_mcp serve` over stdio and completes the
handshake; the clock runs from before the spawn to the initialize result. Baselines in the same
run, alternating: a bare `python -c pass`, and `python -c "import mcp.server.mcpserver"` (the
SDK's own import floor). `-X importtime` names the heaviest imports.

Archive: the bench generates a lab with 100,000 experiments (pairings, sources, builds,
benchmark runs, verdicts; no per-run trials, which these two queries never read) directly in
SQL on the schema `Archive` creates, then times each query both in process (`Archive.history`,
`Archive.leaderboard`) and as tool calls through a stdio client. Baseline: the same tool calls
on an empty lab in the same run.

    python3 benches/server.py [--experiments 100000] [--starts 7] [--calls 30]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from _common import call, example_source, fmt_s, header, median, quantile, server_params, temp_lab, verdict
from mcp import Client

from frontier_mcp.archive import Archive
from frontier_mcp.pairing import catalog

START_TARGET = 1.0
QUERY_TARGET = 0.050


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=100_000)
    parser.add_argument("--starts", type=int, default=7, help="server starts timed (default 7)")
    parser.add_argument("--calls", type=int, default=30, help="calls per query (default 30)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary labs")
    args = parser.parse_args()
    header("server: start -> initialize; history and leaderboard on a large archive")
    with temp_lab(keep=args.keep) as empty, temp_lab(keep=args.keep) as big:
        startup(empty, args.starts)
        seconds = populate(big / "state.db", args.experiments)
        print(f"archive: {args.experiments:,} experiments generated in {seconds:.1f} s "
              f"({(big / 'state.db').stat().st_size / 2**20:.0f} MiB)")
        queries(big, empty, args.calls, args.experiments)


# -- start-up ----------------------------------------------------------------------------------

def startup(home: Path, starts: int) -> None:
    async def one_start() -> float:
        started = time.perf_counter()
        async with Client(server_params(home), read_timeout_seconds=60):
            ready = time.perf_counter() - started
        return ready

    def run(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        return time.perf_counter() - started

    anyio.run(one_start)  # first start: page cache, .pyc files
    server, bare, sdk = [], [], []
    for _ in range(starts):
        server.append(anyio.run(one_start))
        bare.append(run("pass"))
        sdk.append(run("import mcp.server.mcpserver"))
    print(f"start -> initialize over stdio: median {fmt_s(median(server))} (p90 {fmt_s(quantile(server, 0.9))}) "
          f"over {starts}")
    print(f"  python -c pass: {fmt_s(median(bare))}; python -c 'import mcp.server.mcpserver': {fmt_s(median(sdk))}")
    done = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import frontier_mcp.cli, frontier_mcp.server"], capture_output=True, text=True)
    rows = []
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            rows.append((int(m.group(2)), len(m.group(3)), m.group(4)))
    total = sum(c for c, depth, _ in rows if depth == 1)
    print(f"  import frontier_mcp.cli + .server: {total / 1e6:.2f} s cumulative (-X importtime); heaviest "
          "top-level imports:")
    for cumulative, _, name in sorted((r for r in rows if r[1] <= 3), reverse=True)[:8]:
        print(f"    {cumulative / 1e3:8.1f} ms  {name}")
    verdict("server_start", f"{fmt_s(median(server))} start -> initialize", f"<= {START_TARGET} s",
            median(server) <= START_TARGET,
            f"bare python {fmt_s(median(bare))}, python + MCP SDK import {fmt_s(median(sdk))}")


# -- a large archive ----------------------------------------------------------------------------

def populate(db_path: Path, n: int, seed: int = 0) -> float:
    """n experiments with the shapes the tools write, in one transaction, on Archive's own schema."""
    started = time.perf_counter()
    Archive(db_path).close()  # creates the schema (migrations), WAL mode
    rng = random.Random(seed)
    fields = sorted(catalog())
    now = time.time() - n
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("BEGIN")
    pairings = max(1, n // 50)
    db.executemany("INSERT INTO pairings (id, field_a, field_b, pair_key, seed, created_at) VALUES (?,?,?,?,?,?)",
                   ((i, a, b, "|".join(sorted((a, b))), None, now + i)
                    for i, (a, b) in ((i, rng.sample(fields, 2)) for i in range(1, pairings + 1))))
    body = example_source()
    db.executemany("INSERT INTO sources (id, sha256, normalized_sha256, bytes, text) VALUES (?,?,?,?,?)",
                   ((i, f"{i:064x}", f"{i:064x}", len(body) + 12, f"{body}// v{i:08d}\n") for i in range(1, n + 1)))
    statuses = ["recorded"] * 70 + ["benchmarked"] * 15 + ["compiled"] * 5 + ["compile_failed"] * 5 + \
        ["written"] * 5
    status_of = {}
    rows = []
    for i in range(1, n + 1):
        status = rng.choice(statuses)
        status_of[i] = status
        parent = rng.randrange(1, i) if i > 1 and rng.random() < 0.3 else None
        rows.append((i, f"exp_{i}", rng.randrange(1, pairings + 1), parent, i,
                     "A conjecture about a pairing of two fields, stated in a sentence or two " * 2,
                     "The mechanism: an update rule and why it should help on non-convex landscapes. " * 3,
                     "A falsifiable prediction the benchmark can refute.", status, now + i, now + i))
    db.executemany("INSERT INTO experiments (id, name, pairing_id, parent_id, source_id, statement, mechanism, "
                   "prediction, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.executemany("INSERT INTO builds (experiment_id, ok, seconds, errors, warnings, diagnostics, provenance, "
                   "created_at) VALUES (?,?,?,?,?,?,?,?)",
                   ((i, int(s != "compile_failed"), 0.2, int(s == "compile_failed"), 0, "[]",
                     '{"rustc": "rustc", "rustflags": "-C target-cpu=native"}', now + i)
                    for i, s in status_of.items() if s != "written"))
    summary = json.dumps({"suite": "quick", "problems": [{"problem": f"p{k}", "ratio": 1.0, "curves": [[0, 1.0]] * 12}
                                                         for k in range(3)]})
    runs = []
    verdicts = []
    for i, s in status_of.items():
        if s in ("recorded", "benchmarked"):
            suites = ["quick"] + (["standard"] if rng.random() < 0.2 else [])
            for suite in suites:
                ratio = rng.lognormvariate(0.3, 0.5)
                outcome = "loss" if ratio > 1.05 else ("tie" if ratio > 0.9 else "win")
                runs.append((i, suite, "1.0.0", outcome, ratio, 0, 3, 0, summary, "{}", 1.0, now + i))
        if s == "recorded":
            verdicts.append((i, rng.choice(["loss", "tie", "inconclusive", "mixed"]), "notes", "a lesson", "{}",
                             now + i))
    db.executemany("INSERT INTO benchmark_runs (experiment_id, suite, harness_version, outcome, geomean_ratio, "
                   "wins, ties, losses, summary, provenance, seconds, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                   runs)
    db.executemany("INSERT INTO verdicts (experiment_id, verdict, notes, lessons, evidence, created_at) "
                   "VALUES (?,?,?,?,?,?)", verdicts)
    db.execute("COMMIT")
    db.close()
    archive = Archive(db_path)
    archive.rebuild_leader()  # the listings' derived columns, as add_benchmark_run keeps them
    archive.close()
    db = sqlite3.connect(db_path)
    db.execute("ANALYZE")
    db.close()
    return time.perf_counter() - started


def timed(fn: Callable[[], Any], times: int) -> list[float]:
    out = []
    for _ in range(times):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


QUERIES: list[tuple[str, str, dict[str, Any]]] = [
    ("history, first page", "history", {"limit": 20}),
    ("history, status=recorded", "history", {"limit": 20, "status": "recorded"}),
    ("history, page at offset 50,000", "history", {"limit": 20, "offset": 50_000}),
    ("leaderboard, first page", "leaderboard", {"limit": 20}),
    ("leaderboard, suite=standard", "leaderboard", {"limit": 20, "suite": "standard"}),
]


def queries(big: Path, empty: Path, calls: int, n: int) -> None:
    archive = Archive(big / "state.db")
    field = archive.one("SELECT field_a FROM pairings WHERE id = 1")["field_a"]
    local = [*QUERIES, ("history, field=" + field, "history", {"limit": 20, "field": field})]
    print(f"in process (Archive methods), median of {calls}:")
    direct: dict[str, float] = {}
    for label, tool, kwargs in local:
        method = archive.history if tool == "history" else archive.leaderboard
        args = {"offset": 0, **kwargs}
        times = timed(lambda m=method, a=args: m(**a), calls)
        direct[label] = median(times)
        print(f"  {label:<36} {fmt_s(median(times)):>9} (p90 {fmt_s(quantile(times, 0.9))})")
    plan = archive.query("EXPLAIN QUERY PLAN SELECT id FROM experiments WHERE best_ratio IS NOT NULL "
                         "ORDER BY best_ratio LIMIT 20")
    print("  leaderboard's inner query plan: " + "; ".join(r["detail"] for r in plan))
    archive.close()

    async def over_stdio(home: Path) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        async with Client(server_params(home), read_timeout_seconds=120) as client:
            for label, tool, kwargs in local:
                if "field=" in label and home == empty:
                    kwargs = {**kwargs}
                await call(client, tool, kwargs)  # first call: page cache and code paths
                times = []
                for _ in range(calls):
                    t0 = time.perf_counter()
                    await call(client, tool, kwargs)
                    times.append(time.perf_counter() - t0)
                out[label] = times
        return out

    on_big = anyio.run(over_stdio, big)
    on_empty = anyio.run(over_stdio, empty)
    print(f"tool calls through a stdio client, median of {calls} (first call not counted):")
    print(f"  {'query':<36} {n:>9,} {'(p90)':>9} {'empty lab':>10} {'ratio':>6}")
    worst = 0.0
    for label, _, _ in local:
        m_big, m_empty = median(on_big[label]), median(on_empty[label])
        worst = max(worst, m_big)
        print(f"  {label:<36} {fmt_s(m_big):>9} {fmt_s(quantile(on_big[label], 0.9)):>9} {fmt_s(m_empty):>10} "
              f"{m_big / m_empty:>6.1f}")
    verdict("server_queries", f"slowest history/leaderboard call {fmt_s(worst)} with {n:,} experiments",
            f"<= {QUERY_TARGET * 1e3:.0f} ms", worst <= QUERY_TARGET,
            "the same calls on an empty lab (table above)")


if __name__ == "__main__":
    main()
