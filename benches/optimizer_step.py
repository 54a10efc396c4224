"""Optimizer steps: the baseline Adam step against an Adam-shaped in-place bandwidth kernel.

Target (issue 5): the baselines' hot loops at >= 90 % of the memory-bandwidth ceiling measured
in the same run by an Adam-shaped in-place kernel (read 4 arrays, write 3) on 10 M float32
parameters. The harness's `speed adam N STEPS` subcommand runs, in one process and alternating
step by step, the baseline Adam (`frontier_baselines::build("adam")`, f64, through the
`Optimizer` trait) and the raw kernel in f64 and f32; bytes per step = 7 x N x sizeof(float).
The binary is the lab's prebuilt one, so it has the lab's flags (`-C target-cpu=native` by
default). It runs outside the sandbox (the sandbox changes no memory traffic).

If torch is importable, `torch.optim.Adam(fused=True)` (and the default Adam) on 10 M float32
parameters run in alternation with the Rust process, and are reported beside it.

    python3 benches/optimizer_step.py [--params 10000000] [--steps 20] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from _common import header, median, temp_lab, verdict

from frontier_mcp.scaffold import Lab

TARGET = 0.90


def rust_once(binary: Path, params: int, steps: int) -> dict[str, Any]:
    done = subprocess.run([str(binary), "speed", "adam", str(params), str(steps)], capture_output=True,
                          text=True, timeout=600, check=True)
    return json.loads(done.stdout)


def torch_once(params: int, steps: int, fused: bool) -> float | None:
    """Median seconds per step of torch.optim.Adam on one f32 tensor; None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.rand(params) - 0.5)
    p.grad = torch.rand(params) - 0.5
    opt = torch.optim.Adam([p], lr=1e-3, fused=fused) if fused else torch.optim.Adam([p], lr=1e-3)
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=int, default=10_000_000)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per process (default 20)")
    parser.add_argument("--reps", type=int, default=5, help="processes (default 5); medians across them")
    parser.add_argument("--keep", action="store_true", help="keep the temporary lab")
    args = parser.parse_args()
    header(f"optimizer steps: baseline Adam vs an Adam-shaped kernel, {args.params:,} parameters")
    try:
        import torch

        print(f"torch {torch.__version__} found: fused Adam is compared in alternating runs "
              f"(threads: {torch.get_num_threads()})")
        have_torch = True
    except ImportError:
        print("torch is not installed: the fused-Adam comparison is skipped (see docs/performance.md)")
        have_torch = False
    with temp_lab(keep=args.keep) as home:
        binary = Lab(home).harness()
        assert binary is not None, "the lab has no installed harness"
        rust_once(binary, 100_000, 3)  # warm the binary's pages
        keys = ("baseline", "kernel_f64", "kernel_f32")
        gbps: dict[str, list[float]] = {k: [] for k in keys}
        pps: dict[str, list[float]] = {k: [] for k in keys}
        torch_fused: list[float] = []
        torch_default: list[float] = []
        ratios_f32, ratios_f64 = [], []
        for i in range(args.reps):
            out = rust_once(binary, args.params, args.steps)
            for k in keys:
                gbps[k].append(out[k]["gb_per_s"])
                pps[k].append(out[k]["params_per_s"])
            ratios_f32.append(out["baseline_vs_kernel_f32_bandwidth"])
            ratios_f64.append(out["baseline_vs_kernel_f64_bandwidth"])
            line = (f"  rep {i + 1}/{args.reps}: baseline {out['baseline']['gb_per_s']:.1f} GB/s, kernel f64 "
                    f"{out['kernel_f64']['gb_per_s']:.1f} GB/s, kernel f32 {out['kernel_f32']['gb_per_s']:.1f} GB/s")
            if have_torch:
                fused = torch_once(args.params, args.steps, fused=True)
                default = torch_once(args.params, args.steps, fused=False)
                assert fused is not None and default is not None
                torch_fused.append(fused)
                torch_default.append(default)
                line += (f"; torch fused {7 * 4 * args.params / fused / 1e9:.1f} GB/s, default "
                         f"{7 * 4 * args.params / default / 1e9:.1f} GB/s")
            print(line)
    print(f"{'':>22} {'GB/s':>8} {'G params/s':>11}")
    for k in keys:
        print(f"{k:>22} {median(gbps[k]):>8.1f} {median(pps[k]) / 1e9:>11.3f}")
    if have_torch:
        for name, times in (("torch_adam_fused_f32", torch_fused), ("torch_adam_default_f32", torch_default)):
            t = median(times)
            print(f"{name:>22} {7 * 4 * args.params / t / 1e9:>8.1f} {args.params / t / 1e9:>11.3f}")
        fused_ratio = (7 * 4 * args.params / median(torch_fused) / 1e9) / median(gbps["kernel_f32"])
        print(f"torch fused Adam / kernel f32 (bandwidth): {fused_ratio:.2f}")
    r32, r64 = median(ratios_f32), median(ratios_f64)
    print(f"baseline / kernel f32 bandwidth (per-process ratio, median): {r32:.2f}")
    print(f"baseline / kernel f64 bandwidth (same dtype):               {r64:.2f}")
    per_param = median(pps["baseline"]) / median(pps["kernel_f32"])
    print(f"baseline / kernel f32 parameters per second:                {per_param:.2f}"
          " (the baselines are f64: twice the bytes per parameter)")
    verdict("optimizer_step", f"baseline Adam at {r32:.0%} of the f32 kernel's bandwidth "
            f"({median(gbps['baseline']):.1f} vs {median(gbps['kernel_f32']):.1f} GB/s); {r64:.0%} of the f64 kernel's",
            f">= {TARGET:.0%} of the f32 kernel", r32 >= TARGET,
            f"kernel f32 {median(gbps['kernel_f32']):.1f} GB/s"
            + (f", torch fused {7 * 4 * args.params / median(torch_fused) / 1e9:.1f} GB/s" if have_torch
               else ", torch not installed"))


if __name__ == "__main__":
    main()
