"""Check the harness's baselines against recorded PyTorch trajectories, step by step.

The reference file (format of `tests/fixtures/torch_trajectories.json`) records, for each run,
the parameters before every step and the gradient each step consumed. Feeding those gradients to
the matching baseline through the harness's `replay` mode tests the update rule alone, so any
problem works, including ones the scaffold does not implement. A coordinate passes when
|ours - torch| <= 1e-12 + 1e-10 * |torch| (what float64 allows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .sandbox import Mount, Sandbox

ABS_TOL, REL_TOL = 1e-12, 1e-10

TORCH_NAMES = {
    "torch.optim.SGD": "sgd", "torch.optim.Adam": "adam", "torch.optim.AdamW": "adamw",
    "torch.optim.RMSprop": "rmsprop", "torch.optim.Adagrad": "adagrad", "torch.optim.Adamax": "adamax",
    "torch.optim.NAdam": "nadam", "torch.optim.RAdam": "radam", "torch.optim.Adadelta": "adadelta",
    "torch.optim.Adafactor": "adafactor",
}
# PyTorch switches that do not change the arithmetic when off.
_INERT = {"foreach", "fused", "capturable", "differentiable", "maximize"}


class NoMatchingBaseline(ValueError):
    pass


@dataclass
class RunCheck:
    label: str
    optimizer: str | None
    ok: bool
    worst_ratio: float = math.nan
    worst_abs: float = math.nan
    worst_step: int = 0
    error: str | None = None


def baseline_name(torch_optimizer: str) -> str:
    if torch_optimizer in TORCH_NAMES:
        return TORCH_NAMES[torch_optimizer]
    if torch_optimizer.lower().startswith("lion"):
        return "lion"
    raise NoMatchingBaseline(f"no baseline matches {torch_optimizer!r}")


def harness_options(kwargs: dict[str, Any]) -> list[tuple[str, float]]:
    """PyTorch keyword arguments as the harness's `opt.<key>=<float>` options."""
    options: list[tuple[str, float]] = []
    for key, value in kwargs.items():
        if key == "betas":
            options += [("beta1", float(value[0])), ("beta2", float(value[1]))]
        elif key == "eps" and isinstance(value, list | tuple):  # Adafactor's (eps1, eps2)
            if value[0] is not None:
                options.append(("eps1", float(value[0])))
            options.append(("eps2", float(value[1])))
        elif key in _INERT and not value:
            continue
        elif isinstance(value, bool):
            options.append((key, 1.0 if value else 0.0))
        else:
            options.append((key, float(value)))
    return options


def _flat(tensors: dict[str, list[float]], names: list[str]) -> list[float]:
    return [float(x) for name in names for x in tensors[name]]


def replay_script(run: dict[str, Any], problem: dict[str, Any]) -> tuple[str, list[list[float]]]:
    """The harness's replay input for a run, and the parameters expected after each step."""
    names = list(problem["shapes"])
    shapes = ["x".join(str(d) for d in problem["shapes"][n]) or "1" for n in names]
    head = f"optimizer={baseline_name(run['optimizer'])} lr={float(run['lr'])!r}"
    head += "".join(f" opt.{key}={value!r}" for key, value in harness_options(run.get("kwargs", {})))
    lines = [head, "shapes " + " ".join(shapes), "init " + " ".join(map(repr, _flat(run["params"][0], names)))]
    lines += ["grad " + " ".join(map(repr, _flat(g, names))) for g in run["grad"]]
    lines.append("end")
    expected = [_flat(p, names) for p in run["params"][1:]]
    return "\n".join(lines) + "\n", expected


def compare_steps(output: str, expected: list[list[float]]) -> tuple[float, float, int, str | None]:
    """(worst diff/tolerance, worst |diff|, step of the worst, error)."""
    rows = [line for line in output.splitlines() if line.strip()]
    if len(rows) != len(expected) or any(not r.startswith("params") for r in rows):
        return math.inf, math.inf, 0, (rows[0][:300] if rows else "no output") + f" ({len(rows)} lines)"
    worst_ratio, worst_abs, worst_step = 0.0, 0.0, 0
    for step, (row, want) in enumerate(zip(rows, expected, strict=True), start=1):
        got = [float("nan") if x == "null" else float(x) for x in row.split()[1:]]
        if len(got) != len(want):
            return math.inf, math.inf, step, f"step {step}: {len(got)} values, expected {len(want)}"
        for ours, theirs in zip(got, want, strict=True):
            diff = abs(ours - theirs)
            if math.isnan(diff):
                return math.inf, math.inf, step, f"step {step}: NaN"
            ratio = diff / (ABS_TOL + REL_TOL * abs(theirs))
            worst_abs = max(worst_abs, diff)
            if ratio > worst_ratio:
                worst_ratio, worst_step = ratio, step
    return worst_ratio, worst_abs, worst_step, None


async def verify(reference: dict[str, Any], binary: Path, sandbox: Sandbox) -> list[RunCheck]:
    checks: list[RunCheck] = []
    for run in reference["runs"]:
        label = f"{run['problem']}/{run.get('name', run['optimizer'])}"
        try:
            optimizer = baseline_name(run["optimizer"])
            script, expected = replay_script(run, reference["problems"][run["problem"]])
        except (NoMatchingBaseline, KeyError) as exc:
            checks.append(RunCheck(label, None, ok=False, error=str(exc)))
            continue
        result = await sandbox.run([str(binary), "replay"], mounts=[Mount(binary)], env={"PATH": "/usr/bin:/bin"},
                                   cwd=Path("/tmp"), timeout=60, stdin=script.encode())
        ratio, worst, step, error = compare_steps(result.stdout.decode(errors="replace"), expected)
        if error is None and not result.ok:
            error = result.killed_reason or result.stderr.decode(errors="replace")[-300:]
        checks.append(RunCheck(label, optimizer, ok=error is None and ratio <= 1.0, worst_ratio=ratio,
                               worst_abs=worst, worst_step=step, error=error))
    return checks
