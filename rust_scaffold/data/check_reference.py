#!/usr/bin/env python3
"""Check the Rust baselines against PyTorch reference trajectories, through `replay`.

For every run of the reference file, feed the recorded gradients to the harness binary's
`replay` subcommand and compare the parameters it prints after each step with PyTorch's:
a coordinate passes when |rust - torch| <= 1e-12 + 1e-10 * |torch|.

Usage (from rust_scaffold/, after `cargo build --release --offline`):
  python3 data/check_reference.py [--ref PATH] [--bin PATH] [--write-fixture PATH] [--json]

  --ref            reference JSON (default: ../../shared/reference/torch_trajectories.json,
                   i.e. /work/shared/reference/ next to the checkout)
  --bin            harness binary with a `replay` subcommand (default: target/release/frontier-bench)
  --write-fixture  also write the runs as a text fixture for the Rust test
                   (crates/baselines/tests/torch_reference.txt)
  --json           print one JSON object per run instead of a table

Exit status 0 when every run passes. Python standard library only.
"""
import argparse
import json
import math
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
SCAFFOLD = HERE.parent
ABS_TOL, REL_TOL = 1e-12, 1e-10

# PyTorch class -> harness optimizer name
NAMES = {
    "torch.optim.SGD": "sgd",
    "torch.optim.Adam": "adam",
    "torch.optim.AdamW": "adamw",
    "torch.optim.RMSprop": "rmsprop",
    "torch.optim.Adagrad": "adagrad",
    "torch.optim.Adamax": "adamax",
    "torch.optim.NAdam": "nadam",
    "torch.optim.RAdam": "radam",
    "torch.optim.Adadelta": "adadelta",
    "torch.optim.Adafactor": "adafactor",
}


def default_ref():
    for cand in (
        SCAFFOLD.parent.parent / "shared" / "reference" / "torch_trajectories.json",
        pathlib.Path("/work/shared/reference/torch_trajectories.json"),
    ):
        if cand.exists():
            return cand
    return None


def optimizer_name(run):
    opt = run["optimizer"]
    if opt in NAMES:
        return NAMES[opt]
    if opt.lower().startswith("lion"):
        return "lion"
    raise ValueError(f"no harness optimizer for {opt!r}")


def kwargs_to_opts(kwargs):
    """PyTorch keyword arguments -> harness `opt.<key>=<float>` pairs."""
    opts = []
    for k, v in kwargs.items():
        if k == "betas":
            opts += [("beta1", float(v[0])), ("beta2", float(v[1]))]
        elif k == "eps" and isinstance(v, (list, tuple)):  # Adafactor eps=(eps1, eps2)
            if v[0] is not None:
                opts.append(("eps1", float(v[0])))
            opts.append(("eps2", float(v[1])))
        elif isinstance(v, bool):
            opts.append((k, 1.0 if v else 0.0))
        elif k in ("foreach", "fused", "capturable", "differentiable", "maximize") and not v:
            continue
        else:
            opts.append((k, float(v)))
    return opts


def flat(params_dict, names):
    out = []
    for n in names:
        out += [float(x) for x in params_dict[n]]
    return out


def fmt(xs):
    return " ".join(repr(float(x)) for x in xs)


def replay_input(run, problem):
    names = list(problem["shapes"].keys())
    shapes = ["x".join(str(d) for d in problem["shapes"][n]) or "1" for n in names]
    head = f"optimizer={optimizer_name(run)} lr={run['lr']!r}"
    for k, v in kwargs_to_opts(run["kwargs"]):
        head += f" opt.{k}={v!r}"
    lines = [head, "shapes " + " ".join(shapes), "init " + fmt(flat(run["params"][0], names))]
    grads = [flat(g, names) for g in run["grad"]]
    expect = [flat(p, names) for p in run["params"][1:]]
    return lines, grads, expect


def compare(got, want):
    worst_ratio, worst_abs = 0.0, 0.0
    for a, b in zip(got, want):
        d = abs(a - b) if not (math.isnan(a) and math.isnan(b)) else 0.0
        if math.isnan(d):
            return math.inf, math.inf
        worst_abs = max(worst_abs, d)
        worst_ratio = max(worst_ratio, d / (ABS_TOL + REL_TOL * abs(b)))
    return worst_ratio, worst_abs


def check_run(binary, run, problem):
    lines, grads, expect = replay_input(run, problem)
    text = "\n".join(lines + ["grad " + fmt(g) for g in grads] + ["end"]) + "\n"
    proc = subprocess.run([str(binary), "replay"], input=text, capture_output=True, text=True, timeout=60)
    out = [l for l in proc.stdout.splitlines() if l.strip()]
    if proc.returncode != 0 or len(out) != len(expect):
        return {"ok": False, "error": (proc.stdout + proc.stderr).strip()[-500:] or f"exit {proc.returncode}"}
    worst_ratio, worst_abs, worst_step = 0.0, 0.0, 0
    for t, (line, want) in enumerate(zip(out, expect), start=1):
        got = [float(x) for x in line.split()[1:]]
        if len(got) != len(want):
            return {"ok": False, "error": f"step {t}: {len(got)} values, expected {len(want)}"}
        r, a = compare(got, want)
        if r > worst_ratio:
            worst_ratio, worst_step = r, t
        worst_abs = max(worst_abs, a)
    return {"ok": worst_ratio <= 1.0, "worst_ratio": worst_ratio, "worst_abs": worst_abs, "worst_step": worst_step}


def write_fixture(path, ref):
    meta = ref.get("meta", {})
    with open(path, "w", newline="\n") as f:
        f.write("# PyTorch reference trajectories for the frontier-baselines test.\n")
        f.write(f"# Generated by data/check_reference.py from torch_trajectories.json (torch {meta.get('torch_version')},"
                f" {meta.get('dtype')}); do not edit.\n")
        f.write("# run <problem>/<name>, then the replay header, shapes, init; each grad line is followed by\n")
        f.write("# the expected parameters after that step; end.\n")
        for run in ref["runs"]:
            problem = ref["problems"][run["problem"]]
            lines, grads, expect = replay_input(run, problem)
            f.write(f"run {run['problem']}/{run['name']}\n")
            for l in lines:
                f.write(l + "\n")
            for g, e in zip(grads, expect):
                f.write("grad " + fmt(g) + "\n")
                f.write("expect " + fmt(e) + "\n")
            f.write("end\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", type=pathlib.Path, default=default_ref())
    ap.add_argument("--bin", type=pathlib.Path, default=SCAFFOLD / "target" / "release" / "frontier-bench")
    ap.add_argument("--write-fixture", type=pathlib.Path)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.ref is None or not args.ref.exists():
        sys.exit("reference file not found; pass --ref")
    ref = json.loads(args.ref.read_text())
    if args.write_fixture:
        write_fixture(args.write_fixture, ref)
        print(f"wrote {args.write_fixture}", file=sys.stderr)
    if not args.bin.exists():
        sys.exit(f"binary {args.bin} not found; run `cargo build --release --offline` first")
    failed = 0
    for run in ref["runs"]:
        problem = ref["problems"][run["problem"]]
        res = check_run(args.bin, run, problem)
        res["run"] = f"{run['problem']}/{run['name']}"
        failed += not res["ok"]
        if args.json:
            print(json.dumps(res))
        elif "error" in res:
            print(f"FAIL {res['run']:<42} {res['error']}")
        else:
            print(f"{'pass' if res['ok'] else 'FAIL'} {res['run']:<42} worst |diff| {res['worst_abs']:.3e}"
                  f"  worst diff/tol {res['worst_ratio']:.3e} (step {res['worst_step']})")
    total = len(ref["runs"])
    print(f"{total - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
