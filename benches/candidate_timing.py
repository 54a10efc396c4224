"""Timing of candidates: time per step against Adam's, Criterion-style, with an interval.

Target (issue 5): a candidate's time per step measured with warm-up, many samples, a bootstrap
confidence interval, and candidate and baseline alternating so that drift cancels, reported as
a ratio to Adam's. One harness process (the lab's, starting the candidate and Adam as processes of their own)
gets a plan whose lines alternate `optimizer=candidate` and `optimizer=adam` on the same
problem, seed and learning rate; each line is one sample (`ns_per_step`: the mean time of
`step()` over the run, first step excluded). The first pairs are warm-up and dropped. The ratio
is median(candidate) / median(adam) with a 95 % percentile bootstrap over the pairs.

The candidate is the shipped example optimizer (the lab's prebuilt warm-up crate) unless
`--source optimizer.rs` names another, which is then built in the lab, sandboxed.

    python3 benches/candidate_timing.py [--samples 40] [--warmup 5] [--steps 300] [--problems a,b]
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import anyio
from _common import bootstrap_ratio_ci, header, median, quantile, temp_lab, verdict

from frontier_mcp.cargo import Toolchain, build_crate
from frontier_mcp.sandbox import Sandbox
from frontier_mcp.scaffold import WARMUP_NAME, Lab
from frontier_mcp.settings import load_settings

DEFAULT_PROBLEMS = "rosenbrock-50,softmax-digits,quadratic-ill-50"


def build(home: Path, source: Path) -> Path:
    settings = load_settings(home)
    lab = Lab(home)
    sandbox = Sandbox(limits=settings.limits, enabled=settings.sandbox, bwrap=settings.bwrap)
    cargo = settings.cargo_path()
    assert cargo is not None
    toolchain = Toolchain.discover(cargo)
    lab.write_crate("timed", source.read_text())
    outcome = anyio.run(lambda: build_crate(lab, "timed", toolchain, sandbox, timeout=300,
                                            native_cpu=settings.native_cpu, jobs=settings.workers))
    if not outcome.ok:
        raise SystemExit(f"the candidate did not build: {[d.rendered for d in outcome.diagnostics[:3]]}")
    return lab.binary("timed")


def samples(harness: Path, binary: Path, problem: str, *, pairs: int, steps: int, lr: float
            ) -> list[tuple[float, float]]:
    """(candidate, adam) ns per step, pair by pair; the order inside a pair alternates too. Both run in
    a process of their own behind the lab's harness (Adam as `served:adam`), so both pay the same pipe."""
    lines = []
    for i in range(pairs):
        order = ("candidate", "served:adam") if i % 2 == 0 else ("served:adam", "candidate")
        for j, name in enumerate(order):
            lines.append(f"id={2 * i + j} optimizer={name} problem={problem} lr={lr!r} seed=1 steps={steps} "
                         f"curve_points=2")
    done = subprocess.run([str(harness), "run", "--candidate", str(binary)], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=900, check=True)
    by_id = {}
    for line in done.stdout.splitlines():
        record = json.loads(line)
        if record.get("error"):
            raise SystemExit(f"{problem}: {record['error']}")
        by_id[record["id"]] = record
    out = []
    for i in range(pairs):
        a, b = by_id[2 * i], by_id[2 * i + 1]
        cand, adam = (a, b) if a["optimizer"] == "candidate" else (b, a)
        out.append((float(cand["ns_per_step"]), float(adam["ns_per_step"])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=40, help="measured pairs per problem (default 40)")
    parser.add_argument("--warmup", type=int, default=5, help="pairs dropped first (default 5)")
    parser.add_argument("--steps", type=int, default=300, help="steps per run (default 300)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--problems", default=DEFAULT_PROBLEMS)
    parser.add_argument("--source", type=Path, help="an optimizer.rs to time instead of the shipped example")
    parser.add_argument("--keep", action="store_true", help="keep the temporary lab")
    args = parser.parse_args()
    header("timing of candidates: time per step vs Adam, alternating, bootstrap CI")
    with temp_lab(keep=args.keep) as home:
        binary = build(home, args.source) if args.source else Lab(home).binary(WARMUP_NAME)
        harness = Lab(home).harness()
        assert harness is not None, "the lab has no installed harness"
        print(f"candidate: {args.source or 'the shipped example optimizer'}; {args.samples} pairs after "
              f"{args.warmup} warm-up pairs, {args.steps} steps per run, lr {args.lr}")
        print(f"{'problem':>20} {'cand ns/step':>13} {'adam ns/step':>13} {'ratio':>6} {'95% CI':>15} "
              f"{'CV cand':>8} {'CV adam':>8} {'naive':>6}")
        all_pairs = []
        for problem in args.problems.split(","):
            pairs = samples(harness, binary, problem, pairs=args.warmup + args.samples, steps=args.steps, lr=args.lr)
            kept = pairs[args.warmup:]
            all_pairs += kept
            cand = [c for c, _ in kept]
            adam = [a for _, a in kept]
            ratio = median(cand) / median(adam)
            low, high = bootstrap_ratio_ci(cand, adam)
            # What a single run per optimizer would have said: the first measured pair alone.
            naive = kept[0][0] / kept[0][1]

            def cv(xs: list[float]) -> float:
                return (quantile(xs, 0.75) - quantile(xs, 0.25)) / 1.349 / median(xs)

            print(f"{problem:>20} {median(cand):>13.1f} {median(adam):>13.1f} {ratio:>6.3f} "
                  f"[{low:.3f}, {high:.3f}] {cv(cand):>8.1%} {cv(adam):>8.1%} {naive:>6.3f}")
        cand = [c / a for c, a in all_pairs]
        print(f"per-pair ratios over all problems: median {median(cand):.3f} "
              f"(p10 {quantile(cand, 0.1):.3f}, p90 {quantile(cand, 0.9):.3f})")
        print("(CV = robust coefficient of variation, IQR/1.349/median; 'naive' = one pair's ratio)")
        verdict("candidate_timing", "ratio to Adam per problem with a 95% bootstrap interval (table above)",
                "Criterion-style measurement", None, "Adam, in the same process, alternating")


if __name__ == "__main__":
    main()
