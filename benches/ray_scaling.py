"""Scale-out: the `standard` suite (baselines cached: what a benchmark costs after the first) on a Ray
cluster of 1, 2 and 3 one-CPU worker nodes, against the local runner with 1 and 2 workers.

The cluster is the one tests/test_ray_cluster.py starts: separate `ray start` processes on this
machine, a head with no CPU, and worker nodes pinned to one core each in turn (on 2 cores the third
node shares core 0 with the first, so 3 nodes can show the scheduling, not a third core's speed).
A plan is split into as many chunks as nodes (`FRONTIER_WORKERS`), one Ray task per chunk; nodes
are added between configurations, and configurations alternate within each repetition.

Where the time goes: every harness process (chunk) is timed, so a run's wall time splits into
serial (no chunk running: the server's own work between phases, judging, the statistics), partly
parallel (some chunks running, others done: a phase waits for its slowest chunk, and the timing
against Adam runs as one process) and fully parallel (every chunk running).

    PYTHONPATH=src python3 benches/ray_scaling.py [--reps 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from _common import ROOT, fmt_s, header, median, temp_lab

from frontier_mcp.cargo import Toolchain
from frontier_mcp.protocol import SUITES, Harness, ProblemSpec, Suite, benchmark, plan_lines, runs_per_optimizer
from frontier_mcp.ray_runner import RayExecutor
from frontier_mcp.sandbox import RunResult, Sandbox
from frontier_mcp.scaffold import WARMUP_NAME, Lab
from frontier_mcp.settings import load_settings

sys.path.insert(0, str(ROOT))
from tests.test_ray_cluster import LocalCluster  # the cluster the test uses

NODES = (1, 2, 3)


class TimedRunner:
    """Runs each harness process where `inner` does (locally when None) and records when it ran."""

    def __init__(self, inner: RayExecutor | None) -> None:
        self.inner = inner
        self.spans: list[tuple[float, float]] = []

    async def __call__(self, harness: Harness, stdin: bytes, on_line: Callable[[bytes], None]) -> RunResult:
        started = time.perf_counter()
        try:
            if self.inner is not None:
                return await self.inner(harness, stdin, on_line)
            return await dataclasses.replace(harness, executor=None).run_process(stdin, on_line)
        finally:
            self.spans.append((started, time.perf_counter()))


def split(spans: list[tuple[float, float]], begin: float, end: float, width: int) -> dict[str, float]:
    """Seconds of [begin, end] with no chunk running, with some, and with `width` (all) running."""
    events = sorted([(t, 1) for t, _ in spans] + [(t, -1) for _, t in spans])
    seconds = {"serial": 0.0, "partial": 0.0, "full": 0.0}
    running, last = 0, begin
    for moment, step in [*events, (end, 0)]:
        kind = "serial" if running == 0 else ("full" if running >= width else "partial")
        seconds[kind] += max(0.0, moment - last)
        running, last = running + step, moment
    return seconds


async def per_task_overhead(executor: RayExecutor, harness_for: Callable[[RayExecutor | None], Harness],
                            reps: int = 15) -> None:
    """One harness process of two short runs, locally and as a Ray task on one node, alternating: what
    a task costs beyond its process (the driver, scheduling, the binaries' arrival and check)."""
    tiny = Suite(name="tiny", problems=(ProblemSpec("rosenbrock-10", 100),), lr_grid=(1e-3,),
                 tuning_seeds=(0, 1), eval_seeds=(100,))
    runs = plan_lines("adam", tiny, phase="tune")
    await harness_for(executor).run(runs, 2)  # the node's first task starts a Ray worker and fetches the binaries
    seconds: dict[str, list[float]] = {"local": [], "ray": []}
    for _ in range(reps):
        for label, runner in (("local", None), ("ray", executor)):
            started = time.perf_counter()
            await harness_for(runner).run(runs, 2)
            seconds[label].append(time.perf_counter() - started)
    local, ray = median(seconds["local"]), median(seconds["ray"])
    print(f"per task: one process of 2 runs takes {fmt_s(local)} locally, {fmt_s(ray)} as a Ray task "
          f"(medians of {reps} alternating): {fmt_s(ray - local)} per task; load {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="runs per configuration (default 3)")
    args = parser.parse_args()
    header("scale-out: standard suite (baselines cached) on 1, 2, 3 Ray worker nodes vs the local runner")
    print(f"cores available: {sorted(os.sched_getaffinity(0))}")
    with temp_lab() as home:
        anyio.run(measure, home, args.reps)


async def measure(home: Path, reps: int) -> None:
    suite = SUITES["standard"]
    settings = load_settings(home)
    lab = Lab(home)
    cargo = settings.cargo_path()
    assert cargo is not None
    toolchain = Toolchain.discover(cargo)
    provenance = {"rustflags": "-C target-cpu=native" if settings.native_cpu else "", "suite": "standard"}
    trusted = lab.harness()
    assert trusted is not None
    sandbox = Sandbox(limits=settings.limits, enabled=settings.sandbox, bwrap=settings.bwrap)

    async def once(chunks: int, executor: RayExecutor | None) -> tuple[float, dict[str, float], Any]:
        """Seconds, their split, and the report; the split also counts the harness processes ("tasks")."""
        runner = TimedRunner(executor)
        harness = Harness(binary=trusted, candidate=lab.binary(WARMUP_NAME), secret=lab.secret(), sandbox=sandbox,
                          limits=settings.limits, workers=chunks, executor=runner)
        began = time.perf_counter()
        report, _ = await benchmark(harness, suite, cache_dir=lab.cache, toolchain_version=toolchain.version,
                                    provenance=provenance)
        ended = time.perf_counter()
        return ended - began, {**split(runner.spans, began, ended, chunks), "tasks": len(runner.spans)}, report

    seconds, _, report = await once(2, None)
    print(f"baselines run and cached locally (2 workers): {fmt_s(seconds)}, {report.trials} harness runs; "
          f"then {runs_per_optimizer(suite)} candidate runs per benchmark")

    cluster = LocalCluster(workers=0)
    os.environ.update(cluster.env)  # the driver child joins with the cluster's token
    executor = RayExecutor(cluster.address)
    times: dict[str, list[float]] = {}
    parts: dict[str, list[dict[str, float]]] = {}
    verdicts: set[str] = set()
    try:
        cluster.wait_ready()
        cluster.add_workers(1)
        await per_task_overhead(executor, lambda runner: Harness(
            binary=trusted, candidate=lab.binary(WARMUP_NAME), secret=lab.secret(), sandbox=sandbox,
            limits=settings.limits, workers=1, executor=runner))
        for rep in range(reps):
            configurations: list[tuple[str, int, RayExecutor | None]] = [("local, 1 worker", 1, None),
                                                                         ("local, 2 workers", 2, None)]
            for label, chunks, runner in configurations:
                took, part, report = await once(chunks, runner)
                times.setdefault(label, []).append(took)
                parts.setdefault(label, []).append(part)
                verdicts.add(repr([(p.problem, p.ratio, p.p_holm, p.outcome) for p in report.problems]))
                print(f"rep {rep + 1} {label}: {fmt_s(took)}  load {os.getloadavg()[0]:.1f}", flush=True)
            for nodes in NODES:
                alive = [w for w in cluster.workers if w.process.poll() is None]
                if len(alive) < nodes:
                    cluster.add_workers(nodes - len(alive))
                label = f"ray, {nodes} node{'s' if nodes > 1 else ''}"
                took, part, report = await once(nodes, executor)
                times.setdefault(label, []).append(took)
                parts.setdefault(label, []).append(part)
                verdicts.add(repr([(p.problem, p.ratio, p.p_holm, p.outcome) for p in report.problems]))
                print(f"rep {rep + 1} {label}: {fmt_s(took)}  load {os.getloadavg()[0]:.1f}", flush=True)
            for node in cluster.workers:  # the next repetition grows the cluster again from one node
                if node.process.poll() is None:
                    node.kill()
    finally:
        executor.close()
        cluster.close()

    print(f"\nverdicts identical across all {sum(map(len, times.values()))} runs: {len(verdicts) == 1}")
    one_node = median(times["ray, 1 node"])
    print(f"{'configuration':18} {'median':>9} {'vs 1 node':>9}  serial / partly parallel / fully parallel (medians)")
    for label, values in times.items():
        split_medians = {k: median([p[k] for p in parts[label]]) for k in ("serial", "partial", "full")}
        print(f"{label:18} {fmt_s(median(values)):>9} {one_node / median(values):8.2f}x  "
              f"{fmt_s(split_medians['serial'])} / {fmt_s(split_medians['partial'])} / {fmt_s(split_medians['full'])}")
    local_one = median(times["local, 1 worker"])
    tasks = median([p["tasks"] for p in parts["ray, 1 node"]])
    print(f"ray 1 node / local 1 worker = {one_node / local_one:.2f}: {tasks:.0f} harness processes per benchmark, "
          f"({(one_node - local_one) / tasks * 1e3:+.0f} ms per Ray task against a local process, noise included)")


if __name__ == "__main__":
    main()
