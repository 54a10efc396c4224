"""The same candidate, the same seeds, the same lab secret, two versions of the code: are the reports
equal number for number?

A speed change of the benchmark path must leave every verdict as it was. This runs `benchmark()` (what
the `benchmark` tool runs: sandboxed harness, baseline tuning and cache, judging, the probe) on the
example candidate with this checkout and with another source tree (`--against DIR`: `DIR/src` on
PYTHONPATH, its own lab built from `DIR/rust_scaffold`, e.g. a `git archive` of an earlier commit),
each in its own lab holding the same secret (so the same problem instances), baselines tuned afresh
in each lab. It then compares the two reports and the candidate's trials field by field, exactly
(floats included), leaving out only what is a measurement of time (`seconds`, `timing`,
`time_ratio_vs_adam`, `ns_per_step`, `wall_ns`), the machine's description, the harness version, and
the tuning runs' accuracies (harness 2.4.0 computes none: tuning reads only final losses).

`--against-tuning-curve-points N` runs the other tree with its tuning runs asking for N curve points
(40 was the old value): then the tuning trials' curves and best losses may differ (they are made of
those points) and are left out of the comparison; their final losses, divergences and every number of
the report still must agree.

    python3 benches/same_verdict.py --against DIR [--suite standard] [--against-tuning-curve-points 40]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from _common import header, temp_lab, warm_lab

TIME_KEYS = {"seconds", "timing", "time_ratio_vs_adam", "ns_per_step", "wall_ns", "machine", "elapsed"}
# Versions differ when the harness changed; printed, not compared.
VERSION_KEYS = {"harness_version"}
# Tuning runs compute no accuracy since harness 2.4.0 (nothing reads a tuning run's accuracy).
TUNING_ACCURACY_KEYS = {"test_accuracy", "accuracy_curve"}
# What of a tuning run is made of its curve's points: with other curve points these may differ.
TUNING_CURVE_KEYS = {"curve", "best_loss"}

DRIVER = r'''
import json, sys, anyio
from pathlib import Path
from frontier_mcp.cargo import Toolchain
from frontier_mcp.protocol import SUITES, Harness, benchmark
from frontier_mcp.sandbox import Sandbox
from frontier_mcp.scaffold import WARMUP_NAME, Lab
from frontier_mcp.settings import load_settings
import frontier_mcp.protocol.tuning as tuning

home, suite_name, out, points = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
if points:
    tuning.TUNING_CURVE_POINTS = points

async def main():
    settings = load_settings(home, environ={"FRONTIER_WORKERS": "2"})
    lab = Lab(home)
    sandbox = Sandbox(limits=settings.limits, enabled=settings.sandbox, bwrap=settings.bwrap)
    harness = Harness(binary=lab.harness(), candidate=lab.binary(WARMUP_NAME), secret=lab.secret(), sandbox=sandbox,
                      limits=settings.limits, workers=settings.workers)
    toolchain = Toolchain.discover(settings.cargo_path())
    provenance = {"rustflags": "-C target-cpu=native" if settings.native_cpu else "", "suite": suite_name}
    report, trials = await benchmark(harness, SUITES[suite_name], cache_dir=lab.cache,
                                     toolchain_version=toolchain.version, provenance=provenance)
    out.write_text(json.dumps({"report": report.model_dump(mode="json"), "trials": trials}))

anyio.run(main)
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", type=Path, required=True, help="the other source tree")
    parser.add_argument("--suite", default="standard")
    parser.add_argument("--against-tuning-curve-points", type=int, default=0,
                        help="curve points of the other tree's tuning runs (0: its own default)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    header(f"same verdict: suite {args.suite}, this checkout against {args.against}")
    src = (args.against / "src").resolve()
    trees = {"this": ({}, 0), "against": ({"PYTHONPATH": str(src)}, args.against_tuning_curve_points)}
    outputs: dict[str, dict[str, Any]] = {}
    with temp_lab(keep=args.keep, warm=False) as first, temp_lab(keep=args.keep, warm=False) as second:
        homes = {"this": first, "against": second}
        for name, (env, _) in trees.items():
            print(f"building the lab of '{name}' ({warm_lab(homes[name], env):.0f} s)", flush=True)
        secret = secrets.token_bytes(32)  # one lab secret for both: the same problem instances
        for home in homes.values():
            (home / "secret.key").write_bytes(secret)
            (home / "secret.key").chmod(0o600)
        for name, (env, points) in trees.items():
            out = homes[name] / "report.json"
            done = subprocess.run([sys.executable, "-c", DRIVER, str(homes[name]), args.suite, str(out), str(points)],
                                  env={**os.environ, **env}, capture_output=True, text=True, timeout=3600)
            if done.returncode != 0:
                raise SystemExit(f"'{name}' failed:\n{done.stderr[-3000:]}")
            outputs[name] = json.loads(out.read_text())
            print(f"'{name}': outcome {outputs[name]['report']['outcome']}, "
                  f"{len(outputs[name]['trials'])} candidate trials", flush=True)
    a, b = outputs["this"], outputs["against"]
    differences: list[str] = []
    compared = [0]
    compare(a["report"], b["report"], "report", differences, compared, set())
    if len(a["trials"]) != len(b["trials"]):
        differences.append(f"trials: {len(a['trials'])} vs {len(b['trials'])}")
    for i, (x, y) in enumerate(zip(a["trials"], b["trials"], strict=False)):
        skip = set(TUNING_ACCURACY_KEYS) if x.get("phase") == "tune" else set()
        if args.against_tuning_curve_points and x.get("phase") == "tune":
            skip |= TUNING_CURVE_KEYS
            if x.get("diverged") and y.get("diverged"):
                # A divergence that a full loss at one of many points shows one step before the next
                # step's own loss does: the same step, one gradient more counted.
                skip |= {"grad_evals", "oracle_evals"}
        compare(x, y, f"trials[{i}]", differences, compared, skip)
    print("harness versions: " + " vs ".join(str(o["report"].get("harness_version")) for o in (a, b)))
    print(f"{compared[0]:,} numbers and strings compared (times and the machine left out)")
    for line in differences[:40]:
        print(f"  DIFFERENT {line}")
    print(f"RESULT same_verdict: {'IDENTICAL' if not differences else f'{len(differences)} DIFFERENCES'}")
    sys.exit(1 if differences else 0)


def compare(x: Any, y: Any, where: str, differences: list[str], compared: list[int], skip: set[str]) -> None:
    if isinstance(x, dict) and isinstance(y, dict):
        for key in sorted(set(x) | set(y)):
            if key in TIME_KEYS or key in VERSION_KEYS or key in skip:
                continue
            if key not in x or key not in y:
                differences.append(f"{where}.{key}: only in {'this' if key in x else 'against'}")
                continue
            compare(x[key], y[key], f"{where}.{key}", differences, compared, skip)
    elif isinstance(x, list) and isinstance(y, list):
        if len(x) != len(y):
            differences.append(f"{where}: {len(x)} vs {len(y)} items")
        for i, (p, q) in enumerate(zip(x, y, strict=False)):
            compare(p, q, f"{where}[{i}]", differences, compared, skip)
    else:
        compared[0] += 1
        same = x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        if not same:
            differences.append(f"{where}: {x!r} vs {y!r}")


if __name__ == "__main__":
    main()
