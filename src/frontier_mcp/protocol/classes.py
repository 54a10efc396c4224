"""Problem classes: the scope a claim can have.

A candidate that is excellent on smooth deterministic problems and useless on stochastic ones
has a real, narrower result; a verdict over the whole suite cannot say so. Each problem belongs to
one class, each class has problems in the visible suites and in the holdout, and a claim names the
classes it covers (`record_result(..., classes=[...])`).
"""

from __future__ import annotations

# family prefix -> class; the first matching prefix wins.
CLASS_OF_FAMILY: tuple[tuple[str, str], ...] = (
    ("rosenbrock-", "smooth"),
    ("quadratic-ill-", "smooth"),
    ("beale-", "smooth"),
    ("rastrigin-", "multimodal"),
    ("ackley-", "multimodal"),
    ("styblinski-tang-", "multimodal"),
    ("noisy-quadratic-", "stochastic"),
    ("logreg-", "stochastic"),
    ("softmax-", "stochastic"),
    ("mlp-", "neural"),
    ("transformer-", "neural"),
    ("grokking-", "neural"),
    ("cnn-", "neural"),
)

CLASSES: dict[str, str] = {
    "smooth": "deterministic smooth problems, ill-conditioned included (Rosenbrock, rotated quadratics)",
    "multimodal": "many local minima (Rastrigin, Ackley, Styblinski-Tang)",
    "stochastic": "minibatch gradients: noisy quadratics and linear models on real data",
    "neural": "neural networks: MLPs on real data, a tiny transformer language model, grokking, a CNN",
}


def class_of(problem: str) -> str:
    for prefix, name in CLASS_OF_FAMILY:
        if problem.startswith(prefix):
            return name
    raise KeyError(f"problem {problem!r} has no class; add its family to CLASS_OF_FAMILY")
