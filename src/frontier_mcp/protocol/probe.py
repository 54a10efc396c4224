"""Rediscovery by behaviour on a fixed probe: is the candidate a baseline written another way?

The probe is a fixed, versioned gradient sequence (`probe_script`): a few tensors at gradient
scales six orders of magnitude apart (so that eps, weight decay and scale invariance show), each
gradient a smooth part (a quadratic along a fixed trajectory) plus random-sign noise, with the
quadratic's loss as `ctx.loss`. The lab's trusted harness replays it (`frontier-bench replay`)
through the candidate, in a fresh candidate process per learning rate behind the same boundary as
a benchmark run, and through every baseline over a small grid of its usual hyperparameters (read
from the harness's own defaults). The gradients do not depend on the parameters (the loop is
open), so rounding never feeds back: the same update rule written another way stays within ~1e-13
of the baseline at every step, while any other rule is off by far more than `RTOL` within a few
steps. A candidate whose parameters match one baseline configuration at every step, at every
probe learning rate, is that baseline, named with its settings (and an `lr_scale` when it scales
the learning rate by a constant power of ten).

The candidate runs with its knobs at their declared defaults. There is no objective behind a
replay: an oracle call (`loss_at`, `grad_at`, `hvp`) voids the candidate's replay, so a candidate
that calls the oracle is never named (no baseline calls it).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from ..sandbox import Mount
from .harness import Harness, HarnessError

PROBE_VERSION = 1
PROBE_SEED = 20_240_611
PROBE_STEPS = 40
# (shape, gradient scale): one tensor where eps dominates, one at unit scale, one large.
PROBE_TENSORS: tuple[tuple[tuple[int, ...], float], ...] = (((4,), 1.0), ((3, 2), 1e-6), ((2,), 1e2))
# The candidate replays at these rates; baselines at BASELINE_LRS, so a constant lr scale of 0.1,
# 1 or 10 is found too (1 is preferred).
CANDIDATE_LRS = (0.01, 0.1)
BASELINE_LRS = (0.001, 0.01, 0.1, 1.0)
LR_SCALES = (1.0, 0.1, 10.0)
# Relative tolerance on each tensor's displacement from its initial value, at every step.
RTOL = 1e-6
# Errors below this are exact ties (the same rule twice): the first configuration in grid order wins.
EXACT = 1e-10
# At most this many replays (settings x learning rates) per baseline.
MAX_REPLAYS = 60

# The values tried for each usual hyperparameter, besides its default (PyTorch's names, as the
# harness's `optimizer_defaults` gives them). Anything else stays at its default.
def _alternates(key: str, default: float) -> tuple[float, ...]:
    if key == "beta1":
        return (0.95,) if default == 0.9 else (0.9,)
    if key == "beta2":
        return (0.99,) if default == 0.999 else (0.98,) if default == 0.99 else (0.999,)
    if key == "momentum":
        return (0.5, 0.99) if default > 0 else ()  # an SGD without momentum stays one (momentum is its own baseline)
    if key in ("alpha", "rho"):
        return (0.9,) if default != 0.9 else (0.95,)
    if key == "eps":
        return (default * 100,) if default > 0 else ()
    if key == "weight_decay":
        return (1e-2,) if default == 0 else (default * 10,)
    return ()


# When a grid is too large, alternates are dropped from the first key of this list that has any.
TRIM_ORDER = ("eps", "weight_decay", "alpha", "rho", "beta2", "momentum", "beta1")


def grid(defaults: dict[str, float], max_replays: int = MAX_REPLAYS) -> list[dict[str, float]]:
    """A baseline's hyperparameter settings for the probe, defaults first (full option dicts)."""
    values = {key: [float(d), *_alternates(key, float(d))] for key, d in defaults.items()}
    while math.prod(len(v) for v in values.values()) * len(BASELINE_LRS) > max_replays:
        key = next((k for k in TRIM_ORDER if len(values.get(k, ())) > 1), None)
        if key is None:
            break
        values[key].pop()
    keys = list(values)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(values[k] for k in keys))]


@dataclass(frozen=True)
class Probe:
    shapes: tuple[tuple[int, ...], ...]
    init: tuple[float, ...]
    losses: tuple[float, ...]
    grads: tuple[tuple[float, ...], ...]

    def body(self) -> str:
        """The replay lines after a run's head (shapes, init, loss/grad per step, end)."""
        lines = ["shapes " + " ".join("x".join(map(str, s)) for s in self.shapes),
                 "init " + " ".join(map(repr, self.init))]
        for loss, g in zip(self.losses, self.grads, strict=True):
            lines += [f"loss {loss!r}", "grad " + " ".join(map(repr, g))]
        lines.append("end")
        return "\n".join(lines) + "\n"

    def slices(self) -> list[slice]:
        out, k = [], 0
        for s in self.shapes:
            n = math.prod(s)
            out.append(slice(k, k + n))
            k += n
        return out


def probe_script(seed: int = PROBE_SEED, steps: int = PROBE_STEPS) -> Probe:
    """The fixed probe (version PROBE_VERSION): the same bits on every machine. Only
    `random.random()` is used, whose sequence Python guarantees for a given seed, and only + - * /
    (no libm function, whose last bits vary); floats are written exactly (repr)."""
    rng = random.Random(seed)
    init: list[float] = []
    curv: list[float] = []
    centre: list[float] = []
    scale: list[float] = []
    phase: list[tuple[float, float]] = []
    for shape, s in PROBE_TENSORS:
        for _ in range(math.prod(shape)):
            init.append(round(2 * rng.random() - 1, 6) or 0.5)
            u = rng.random()
            curv.append(0.1 + 9.9 * u * u)  # curvatures 0.1 .. 10
            centre.append(2 * rng.random() - 1)
            scale.append(s)
            phase.append((1.0, 0.0))
    grads: list[tuple[float, ...]] = []
    losses: list[float] = []
    w = 1.0
    for _ in range(steps):
        # A fixed trajectory from init towards the centre, shrinking and turning (a rotation by
        # (0.96, 0.28), exact: 0.96^2 + 0.28^2 = 1) at a per-coordinate speed.
        g_t, loss = [], 0.0
        for i in range(len(init)):
            c, sn = phase[i]
            x = centre[i] + (init[i] - centre[i]) * w * c
            smooth = curv[i] * (x - centre[i])
            noise = (1.0 if rng.random() < 0.5 else -1.0) * (0.2 + 0.8 * rng.random())
            g = scale[i] * (smooth + 0.5 * noise)
            g_t.append(g if g != 0.0 else scale[i] * 1e-3)  # no exact zeros: sign(0) conventions differ
            loss += 0.5 * curv[i] * (x - centre[i]) ** 2
            turns = 1 + i % 3
            for _ in range(turns):
                c, sn = 0.96 * c - 0.28 * sn, 0.28 * c + 0.96 * sn
            phase[i] = (c, sn)
        w *= 0.92
        grads.append(tuple(g_t))
        losses.append(loss)
    return Probe(shapes=tuple(shape for shape, _ in PROBE_TENSORS), init=tuple(init), losses=tuple(losses),
                 grads=tuple(grads))


def parse_replay(stdout: str, ids: Sequence[str], steps: int, width: int) -> dict[str, list[list[float]] | str]:
    """Each run's parameters per step (by id), or its error. Runs not finished count as errors."""
    results: dict[str, list[list[float]] | str] = {}
    current: list[list[float]] = []
    wanted = iter(ids)
    expected = next(wanted, None)
    for line in stdout.splitlines():
        if not line.strip():
            continue
        if line.startswith("params"):
            try:
                row = [float(x) for x in line.split()[1:]]
            except ValueError:
                row = []
            current.append(row)
            continue
        head, _, rest = line.partition(" ")
        run_id = rest.split(" ", 1)[0].removeprefix("id=") if head == "error" else line.removeprefix("done id=")
        if run_id != expected or head not in ("done", "error"):
            break  # not the harness's output in plan order: trust nothing after it
        if head == "error":
            results[run_id] = rest.split(" ", 1)[1] if " " in rest else "error"
        elif len(current) != steps or any(len(row) != width for row in current):
            results[run_id] = f"{len(current)} parameter lines, expected {steps} of {width} values"
        else:
            results[run_id] = current
        current = []
        expected = next(wanted, None)
    for run_id in ids:
        results.setdefault(run_id, "the replay did not finish")
    return results


def distance(a: list[list[float]], b: list[list[float]], probe: Probe, give_up_above: float = math.inf) -> float:
    """Largest relative difference of two trajectories: per step and tensor, the largest difference
    of the displacements from init over the largest displacement of `b` (inf on NaN/inf). Once it
    exceeds `give_up_above` the rest is not looked at, and some value above that bound is returned:
    most pairs differ at the first step, and `best_match` only asks whether they stay within RTOL."""
    worst = 0.0
    parts = [(sl, probe.init[sl]) for sl in probe.slices()]
    for row_a, row_b in zip(a, b, strict=True):
        for sl, init in parts:
            d_b = [x - x0 for x, x0 in zip(row_b[sl], init, strict=True)]
            diff = max(abs(x - y) for x, y in zip(row_a[sl], row_b[sl], strict=True))
            size = max(max(abs(d) for d in d_b), 1e-300)
            ratio = diff / size
            if not math.isfinite(ratio) or not all(math.isfinite(d) for d in d_b):
                return math.inf
            worst = max(worst, ratio)
            if worst > give_up_above:
                return worst
    return worst


def best_match(candidate: dict[float, list[list[float]]],
               baselines: dict[str, list[tuple[dict[str, float], dict[float, list[list[float]]]]]],
               probe: Probe, rtol: float = RTOL) -> dict[str, Any] | None:
    """The baseline configuration the candidate's trajectories reproduce at every probe rate, or None.
    `candidate`: lr -> trajectory; `baselines`: name -> [(settings, lr -> trajectory)] in grid order."""
    best: tuple[tuple[float, int, int, int], dict[str, Any]] | None = None
    for b_index, (name, configs) in enumerate(baselines.items()):
        for s_index, (settings, trajectories) in enumerate(configs):
            for c_index, scale in enumerate(LR_SCALES):
                err = 0.0
                for lr, traj in candidate.items():
                    other = trajectories.get(_lr(lr * scale))
                    err = max(err, math.inf if other is None else distance(traj, other, probe, rtol))
                    if err > rtol:
                        break
                if err > rtol:
                    continue
                key = (0.0 if err < EXACT else err, b_index, s_index, c_index)
                if best is None or key < best[0]:
                    best = (key, {"baseline": name, "settings": dict(settings), "lr_scale": scale,
                                  "max_rel_diff": err, "tolerance": rtol, "probe_version": PROBE_VERSION})
    return None if best is None else best[1]


def _lr(x: float) -> float:
    return float(f"{x:.6g}")


def _head(optimizer: str, lr: float, run_id: str, settings: dict[str, float] | None = None) -> str:
    opts = "".join(f" opt.{k}={v!r}" for k, v in (settings or {}).items())
    return f"optimizer={optimizer} lr={lr!r} id={run_id}{opts}\n"


async def _replay(harness: Harness, script: str, *, with_candidate: bool) -> str:
    argv, mounts = [str(harness.binary), "replay"], [Mount(harness.binary)]
    if with_candidate:
        assert harness.candidate is not None
        argv += ["--candidate", str(harness.candidate), "--run-timeout-ms",
                 str(int(harness.limits.run_seconds * 1000))]
        if harness.sandbox.enabled:
            argv.append("--sweep")  # the harness is pid 2 of its sandbox: nothing else may outlive a run
        mounts.append(Mount(harness.candidate))
    result = await harness.sandbox.run(
        argv, mounts=mounts, env={"PATH": "/usr/bin:/bin"}, cwd=Path("/"), timeout=harness.limits.run_seconds,
        stdin=script.encode(), output_limit=max(harness.limits.output_kb * 1024, 64 * len(script)), scratch=False)
    if result.killed_reason is not None and not with_candidate:
        raise HarnessError(f"the probe's baseline replay failed: {result.killed_reason}")
    return result.stdout.decode(errors="replace")


async def _defaults(harness: Harness) -> dict[str, dict[str, float]]:
    listing = await harness.version()
    return {str(k): {str(o): float(v) for o, v in d.items()} for k, d in listing["optimizer_defaults"].items()}


Trajectory = list[list[float]]
Configs = dict[str, list[tuple[dict[str, float], dict[float, Trajectory]]]]

# Baseline trajectories depend only on the harness binary and the probe: kept per binary.
_CACHE: dict[tuple[str, int, int, int, tuple[str, ...]], Configs] = {}


async def baseline_trajectories(harness: Harness, baselines: Sequence[str], probe: Probe) -> Configs:
    """Every baseline's trajectory for every setting of its grid at every BASELINE_LRS, from one
    harness process (no candidate in it)."""
    stat = harness.binary.stat()
    key = (str(harness.binary), stat.st_mtime_ns, stat.st_size, PROBE_VERSION, tuple(baselines))
    if key in _CACHE:
        return _CACHE[key]
    defaults = await _defaults(harness)
    unknown = [b for b in baselines if b not in defaults]
    if unknown:
        raise HarnessError(f"the harness has no baseline {', '.join(unknown)}")
    body = probe.body()
    plan: list[tuple[str, int, float, str]] = []
    parts: list[str] = []
    for name in baselines:
        for s_index, settings in enumerate(grid(defaults[name])):
            for lr in BASELINE_LRS:
                run_id = str(len(plan))
                plan.append((name, s_index, lr, run_id))
                parts.append(_head(name, lr, run_id, settings) + body)
    stdout = await _replay(harness, "".join(parts), with_candidate=False)
    width = len(probe.init)
    parsed = parse_replay(stdout, [p[3] for p in plan], len(probe.grads), width)
    out: Configs = {name: [(settings, {}) for settings in grid(defaults[name])] for name in baselines}
    for name, s_index, lr, run_id in plan:
        traj = parsed[run_id]
        if isinstance(traj, str):
            raise HarnessError(f"the probe's replay of {name} at lr={lr} failed: {traj[:300]}")
        out[name][s_index][1][lr] = traj
    _CACHE[key] = out
    return out


async def candidate_trajectories(harness: Harness, probe: Probe) -> dict[float, list[list[float]]] | None:
    """The candidate's trajectory at every CANDIDATE_LRS (a fresh candidate process for each), or
    None if any replay failed (a panic, an oracle call, a broken protocol, a timeout)."""
    body = probe.body()
    ids = [f"c{i}" for i in range(len(CANDIDATE_LRS))]
    script = "".join(_head("candidate", lr, run_id) + body for lr, run_id in zip(CANDIDATE_LRS, ids, strict=True))
    stdout = await _replay(harness, script, with_candidate=True)
    parsed = parse_replay(stdout, ids, len(probe.grads), len(probe.init))
    out: dict[float, list[list[float]]] = {}
    for lr, run_id in zip(CANDIDATE_LRS, ids, strict=True):
        traj = parsed[run_id]
        if isinstance(traj, str):
            return None
        out[lr] = traj
    return out


async def probe_rediscovery(harness: Harness, baselines: Sequence[str]) -> dict[str, Any] | None:
    """The baseline the candidate (`harness.candidate`) reproduces on the fixed probe, or None.

    Returns e.g. `{"baseline": "adam", "settings": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-08,
    "weight_decay": 0.0, "amsgrad": 0.0}, "lr_scale": 1.0, "max_rel_diff": 0.0, "tolerance": 1e-06,
    "probe_version": 1}`: the candidate's parameters equal that configuration's (at lr x lr_scale)
    at every step of the probe at every probe learning rate, within `tolerance` relative to each
    tensor's displacement. `settings` are the baseline's full options (PyTorch names). None also
    when the candidate's replay fails (it panicked, called the oracle, timed out).
    Raises HarnessError if the baselines' replay fails (a broken harness, not the candidate's doing).
    Runs locally in `harness.sandbox` (never on `harness.executor`): two harness processes, ~0.1 s.
    """
    if harness.candidate is None:
        raise HarnessError("probe_rediscovery needs a harness with a candidate")
    probe = probe_script()
    found: dict[str, Any] = {}

    async def run_baselines() -> None:
        found["baselines"] = await baseline_trajectories(harness, baselines, probe)

    async def run_candidate() -> None:
        found["candidate"] = await candidate_trajectories(harness, probe)

    async with anyio.create_task_group() as group:
        group.start_soon(run_baselines)
        group.start_soon(run_candidate)
    if found["candidate"] is None:
        return None
    return best_match(found["candidate"], found["baselines"], probe)

