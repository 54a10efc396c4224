"""The suites: which problems, step budgets, learning-rate grid and seeds a benchmark runs, and the baselines."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

CANDIDATE = "candidate"
BASELINES = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad", "lion")
# What a reviewer in 2026 compares a neural-network optimizer with first: tuned AdamW and its
# variants, Muon (with AdamW for embeddings, head and vectors), Schedule-Free, SOAP, AdEMAMix, Prodigy.
NEURAL_BASELINES = ("sgd", "momentum", "adam", "adamw", "nadamw", "lion", "muon", "schedulefree_adamw", "soap",
                    "ademamix", "prodigy")


@dataclass(frozen=True)
class ProblemSpec:
    name: str
    steps: int
    # Held-out accuracy whose first crossing is reported as "steps to accuracy" (grokking: *when*
    # generalisation happens is what an optimizer changes); None for problems judged on loss alone.
    accuracy_target: float | None = None


@dataclass(frozen=True)
class Suite:
    name: str
    problems: tuple[ProblemSpec, ...]
    lr_grid: tuple[float, ...]
    tuning_seeds: tuple[int, ...]
    eval_seeds: tuple[int, ...]
    baselines: tuple[str, ...] = BASELINES
    # Tuning (the same for every optimizer, docs/benchmark.md "Tuning parity"): TPE trials after the
    # grid, and how far the grid may extend itself (decades each way, points per decade).
    tuner_trials: int = 8
    grid_extension_decades: float = 4.0
    grid_extension_per_decade: int = 2
    curve_points: int = 40
    alpha: float = 0.05
    hidden: bool = False  # a hidden suite's problems are never shown to the model
    # The hidden suite consulted after a win here; a suite with one is a suite a claim can rest on.
    holdout: str | None = None
    purpose: str = ""  # one line for the tool descriptions

    def describe(self) -> dict[str, Any]:
        return asdict(self)

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.describe(), sort_keys=True).encode()).hexdigest()[:16]


def log_grid(low_exp: float, high_exp: float, per_decade: int) -> tuple[float, ...]:
    count = round((high_exp - low_exp) * per_decade) + 1
    return tuple(float(f"{10 ** (low_exp + i / per_decade):.6g}") for i in range(count))


# Eight evaluation seeds: the smallest exact two-sided Wilcoxon p-value is then 2/256, which
# survives a Holm correction over the suite's problems; five seeds could never reach p < 0.05.
SUITES: dict[str, Suite] = {
    "quick": Suite(
        name="quick",
        problems=(ProblemSpec("rosenbrock-10", 500), ProblemSpec("quadratic-ill-50", 300),
                  ProblemSpec("logreg-breast-cancer", 300)),
        lr_grid=log_grid(-4, 0, 2),
        tuning_seeds=(0, 1),
        tuner_trials=6,
        eval_seeds=tuple(range(100, 108)),
        purpose="to iterate",
    ),
    "standard": Suite(
        name="standard",
        problems=(ProblemSpec("rosenbrock-10", 1000), ProblemSpec("rosenbrock-50", 1000),
                  ProblemSpec("rastrigin-10", 500), ProblemSpec("ackley-10", 500),
                  ProblemSpec("quadratic-ill-50", 500), ProblemSpec("quadratic-ill-50-k1e5", 500),
                  ProblemSpec("noisy-quadratic-50", 500), ProblemSpec("logreg-breast-cancer", 500),
                  ProblemSpec("softmax-digits", 500), ProblemSpec("mlp-mnist1d", 500)),
        lr_grid=log_grid(-4, 0.5, 2),
        tuning_seeds=(0, 1, 2),
        eval_seeds=tuple(range(200, 212)),
        holdout="holdout",
        purpose="to support a claim of a win on test functions, quadratics and small models",
    ),
    # Other dimensions, rotations, datasets and seeds; run after a standard win, never listed to the
    # model, so a candidate tuned to the suites it can see is caught here.
    "holdout": Suite(
        name="holdout",
        problems=(ProblemSpec("rosenbrock-30", 1000), ProblemSpec("rastrigin-20", 500),
                  ProblemSpec("ackley-30", 500), ProblemSpec("styblinski-tang-20", 500),
                  ProblemSpec("quadratic-ill-100-k1e4", 500), ProblemSpec("noisy-quadratic-100", 500),
                  ProblemSpec("softmax-wine", 300), ProblemSpec("softmax-mnist1d", 500),
                  ProblemSpec("mlp-wine", 300)),
        lr_grid=log_grid(-4, 0.5, 2),
        tuning_seeds=(30, 31, 32),
        eval_seeds=tuple(range(300, 312)),
        hidden=True,
    ),
    # Neural networks as 2026 trains them: a tiny transformer language model, grokking (when held-out
    # accuracy rises is the point), a CNN and an MLP, against the modern baselines. Eight seeds: the
    # smallest exact Wilcoxon p (2/256 = 0.0078) survives Holm over four problems (0.031).
    "neural": Suite(
        name="neural",
        problems=(ProblemSpec("transformer-grammar", 400),
                  ProblemSpec("grokking-mod-add-31", 1000, accuracy_target=0.9),
                  ProblemSpec("cnn-digits", 300), ProblemSpec("mlp-mnist1d", 500)),
        lr_grid=log_grid(-4, 0, 2),
        tuning_seeds=(0, 1),
        tuner_trials=6,
        eval_seeds=tuple(range(400, 408)),
        baselines=NEURAL_BASELINES,
        curve_points=12,
        holdout="holdout-neural",
        purpose="to support a claim on neural networks (transformer, grokking, CNN, MLP) against the modern "
                "optimizers",
    ),
    "holdout-neural": Suite(
        name="holdout-neural",
        problems=(ProblemSpec("transformer-grammar-d24", 400),
                  ProblemSpec("grokking-mod-sub-37", 1000, accuracy_target=0.9),
                  ProblemSpec("cnn-digits-c4", 300), ProblemSpec("mlp-wine", 300)),
        lr_grid=log_grid(-4, 0, 2),
        tuning_seeds=(40, 41),
        tuner_trials=6,
        eval_seeds=tuple(range(500, 508)),
        baselines=NEURAL_BASELINES,
        curve_points=12,
        hidden=True,
    ),
}
PROFILE_TAUS = (1.0, 1.5, 2.0, 4.0, 10.0)

# The suites a model may ask for (tests check this equals the visible suites of SUITES).
VisibleSuite = Literal["quick", "standard", "neural"]

# The suites a win can be claimed on: each has a hidden holdout gate.
CLAIM_SUITES: tuple[str, ...] = tuple(name for name, suite in SUITES.items() if suite.holdout)
