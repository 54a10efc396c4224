"""Optimizer steps: every element-wise baseline against a std-only kernel of the same memory shape.

Target (issue 16): each baseline's step at >= 90 % of the bandwidth of a plain f64 zip loop that
reads and writes as many arrays (p, g and the baseline's state arrays), on whatever CPU runs it
(AVX2 and AVX-512 alike). The harness's `speed all N STEPS CHUNK` subcommand times, in one process
and alternating step by step, each baseline (`frontier_baselines::build`, f64, through the
`Optimizer` trait) and its kernel, on one tensor of N parameters and on N split into tensors of
CHUNK elements; bytes per step = (arrays read + arrays written) x N x 8, the same for both. A
process's ratio is the median of its per-step ratios (kernel time / baseline time); the table
gives the median over processes, and the worst process beside it.

For the f32 question it also runs `speed adam` (the baseline Adam against Adam-shaped f64 and
f32 kernels) and `speed problems` (the gradient against the Adam step on the neural problems),
and, when a Python with torch is given (`--torch-python`, or torch in this Python), torch's
fused Adam on N f32 and f64 parameters, alternating with the Rust processes.

The binary is the lab's prebuilt harness, so it has the lab's flags (`-C target-cpu=native` by
default); `--binary` times another build instead. It runs outside the sandbox (which changes no
memory traffic).

    python3 benches/optimizer_step.py [--params 10000000] [--steps 10] [--reps 5]
        [--torch-python /work/torchvenv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import header, median, temp_lab, verdict

from frontier_mcp.scaffold import Lab

TARGET = 0.90
SIMD_FLAGS = ("avx2", "fma", "avx512f")

# torch.optim.Adam(fused=True) on one tensor: median seconds per step over `steps` after 2 warm-up
# steps, for each (dtype, threads) asked; one JSON line.
TORCH_SCRIPT = """
import json, sys, time
import torch
params, steps = int(sys.argv[1]), int(sys.argv[2])
out = {"torch": torch.__version__, "default_threads": torch.get_num_threads()}
default_threads = torch.get_num_threads()
for dtype, threads in (("float32", default_threads), ("float32", 1), ("float64", 1)):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.rand(params, dtype=getattr(torch, dtype)) - 0.5)
    p.grad = torch.rand(params, dtype=getattr(torch, dtype)) - 0.5
    opt = torch.optim.Adam([p], lr=1e-3, fused=True)
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    out[f"fused_{dtype}_{threads}t"] = times[len(times) // 2]
print(json.dumps(out))
"""


def cpu() -> tuple[str, list[str]]:
    """The CPU's model name and which of the SIMD flags that decide the kernels' width it has."""
    model, flags = "unknown", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return model, [f for f in SIMD_FLAGS if f in flags]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def speed(binary: Path, *args: object) -> dict[str, Any]:
    done = subprocess.run([str(binary), "speed", *map(str, args)], capture_output=True, text=True,
                          timeout=1800, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def torch_once(python: str, params: int, steps: int) -> dict[str, Any] | None:
    done = subprocess.run([python, "-c", TORCH_SCRIPT, str(params), str(steps)], capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        return None
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def has_torch(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "import torch"], capture_output=True, timeout=120).returncode == 0
    except OSError:
        return False


@contextmanager
def harness(binary: str | None, keep: bool) -> Iterator[Path]:
    if binary:
        yield Path(binary)
        return
    with temp_lab(keep=keep) as home:
        built = Lab(home).harness()
        assert built is not None, "the lab has no installed harness"
        yield built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=int, default=10_000_000)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per case and process (default 10)")
    parser.add_argument("--chunk", type=int, default=1000,
                        help="tensor size of the many-tensors layout (default 1000; 0 skips it)")
    parser.add_argument("--reps", type=int, default=5, help="processes (default 5); medians across them")
    parser.add_argument("--only", help="comma-separated case labels (default: every case)")
    parser.add_argument("--binary", help="time this frontier-bench instead of a temporary lab's")
    parser.add_argument("--torch-python", default=sys.executable,
                        help="a Python with torch for the fused-Adam comparison (default: this one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary lab")
    args = parser.parse_args()
    header(f"optimizer steps: every element-wise baseline vs a kernel of its shape, {args.params:,} parameters")
    model, flags = cpu()
    print(f"cpu: {model}; flags: {' '.join(flags) or 'none of ' + ', '.join(SIMD_FLAGS)}; load: {load()}")
    with_torch = has_torch(args.torch_python)
    if not with_torch:
        print(f"no torch in {args.torch_python}: the fused-Adam comparison is skipped (--torch-python)")
    all_args: list[object] = [args.params, args.steps, args.chunk] + ([args.only] if args.only else [])
    runs: list[dict[str, Any]] = []
    adams: list[dict[str, Any]] = []
    torches: list[dict[str, Any]] = []
    with harness(args.binary, args.keep) as binary:
        speed(binary, "all", 20_000, 1, 1000)  # warm the binary's pages
        for i in range(args.reps):
            out = speed(binary, "all", *all_args)
            runs.append(out)
            adams.append(speed(binary, "adam", args.params, 20))
            line = f"  rep {i + 1}/{args.reps} (load {load()}): "
            worst = min(out["rows"], key=lambda r: r["ratio"])
            line += f"{len(out['rows'])} cases, lowest ratio {worst['ratio']:.2f} ({worst['name']}, {worst['layout']})"
            if with_torch:
                t = torch_once(args.torch_python, args.params, 20)
                if t is not None:
                    torches.append(t)
                    line += f"; torch fused f32 {args.params / t['fused_float32_1t'] / 1e9:.3f} G params/s (1 thread)"
            print(line, flush=True)
        problems = speed(binary, "problems", 200)
    compiled = runs[0]["compiled_for"]
    print(f"binary compiled for: {' '.join(compiled)}; the CPU has: {' '.join(runs[0]['cpu_flags'])}")

    keys = [(r["name"], r["layout"]) for r in runs[0]["rows"]]
    first = {(r["name"], r["layout"]): r for r in runs[0]["rows"]}
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {k: [] for k in keys}
    for out in runs:
        for r in out["rows"]:
            by_key[(r["name"], r["layout"])].append(r)
    print(f"\n{'baseline':<27} {'layout':<13} {'state':>5} {'GB/s base':>9} {'GB/s kernel':>11} "
          f"{'ratio':>6} {'worst':>6}")
    below: list[str] = []
    ratios: list[float] = []
    for key in keys:
        rows = by_key[key]
        ratio = median([r["ratio"] for r in rows])
        ratios.append(ratio)
        mark = "" if ratio >= TARGET else "  < 90 %"
        if ratio < TARGET:
            below.append(f"{key[0]} ({key[1]})")
        base = median([r["baseline_gb_per_s"] for r in rows])
        kernel = median([r["kernel_gb_per_s"] for r in rows])
        print(f"{key[0]:<27} {key[1]:<13} {first[key]['state_arrays']:>5} {base:>9.1f} {kernel:>11.1f} "
              f"{ratio:>6.2f} {min(r['ratio'] for r in rows):>6.2f}{mark}")
    for nj in runs[0]["not_judged"]:
        print(f"{nj['name']:<27} not element-wise, not judged: {nj['why']}")

    print("\nf32 question: Adam at N parameters, one thread (G params/s, median over processes)")
    pps = {k: median([a[k]["params_per_s"] for a in adams]) / 1e9 for k in ("baseline", "kernel_f64", "kernel_f32")}
    print(f"  baseline Adam f64 {pps['baseline']:.3f}, kernel f64 {pps['kernel_f64']:.3f}, "
          f"kernel f32 {pps['kernel_f32']:.3f}")
    if torches:
        for field, label in (("fused_float32_1t", "f32, 1 thread"), ("fused_float64_1t", "f64, 1 thread")):
            rate = args.params / median([t[field] for t in torches]) / 1e9
            print(f"  torch {torches[0]['torch']} fused Adam {label}: {rate:.3f}")
        # Each torch process ran right after a Rust one: their per-rep ratios share the load.
        pairs = list(zip(adams, torches, strict=False))
        f32 = median([a["kernel_f32"]["ns_per_step_median"] / 1e9 / t["fused_float32_1t"] for a, t in pairs])
        f64 = median([a["baseline"]["ns_per_step_median"] / 1e9 / t["fused_float64_1t"] for a, t in pairs])
        print(f"  speed ratios per rep (median): torch fused f32 vs the f32 kernel {f32:.2f}; "
              f"torch fused f64 vs baseline Adam f64 {f64:.2f} (> 1: torch faster)")
        dflt = f"fused_float32_{torches[0]['default_threads']}t"
        print(f"  torch fused Adam f32, {torches[0]['default_threads']} threads: "
              f"{args.params / median([t[dflt] for t in torches]) / 1e9:.3f}")
    print("  the Adam step's share of a step on the neural and data problems (gradient + step):")
    for r in problems["rows"]:
        print(f"    {r['problem']:<22} {r['params']:>6} params, {r['tensors']:>2} tensors: gradient "
              f"{r['loss_grad_ns'] / 1e3:>8.1f} µs, Adam {r['adam_step_ns'] / 1e3:>6.1f} µs, "
              f"share {r['step_share']:.1%}")

    print(f"\nload at the end: {load()}")
    lowest = min(ratios)
    verdict("optimizer_step",
            f"{len(ratios) - len(below)}/{len(ratios)} baseline cases at >= {TARGET:.0%} of their kernel's bandwidth; "
            f"lowest {lowest:.2f} ({keys[ratios.index(lowest)][0]}, {keys[ratios.index(lowest)][1]})"
            + (f"; below: {', '.join(below)}" if below else ""),
            f">= {TARGET:.0%} for every element-wise baseline", not below,
            f"std-only f64 kernels of the same shape, same process, alternating; {model}, {' '.join(flags)}")


if __name__ == "__main__":
    main()
