"""The transformer's forward + backward step: the harness vs the same model in PyTorch on CPU.

Issue 14's speed target: the harness's step of `transformer-grammar` (a minibatch of 16 sequences
of 16 + 1 tokens, float64) at least as fast as PyTorch's, same dtype (float64: the harness
computes in float64 so that its gradients match PyTorch's to 1e-10 and every optimizer sees the
same numbers; float32 in torch is printed for reference) and one thread on both sides.

The harness side is `crates/problems/examples/nn_step.rs` (`Problem::loss_grad`, as the harness
calls it), built with `-C target-cpu=native` as the lab builds the harness, into its own target
folder (rust_scaffold/target/nn-step-native) so the main build is not invalidated. The PyTorch
side is the model of `rust_scaffold/data/make_nn_fixtures.py` (the one the fixture test matches):
nn.Linear/LayerNorm, `scaled_dot_product_attention(is_causal=True)`, tanh GELU, cross-entropy;
`zero_grad(set_to_none=True)`, forward, `backward()` per step. The measurements alternate (harness,
torch float64, torch float32, ...) so each ratio compares runs made under the same load; each
figure is the median over runs of the mean time of `--reps` steps.

    /work/torchvenv/bin/python benches/nn_step.py [--runs 7] [--reps 200] [--no-build]

Without torch it prints the harness's time and says how to run the comparison.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, header, median, verdict

SCAFFOLD = ROOT / "rust_scaffold"
TARGET = SCAFFOLD / "target" / "nn-step-native"
EXAMPLE = TARGET / "release" / "examples" / "nn_step"
PROBLEM = "transformer-grammar"
# The registered sizes of transformer-grammar (registry.rs; the fixture test pins the shapes).
CONFIG = dict(vocab=17, ctx=16, d=16, heads=2, layers=2)
BATCH = 16
FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512dq", "avx512vl")


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "?"
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    have = set(line.split(":", 1)[-1].split())
    return " ".join(f for f in FLAGS if f in have) or "none of " + " ".join(FLAGS)


def build() -> None:
    env = dict(os.environ, RUSTFLAGS="-C target-cpu=native", CARGO_TARGET_DIR=str(TARGET))
    t0 = time.perf_counter()
    cmd = ["cargo", "build", "--release", "--offline", "-q", "-p", "frontier-problems", "--example", "nn_step"]
    out = subprocess.run(cmd, cwd=SCAFFOLD, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    print(f"built {EXAMPLE.relative_to(ROOT)} in {time.perf_counter() - t0:.0f} s (RUSTFLAGS=-C target-cpu=native)")


def harness_run(reps: int) -> dict:
    cmd = [str(EXAMPLE), "--problem", PROBLEM, "--batch", str(BATCH), "--reps", str(reps), "--runs", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


class TorchStep:
    """One forward + backward of the fixture's model on a fixed minibatch."""

    def __init__(self, torch, dtype) -> None:
        sys.path.insert(0, str(SCAFFOLD / "data"))
        from make_nn_fixtures import Transformer

        torch.manual_seed(1)
        self.torch = torch
        self.model = Transformer(**CONFIG).to(dtype)
        self.tokens = torch.randint(0, CONFIG["vocab"], (BATCH, CONFIG["ctx"] + 1))
        self.dim = sum(p.numel() for p in self.model.parameters())

    def step(self) -> float:
        self.model.zero_grad(set_to_none=True)
        loss = self.model(self.tokens)
        loss.backward()
        return loss.item()

    def run(self, reps: int) -> tuple[float, float]:
        """Mean microseconds per step over `reps` steps: wall clock and this thread's CPU time."""
        t0, c0 = time.perf_counter(), time.thread_time()
        for _ in range(reps):
            self.step()
        return (time.perf_counter() - t0) * 1e6 / reps, (time.thread_time() - c0) * 1e6 / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="measurements per side (the median is reported)")
    ap.add_argument("--reps", type=int, default=200, help="steps per measurement")
    ap.add_argument("--no-build", action="store_true", help="use the example binary already built")
    args = ap.parse_args()

    header("nn_step: transformer-grammar forward + backward, harness vs PyTorch (1 thread)")
    print(f"cpu flags: {cpu_flags()}; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not args.no_build:
        build()
    try:
        import torch
    except ImportError:
        torch = None
        print("torch is not installed here: the harness's time only. For the comparison run\n"
              "    /work/torchvenv/bin/python benches/nn_step.py")
    sides: dict[str, list[float]] = {"harness f64": []}
    cpu: dict[str, list[float]] = {"harness f64": []}
    steps = {}
    if torch is not None:
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
              f"mkldnn {torch.backends.mkldnn.is_available()}, CPU capability "
              f"{torch.backends.cpu.get_cpu_capability()}")
        steps = {"torch f64": TorchStep(torch, torch.float64), "torch f32": TorchStep(torch, torch.float32)}
        for name, s in steps.items():
            sides[name], cpu[name] = [], []
            s.run(max(args.reps // 4, 10))  # warm-up
    dim = None
    for _ in range(args.runs):
        r = harness_run(args.reps)
        dim = r["dim"]
        sides["harness f64"].append(r["us_median"])
        if r.get("cpu_us_per_call") is not None:
            cpu["harness f64"].append(r["cpu_us_per_call"])
        for name, s in steps.items():
            wall, c = s.run(args.reps)
            sides[name].append(wall)
            cpu[name].append(c)
    if steps:
        assert steps["torch f64"].dim == dim, f"torch model has {steps['torch f64'].dim} parameters, the harness {dim}"
    print(f"{PROBLEM}: {dim} parameters, minibatch {BATCH} x {CONFIG['ctx'] + 1} tokens; "
          f"{args.runs} runs of {args.reps} steps each, alternating")
    med = {name: median(v) for name, v in sides.items()}
    med_cpu = {name: median(v) if v else math.nan for name, v in cpu.items()}
    for name, v in sides.items():
        print(f"  {name:12s} wall median {med[name]:8.1f} µs/step (runs: {' '.join(f'{x:.0f}' for x in v)}); "
              f"CPU time median {med_cpu[name]:8.1f} µs/step")
    print("  (CPU time: the stepping thread's; the harness's from 10 ms ticks over each run)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if steps:
        r64, r32 = med["torch f64"] / med["harness f64"], med["torch f32"] / med["harness f64"]
        c64, c32 = med_cpu["torch f64"] / med_cpu["harness f64"], med_cpu["torch f32"] / med_cpu["harness f64"]
        print(f"ratio torch f64 / harness f64 = {r64:.2f}x wall, {c64:.2f}x CPU time; torch f32 / harness f64 = "
              f"{r32:.2f}x wall, {c32:.2f}x CPU time (> 1: the harness is faster)")
        verdict("transformer step, harness vs PyTorch (f64, 1 thread, wall)", f"{r64:.2f}x", ">= 1.0x", r64 >= 1.0,
                f"CPU time {c64:.2f}x; torch f32 {r32:.2f}x wall, {c32:.2f}x CPU time")


if __name__ == "__main__":
    main()
