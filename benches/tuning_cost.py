"""Candidate-only cost of the standard suite (what a cached-baseline benchmark pays), 2 workers.

    python3 benches/tuning_cost.py [reps]
"""
import sys
import time

import anyio
from _common import header, temp_lab

from frontier_mcp.protocol import CANDIDATE, SUITES, Harness, run_optimizer, runs_per_optimizer
from frontier_mcp.sandbox import Sandbox
from frontier_mcp.scaffold import WARMUP_NAME, Lab
from frontier_mcp.settings import load_settings


async def measure(home, reps):
    settings = load_settings(home, environ={"FRONTIER_WORKERS": "2"})
    lab = Lab(home)
    sandbox = Sandbox(limits=settings.limits, enabled=settings.sandbox, bwrap=settings.bwrap)
    h = Harness(binary=lab.harness(), candidate=lab.binary(WARMUP_NAME), secret=lab.secret(), sandbox=sandbox,
                limits=settings.limits, workers=2)
    suite = SUITES["standard"]
    for _ in range(reps):
        n = 0

        def tick(_r):
            nonlocal n
            n += 1
        started = time.perf_counter()
        await run_optimizer(h, CANDIDATE, suite, tick)
        print(f"candidate, standard, 2 workers: {time.perf_counter() - started:.1f} s, {n} harness runs "
              f"(planned {runs_per_optimizer(suite)})", flush=True)


header("tuning cost: the candidate's share of a cached standard benchmark, 2 workers")
with temp_lab() as home:
    anyio.run(measure, home, int(sys.argv[1]) if len(sys.argv) > 1 else 2)
