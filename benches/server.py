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
read from /proc/PID/maps); and every listing the archive registers (`archive.queries.LISTINGS`:
each case of each listing, its arguments drawn from the generated lab) in process, against 10 ms at
100,000 experiments and 50 ms at 1,000,000 (`--experiments 1000000`: ~5 GB and several minutes to
generate; `--archive PATH` keeps the generated state.db there and reuses it on the next run).
The whole-table reads (`WHOLE_TABLE`) are timed too, for information. The deep pages are timed both
ways: by `offset` (which walks every index entry before the page, except for an unfiltered history, whose
ids 1..N give the page's first id) and from a cursor at the same depth (keyset: one index range). A
reused archive written by an older frontier-mcp is migrated on opening; the bench prints how long that took.

`--no-build` skips the harness builds: the labs are not warmed, and the servers are given a stand-in
cargo that fails, so they build nothing (the tools still answer: cargo is "installed").

    python3 benches/server.py [--experiments 100000] [--starts 7] [--calls 30] [--no-build]
                              [--skip-start] [--skip-queries] [--skip-stdio] [--archive PATH]
                              [--server-src DIR] [--before-src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from _common import (
    MINIMAL_SERVER,
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
from frontier_mcp.archive.queries import LISTINGS, WHOLE_TABLE, Probe
from frontier_mcp.pairing import catalog

START_TARGET = 1.0
START_RATIO_TARGET = 1.25  # issue 16: start -> initialize <= 1.25x a minimal server of the same SDK
QUERY_TARGET = 0.050
LISTING_TARGET = 0.010  # issue 16: every listing <= 10 ms at 100,000 experiments (in process)
LISTING_TARGET_1M = 0.050  # ... and <= 50 ms at 1,000,000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=100_000)
    parser.add_argument("--starts", type=int, default=7, help="server starts timed (default 7)")
    parser.add_argument("--calls", type=int, default=30, help="calls per query (default 30)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary labs")
    parser.add_argument("--no-build", action="store_true", help="no harness builds (see above)")
    parser.add_argument("--skip-start", action="store_true")
    parser.add_argument("--skip-queries", action="store_true")
    parser.add_argument("--skip-stdio", action="store_true", help="no history/leaderboard tool calls over stdio")
    parser.add_argument("--before-src", help="also start the server from this src folder (an export of an earlier "
                        "commit with its prompts/ and rust_scaffold/ beside it), interleaved: before/after in one run")
    parser.add_argument("--archive", help="the large state.db: generated there if missing, reused if present")
    parser.add_argument("--server-src", help="run the servers from this src folder (PYTHONPATH), e.g. an "
                        "export of an earlier commit, for before/after figures")
    args = parser.parse_args()
    header("server: start -> initialize; every archive listing on a large archive")
    extra = {"FRONTIER_CARGO": failing_cargo()} if args.no_build else {}
    if args.server_src:
        extra = {**extra, "PYTHONPATH": str(Path(args.server_src).resolve())}
    warm = not args.no_build
    with temp_lab(keep=args.keep, warm=warm) as empty, temp_lab(keep=args.keep, warm=warm) as big:
        if not args.skip_start:
            startup(empty, args.starts, extra, args.before_src)
        if args.skip_queries:
            return
        db_path = Path(args.archive) if args.archive else big / "state.db"
        if args.archive and db_path.exists():
            opened = time.perf_counter()
            archive = Archive(db_path)  # migrates an archive generated by an older frontier-mcp
            opened = time.perf_counter() - opened
            n = archive.one("SELECT MAX(id) AS n FROM experiments")["n"]
            archive.close()
            print(f"archive: {db_path} reused, {n:,} experiments ({db_path.stat().st_size / 2**20:,.0f} MiB); opened "
                  f"(checks and any migration) in {opened:.1f} s; {load()}")
        else:
            n = args.experiments
            seconds = populate(db_path, n)
            print(f"archive: {n:,} experiments generated in {seconds:.1f} s "
                  f"({db_path.stat().st_size / 2**20:,.0f} MiB)")
        listings(db_path, args.calls, n)
        if not args.skip_stdio:
            if args.archive:
                big.mkdir(parents=True, exist_ok=True)
                (big / "state.db").unlink(missing_ok=True)
                (big / "state.db").symlink_to(db_path.resolve())
            queries(big, empty, args.calls, n, extra)


def failing_cargo() -> str:
    """A cargo that exists (so the tools answer) and fails (so the servers build no harness)."""
    path = Path(tempfile.mkdtemp(prefix="frontier-bench-cargo-")) / "cargo"
    path.write_text("#!/bin/sh\necho 'no builds in this bench (--no-build)' >&2\nexit 1\n")
    path.chmod(0o755)
    return str(path)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- start-up ----------------------------------------------------------------------------------

def startup(home: Path, starts: int, extra: dict[str, str], before_src: str | None = None) -> None:
    async def one_start(env: dict[str, str]) -> float:
        started = time.perf_counter()
        async with Client(server_params(home, **env), read_timeout_seconds=60):
            ready = time.perf_counter() - started
        return ready

    async def minimal_start(_env: dict[str, str]) -> float:
        from mcp import StdioServerParameters

        params = StdioServerParameters(command=sys.executable, args=["-c", MINIMAL_SERVER],
                                       env=server_env(home), cwd="/")
        started = time.perf_counter()
        async with Client(params, read_timeout_seconds=60):
            ready = time.perf_counter() - started
        return ready

    def timed_start(start: Callable[[dict[str, str]], Any], env: dict[str, str]) -> tuple[float, float]:
        """Wall seconds to initialize, and the CPU seconds of the whole short-lived server process (start,
        initialize, exit; reaped by the client): CPU time is what a busy machine inflates least."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = anyio.run(start, env)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

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

    earlier = {**extra, "PYTHONPATH": str(Path(before_src).resolve())} if before_src else None
    contenders: dict[str, tuple[Callable[[dict[str, str]], Any], dict[str, str]]] = {
        "frontier-mcp": (one_start, extra), "minimal": (minimal_start, {})}
    if earlier:
        contenders["before"] = (one_start, earlier)
    for start, env in contenders.values():
        anyio.run(start, env)  # first start: page cache, .pyc files
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    cpus: dict[str, list[float]] = {name: [] for name in contenders}
    bare, sdk = [], []
    for _ in range(starts):
        for name, (start, env) in contenders.items():
            wall, cpu = timed_start(start, env)
            walls[name].append(wall)
            cpus[name].append(cpu)
        bare.append(run("pass"))
        sdk.append(run("import mcp.server.mcpserver"))
    server, minimal = walls["frontier-mcp"], walls["minimal"]
    print(f"start -> initialize over stdio: median {fmt_s(median(server))} (p90 {fmt_s(quantile(server, 0.9))}) "
          f"over {starts}; {load()}")
    ratios = [a / b for a, b in zip(server, minimal, strict=True)]
    for name in contenders:
        if name == "minimal":
            continue
        wall_ratios = [a / b for a, b in zip(walls[name], minimal, strict=True)]
        cpu_ratios = [a / b for a, b in zip(cpus[name], cpus["minimal"], strict=True)]
        print(f"  {name}: wall {fmt_s(median(walls[name]))}, CPU {fmt_s(median(cpus[name]))}; a minimal server of "
              f"the same SDK (interleaved): wall {fmt_s(median(minimal))}, CPU {fmt_s(median(cpus['minimal']))}; "
              f"{name} / minimal per pair: wall median {median(wall_ratios):.2f} "
              f"(range {min(wall_ratios):.2f}-{max(wall_ratios):.2f}), CPU median {median(cpu_ratios):.2f} "
              f"(range {min(cpu_ratios):.2f}-{max(cpu_ratios):.2f})")
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

def populate(db_path: Path, n: int, seed: int = 0, chunk: int = 50_000) -> float:
    """n experiments with the shapes the tools write, on Archive's own schema: pairings, sources of the
    example's size, builds, jobs, benchmark runs (quick; ~20 % standard too; a hidden suite for 1 %),
    verdicts (most with a lesson; wins with a claim test), ablations for 1 %. No per-run trials, which
    no listing reads. Written in chunks, so 1,000,000 fits in memory. No ANALYZE: a lab never runs it
    (tests/test_query_plans.py checks the plans with and without it)."""
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
    statuses = ["recorded"] * 70 + ["benchmarked"] * 15 + ["compiled"] * 5 + ["compile_failed"] * 5 + \
        ["written"] * 5
    summary = json.dumps({"suite": "quick", "problems": [{"problem": f"p{k}", "ratio": 1.0, "curves": [[0, 1.0]] * 12}
                                                         for k in range(3)]})
    statement = "A conjecture about a pairing of two fields, stated in a sentence or two " * 2
    mechanism = "The mechanism: an update rule and why it should help on non-convex landscapes. " * 3
    for first in range(1, n + 1, chunk):
        ids = range(first, min(n, first + chunk - 1) + 1)
        status_of = {i: rng.choice(statuses) for i in ids}
        db.executemany("INSERT INTO sources (id, sha256, normalized_sha256, bytes, text) VALUES (?,?,?,?,?)",
                       ((i, f"{i:064x}", f"{i:064x}", len(body) + 12, f"{body}// v{i:08d}\n") for i in ids))
        db.executemany(
            "INSERT INTO experiments (id, name, pairing_id, parent_id, source_id, statement, mechanism, prediction, "
            "status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            ((i, f"exp_{i}", rng.randrange(1, pairings + 1),
              rng.randrange(1, i) if i > 1 and rng.random() < 0.3 else None, i, statement, mechanism,
              "A falsifiable prediction the benchmark can refute.", status, now + i, now + i)
             for i, status in status_of.items()))
        db.executemany("INSERT INTO builds (experiment_id, ok, seconds, errors, warnings, diagnostics, provenance, "
                       "created_at) VALUES (?,?,?,?,?,?,?,?)",
                       ((i, int(s != "compile_failed"), 0.2, int(s == "compile_failed"), 0, "[]",
                         '{"rustc": "rustc", "rustflags": "-C target-cpu=native"}', now + i)
                        for i, s in status_of.items() if s != "written"))
        benchmarked = [i for i, s in status_of.items() if s in ("recorded", "benchmarked")]
        db.executemany("INSERT INTO jobs (id, kind, experiment_id, status, done, total, server_pid, started_at, "
                       "finished_at) VALUES (?, 'benchmark', ?, 'done', 1, 1, 1, ?, ?)",
                       ((f"job-{i}", i, now + i, now + i) for i in benchmarked))
        runs, verdicts, claims, ablations = [], [], [], []
        for i in benchmarked:
            suites = ["quick"] + (["standard"] if rng.random() < 0.2 else []) + \
                (["holdout"] if rng.random() < 0.01 else [])
            for suite in suites:
                ratio = rng.lognormvariate(0.3, 0.5)
                outcome = "loss" if ratio > 1.05 else ("tie" if ratio > 0.9 else "win")
                runs.append((i, f"job-{i}", suite, "1.0.0", outcome, ratio, 0, 3, 0, summary, "{}", 1.0, now + i))
            if status_of[i] == "recorded":
                verdict_ = rng.choice(["loss"] * 6 + ["tie"] * 6 + ["inconclusive"] * 4 + ["mixed"] * 3 + ["win"])
                lesson = "a lesson about what the mechanism did" if rng.random() < 0.7 else ""
                verdicts.append((i, verdict_, "notes", lesson, "{}", now + i))
                if verdict_ == "win":
                    claims.append((i, "all", 0.01, 0.02, int(rng.random() < 0.3), now + i))
            if rng.random() < 0.01:
                ablations.append((i, f"job-{i}", "quick", "momentum", 1, 1.1, "{}", now + i))
        db.executemany("INSERT INTO benchmark_runs (experiment_id, job_id, suite, harness_version, outcome, "
                       "geomean_ratio, wins, ties, losses, summary, provenance, seconds, created_at) "
                       "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", runs)
        db.executemany("INSERT INTO verdicts (experiment_id, verdict, notes, lessons, evidence, created_at) "
                       "VALUES (?,?,?,?,?,?)", verdicts)
        db.executemany("INSERT INTO claim_tests (experiment_id, scope, p_value, level, discovery, created_at) "
                       "VALUES (?,?,?,?,?,?)", claims)
        db.executemany("INSERT INTO ablations (experiment_id, job_id, suite, switch, mattered, geomean_ratio, "
                       "summary, created_at) VALUES (?,?,?,?,?,?,?,?)", ablations)
    db.execute("COMMIT")
    db.close()
    archive = Archive(db_path)
    archive.rebuild_leader()  # the listings' derived columns and pair_stats, as the writes keep them
    archive.close()
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


def listings(db_path: Path, calls: int, n: int, small: int = 1_000) -> None:
    """Every case of every registered listing in process, median of `calls` after one untimed call
    (the page cache warm, as in a running server), beside the same case on a lab of `small` experiments
    generated the same way, measured right after it: the ratio is the growth with the archive, which a
    busy machine inflates less than it does the absolute times. The whole-table reads once each."""
    target = LISTING_TARGET if n <= 100_000 else LISTING_TARGET_1M
    base = Path(tempfile.mkdtemp(prefix="frontier-bench-small-")) / "state.db"
    populate(base, small)
    archive, reference = Archive(db_path), Archive(base)
    probe, reference_probe = Probe.of(archive), Probe.of(reference)
    print(f"every listing in process at {n:,} experiments, median of {calls} (target {fmt_s(target)}), and the "
          f"same case at {small:,}; {load()}")
    print(f"  probe: {probe}")
    print(f"  {'listing (case)':<62} {n:>9,} {'(p90)':>9} {small:>9,} {'ratio':>6}")
    worst = ("", 0.0)
    slow = []
    for name, cases in LISTINGS.items():
        for label, arguments in cases:
            medians = []
            for lab, lab_probe in ((archive, probe), (reference, reference_probe)):
                method, kwargs = getattr(lab, name), arguments(lab_probe)
                method(**kwargs)
                times = timed(lambda m=method, k=kwargs: m(**k), calls)
                medians.append((median(times), quantile(times, 0.9)))
            (m, p90), (m_small, _) = medians
            title = f"{name}" + (f" ({label})" if label else "")
            walks = name in ("history", "leaderboard") and kwargs.get("offset") and (
                name == "leaderboard" or kwargs.get("status") or kwargs.get("field"))
            print(f"  {title:<62} {fmt_s(m):>9} {fmt_s(p90):>9} {fmt_s(m_small):>9} {m / m_small:>6.1f}"
                  + ("  > target" if m > target else "") + ("  (walks the offset)" if walks else ""))
            if m > target:
                slow.append(title)
            if m > worst[1]:
                worst = (title, m)
    print(f"whole-table reads by design (once each): {load()}")
    for name, reason in WHOLE_TABLE.items():
        seconds = timed(getattr(archive, name), 1)[0]
        print(f"  {name:<30} {fmt_s(seconds):>9}  ({reason})")
    archive.close()
    reference.close()
    verdict("server_listings", f"slowest listing {worst[0]} {fmt_s(worst[1])} at {n:,} experiments"
            + (f"; over: {', '.join(slow)}" if slow else "") + f"; {load()}", f"<= {fmt_s(target)}",
            worst[1] <= target)


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
