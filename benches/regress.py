"""Speed regressions: this checkout against the figures committed in `benches/figures.json`, as ratios.

Absolute times move with the CPU and with whatever else the machine runs, so every figure here is a
ratio of two things measured in the same run, interleaved, on the same lab:

  isolation      a plan of cheap-step problems with Adam as a process of its own per run
                 (`served:adam`, exactly a candidate's boundary) / the same plan with Adam in the
                 harness's process
  benchmark      the `benchmark` tool's work (cached baselines, the example candidate, sandbox and
                 run isolation on, 2 workers) on `quick` and on `standard` / calibrate.rs
  compile        a new crate built as the `compile` tool builds it / calibrate.rs
  start          `python -m frontier_mcp serve` start -> initialize over stdio / a minimal server of
                 the same MCP SDK

The calibration is `benches/calibrate.rs` (built here with `rustc -O -C target-cpu=native`): a fixed
workload shaped like a benchmark's (dense f64 loops, `exp`, a streaming pass) that runs none of the
project's code, so it moves only with the machine and its load, and a change of the project's speed
(the harness, the problems, the sandbox, the server) shows in every ratio to it.

    python3 benches/regress.py [--reps 3] [--tolerance 1.3] [--only isolation,benchmark,...]
    python3 benches/regress.py --update      # write this run's figures as the committed ones

Exit status 1 when a figure is more than `tolerance` times its committed value (slower), 0 otherwise;
figures faster than 1/tolerance are reported so the committed file can be refreshed with `--update`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from _common import MINIMAL_SERVER, ROOT, example_source, header, machine, median, server_env, server_params, temp_lab

from frontier_mcp.cargo import Toolchain, build_crate
from frontier_mcp.protocol import SUITES, Harness, benchmark, format_line, plan_lines
from frontier_mcp.sandbox import Sandbox
from frontier_mcp.scaffold import WARMUP_NAME, Lab
from frontier_mcp.settings import load_settings

FIGURES = Path(__file__).with_name("figures.json")
CALIBRATE = Path(__file__).with_name("calibrate.rs")
CHEAP_STEPS = ("rosenbrock-10", "rosenbrock-50", "quadratic-ill-50", "noisy-quadratic-50")
WHAT = {
    "isolation": "served:adam / adam in the harness's process, cheap-step plan",
    "benchmark_quick": "cached quick benchmark of the example candidate / calibrate.rs",
    "benchmark_standard": "cached standard benchmark of the example candidate / calibrate.rs",
    "compile": "sandboxed build of a new crate / calibrate.rs",
    "start": "start -> initialize over stdio / a minimal MCPServer",
}


def plan_text(optimizer: str, problems: tuple[str, ...], secret: bytes | None) -> str:
    suite = SUITES["standard"]
    lrs = {p.name: 1e-3 for p in suite.problems}
    runs = [r for r in plan_lines(optimizer, suite, phase="eval", lrs=lrs)
            if r["problem"] in problems]
    return "".join(format_line(r, 2, secret) + " accuracy=0\n" for r in runs)


def run_plan(harness: Path, text: str) -> float:
    started = time.perf_counter()
    subprocess.run([str(harness), "run"], input=text, text=True, capture_output=True, check=True, timeout=600)
    return time.perf_counter() - started


class Session:
    """One warm lab and the measurements of one run, each a list of per-repetition ratios."""

    def __init__(self, home: Path, reps: int) -> None:
        self.home, self.reps = home, reps
        self.settings = load_settings(home, environ={"FRONTIER_WORKERS": "2"})
        self.lab = Lab(home)
        binary = self.lab.harness()
        if binary is None:
            raise SystemExit("the lab has no harness")
        self.binary = binary
        self.sandbox = Sandbox(limits=self.settings.limits, enabled=self.settings.sandbox, bwrap=self.settings.bwrap)
        rustc = shutil.which("rustc") or str(Path(self.settings.cargo_path() or "cargo").with_name("rustc"))
        self.calibrator = home.parent / "calibrate"
        subprocess.run([rustc, "-O", "-C", "target-cpu=native", str(CALIBRATE), "-o", str(self.calibrator)],
                       check=True, capture_output=True, timeout=300)
        self.ratios: dict[str, list[float]] = {}

    def calibration(self) -> float:
        started = time.perf_counter()
        subprocess.run([str(self.calibrator)], check=True, capture_output=True, timeout=300)
        return time.perf_counter() - started

    async def against_calibration(self, name: str, figure: Callable[[], Awaitable[float]]) -> None:
        await figure()  # warm: caches, page cache, the first build
        for rep in range(self.reps):
            if rep % 2 == 0:
                value, reference = await figure(), self.calibration()
            else:
                reference, value = self.calibration(), await figure()
            self.note(name, value, reference)

    def note(self, name: str, value: float, reference: float) -> None:
        self.ratios.setdefault(name, []).append(value / reference)
        print(f"  {name}: {value:.3f} s / {reference:.3f} s = {value / reference:.3f}", flush=True)

    def isolation(self) -> None:
        inside = plan_text("adam", CHEAP_STEPS, self.lab.secret())
        served = plan_text("served:adam", CHEAP_STEPS, self.lab.secret())
        run_plan(self.binary, served)
        for rep in range(self.reps):
            order = [served, inside] if rep % 2 == 0 else [inside, served]
            times = {text: run_plan(self.binary, text) for text in order}
            self.note("isolation", times[served], times[inside])

    async def benchmarks(self, suite_name: str) -> None:
        harness = Harness(binary=self.binary, candidate=self.lab.binary(WARMUP_NAME), secret=self.lab.secret(),
                          sandbox=self.sandbox, limits=self.settings.limits, workers=self.settings.workers)
        cargo = self.settings.cargo_path()
        assert cargo is not None, "cargo not found"
        toolchain = Toolchain.discover(cargo)
        provenance = {"rustflags": "-C target-cpu=native" if self.settings.native_cpu else "", "suite": suite_name}

        async def one() -> float:
            started = time.perf_counter()
            await benchmark(harness, SUITES[suite_name], cache_dir=self.lab.cache,
                            toolchain_version=toolchain.version, provenance=provenance)
            return time.perf_counter() - started

        await self.against_calibration(f"benchmark_{suite_name}", one)

    async def compile(self) -> None:
        cargo = self.settings.cargo_path()
        assert cargo is not None, "cargo not found"
        toolchain = Toolchain.discover(cargo)
        variant = iter(range(10_000))

        async def one() -> float:
            name = "regress"
            self.lab.write_crate(name, example_source(next(variant)))
            started = time.perf_counter()
            outcome = await build_crate(self.lab, name, toolchain, self.sandbox, timeout=300,
                                        native_cpu=self.settings.native_cpu, jobs=self.settings.workers)
            if not outcome.ok:
                raise SystemExit(f"the example did not build: {outcome.note}")
            return time.perf_counter() - started

        await self.against_calibration("compile", one)

    async def start(self) -> None:
        from mcp import Client, StdioServerParameters

        async def handshake(params: Any) -> float:
            started = time.perf_counter()
            async with Client(params, read_timeout_seconds=60):
                return time.perf_counter() - started

        ours = server_params(self.home)
        minimal = StdioServerParameters(command=sys.executable, args=["-c", MINIMAL_SERVER],
                                        env=server_env(self.home), cwd="/")
        await handshake(ours)
        for rep in range(max(self.reps, 5)):
            if rep % 2 == 0:
                value, reference = await handshake(ours), await handshake(minimal)
            else:
                reference, value = await handshake(minimal), await handshake(ours)
            self.note("start", value, reference)


def committed() -> dict[str, Any]:
    return json.loads(FIGURES.read_text()) if FIGURES.exists() else {"figures": {}}


def commit_id() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return done.stdout.strip() + ("+changes" if dirty else "")


def compare(now: dict[str, float], before: dict[str, Any], tolerance: float) -> bool:
    """Prints the table; True when nothing regressed beyond the tolerance."""
    ok = True
    print(f"\n{'figure':20s} {'committed':>10s} {'now':>8s} {'now/committed':>14s}  what")
    for name, ratio in now.items():
        old = before.get(name, {}).get("ratio")
        if old is None:
            print(f"{name:20s} {'-':>10s} {ratio:8.3f} {'(new)':>14s}  {WHAT[name]}")
            continue
        change = ratio / old
        state = "REGRESSED" if change > tolerance else ("faster: --update" if change < 1 / tolerance else "ok")
        ok &= change <= tolerance
        print(f"{name:20s} {old:10.3f} {ratio:8.3f} {change:13.3f}x  {WHAT[name]}  [{state}]")
    return ok


async def measure(home: Path, args: argparse.Namespace) -> dict[str, float]:
    session = Session(home, args.reps)
    only = set(args.only.split(",")) if args.only else set(WHAT) | {"benchmark"}
    session.calibration()
    if "isolation" in only:
        session.isolation()
    if only & {"benchmark", "benchmark_quick"}:
        await session.benchmarks("quick")
    if only & {"benchmark", "benchmark_standard"}:
        await session.benchmarks("standard")
    if "compile" in only:
        await session.compile()
    if "start" in only:
        await session.start()
    return {name: median(values) for name, values in session.ratios.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions per figure (default 3)")
    parser.add_argument("--tolerance", type=float, default=1.3, help="slower than this x committed fails (1.3)")
    parser.add_argument("--only", help="comma-separated: isolation, benchmark (both suites), benchmark_quick, "
                                       "benchmark_standard, compile, start")
    parser.add_argument("--update", action="store_true", help="write this run's figures to benches/figures.json")
    args = parser.parse_args()
    header("speed regressions: ratios measured in one run, against benches/figures.json")
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with temp_lab() as home:
        now = anyio.run(measure, home, args)
    load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"load average (1 min) before / after: {load[0]} / {load[1]}; children's CPU "
          f"{cpu.ru_utime + cpu.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime:.1f} s")
    before = committed()
    ok = compare(now, before.get("figures", {}), args.tolerance)
    if args.update:
        figures = dict(before.get("figures", {}))
        figures.update({name: {"ratio": round(ratio, 4), "what": WHAT[name]} for name, ratio in now.items()})
        FIGURES.write_text(json.dumps({
            "machine": {k: v for k, v in machine().items() if k != "load_avg_1m"}, "load_avg_1m": load,
            "commit": commit_id(), "date": datetime.date.today().isoformat(), "reps": args.reps,
            "command": "python3 benches/regress.py --update", "figures": figures}, indent=2) + "\n")
        print(f"wrote {FIGURES.relative_to(ROOT)}")
    print(f"RESULT regress: {'no figure slower than' if ok else 'a figure is slower than'} "
          f"{args.tolerance}x its committed ratio -> {'MET' if ok else 'NOT MET'}")
    sys.exit(0 if ok or args.update else 1)


if __name__ == "__main__":
    main()
