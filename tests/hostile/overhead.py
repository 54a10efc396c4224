"""Sandbox overhead per compile and per run: median of N alternating runs, bwrap vs FRONTIER_SANDBOX=off.

    python3 tests/hostile/overhead.py LAB_DIR [N]

LAB_DIR is a lab whose harness is already built (e.g. after `frontier-mcp --home LAB_DIR doctor`).
Each round rebuilds one candidate crate (a changed comment forces rustc to run) and starts its
binary twice (`list`, and `run` of one 10-step plan line), first in the sandbox, then without.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import anyio

from frontier_mcp.cargo import Toolchain, build_crate
from frontier_mcp.sandbox import Mount, Sandbox
from frontier_mcp.scaffold import Lab
from frontier_mcp.settings import Limits, find_cargo

PLAN = b"id=0 optimizer=candidate problem=rosenbrock-10 lr=0.001 seed=0 steps=10 curve_points=2\n"


async def measure(home: Path, rounds: int) -> None:
    lab = Lab(home)
    cargo = find_cargo()
    assert cargo is not None, "cargo not found"
    toolchain = Toolchain.discover(cargo)
    boxes = {"sandbox": Sandbox(Limits()), "off": Sandbox(Limits(), enabled=False)}
    times: dict[str, dict[str, list[float]]] = {key: {"compile": [], "start": [], "run": []} for key in boxes}
    for index in range(rounds):
        for key, box in boxes.items():
            lab.write_crate("overhead", lab.example_source() + f"\n// {key} {index} {time.time()}\n")
            started = time.perf_counter()
            built = await build_crate(lab, "overhead", toolchain, box, timeout=300, native_cpu=True, jobs=2)
            assert built.ok, built.note
            times[key]["compile"].append(time.perf_counter() - started)
            binary = lab.binary("overhead")
            for label, argv, stdin in (("start", [str(binary), "list"], None), ("run", [str(binary), "run"], PLAN)):
                started = time.perf_counter()
                result = await box.run(argv, mounts=[Mount(binary)], env={"PATH": "/usr/bin:/bin"},
                                       cwd=Path("/tmp"), timeout=60, stdin=stdin)
                assert result.ok, result
                times[key][label].append(time.perf_counter() - started)
    lab.remove_crate("overhead")
    for what in ("compile", "start", "run"):
        on, off = statistics.median(times["sandbox"][what]), statistics.median(times["off"][what])
        print(f"{what:8s} sandbox {on * 1000:8.1f} ms   off {off * 1000:8.1f} ms   "
              f"overhead {1000 * (on - off):+7.1f} ms")


if __name__ == "__main__":
    anyio.run(measure, Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 9)
