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

Issue 16 adds: a minimal server of the same SDK (one tool, stdio), started interleaved with
frontier-mcp; when the server has scipy.stats loaded after `initialize` (its background warm-up,
read from /proc/PID/maps); and every archive listing in process (history with each filter,
leaderboard overall and per suite, experiment detail, lineage and relatives, pairings, duplicates,
job and holdout look-ups) against the 10 ms target.

`--no-build` skips the harness builds (the labs are not warmed, and the servers are given a cargo
that does not exist, so they build nothing): start-up and listings need no harness.

    python3 benches/server.py [--experiments 100000] [--starts 7] [--calls 30] [--no-build]
                              [--skip-start] [--skip-queries] [--server-src DIR]
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
from _common import (
    call,
    example_source,
    fmt_s,
    header,
    median,
    quantile,
    server_env,
    server_params,
    server_pid,
    temp_lab,
    verdict,
)
from mcp import Client

from frontier_mcp.archive import Archive
from frontier_mcp.pairing import catalog

START_TARGET = 1.0
START_RATIO_TARGET = 1.25  # issue 16: start -> initialize <= 1.25x a minimal server of the same SDK
QUERY_TARGET = 0.050
LISTING_TARGET = 0.010  # issue 16: every listing <= 10 ms at 100,000 experiments (in process)
NO_CARGO = {"FRONTIER_CARGO": "/nonexistent/cargo"}
MINIMAL_SERVER = """
from mcp.server.mcpserver import MCPServer
server = MCPServer("minimal")
@server.tool()
def ping() -> str:
    return "pong"
server.run()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=100_000)
    parser.add_argument("--starts", type=int, default=7, help="server starts timed (default 7)")
    parser.add_argument("--calls", type=int, default=30, help="calls per query (default 30)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary labs")
    parser.add_argument("--no-build", action="store_true", help="no harness builds (see above)")
    parser.add_argument("--skip-start", action="store_true")
    parser.add_argument("--skip-queries", action="store_true")
    parser.add_argument("--server-src", help="run the servers from this src folder (PYTHONPATH), e.g. an "
                        "export of an earlier commit, for before/after figures")
    args = parser.parse_args()
    header("server: start -> initialize; history and leaderboard on a large archive")
    extra = NO_CARGO if args.no_build else {}
    if args.server_src:
        extra = {**extra, "PYTHONPATH": str(Path(args.server_src).resolve())}
    warm = not args.no_build
    with temp_lab(keep=args.keep, warm=warm) as empty, temp_lab(keep=args.keep, warm=warm) as big:
        if not args.skip_start:
            startup(empty, args.starts, extra)
        if args.skip_queries:
            return
        seconds = populate(big / "state.db", args.experiments)
        print(f"archive: {args.experiments:,} experiments generated in {seconds:.1f} s "
              f"({(big / 'state.db').stat().st_size / 2**20:.0f} MiB)")
        listings(big / "state.db", args.calls, args.experiments)
        queries(big, empty, args.calls, args.experiments, extra)


# -- start-up ----------------------------------------------------------------------------------

def startup(home: Path, starts: int, extra: dict[str, str]) -> None:
    async def one_start() -> float:
        started = time.perf_counter()
        async with Client(server_params(home, **extra), read_timeout_seconds=60):
            ready = time.perf_counter() - started
        return ready

    async def minimal_start() -> float:
        from mcp import StdioServerParameters

        params = StdioServerParameters(command=sys.executable, args=["-c", MINIMAL_SERVER],
                                       env=server_env(home), cwd="/")
        started = time.perf_counter()
        async with Client(params, read_timeout_seconds=60):
            ready = time.perf_counter() - started
        return ready

    async def scipy_warmed() -> tuple[float, float]:
        """Seconds from initialize until the server process has scipy.stats mapped (or -1 in 10 s)."""
        started = time.perf_counter()
        async with Client(server_params(home, **extra), read_timeout_seconds=60):
            ready = time.perf_counter()
            pid = server_pid()
            while time.perf_counter() - ready < 10:
                maps = Path(f"/proc/{pid}/maps").read_text()
                if "scipy/stats/" in maps:
                    return ready - started, time.perf_counter() - ready
                await anyio.sleep(0.02)
        return ready - started, -1.0

    def run(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        return time.perf_counter() - started

    anyio.run(one_start)  # first start: page cache, .pyc files
    anyio.run(minimal_start)
    server, minimal, bare, sdk = [], [], [], []
    for _ in range(starts):
        server.append(anyio.run(one_start))
        minimal.append(anyio.run(minimal_start))
        bare.append(run("pass"))
        sdk.append(run("import mcp.server.mcpserver"))
    print(f"start -> initialize over stdio: median {fmt_s(median(server))} (p90 {fmt_s(quantile(server, 0.9))}) "
          f"over {starts}")
    ratios = [a / b for a, b in zip(server, minimal, strict=True)]
    print(f"  a minimal server of the same SDK (interleaved): median {fmt_s(median(minimal))}; "
          f"frontier-mcp / minimal, per pair: median {median(ratios):.2f} "
          f"(range {min(ratios):.2f}-{max(ratios):.2f})")
    print(f"  python -c pass: {fmt_s(median(bare))}; python -c 'import mcp.server.mcpserver': {fmt_s(median(sdk))}")
    warmed = [anyio.run(scipy_warmed) for _ in range(3)]
    scipy_import = [run("import scipy.stats") - median(bare) for _ in range(3)]
    print(f"  scipy.stats mapped in the server {', '.join(fmt_s(w) if w >= 0 else 'never' for _, w in warmed)} "
          f"after initialize (never = not within 10 s); `import scipy.stats` alone costs {fmt_s(median(scipy_import))} "
          "(what the first benchmark paid before the warm-up)")
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
    verdict("server_start_ratio", f"{median(ratios):.2f}x a minimal server of the same SDK",
            f"<= {START_RATIO_TARGET}x", median(ratios) <= START_RATIO_TARGET,
            f"minimal server {fmt_s(median(minimal))}")


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


def listings(db_path: Path, calls: int, n: int) -> None:
    """Every listing of the archive in process, median of `calls` after one untimed call."""
    archive = Archive(db_path)
    field = archive.one("SELECT field_a FROM pairings WHERE id = 1")["field_a"]
    leaf = archive.one("SELECT MAX(id) AS id FROM experiments WHERE parent_id IS NOT NULL")["id"]
    mid = n // 2
    norm = archive.one("SELECT normalized_sha256 FROM sources WHERE id = ?", (mid,))["normalized_sha256"]
    job = "job-none"
    checks: list[tuple[str, Callable[[], Any]]] = [
        ("history", lambda: archive.history(limit=20, offset=0)),
        ("history status=recorded", lambda: archive.history(limit=20, offset=0, status="recorded")),
        ("history status=written", lambda: archive.history(limit=20, offset=0, status="written")),
        ("history offset 50%", lambda: archive.history(limit=20, offset=n // 2)),
        ("history status=recorded offset 50%",
         lambda: archive.history(limit=20, offset=n // 4, status="recorded")),
        ("history field", lambda: archive.history(limit=20, offset=0, field=field)),
        ("history field+status", lambda: archive.history(limit=20, offset=0, field=field, status="recorded")),
        ("leaderboard", lambda: archive.leaderboard(limit=20, offset=0)),
        ("leaderboard offset 50%", lambda: archive.leaderboard(limit=20, offset=n // 2)),
        ("leaderboard suite=quick", lambda: archive.leaderboard(limit=20, offset=0, suite="quick")),
        ("leaderboard suite=standard", lambda: archive.leaderboard(limit=20, offset=0, suite="standard")),
        ("leaderboard suite=quick offset 50%",
         lambda: archive.leaderboard(limit=20, offset=n // 3, suite="quick")),
        ("experiment (detail)", lambda: (archive.experiment(mid), archive.builds(mid), archive.benchmark_runs(mid),
                                         archive.verdict(mid), archive.ablations(mid), archive.children(mid))),
        ("experiment_summary", lambda: archive.experiment_summary(mid)),
        ("lineage + descendants", lambda: archive.linked_ids(leaf)),
        ("relatives", lambda: archive.relatives(leaf)),
        ("duplicates (experiments_with_source)", lambda: archive.experiments_with_source(norm)),
        ("lessons_for_fields", lambda: archive.lessons_for_fields([field])),
        ("runs_of_job", lambda: archive.runs_of_job(job)),
        ("holdout_runs_since (24 h)", lambda: archive.holdout_runs_since(time.time() - 86_400)),
        ("pair_usage (propose_pairing)", lambda: archive.pair_usage()),
        ("pairing_rows (frontier-mcp pairings)", lambda: archive.pairing_rows()),
    ]
    print(f"every listing in process at {n:,} experiments (median of {calls}; aggregates of every pairing "
          "median of 3):")
    worst = ("", 0.0)
    for label, fn in checks:
        fn()
        times = timed(fn, 3 if label.startswith("pair") else calls)
        m = median(times)
        mark = "" if m <= LISTING_TARGET else "  > 10 ms"
        print(f"  {label:<40} {fmt_s(m):>9} (p90 {fmt_s(quantile(times, 0.9))}){mark}")
        if not label.startswith("pair") and m > worst[1]:
            worst = (label, m)
    archive.close()
    verdict("server_listings", f"slowest listing {worst[0]} {fmt_s(worst[1])} at {n:,} experiments "
            "(pairings aggregates excluded)", f"<= {LISTING_TARGET * 1e3:.0f} ms", worst[1] <= LISTING_TARGET)


def queries(big: Path, empty: Path, calls: int, n: int, extra: dict[str, str]) -> None:
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
        async with Client(server_params(home, **extra), read_timeout_seconds=120) as client:
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
