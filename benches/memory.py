"""Memory: the server's resident memory across 1,000 loop iterations.

Target (issue 5): the server's RSS stays flat across 1,000 loop iterations. One server
(`python -m frontier_mcp serve`, a real stdio client) serves every iteration; its VmRSS is read
from /proc every `--every` iterations.

A full loop (write_crate -> compile -> benchmark(quick) -> record_result) takes ~0.4 s warm, so
1,000 of them take ~7 minutes: more than a bench's default budget. By default an iteration is
therefore the cheap tools (propose_pairing, write_crate, history, leaderboard, experiment,
job_status on an unknown id) and every `--full-every`-th iteration (default 10) also runs the
full loop: 100 compiled, benchmarked and recorded experiments per 1,000 iterations. `--full-every 1`
runs the whole loop every time (~7-10 minutes).

Flat means: the growth from iteration 100 (after warm-up) to the end is under 10 % and the
least-squares slope over the second half extrapolates to under 10 MiB per 1,000 iterations.

    python3 benches/memory.py [--iterations 1000] [--full-every 10] [--every 50]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import anyio
from _common import call, example_source, header, linear_fit, rss_kib, server_params, server_pid, temp_lab, verdict
from mcp import Client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--full-every", type=int, default=10, help="full loop every N iterations (default 10)")
    parser.add_argument("--every", type=int, default=50, help="sample RSS every N iterations (default 50)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary lab")
    args = parser.parse_args()
    header("memory: server RSS across loop iterations")
    with temp_lab(keep=args.keep) as home:
        anyio.run(measure, home, args.iterations, args.full_every, args.every)


async def measure(home: Path, iterations: int, full_every: int, every: int) -> None:
    samples: list[tuple[int, float]] = []
    started = time.perf_counter()
    full_loops = 0
    async with Client(server_params(home), read_timeout_seconds=600) as client:
        pid = server_pid()
        pairing = await call(client, "propose_pairing", {"allow_repeat": True, "seed": 3})
        samples.append((0, rss_kib(pid) / 1024))
        print(f"server pid {pid}; RSS after initialize: {samples[0][1]:.1f} MiB")
        for i in range(1, iterations + 1):
            await call(client, "propose_pairing", {"allow_repeat": True})
            written = await call(client, "write_crate", {
                "pairing_id": pairing["pairing_id"], "name": f"mem_{i}", "source": example_source(i),
                "statement": "Sign-agreement damping of an Adam step, a memory bench variant.",
                "mechanism": "The shipped example optimizer with its damping constant moved slightly.",
                "prediction": "Behaves like the example; this run only measures the server's memory."})
            exp_id = written["experiment_id"]
            await call(client, "history", {"limit": 20})
            await call(client, "leaderboard", {"limit": 20})
            result = await client.call_tool("job_status", {"job_id": f"bench-quick-missing{i}"})
            assert result.is_error or result.structured_content is not None
            if full_every and i % full_every == 0:
                built = await call(client, "compile", {"experiment_id": exp_id})
                assert built["ok"], built
                status = await call(client, "benchmark", {"experiment_id": exp_id, "suite": "quick",
                                                          "wait_seconds": 300})
                while status["status"] == "running":
                    status = await call(client, "job_status", {"job_id": status["job_id"], "wait_seconds": 60})
                assert status["status"] == "done", status
                measured = status["report"]["outcome"]
                await call(client, "record_result", {"experiment_id": exp_id, "notes": "memory bench",
                                                     "verdict": measured if measured != "win" else "inconclusive"})
                full_loops += 1
            await call(client, "experiment", {"experiment_id": exp_id})
            if i % every == 0:
                samples.append((i, rss_kib(pid) / 1024))
                print(f"  iteration {i:>5}: RSS {samples[-1][1]:7.1f} MiB  ({full_loops} full loops, "
                      f"{time.perf_counter() - started:.0f} s)")
    after_warmup = [s for s in samples if s[0] >= min(100, iterations // 2)]
    first, last = after_warmup[0], samples[-1]
    growth = (last[1] - first[1]) / first[1]
    half = [s for s in samples if s[0] >= iterations // 2]
    _, slope, _ = linear_fit([float(i) for i, _ in half], [r for _, r in half]) if len(half) > 2 else (0, 0.0, 0)
    per_1000 = slope * 1000
    flat = growth < 0.10 and per_1000 < 10
    print(f"RSS: {samples[0][1]:.1f} MiB after initialize, {first[1]:.1f} MiB at iteration {first[0]}, "
          f"{last[1]:.1f} MiB at iteration {last[0]} ({growth:+.1%}); second-half slope {per_1000:+.1f} MiB "
          "per 1,000 iterations")
    verdict("memory", f"RSS {first[1]:.0f} -> {last[1]:.0f} MiB from iteration {first[0]} to {last[0]} "
            f"({growth:+.1%}; slope {per_1000:+.1f} MiB/1,000 it.; {full_loops} full loops)",
            "flat: < 10 % growth and < 10 MiB/1,000 iterations", flat,
            f"RSS after initialize {samples[0][1]:.0f} MiB")


if __name__ == "__main__":
    main()
