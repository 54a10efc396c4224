#!/usr/bin/env python3
"""Write the PyTorch fixture of the neural-network workloads (crates/problems/tests/nn_fixtures.txt).

The same models as `crates/problems/src/models/{transformer,grokking,cnn}.rs`, built in PyTorch
(float64, one thread, deterministic algorithms); for each case the script draws parameters and a
fixed batch, and records the loss and every gradient. `crates/problems/tests/nn_fixtures.rs`
evaluates the Rust models at the same parameters on the same batch and matches them to ~1e-10
relative. A dev tool: torch is not a CI dependency, the fixture is committed.

Usage (from the repository root):
  /work/torchvenv/bin/python rust_scaffold/data/make_nn_fixtures.py [OUT]

Fixture format (one case after another; whitespace-separated; long lines):
  case <name> model=<kind>        the problem the case stands for and the Rust model to evaluate
  config k=v ...                  the model's sizes and settings (integers or floats)
  ints <name> <n> v1 ... vn       fixed integer data (token sequences, (a, b, c) rows, labels...)
  param <name> <shape> v1 ...     a parameter tensor, in the Rust model's order; shape `17x16`
  loss <value>                    the loss at these parameters on this batch (repr, float64)
  grad <name> <shape> v1 ...      its gradient, one line per parameter, same order
  end
Parameters are rounded to 5 decimals so that they parse to the same float64 in Python and Rust.

To add a model: write `case_<model>()` returning the lines of its cases (see `emit`), and a
torch module whose `ordered()` lists its parameters in the Rust order; add it to CASES; add
its evaluation to the Rust test's `evaluate`.
"""

from __future__ import annotations

import math
import pathlib
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parents[1] / "crates" / "problems" / "tests" / "nn_fixtures.txt"


# --------------------------------------------------------------------------------------------
# The models (also imported by benches/nn_step.py and benches/neural_sanity_torch.py)


class Block(nn.Module):
    """Pre-norm block: x += Wo attn(LN1(x)); x += W2 gelu(W1 LN2(x) + b1) + b2."""

    def __init__(self, d: int, heads: int, mlp: int):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, mlp)
        self.fc2 = nn.Linear(mlp, d)

    def ordered(self) -> list[tuple[str, nn.Parameter]]:
        return [("ln1.w", self.ln1.weight), ("ln1.b", self.ln1.bias), ("wq", self.wq.weight),
                ("wk", self.wk.weight), ("wv", self.wv.weight), ("wo", self.wo.weight),
                ("ln2.w", self.ln2.weight), ("ln2.b", self.ln2.bias), ("w1", self.fc1.weight),
                ("b1", self.fc1.bias), ("w2", self.fc2.weight), ("b2", self.fc2.bias)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, t, d = x.shape
        a = self.ln1(x)
        split = lambda z: z.view(s, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        y = F.scaled_dot_product_attention(split(self.wq(a)), split(self.wk(a)), split(self.wv(a)), is_causal=True)
        x = x + self.wo(y.transpose(1, 2).reshape(s, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


class Transformer(nn.Module):
    """transformer.rs: token + position embeddings, pre-norm blocks, final LayerNorm, untied head
    without bias; mean next-token cross-entropy over every position."""

    def __init__(self, vocab: int, ctx: int, d: int, heads: int, layers: int, mlp: int | None = None):
        super().__init__()
        mlp = mlp or 4 * d
        self.tok = nn.Parameter(torch.randn(vocab, d))
        self.pos = nn.Parameter(torch.randn(ctx, d))
        self.blocks = nn.ModuleList(Block(d, heads, mlp) for _ in range(layers))
        self.lnf = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        for b in self.blocks:  # the Rust init: linear biases 0 (PyTorch's default is uniform)
            nn.init.zeros_(b.fc1.bias)
            nn.init.zeros_(b.fc2.bias)

    def ordered(self) -> list[tuple[str, nn.Parameter]]:
        out = [("tok", self.tok), ("pos", self.pos)]
        for i, b in enumerate(self.blocks):
            out += [(f"l{i}.{n}", p) for n, p in b.ordered()]
        return [*out, ("lnf.w", self.lnf.weight), ("lnf.b", self.lnf.bias), ("head", self.head.weight)]

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self.tok[inputs] + self.pos[: inputs.shape[1]]
        for b in self.blocks:
            x = b(x)
        return self.head(self.lnf(x))

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Mean loss over the sequences `seqs [S, ctx + 1]`."""
        z = self.logits(seqs[:, :-1])
        return F.cross_entropy(z.reshape(-1, z.shape[-1]), seqs[:, 1:].reshape(-1))


class Grokking(nn.Module):
    """grokking.rs: x = [E[a], E[b]], GELU (tanh) hidden layer, linear head; mean cross-entropy
    plus wd / 2 * ||w||^2 over E, W1 and W2 (not the biases)."""

    def __init__(self, p: int, d: int, hidden: int, wd: float, emb_std: float = 1.0):
        super().__init__()
        self.wd = wd
        self.emb = nn.Parameter(emb_std * torch.randn(p, d))
        self.fc1 = nn.Linear(2 * d, hidden)
        self.fc2 = nn.Linear(hidden, p)
        nn.init.zeros_(self.fc1.bias)
        nn.init.zeros_(self.fc2.bias)

    def ordered(self) -> list[tuple[str, nn.Parameter]]:
        return [("E", self.emb), ("W1", self.fc1.weight), ("b1", self.fc1.bias), ("W2", self.fc2.weight),
                ("b2", self.fc2.bias)]

    def logits(self, ab: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.emb[ab[:, 0]], self.emb[ab[:, 1]]], dim=1)
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """Loss on the (a, b, c) rows `rows [n, 3]`."""
        loss = F.cross_entropy(self.logits(rows[:, :2]), rows[:, 2])
        if self.wd:
            loss = loss + 0.5 * self.wd * sum((w * w).sum() for w in (self.emb, self.fc1.weight, self.fc2.weight))
        return loss


DIGITS = pathlib.Path(__file__).resolve().parents[1] / "crates" / "problems" / "data" / "digits_train.csv"


def digits_train() -> tuple[torch.Tensor, torch.Tensor]:
    """The digits training split as `data.rs` reads it: pixels / 16, standardized per pixel with
    the split's mean and population standard deviation (a constant pixel becomes 0); images
    `[n, 1, 8, 8]` and labels `[n]`."""
    rows = [list(map(int, line.split(","))) for line in DIGITS.read_text().splitlines() if line.strip()]
    x = torch.tensor([r[:-1] for r in rows], dtype=torch.float64) / 16.0
    y = torch.tensor([r[-1] for r in rows])
    mean = x.mean(dim=0)
    sd = x.std(dim=0, unbiased=False)
    sd[sd == 0] = 1.0
    return ((x - mean) / sd).reshape(-1, 1, 8, 8), y


class Cnn(nn.Module):
    """cnn.rs: Conv2d(1, C, 3, padding=1), ReLU, AvgPool2d(2), flatten, Linear(16 C, 10); mean
    cross-entropy on rows of the digits training split."""

    def __init__(self, channels: int, images: torch.Tensor, labels: torch.Tensor):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, 3, padding=1)
        self.head = nn.Linear(16 * channels, 10)
        self.images, self.labels = images, labels

    def ordered(self) -> list[tuple[str, nn.Parameter]]:
        return [("conv.w", self.conv.weight), ("conv.b", self.conv.bias), ("head.w", self.head.weight),
                ("head.b", self.head.bias)]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.avg_pool2d(F.relu(self.conv(x)), 2).flatten(1))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """Mean loss on the training images `rows` (indices, repeats count)."""
        return F.cross_entropy(self.logits(self.images[rows]), self.labels[rows])


# --------------------------------------------------------------------------------------------
# Fixture writing


def fmt_shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape))


def set_params(model: nn.Module, gen: torch.Generator) -> None:
    """Parameters near the model's init scale, moved off it (non-zero biases, LayerNorm gains
    away from 1), rounded to 5 decimals."""
    with torch.no_grad():
        for name, p in model.ordered():
            if p.dim() >= 2:
                fan_in = math.prod(p.shape[1:])  # a conv kernel [out, in, kh, kw]: in * kh * kw
                emb = name in ("tok", "pos", "E")
                scale = 1.0 if emb else 1.0 / math.sqrt(fan_in)
                v = scale * (2 * torch.rand(p.shape, generator=gen, dtype=torch.float64) - 1) * (1.7 if emb else 1.0)
            elif name.endswith(".w"):  # LayerNorm gain
                v = 1.0 + 0.2 * torch.randn(p.shape, generator=gen, dtype=torch.float64)
            else:  # biases
                v = 0.1 * torch.randn(p.shape, generator=gen, dtype=torch.float64)
            p.copy_(torch.round(v * 1e5) / 1e5)


def emit(name: str, kind: str, config: dict, ints: dict[str, torch.Tensor], model: nn.Module,
         batch: torch.Tensor) -> list[str]:
    """One case: evaluates `model(batch)` and its gradients and returns the fixture lines."""
    model.zero_grad(set_to_none=True)
    loss = model(batch)
    loss.backward()
    lines = [f"case {name} model={kind}", "config " + " ".join(f"{k}={v!r}" for k, v in config.items())]
    for k, v in ints.items():
        flat = v.reshape(-1).tolist()
        lines.append(f"ints {k} {len(flat)} " + " ".join(map(str, flat)))
    for n, p in model.ordered():
        values = p.detach().reshape(-1).tolist()
        lines.append(f"param {n} {fmt_shape(p)} " + " ".join(repr(round(x, 5)) for x in values))
    lines.append(f"loss {loss.item()!r}")
    for n, p in model.ordered():
        assert p.grad is not None, n
        lines.append(f"grad {n} {fmt_shape(p)} " + " ".join(map(repr, p.grad.reshape(-1).tolist())))
    return [*lines, "end"]


def transformer_case(name: str, seed: int, vocab: int, ctx: int, d: int, heads: int, layers: int,
                     seqs: int) -> list[str]:
    gen = torch.Generator().manual_seed(seed)
    model = Transformer(vocab, ctx, d, heads, layers).double()
    set_params(model, gen)
    tokens = torch.randint(0, vocab, (seqs, ctx + 1), generator=gen)
    tokens[-1] = tokens[0]  # a repeated sequence
    config = dict(vocab=vocab, ctx=ctx, d=d, heads=heads, layers=layers, mlp=4 * d)
    return emit(name, "transformer", config, {"tokens": tokens}, model, tokens)


def case_transformer() -> list[str]:
    """The registered sizes (registry.rs); 18 sequences, so the Rust pass runs two chunks (16 + 2)."""
    return (transformer_case("transformer-grammar", 1401, vocab=17, ctx=16, d=16, heads=2, layers=2, seqs=18)
            + transformer_case("transformer-grammar-d24", 1402, vocab=17, ctx=20, d=24, heads=2, layers=1, seqs=5))


def grokking_case(name: str, seed: int, p: int, op: str, d: int, hidden: int, wd: float, rows: int) -> list[str]:
    gen = torch.Generator().manual_seed(seed)
    model = Grokking(p, d, hidden, wd).double()
    set_params(model, gen)
    ab = torch.randint(0, p, (rows, 2), generator=gen)
    ab[-3:] = ab[:3]  # repeats
    c = (ab[:, 0] + ab[:, 1]) % p if op == "add" else (ab[:, 0] - ab[:, 1]) % p
    batch = torch.cat([ab, c[:, None]], dim=1)
    config = dict(p=p, d=d, hidden=hidden, wd=wd)
    return emit(name, "grokking", config, {"rows": batch}, model, batch)


def case_grokking() -> list[str]:
    """The registered sizes (registry.rs) on 70 (a, b, c) rows with repeats, so the Rust pass runs
    two chunks (64 + 6); p = 31 and 37 pad the logits to 32 and 40 columns."""
    return (grokking_case("grokking-mod-add-31", 1411, p=31, op="add", d=16, hidden=32, wd=1e-3, rows=70)
            + grokking_case("grokking-mod-sub-37", 1412, p=37, op="sub", d=16, hidden=32, wd=1e-3, rows=70))


def cnn_case(name: str, seed: int, channels: int, rows: int) -> list[str]:
    gen = torch.Generator().manual_seed(seed)
    images, labels = digits_train()
    model = Cnn(channels, images, labels).double()
    set_params(model, gen)
    batch = torch.randint(0, len(labels), (rows,), generator=gen)
    batch[-5:] = batch[:5]  # repeats
    return emit(name, "cnn", dict(channels=channels), {"rows": batch}, model, batch)


def case_cnn() -> list[str]:
    """The registered sizes (registry.rs) on the registered data (the digits training split, read
    and standardized as data.rs does): 70 training images with repeats, so the Rust pass runs two
    chunks (64 + 6)."""
    return cnn_case("cnn-digits", 1421, channels=8, rows=70) + cnn_case("cnn-digits-c4", 1422, channels=4, rows=70)


CASES = [case_transformer, case_grokking, case_cnn]


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float64)
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    lines = ["# PyTorch fixture of the neural-network workloads: loss and gradients at fixed parameters on a",
             f"# fixed batch. Generated by rust_scaffold/data/make_nn_fixtures.py (torch {torch.__version__},",
             "# float64, 1 thread); do not edit. Format: see the script's docstring."]
    for case in CASES:
        lines += case()
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
