"""What a cached `standard` benchmark of a new candidate costs in wall time and in CPU, two versions of
the code interleaved in one run.

Two long-lived driver processes (one per source tree: this checkout, and `--against DIR` with `DIR/src`
on PYTHONPATH and its own lab built from `DIR/rust_scaffold`) each hold a warm lab with the baselines
cached, as a server does (baseline cache parsed, scipy imported, harness listed), and run
`benchmark()` (the `benchmark` tool's work) on the example candidate when told, alternately. Each
reports the wall time and the CPU time of the benchmark: its own process plus every process it waited
for (harness processes, candidate processes). CPU is the figure a busy machine distorts least: on a
machine with load above its core count, wall times measure the other jobs as much as this one.

CPU of processes inside bubblewrap is not reported back to the server (the sandbox's pid 1 reaps
them), so `--sandbox off` (run isolation kept: a fresh candidate process per run) is what gives the
CPU column; with the sandbox on, only wall time is meaningful.

    python3 benches/evaluation_cost.py --against DIR [--reps 5] [--sandbox on|off] [--suite standard]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _common import fmt_s, header, median, temp_lab, warm_lab

DRIVER = r'''
import json, os, resource, sys, time, anyio
from pathlib import Path
from frontier_mcp.cargo import Toolchain
from frontier_mcp.protocol import SUITES, Harness, benchmark
from frontier_mcp.sandbox import Sandbox
from frontier_mcp.scaffold import WARMUP_NAME, Lab
from frontier_mcp.settings import load_settings

home, suite_name, sandbox_word = Path(sys.argv[1]), sys.argv[2], sys.argv[3]

def cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

async def main():
    settings = load_settings(home, environ={"FRONTIER_WORKERS": "2", "FRONTIER_SANDBOX": sandbox_word})
    lab = Lab(home)
    harness = Harness(binary=lab.harness(), candidate=lab.binary(WARMUP_NAME), secret=lab.secret(),
                      sandbox=Sandbox(limits=settings.limits, enabled=settings.sandbox, bwrap=settings.bwrap),
                      limits=settings.limits, workers=settings.workers)
    toolchain = Toolchain.discover(settings.cargo_path())
    provenance = {"rustflags": "-C target-cpu=native" if settings.native_cpu else "", "suite": suite_name}
    import scipy.stats  # the server warms it at start
    for line in sys.stdin:
        if not line.strip():
            break
        wall, used = time.perf_counter(), cpu()
        report, _ = await benchmark(harness, SUITES[suite_name], cache_dir=lab.cache,
                                    toolchain_version=toolchain.version, provenance=provenance)
        print(json.dumps({"wall": time.perf_counter() - wall, "cpu": cpu() - used, "cache": report.baseline_cache,
                          "outcome": report.outcome, "load": os.getloadavg()[0]}), flush=True)

anyio.run(main)
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", type=Path, required=True)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--suite", default="standard")
    parser.add_argument("--sandbox", choices=("on", "off"), default="off")
    args = parser.parse_args()
    header(f"evaluation cost: cached {args.suite} benchmark, this checkout against {args.against} "
           f"(sandbox {args.sandbox})")
    trees = {"this": {}, "against": {"PYTHONPATH": str((args.against / "src").resolve())}}
    with temp_lab(warm=False) as first, temp_lab(warm=False) as second:
        homes = {"this": first, "against": second}
        drivers = {}
        for name, env in trees.items():
            print(f"lab of '{name}' built in {warm_lab(homes[name], env):.0f} s", flush=True)
            drivers[name] = subprocess.Popen(
                [sys.executable, "-c", DRIVER, str(homes[name]), args.suite, args.sandbox],
                env={**os.environ, **env}, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

        def once(name: str) -> dict[str, float]:
            driver = drivers[name]
            assert driver.stdin is not None and driver.stdout is not None
            driver.stdin.write("go\n")
            driver.stdin.flush()
            line = driver.stdout.readline()
            if not line:
                raise SystemExit(f"the driver of '{name}' died")
            return json.loads(line)

        for name in trees:
            cold = once(name)
            print(f"'{name}' cold (baselines tuned and cached): {fmt_s(cold['wall'])}", flush=True)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for i in range(args.reps):
            for name in (("this", "against") if i % 2 == 0 else ("against", "this")):
                runs[name].append(once(name))
            print(f"  rep {i + 1}: " + ", ".join(
                f"{name} {fmt_s(runs[name][-1]['wall'])} wall, {runs[name][-1]['cpu']:.2f} s CPU "
                f"(load {runs[name][-1]['load']:.1f})" for name in trees), flush=True)
        for driver in drivers.values():
            assert driver.stdin is not None
            driver.stdin.close()
            driver.wait(timeout=60)
    for key in ("wall", "cpu"):
        ratios = [a[key] / b[key] for a, b in zip(runs["this"], runs["against"], strict=True)]
        this, that = median([r[key] for r in runs["this"]]), median([r[key] for r in runs["against"]])
        print(f"RESULT {key}: this {this:.2f} s, against {that:.2f} s; per pair this/against median "
              f"{median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
