"""Sanity in PyTorch: the transformer trained with AdamW and with Muon, the same model, data and settings
as the harness (issue 14: "the AdamW-vs-Muon comparison agrees in direction with the same model
trained in PyTorch with the same settings").

The model is `rust_scaffold/data/make_nn_fixtures.py`'s Transformer (the one the Rust model matches
to 1e-10 in `crates/problems/tests/nn_fixtures.rs`), in float64 on one thread, at PyTorch's default
init (the distributions of the Rust init: embeddings N(0, 1), linear weights U(+-1/sqrt(fan_in)),
zero biases, LayerNorm 1/0). The corpus is the registered problem's, printed by
`crates/problems/examples/transformer_corpus.rs` (which checks it against the registry). Each step
draws a minibatch of the problem's size uniformly with replacement from the training sequences, as
the harness does; the learning rate follows the harness's schedule (`--warmup`, `--decay`, see
crates/bench/src/plan.rs). Optimizers, at the harness baselines' defaults unless overridden:

- adamw: torch.optim.AdamW on every tensor (betas 0.9/0.999, eps 1e-8, weight_decay 0.01);
- muon:  torch.optim.Muon on the hidden matrices (Wq, Wk, Wv, Wo, W1, W2; momentum 0.95, Nesterov,
  weight_decay 0.1, 5 Newton-Schulz steps, adjust_lr_fn original) and torch.optim.AdamW at
  adamw_lr_ratio x lr (0.1) on the embeddings, the head, the LayerNorms and the biases (weight_decay
  0.01). torch's Muon runs Newton-Schulz in bfloat16; the harness's `muon` does so with ns_bf16=1
  (its default is float64).

Printed per optimizer and learning rate: the median over seeds of the final training loss (the mean
next-token loss over every training sequence, the harness's `final_loss`) and of the held-out
next-token accuracy (its `test_accuracy`), with the per-seed values; then which optimizer is ahead.

    /work/torchvenv/bin/python benches/neural_sanity_torch.py --adamw-lr 3e-3 --muon-lr 0.02 \\
        [--problem transformer-grammar] [--steps 400] [--seeds 0 1 2 3 4] [--warmup 0] [--decay constant] \\
        [--adamw-opt weight_decay=0.1] [--muon-opt adamw_lr_ratio=0.3 momentum=0.9] [--json out.json]

Several rates per optimizer (`--adamw-lr 1e-3 3e-3 1e-2`) run each; an optimizer with no rate is
skipped. Needs torch (a dev tool, not a CI dependency) and cargo.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCAFFOLD = ROOT / "rust_scaffold"

ADAMW_DEFAULTS = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 1e-2}
MUON_DEFAULTS = {"momentum": 0.95, "nesterov": 1.0, "weight_decay": 0.1, "eps": 1e-7, "ns_steps": 5.0,
                 "adjust_lr_fn": 0.0, "adamw_lr_ratio": 0.1, "adamw_beta1": 0.9, "adamw_beta2": 0.999,
                 "adamw_eps": 1e-8, "adamw_weight_decay": 1e-2}
ADJUST = {0: None, 1: "match_rms_adamw", 2: "spectral_unclamped"}
HIDDEN = ("wq", "wk", "wv", "wo", "w1", "w2")  # the tensors the harness marks ParamKind::Matrix


def parse_opts(items: list[str], defaults: dict[str, float], who: str) -> dict[str, float]:
    out = dict(defaults)
    for item in items:
        key, _, value = item.partition("=")
        if key not in defaults:
            sys.exit(f"{who}: unknown option {key!r} (known: {', '.join(defaults)})")
        out[key] = float(value)
    return out


def corpus(problem: str) -> dict:
    """The registered problem's sizes and token sequences, from the Rust example."""
    cmd = ["cargo", "run", "--release", "--offline", "-q", "-p", "frontier-problems", "--example", "transformer_corpus",
           "--", problem]
    out = subprocess.run(cmd, cwd=SCAFFOLD, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def schedule(warmup: float, decay: str, step: int, total: int) -> float:
    """crates/bench/src/plan.rs `schedule` (step is 1-based)."""
    s = min(max(step, 1), total) - 1
    w = min(round(warmup * total), total)
    if s < w:
        return (s + 1) / w
    span = total - w
    q = 1.0 if span <= 1 else (s - w) / (span - 1)
    return {"constant": 1.0, "linear": 1.0 - q, "cosine": 0.5 * (1.0 + math.cos(math.pi * q))}[decay]


def make_optimizer(torch, model, name: str, lr: float, o: dict[str, float]):
    """A list of (optimizer, its base rate) pairs."""
    if name == "adamw":
        return [(torch.optim.AdamW(model.parameters(), lr=lr, betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                                   weight_decay=o["weight_decay"]), lr)]
    hidden, rest = [], []
    for n, p in model.ordered():
        (hidden if n.split(".")[-1] in HIDDEN else rest).append(p)
    assert len(hidden) == 6 * len(model.blocks) and all(p.dim() == 2 for p in hidden)
    muon = torch.optim.Muon(hidden, lr=lr, weight_decay=o["weight_decay"], momentum=o["momentum"],
                            nesterov=bool(o["nesterov"]), eps=o["eps"], ns_steps=int(o["ns_steps"]),
                            adjust_lr_fn=ADJUST[int(o["adjust_lr_fn"])])
    alr = o["adamw_lr_ratio"] * lr
    adamw = torch.optim.AdamW(rest, lr=alr, betas=(o["adamw_beta1"], o["adamw_beta2"]), eps=o["adamw_eps"],
                              weight_decay=o["adamw_weight_decay"])
    return [(muon, lr), (adamw, alr)]


def train(torch, Transformer, data: dict, name: str, lr: float, opts: dict[str, float], seed: int,
          steps: int, warmup: float, decay: str) -> dict:
    torch.manual_seed(seed)
    len_ = data["ctx"] + 1
    train_seqs = torch.tensor(data["train"]).view(-1, len_)
    test_seqs = torch.tensor(data["test"]).view(-1, len_)
    model = Transformer(data["vocab"], data["ctx"], data["d"], data["heads"], data["layers"], data["mlp"]).double()
    opts_ = make_optimizer(torch, model, name, lr, opts)
    gen = torch.Generator().manual_seed(10_000 + seed)
    diverged = False
    for step in range(1, steps + 1):
        mult = schedule(warmup, decay, step, steps)
        for opt, base in opts_:
            for g in opt.param_groups:
                g["lr"] = base * mult
        idx = torch.randint(0, train_seqs.shape[0], (data["batch"],), generator=gen)
        model.zero_grad(set_to_none=True)
        loss = model(train_seqs[idx])
        if not math.isfinite(loss.item()):
            diverged = True
            break
        loss.backward()
        for opt, _ in opts_:
            opt.step()
    with torch.no_grad():
        final = sum(model(chunk).item() * chunk.shape[0] for chunk in train_seqs.split(256)) / train_seqs.shape[0]
        hits = 0
        for chunk in test_seqs.split(256):
            hits += (model.logits(chunk[:, :-1]).argmax(-1) == chunk[:, 1:]).sum().item()
        acc = hits / (test_seqs.shape[0] * data["ctx"])
    if diverged or not math.isfinite(final):
        return {"seed": seed, "diverged": True, "final_loss": None, "test_accuracy": None}
    return {"seed": seed, "diverged": False, "final_loss": final, "test_accuracy": acc}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", default="transformer-grammar")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--adamw-lr", type=float, nargs="*", default=[])
    ap.add_argument("--muon-lr", type=float, nargs="*", default=[])
    ap.add_argument("--adamw-opt", nargs="*", default=[], help="key=value, the harness's adamw option names")
    ap.add_argument("--muon-opt", nargs="*", default=[], help="key=value, the harness's muon option names")
    ap.add_argument("--warmup", type=float, default=0.0, help="warm-up fraction of the steps (harness's warmup=)")
    ap.add_argument("--decay", choices=("constant", "cosine", "linear"), default="constant")
    ap.add_argument("--json", type=Path, help="also write every run here")
    args = ap.parse_args()
    if not args.adamw_lr and not args.muon_lr:
        ap.error("give --adamw-lr and/or --muon-lr")
    try:
        import torch
    except ImportError:
        sys.exit("torch is not installed here; run /work/torchvenv/bin/python benches/neural_sanity_torch.py ...")
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    sys.path.insert(0, str(SCAFFOLD / "data"))
    from make_nn_fixtures import Transformer

    data = corpus(args.problem)
    n_train = len(data["train"]) // (data["ctx"] + 1)
    print(f"{args.problem}: {data['dim']} parameters, {n_train} training / {len(data['test']) // (data['ctx'] + 1)} "
          f"held-out sequences of {data['ctx']} + 1 tokens, minibatch {data['batch']}; {args.steps} steps, "
          f"warmup {args.warmup}, decay {args.decay}; seeds {args.seeds}; torch {torch.__version__} float64, 1 thread; "
          f"load average {os.getloadavg()[0]:.1f}")
    configs = [("adamw", lr, parse_opts(args.adamw_opt, ADAMW_DEFAULTS, "adamw")) for lr in args.adamw_lr]
    configs += [("muon", lr, parse_opts(args.muon_opt, MUON_DEFAULTS, "muon")) for lr in args.muon_lr]
    rows = []
    for name, lr, opts in configs:
        t0 = time.perf_counter()
        runs = [train(torch, Transformer, data, name, lr, opts, s, args.steps, args.warmup, args.decay)
                for s in args.seeds]
        ok = [r for r in runs if not r["diverged"]]
        row = {"optimizer": name, "lr": lr, "opts": {k: v for k, v in opts.items()
                                                    if v != (ADAMW_DEFAULTS if name == "adamw" else MUON_DEFAULTS)[k]},
               "runs": runs, "diverged": len(runs) - len(ok),
               "median_final_loss": statistics.median(r["final_loss"] for r in ok) if ok else None,
               "median_test_accuracy": statistics.median(r["test_accuracy"] for r in ok) if ok else None}
        rows.append(row)
        fl = " ".join("div" if r["diverged"] else f"{r['final_loss']:.4f}" for r in runs)
        ta = " ".join("div" if r["diverged"] else f"{r['test_accuracy']:.4f}" for r in runs)
        med = (f"median final loss {row['median_final_loss']:.4f}, held-out accuracy {row['median_test_accuracy']:.4f}"
               if ok else "every seed diverged")
        extra = f" {row['opts']}" if row["opts"] else ""
        print(f"{name:5s} lr={lr:g}{extra}: {med}  ({time.perf_counter() - t0:.0f} s)\n"
              f"      final loss per seed: {fl}\n      held-out accuracy per seed: {ta}")
    best = {}
    for row in rows:
        if row["median_final_loss"] is not None and (row["optimizer"] not in best or row["median_final_loss"]
                                                     < best[row["optimizer"]]["median_final_loss"]):
            best[row["optimizer"]] = row
    if len(best) == 2:
        a, m = best["adamw"], best["muon"]
        lead = "muon" if m["median_final_loss"] < a["median_final_loss"] else "adamw"
        print(f"best by median final loss: adamw lr={a['lr']:g} {a['median_final_loss']:.4f} "
              f"(acc {a['median_test_accuracy']:.4f}) vs muon lr={m['lr']:g} {m['median_final_loss']:.4f} "
              f"(acc {m['median_test_accuracy']:.4f}): {lead} is ahead on loss, "
              f"{'muon' if m['median_test_accuracy'] > a['median_test_accuracy'] else 'adamw'} on held-out accuracy; "
              f"loss ratio muon/adamw {m['median_final_loss'] / a['median_final_loss']:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"problem": args.problem, "steps": args.steps, "seeds": args.seeds,
                                         "warmup": args.warmup, "decay": args.decay, "rows": rows}, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
