"""What run isolation costs: one optimizer, in the harness's process vs in a process of its own per run.

Target (issue 10): the standard suite with isolation <= 1.15x the same suite without it.

Every candidate run now starts a fresh process of the candidate's binary and exchanges one frame
pair per step (gradients out, parameters back) with the trusted harness. To measure exactly that
cost, the same optimizer (Adam) runs the standard suite's candidate plan (`run_optimizer`: the
tuning grid, its extension where needed and the tuner's trials on the tuning seeds, then the
evaluation seeds; 660 runs or a few more) twice through the real sandboxed harness of a
real lab: as `adam` (in the harness's process, what a candidate cost before) and as `served:adam`
(the harness starts `frontier-bench serve adam` for every run and talks to it over a pipe, exactly
as it does with a candidate's binary). The two alternate; the figure is the ratio of medians.

    python3 benches/isolation.py [--reps 5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import anyio
from _common import bootstrap_ratio_ci, fmt_s, header, median, temp_lab, verdict

from frontier_mcp.protocol import SUITES, Harness, run_optimizer, runs_per_optimizer
from frontier_mcp.sandbox import Sandbox
from frontier_mcp.scaffold import Lab
from frontier_mcp.settings import load_settings

TARGET = 1.15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="runs of each mode (default 5)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary lab")
    args = parser.parse_args()
    header("run isolation: the standard suite's candidate plan, in-process vs a process per run")
    with temp_lab(keep=args.keep) as home:
        anyio.run(measure, home, args.reps)


async def suite_seconds(harness: Harness, optimizer: str) -> float:
    """The candidate's share of a standard benchmark: tune (grid, extension, tuner), choose, evaluate."""
    started = time.perf_counter()
    rows = await run_optimizer(harness, optimizer, SUITES["standard"], lambda _row: None)
    failed = [r for r in rows if r.get("error")]
    if failed:
        raise SystemExit(f"{optimizer}: a run failed: {failed[0]['error']}")
    return time.perf_counter() - started


async def measure(home: Path, reps: int) -> None:
    settings = load_settings(home)
    lab = Lab(home)
    trusted = lab.harness()
    if trusted is None:
        raise SystemExit("the lab has no harness; run `frontier-mcp doctor` first")
    harness = Harness(binary=trusted, sandbox=Sandbox(limits=settings.limits, enabled=settings.sandbox,
                                                       bwrap=settings.bwrap),
                      limits=settings.limits, workers=settings.workers, secret=lab.secret())
    await suite_seconds(harness, "adam")  # warm the page cache and the problem data
    inside: list[float] = []
    isolated: list[float] = []
    for rep in range(reps):
        order = [("adam", inside), ("served:adam", isolated)]
        for name, times in order if rep % 2 == 0 else reversed(order):
            times.append(await suite_seconds(harness, name))
        print(f"  rep {rep + 1}: in-process {fmt_s(inside[-1])}, isolated {fmt_s(isolated[-1])}")
    ratio = median(isolated) / median(inside)
    low, high = bootstrap_ratio_ci(isolated, inside)
    print(f"  {settings.workers} workers, {runs_per_optimizer(SUITES['standard'])} runs per suite (without the grid's "
          f"extension)")
    verdict("isolation overhead", f"{ratio:.3f}x [{low:.3f}, {high:.3f}] (median {fmt_s(median(isolated))} vs "
            f"{fmt_s(median(inside))})", f"<= {TARGET}x", ratio <= TARGET)


if __name__ == "__main__":
    main()
