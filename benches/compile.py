"""Compile: a new candidate crate beside the prebuilt harness, warm, sandbox included.

Target (issue 5): <= 0.5 s. Baseline, in the same run: a bare `cargo build` of the same crate
(same source, same flags, same shared target dir and CARGO_HOME) without bubblewrap or prlimit.
Sandboxed and bare builds alternate, each on a fresh crate, so drift hits both alike.

    python3 benches/compile.py [--rounds 9]
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import anyio
from _common import example_source, fmt_s, header, median, quantile, temp_lab, verdict

from frontier_mcp.cargo import Toolchain, build_crate, build_env
from frontier_mcp.sandbox import Sandbox
from frontier_mcp.scaffold import Lab
from frontier_mcp.settings import load_settings

TARGET_S = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9, help="sandboxed/bare pairs (default 9)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary lab")
    args = parser.parse_args()
    header("compile: new candidate crate, warm, sandbox included")
    with temp_lab(keep=args.keep) as home:
        anyio.run(measure, home, args.rounds)


async def measure(home: Path, rounds: int) -> None:
    settings = load_settings(home)
    lab = Lab(home)
    sandbox = Sandbox(limits=settings.limits, enabled=settings.sandbox, bwrap=settings.bwrap)
    cargo = settings.cargo_path()
    assert cargo is not None, "cargo not found"
    toolchain = Toolchain.discover(cargo)
    print(f"flags: RUSTFLAGS={'-C target-cpu=native' if settings.native_cpu else '(none)'}, "
          f"CARGO_BUILD_JOBS={settings.workers}, sandbox={'bwrap' if settings.sandbox else 'OFF'}")

    async def sandboxed(name: str, variant: int) -> float:
        lab.write_crate(name, example_source(variant))
        started = time.perf_counter()
        outcome = await build_crate(lab, name, toolchain, sandbox, timeout=120, native_cpu=settings.native_cpu,
                                    jobs=settings.workers)
        seconds = time.perf_counter() - started
        assert outcome.ok, outcome.note or [d.message for d in outcome.diagnostics]
        return seconds

    def bare(name: str, variant: int) -> float:
        crate = lab.write_crate(name, example_source(variant))
        argv = [str(toolchain.cargo), "build", "--release", "--offline", "--frozen", "--message-format=json",
                "--manifest-path", str(crate / "Cargo.toml")]
        env = build_env(lab, toolchain, native_cpu=settings.native_cpu, jobs=settings.workers)
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, cwd=crate, capture_output=True, timeout=120)
        seconds = time.perf_counter() - started
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        return seconds

    async def sandbox_start() -> float:
        started = time.perf_counter()
        result = await sandbox.run(["/usr/bin/true"], mounts=[], env={"PATH": "/usr/bin"}, cwd=Path("/"),
                                   timeout=30)
        assert result.ok
        return time.perf_counter() - started

    # One untimed build of each kind: the first build after the harness warms the page cache.
    await sandboxed("warm_s", 9999)
    bare("warm_b", 9998)
    boxed, plain = [], []
    for i in range(rounds):
        if i % 2 == 0:
            boxed.append(await sandboxed(f"s{i}", i))
            plain.append(bare(f"b{i}", i))
        else:
            plain.append(bare(f"b{i}", i))
            boxed.append(await sandboxed(f"s{i}", i))
        print(f"  round {i + 1}/{rounds}: sandboxed {fmt_s(boxed[-1])}, bare {fmt_s(plain[-1])}")
    starts = [await sandbox_start() for _ in range(15)]
    ratios = [b / p for b, p in zip(boxed, plain, strict=True)]
    print(f"sandboxed build: median {fmt_s(median(boxed))} (p10 {fmt_s(quantile(boxed, 0.1))}, "
          f"p90 {fmt_s(quantile(boxed, 0.9))}) over {rounds}")
    print(f"bare cargo build: median {fmt_s(median(plain))} (p10 {fmt_s(quantile(plain, 0.1))}, "
          f"p90 {fmt_s(quantile(plain, 0.9))})")
    print(f"ratio sandboxed / bare (paired): median {median(ratios):.2f}")
    print(f"empty sandbox start (bwrap + prlimit + /usr/bin/true): median {fmt_s(median(starts))}")
    verdict("compile", f"{fmt_s(median(boxed))} warm, sandbox included", f"<= {TARGET_S} s",
            median(boxed) <= TARGET_S,
            f"bare cargo build {fmt_s(median(plain))} (ratio {median(ratios):.2f}x)")


if __name__ == "__main__":
    main()
