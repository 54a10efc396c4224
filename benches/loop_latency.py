"""Loop latency: write_crate -> compile -> benchmark(quick) -> record_result over stdio, warm.

Target (issue 5): <= 5 s per loop, through a real MCP client talking to a real server
(`python -m frontier_mcp serve`) over stdio, the lab warm and the quick suite's baselines
cached (one untimed loop fills the cache first; its time is printed as the cold figure).
There is no baseline to divide by; the per-stage split shows where the time goes, and the
benchmark's own server-side time (`report.seconds`) shows what the MCP round trip adds.

    python3 benches/loop_latency.py [--loops 7]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import anyio
from _common import call, example_source, fmt_s, header, median, quantile, server_params, temp_lab, verdict
from mcp import Client

TARGET_S = 5.0
STAGES = ("write_crate", "compile", "benchmark", "record_result")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loops", type=int, default=7, help="timed loops (default 7)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary lab")
    args = parser.parse_args()
    header("loop latency: write_crate -> compile -> benchmark(quick) -> record_result over stdio")
    with temp_lab(keep=args.keep) as home:
        anyio.run(measure, home, args.loops)


async def one_loop(client: Client, pairing_id: int, variant: int) -> dict[str, Any]:
    times: dict[str, Any] = {}
    started = time.perf_counter()
    written = await call(client, "write_crate", {
        "pairing_id": pairing_id, "name": f"loop_{variant}", "source": example_source(variant),
        "statement": "Sign-agreement damping of an Adam step, a timing bench variant.",
        "mechanism": "The shipped example optimizer with its damping constant moved slightly.",
        "prediction": "Behaves like the example; this run only measures the loop's speed."})
    times["write_crate"] = time.perf_counter() - started
    exp_id = written["experiment_id"]
    t0 = time.perf_counter()
    built = await call(client, "compile", {"experiment_id": exp_id})
    assert built["ok"], built
    times["compile"] = time.perf_counter() - t0
    times["compile_server_s"] = built["seconds"]
    t0 = time.perf_counter()
    status = await call(client, "benchmark", {"experiment_id": exp_id, "suite": "quick", "wait_seconds": 300})
    while status["status"] == "running":
        status = await call(client, "job_status", {"job_id": status["job_id"], "wait_seconds": 60})
    assert status["status"] == "done", status
    times["benchmark"] = time.perf_counter() - t0
    report = status["report"]
    times["benchmark_server_s"] = report["seconds"]
    times["cache"] = report["baseline_cache"]
    t0 = time.perf_counter()
    measured = report["outcome"]
    await call(client, "record_result", {"experiment_id": exp_id,
                                         "verdict": measured if measured != "win" else "inconclusive",
                                         "notes": "loop latency bench", "lessons": ""})
    times["record_result"] = time.perf_counter() - t0
    times["total"] = time.perf_counter() - started
    return times


async def measure(home: Path, loops: int) -> None:
    async with Client(server_params(home), read_timeout_seconds=900) as client:
        pairing = await call(client, "propose_pairing", {"allow_repeat": True, "seed": 1})
        cold = await one_loop(client, pairing["pairing_id"], 0)
        print(f"cold loop (baseline cache {cold['cache']}): {fmt_s(cold['total'])} "
              f"(benchmark {fmt_s(cold['benchmark'])})")
        runs = []
        for i in range(1, loops + 1):
            runs.append(await one_loop(client, pairing["pairing_id"], i))
            r = runs[-1]
            print(f"  loop {i}/{loops}: total {fmt_s(r['total'])} = " + " + ".join(
                f"{s} {fmt_s(r[s])}" for s in STAGES) + f" (cache {r['cache']})")
    for stage in (*STAGES, "compile_server_s", "benchmark_server_s"):
        values = [r[stage] for r in runs]
        print(f"{stage:>20}: median {fmt_s(median(values))}, p90 {fmt_s(quantile(values, 0.9))}")
    totals = [r["total"] for r in runs]
    overhead = median([r["benchmark"] - r["benchmark_server_s"] for r in runs])
    print(f"{'total':>20}: median {fmt_s(median(totals))}, p90 {fmt_s(quantile(totals, 0.9))}")
    print(f"benchmark call minus the server's own benchmark time (MCP, job, archive): median {fmt_s(overhead)}")
    verdict("loop_latency", f"{fmt_s(median(totals))} per loop, warm, baselines cached", f"<= {TARGET_S} s",
            median(totals) <= TARGET_S, f"cold loop {fmt_s(cold['total'])} (baseline cache {cold['cache']})")


if __name__ == "__main__":
    main()
