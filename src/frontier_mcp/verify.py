"""Check the harness's baselines against recorded PyTorch trajectories, step by step.

The reference file (format of `tests/fixtures/torch_trajectories.json`) records, for each run,
the parameters before every step and the gradient each step consumed. Feeding those gradients to
the matching baseline through the harness's `replay` mode tests the update rule alone, so any
problem works, including ones the scaffold does not implement. A coordinate passes when
|ours - torch| <= 1e-12 + 1e-10 * |torch| (what float64 allows), or within the run's own
`recommended_check` tolerance where the reference gives one (e.g. SOAP's float32 QR).

Runs of the modern reference (`torch_trajectories_modern.json`) may also carry Schedule-Free's
`eval_params` (checked as well, through `replay`'s `eval=1`), SOAP's recorded eigenbases `soap_Q`
(injected with `basis` lines when the run requires them: its first eigenbasis is not unique) and
Muon's `ns_dtype` (bfloat16 runs replay with the bit-exact emulation, `ns_bf16=1`).
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
    "torch.optim.Adafactor": "adafactor", "torch.optim.Muon": "muon",
    "schedulefree.AdamWScheduleFree": "schedulefree_adamw", "prodigyopt.Prodigy": "prodigy",
    "pytorch_optimizer.SOAP": "soap", "pytorch_optimizer.AdEMAMix": "ademamix",
}
# Muon's adjust_lr_fn as the harness's code (None is "original").
ADJUST_LR_FN = {"original": 0.0, "match_rms_adamw": 1.0, "spectral_unclamped": 2.0}
# Options whose None the harness spells as a number (see each baseline's `about`).
_NONE_AS = {"beta3": -1.0, "shampoo_beta": -1.0, "t_alpha_beta3": 0.0, "adjust_lr_fn": 0.0}
# Options whose float('inf') the harness spells as 0 (Prodigy's growth_rate).
_INF_AS = {"growth_rate": 0.0}
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


def baseline_name(torch_optimizer: str, kwargs: dict[str, Any] | None = None) -> str:
    if torch_optimizer == "torch.optim.NAdam" and (kwargs or {}).get("decoupled_weight_decay"):
        return "nadamw"
    if torch_optimizer in TORCH_NAMES:
        return TORCH_NAMES[torch_optimizer]
    if torch_optimizer.lower().startswith("lion"):
        return "lion"
    raise NoMatchingBaseline(f"no baseline matches {torch_optimizer!r}")


def _number(key: str, value: Any) -> float:
    """One keyword value as the harness's float: booleans 0/1, None and inf by their spelling."""
    if value is None:
        if key in _NONE_AS:
            return _NONE_AS[key]
        raise NoMatchingBaseline(f"option {key}=None has no harness spelling")
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if key == "adjust_lr_fn":
        if value not in ADJUST_LR_FN:
            raise NoMatchingBaseline(f"adjust_lr_fn={value!r} is not one of {sorted(ADJUST_LR_FN)}")
        return ADJUST_LR_FN[value]
    if isinstance(value, str):
        try:
            value = float(value)  # "inf" as the reference writes it
        except ValueError:
            raise NoMatchingBaseline(f"option {key}={value!r} is not a number") from None
    number = float(value)
    if math.isinf(number) and number > 0 and key in _INF_AS:
        return _INF_AS[key]
    return number


def harness_options(kwargs: dict[str, Any]) -> list[tuple[str, float]]:
    """PyTorch keyword arguments as the harness's `opt.<key>=<float>` options."""
    options: list[tuple[str, float]] = []
    for key, value in kwargs.items():
        if key == "betas":
            if len(value) not in (2, 3):
                raise NoMatchingBaseline(f"betas must have 2 or 3 values, got {value!r}")
            options += [(f"beta{i}", _number(f"beta{i}", b)) for i, b in enumerate(value, start=1)]
        elif key == "eps" and isinstance(value, list | tuple):  # Adafactor's (eps1, eps2)
            if value[0] is not None:
                options.append(("eps1", float(value[0])))
            options.append(("eps2", float(value[1])))
        elif key in _INERT and not value:
            continue
        else:
            options.append((key, _number(key, value)))
    return options


def run_options(run: dict[str, Any]) -> list[tuple[str, float]]:
    """A run's harness options: its keyword arguments, plus what its record says of the arithmetic
    (Muon's bfloat16 Newton-Schulz)."""
    options = harness_options(run.get("kwargs", {}))
    if run["optimizer"] == "torch.optim.Muon":
        options.append(("ns_bf16", 1.0 if str(run.get("ns_dtype", "")).startswith("bfloat16") else 0.0))
    return options


@dataclass
class Check:
    """How a run is compared: |ours - torch| <= atol + rtol |torch| per coordinate, every step."""
    atol: float = ABS_TOL
    rtol: float = REL_TOL
    inject_bases: bool = False

    @property
    def note(self) -> str:
        parts = []
        if (self.atol, self.rtol) != (ABS_TOL, REL_TOL):
            parts.append(f"tol {self.atol:g}+{self.rtol:g}|x|")
        if self.inject_bases:
            parts.append("recorded soap_Q injected")
        return f" ({'; '.join(parts)})" if parts else ""


def run_check(run: dict[str, Any]) -> Check:
    """The run's `recommended_check` (the old tolerance when it has none)."""
    rec = run.get("recommended_check")
    if not rec:
        return Check()
    if rec.get("compare", "params") != "params":
        raise NoMatchingBaseline(f"recommended_check compares {rec.get('compare')!r}, not params")
    requires = str(rec.get("requires") or "")
    return Check(atol=float(rec["atol"]), rtol=float(rec["rtol"]), inject_bases="soap_Q" in requires)


def _flat(tensors: dict[str, list[float]], names: list[str]) -> list[float]:
    return [float(x) for name in names for x in tensors[name]]


def replay_script(run: dict[str, Any], problem: dict[str, Any]) -> tuple[str, list[list[float]]]:
    """The harness's replay input for a run, and the parameters expected after each step."""
    script, expected, _ = replay_input(run, problem)
    return script, expected


def replay_input(run: dict[str, Any],
                 problem: dict[str, Any]) -> tuple[str, list[list[float]], list[list[float]] | None]:
    """The replay input, the parameters expected after each step and, for a run that records
    them (Schedule-Free), the evaluation points expected after each step."""
    names = list(problem["shapes"])
    shapes = ["x".join(str(d) for d in problem["shapes"][n]) or "1" for n in names]
    head = f"optimizer={baseline_name(run['optimizer'], run.get('kwargs'))} lr={float(run['lr'])!r}"
    head += "".join(f" opt.{key}={value!r}" for key, value in run_options(run))
    evals = run.get("eval_params")
    if evals is not None:
        head += " eval=1"
    inject = run_check(run).inject_bases
    if inject and "soap_Q" not in run:
        raise NoMatchingBaseline("the run requires its recorded soap_Q, which it does not have")
    lines = [head, "shapes " + " ".join(shapes), "init " + " ".join(map(repr, _flat(run["params"][0], names)))]
    for t, g in enumerate(run["grad"]):
        lines.append("grad " + " ".join(map(repr, _flat(g, names))))
        if inject:
            for i, name in enumerate(names):
                for dim, q in enumerate(run["soap_Q"][t].get(name) or []):
                    if q is not None:
                        lines.append(f"basis {i} {dim} " + " ".join(map(repr, map(float, q))))
    lines.append("end")
    expected = [_flat(p, names) for p in run["params"][1:]]
    expected_eval = None if evals is None else [_flat(x, names) for x in evals[1:]]
    return "\n".join(lines) + "\n", expected, expected_eval


def compare_steps(output: str, expected: list[list[float]], expected_eval: list[list[float]] | None = None,
                  check: Check | None = None) -> tuple[float, float, int, str | None]:
    """(worst diff/tolerance, worst |diff|, step of the worst, error), over the parameters and,
    when expected, the evaluation points."""
    check = check or Check()
    rows = [line for line in output.splitlines() if line.strip()]
    params = [r for r in rows if r.startswith("params")]
    evals = [r for r in rows if r.startswith("eval")]
    want_eval = expected_eval or []
    if len(params) != len(expected) or len(evals) != len(want_eval) or len(params) + len(evals) != len(rows):
        return math.inf, math.inf, 0, (rows[0][:300] if rows else "no output") + f" ({len(rows)} lines)"
    worst_ratio, worst_abs, worst_step = 0.0, 0.0, 0
    pairs = [(step, row, want) for step, (row, want) in enumerate(zip(params, expected, strict=True), start=1)]
    pairs += [(step, row, want) for step, (row, want) in enumerate(zip(evals, want_eval, strict=True), start=1)]
    for step, row, want in pairs:
        got = [float("nan") if x == "null" else float(x) for x in row.split()[1:]]
        what = row.split()[0]
        if len(got) != len(want):
            return math.inf, math.inf, step, f"step {step}: {len(got)} {what} values, expected {len(want)}"
        for ours, theirs in zip(got, want, strict=True):
            diff = abs(ours - theirs)
            if math.isnan(diff):
                return math.inf, math.inf, step, f"step {step}: NaN in {what}"
            ratio = diff / (check.atol + check.rtol * abs(theirs))
            worst_abs = max(worst_abs, diff)
            if ratio > worst_ratio:
                worst_ratio, worst_step = ratio, step
    return worst_ratio, worst_abs, worst_step, None


async def verify(reference: dict[str, Any], binary: Path, sandbox: Sandbox) -> list[RunCheck]:
    checks: list[RunCheck] = []
    for run in reference["runs"]:
        label = f"{run['problem']}/{run.get('name', run['optimizer'])}"
        try:
            optimizer = baseline_name(run["optimizer"], run.get("kwargs"))
            check = run_check(run)
            script, expected, expected_eval = replay_input(run, reference["problems"][run["problem"]])
        except (NoMatchingBaseline, KeyError, TypeError, ValueError) as exc:
            checks.append(RunCheck(label, None, ok=False, error=str(exc)))
            continue
        label += check.note
        result = await sandbox.run([str(binary), "replay"], mounts=[Mount(binary)], env={"PATH": "/usr/bin:/bin"},
                                   cwd=Path("/tmp"), timeout=60, stdin=script.encode())
        ratio, worst, step, error = compare_steps(result.stdout.decode(errors="replace"), expected, expected_eval,
                                                  check)
        if error is None and not result.ok:
            error = result.killed_reason or result.stderr.decode(errors="replace")[-300:]
        checks.append(RunCheck(label, optimizer, ok=error is None and ratio <= 1.0, worst_ratio=ratio,
                               worst_abs=worst, worst_step=step, error=error))
    return checks
