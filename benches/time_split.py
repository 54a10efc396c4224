"""Where a cached benchmark's time goes: every harness run of one benchmark, summed per problem and
phase, with its wall time split into the candidate's steps and the rest.

A temporary lab compiles the shipped example over MCP (as a user's server does), then this process
runs the suite's benchmark twice in process (the first fills the baseline cache) and reports the
second: per (problem, phase) the runs, the steps, the harness processes' wall time, the part spent in
the candidate's `step` (the frame round trip to its process included) and the rest (gradients, curve
points, starting the process), and the microseconds per step of the former. Their sum over both
workers is the CPU the benchmark needs; the benchmark's own wall time is printed beside it.

    python3 benches/time_split.py [--suite quick|standard]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio
from _common import call, example_source, header, server_params, temp_lab
from mcp import Client

from frontier_mcp.protocol import SUITES
from frontier_mcp.protocol import harness as harness_module
from frontier_mcp.protocol.run import benchmark
from frontier_mcp.runtime import Runtime
from frontier_mcp.settings import load_settings
from frontier_mcp.tools._common import harness_for

# per (problem, phase): [runs, steps, wall_ns, optimizer_ns]
Totals = dict[tuple[str, str], list[int]]


async def compile_example(home: Path) -> int:
    async with Client(server_params(home)) as client:
        pairing = await call(client, "propose_pairing", {"seed": 1})
        written = await call(client, "write_crate", {
            "pairing_id": pairing["pairing_id"], "name": "split", "source": example_source(),
            "statement": "The shipped example, a timing bench.", "mechanism": "The example optimizer.",
            "prediction": "Behaves like the example."})
        built = await call(client, "compile", {"experiment_id": written["experiment_id"]})
        assert built["ok"], built
        return int(written["experiment_id"])


def counting(totals: Totals) -> Any:
    """Harness.run, with every result it delivers added to `totals`."""
    original = harness_module.Harness.run

    async def run(self: Any, runs: list[dict[str, Any]], curve_points: int, progress: Any = None,
                  processes: int | None = None) -> dict[int, dict[str, Any]]:
        phase = {r["id"]: r.get("phase", "timing") for r in runs}

        def tally(record: dict[str, Any]) -> None:
            row = totals[(str(record.get("problem")), phase.get(record.get("id"), "?"))]
            for i, key in enumerate(("", "steps_done", "wall_ns", "optimizer_ns")):
                row[i] += 1 if not key else int(record.get(key) or 0)
            if progress is not None:
                progress(record)

        return await original(self, runs, curve_points, tally, processes)

    return run


async def measure(home: Path, suite: str) -> None:
    experiment_id = await compile_example(home)
    totals: Totals = defaultdict(lambda: [0, 0, 0, 0])
    harness_module.Harness.run = counting(totals)  # type: ignore[method-assign]
    async with Runtime.open(load_settings(home)) as rt:
        await rt.prepare()
        toolchain = await rt.require_ready()
        experiment = rt.archive.experiment(experiment_id)
        assert experiment is not None
        harness = harness_for(rt, experiment)
        for attempt in ("cache fill", "measured"):
            totals.clear()
            started = time.perf_counter()
            report, _ = await benchmark(harness, SUITES[suite], cache_dir=rt.lab.cache,
                                        toolchain_version=toolchain.version, provenance={})
            print(f"{attempt}: {time.perf_counter() - started:.2f} s (baseline cache {report.baseline_cache})")
    print(f"{'problem':24s} {'phase':6s} {'runs':>5s} {'steps':>7s} {'wall ms':>9s} {'step ms':>8s} "
          f"{'rest ms':>8s} {'us/step':>8s}")
    total = [0, 0, 0, 0]
    for (problem, phase), row in sorted(totals.items(), key=lambda kv: -kv[1][2]):
        runs, steps, wall, step = row
        print(f"{problem:24s} {phase:6s} {runs:5d} {steps:7d} {wall / 1e6:9.1f} {step / 1e6:8.1f} "
              f"{(wall - step) / 1e6:8.1f} {step / max(steps, 1) / 1e3:8.2f}")
        total = [a + b for a, b in zip(total, row, strict=True)]
    print(f"{'total':31s} {total[0]:5d} {total[1]:7d} {total[2] / 1e6:9.1f} {total[3] / 1e6:8.1f} "
          f"{(total[2] - total[3]) / 1e6:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=("quick", "standard"), default="standard")
    args = parser.parse_args()
    header(f"where a cached {args.suite} benchmark's time goes")
    with temp_lab() as home:
        anyio.run(measure, home, args.suite)


if __name__ == "__main__":
    main()
