"""Rediscovery by behaviour on the fixed probe (protocol/probe.py).

Fast tier: the probe is fixed (pinned by its hash: change it and bump PROBE_VERSION), grids stay
small, replay output is parsed strictly, and matching picks the right configuration. Slow tier:
re-typed baselines compiled with the real tools are named by the probe through the lab's own
harness and sandbox; the example candidate and a genuinely different optimizer are not."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

import pytest
from mcp import Client

from frontier_mcp.protocol import BASELINES, Harness
from frontier_mcp.protocol import probe as P
from frontier_mcp.sandbox import Sandbox
from frontier_mcp.scaffold import Lab
from frontier_mcp.settings import Limits

from .conftest import compiled, example_source

# ---------------------------------------------------------------- fast tier

def test_the_probe_is_fixed_and_versioned() -> None:
    probe = P.probe_script()
    assert P.PROBE_VERSION == 1
    assert len(probe.grads) == P.PROBE_STEPS == 40
    assert probe.shapes == ((4,), (3, 2), (2,)) and len(probe.init) == 12
    # Changing the probe changes every stored probe result: bump PROBE_VERSION and this hash together.
    digest = hashlib.sha256(probe.body().encode()).hexdigest()
    assert digest == PINNED, digest
    assert P.probe_script().body() == probe.body()
    # No exact zeros (sign(0) conventions differ harmlessly), gradient scales six decades apart.
    assert all(g != 0.0 for row in probe.grads for g in row)
    small = [abs(g) for row in probe.grads for g in row[4:10]]
    assert max(small) < 1e-5 < min(abs(g) for row in probe.grads for g in row[10:])


PINNED = "72bd66867d9828bd57373e97bfd64e79cb32deedb8db1cc1542cbbf5412dc3b3"


DEFAULTS = {
    "sgd": {"momentum": 0.0, "dampening": 0.0, "nesterov": 0.0, "weight_decay": 0.0},
    "momentum": {"momentum": 0.9, "dampening": 0.0, "nesterov": 0.0, "weight_decay": 0.0},
    "adam": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "amsgrad": 0.0},
    "adamw": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 1e-2, "amsgrad": 0.0},
    "rmsprop": {"alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": 0.0},
    "adagrad": {"lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 1e-10},
    "lion": {"beta1": 0.9, "beta2": 0.99, "weight_decay": 0.0},
}


def test_grids_are_small_start_at_the_defaults_and_vary_the_usual_hyperparameters() -> None:
    for name, defaults in DEFAULTS.items():
        settings = P.grid(defaults)
        assert settings[0] == defaults, name
        assert 1 <= len(settings) * len(P.BASELINE_LRS) <= P.MAX_REPLAYS, name
        assert len({tuple(sorted(s.items())) for s in settings}) == len(settings), name
    adam = P.grid(DEFAULTS["adam"])
    assert {s["beta1"] for s in adam} == {0.9, 0.95} and {s["beta2"] for s in adam} == {0.999, 0.99}
    assert all(s["amsgrad"] == 0.0 for s in adam)  # flags stay at their defaults
    assert {s["momentum"] for s in P.grid(DEFAULTS["momentum"])} == {0.9, 0.5, 0.99}
    assert {s["momentum"] for s in P.grid(DEFAULTS["sgd"])} == {0.0}  # momentum is its own baseline
    # A grid that cannot fit keeps the defaults.
    assert P.grid(DEFAULTS["adam"], max_replays=4) == [DEFAULTS["adam"]]


def test_replay_output_is_parsed_in_plan_order_and_anything_else_voids_the_rest() -> None:
    out = "params 1 2\nparams 3 4\ndone id=a\nerror id=b panic: boom\nparams 5 6\nparams 7 8\ndone id=c\n"
    got = P.parse_replay(out, ["a", "b", "c"], steps=2, width=2)
    assert got == {"a": [[1.0, 2.0], [3.0, 4.0]], "b": "panic: boom", "c": [[5.0, 6.0], [7.0, 8.0]]}
    # Too few steps or values, a missing run, a run out of order.
    got = P.parse_replay("params 1 2\ndone id=a\nparams 1\nparams 2\ndone id=b\n", ["a", "b", "c"], 2, 2)
    assert isinstance(got["a"], str) and isinstance(got["b"], str) and got["c"] == "the replay did not finish"
    got = P.parse_replay("params 1 2\nparams 1 2\ndone id=b\n", ["a", "b"], 2, 2)
    assert got == {"a": "the replay did not finish", "b": "the replay did not finish"}
    got = P.parse_replay("params NaN inf\nparams 1 2\ndone id=a\n", ["a"], 2, 2)
    assert isinstance(got["a"], list)


def _trajectory(probe: P.Probe, lr: float, scale: float = 1.0) -> list[list[float]]:
    """Signed SGD with a per-tensor scale: a stand-in update rule for the matching tests."""
    params = list(probe.init)
    rows = []
    for g in probe.grads:
        params = [p - lr * scale * gi for p, gi in zip(params, g, strict=True)]
        rows.append(list(params))
    return rows


def test_matching_names_the_closest_configuration_and_respects_the_tolerance() -> None:
    probe = P.probe_script()
    lrs = P.BASELINE_LRS
    baselines = {
        "a": [({"k": 1.0}, {lr: _trajectory(probe, lr, 1.5) for lr in lrs})],
        "b": [({"k": 1.0}, {lr: _trajectory(probe, lr, 1.0) for lr in lrs}),
              ({"k": 2.0}, {lr: _trajectory(probe, lr, 1.0 + 1e-9) for lr in lrs})],
    }
    cand = {lr: _trajectory(probe, lr) for lr in P.CANDIDATE_LRS}
    got = P.best_match(cand, baselines, probe)
    assert got is not None and (got["baseline"], got["settings"], got["lr_scale"]) == ("b", {"k": 1.0}, 1.0)
    # Off by 1e-9 relative: within the tolerance, but the exact configuration is preferred.
    cand = {lr: _trajectory(probe, lr, 1.0 + 1e-9) for lr in P.CANDIDATE_LRS}
    got = P.best_match(cand, baselines, probe)
    assert got is not None and got["settings"] == {"k": 2.0}
    # 1e-5 relative is another optimizer.
    cand = {lr: _trajectory(probe, lr, 1.0 + 1e-5) for lr in P.CANDIDATE_LRS}
    assert P.best_match(cand, baselines, probe) is None
    # A constant factor of 10 on the learning rate is found as such.
    cand = {lr: _trajectory(probe, lr * 10) for lr in P.CANDIDATE_LRS}
    got = P.best_match(cand, baselines, probe)
    assert got is not None and (got["baseline"], got["lr_scale"]) == ("b", 10.0)
    # Matching at one rate is not enough: a rule that ignores the learning rate is not named.
    cand = {lr: _trajectory(probe, 0.01) for lr in P.CANDIDATE_LRS}
    assert P.best_match(cand, baselines, probe) is None
    # Non-finite parameters never match.
    bad = _trajectory(probe, 0.01)
    bad[-1][0] = float("nan")
    assert P.distance(bad, _trajectory(probe, 0.01), probe) == float("inf")


def test_distance_stops_past_its_bound_and_is_exact_below_it():
    probe = P.probe_script()
    reference = _trajectory(probe, 0.01)
    other = _trajectory(probe, 0.01, 1.0 + 1e-5)
    full = P.distance(other, reference, probe)
    assert full > P.RTOL
    assert P.RTOL < P.distance(other, reference, probe, P.RTOL) <= full
    close = _trajectory(probe, 0.01, 1.0 + 1e-9)
    assert 0 < P.distance(close, reference, probe, P.RTOL) == P.distance(close, reference, probe) <= P.RTOL


# ---------------------------------------------------------------- slow tier: real cargo, real sandbox

HEAD = "use frontier_core::{Optimizer, StepContext, Tensor};\n\n"


def _source(struct: str, fields: str, init: str, body: str) -> str:
    return (HEAD + f"pub struct {struct} {{ {fields} }}\n\n"
            f"pub fn build() -> impl Optimizer + 'static {{ {struct} {{ {init} }} }}\n\n"
            f"impl Optimizer for {struct} {{\n"
            "    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {\n"
            f"{body}\n    }}\n}}\n")


STATE2 = "m: Vec<Vec<f64>>, v: Vec<Vec<f64>>"
ALLOC2 = ("        if self.m.is_empty() {\n"
          "            self.m = params.iter().map(|p| vec![0.0; p.len()]).collect();\n"
          "            self.v = params.iter().map(|p| vec![0.0; p.len()]).collect();\n        }\n")

RETYPED = {
    # Adam with the moments as b*m + (1-b)*g and bias-corrected moments (torch: lerp, corrected step size).
    "adam": _source("ReAdam", STATE2, "m: Vec::new(), v: Vec::new()", ALLOC2 + """
        let (b1, b2, eps) = (0.9_f64, 0.999_f64, 1e-8_f64);
        let t = ctx.step as i32;
        for (k, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            for (j, x) in p.as_mut_slice().iter_mut().enumerate() {
                let gj = g.as_slice()[j];
                self.m[k][j] = b1 * self.m[k][j] + (1.0 - b1) * gj;
                self.v[k][j] = b2 * self.v[k][j] + (1.0 - b2) * gj * gj;
                let m_hat = self.m[k][j] / (1.0 - b1.powi(t));
                let v_hat = self.v[k][j] / (1.0 - b2.powi(t));
                *x -= ctx.lr * m_hat / (v_hat.sqrt() + eps);
            }
        }"""),
    # SGD with momentum 0.9 in Sutskever's convention: the buffer is a velocity that includes lr.
    "momentum": _source("Velocity", "vel: Vec<Vec<f64>>", "vel: Vec::new()", """
        if self.vel.is_empty() {
            self.vel = params.iter().map(|p| vec![0.0; p.len()]).collect();
        }
        for ((p, g), vel) in params.iter_mut().zip(grads).zip(self.vel.iter_mut()) {
            for ((x, &gj), u) in p.as_mut_slice().iter_mut().zip(g.as_slice()).zip(vel.iter_mut()) {
                *u = 0.9 * *u - ctx.lr * gj;
                *x += *u;
            }
        }"""),
    # RMSprop (alpha 0.99, eps 1e-8) with the average moved towards g^2 by (1 - alpha).
    "rmsprop": _source("ReRms", "s: Vec<Vec<f64>>", "s: Vec::new()", """
        if self.s.is_empty() {
            self.s = params.iter().map(|p| vec![0.0; p.len()]).collect();
        }
        for ((p, g), s) in params.iter_mut().zip(grads).zip(self.s.iter_mut()) {
            for ((x, &gj), sj) in p.as_mut_slice().iter_mut().zip(g.as_slice()).zip(s.iter_mut()) {
                *sj += (1.0 - 0.99) * (gj * gj - *sj);
                let step = ctx.lr * gj / (sj.sqrt() + 1e-8);
                *x = *x - step;
            }
        }"""),
    # Adagrad (eps 1e-10) with the rate divided per coordinate first.
    "adagrad": _source("ReAdagrad", "h: Vec<Vec<f64>>", "h: Vec::new()", """
        if self.h.is_empty() {
            self.h = params.iter().map(|p| vec![0.0; p.len()]).collect();
        }
        for ((p, g), h) in params.iter_mut().zip(grads).zip(self.h.iter_mut()) {
            for ((x, &gj), hj) in p.as_mut_slice().iter_mut().zip(g.as_slice()).zip(h.iter_mut()) {
                *hj = *hj + gj * gj;
                let rate = ctx.lr / (hj.sqrt() + 1e-10);
                *x -= rate * gj;
            }
        }"""),
    # AdamW (weight decay 0.01): the Adam step first, the decay folded into the same update.
    "adamw": _source("ReAdamW", STATE2, "m: Vec::new(), v: Vec::new()", ALLOC2 + """
        let (b1, b2, eps, wd) = (0.9_f64, 0.999_f64, 1e-8_f64, 0.01_f64);
        let t = ctx.step as f64;
        let (c1, c2) = (1.0 - b1.powf(t), 1.0 - b2.powf(t));
        for (k, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            for (j, x) in p.as_mut_slice().iter_mut().enumerate() {
                let gj = g.as_slice()[j];
                let m = &mut self.m[k][j];
                *m += (gj - *m) * (1.0 - b1);
                let v = &mut self.v[k][j];
                *v = *v * b2 + gj * gj * (1.0 - b2);
                let update = (*m / c1) / ((*v / c2).sqrt() + eps);
                *x = *x - ctx.lr * (update + wd * *x);
            }
        }"""),
    # Lion (0.9, 0.99) with the sign written out and the interpolation as a lerp.
    "lion": _source("ReLion", "m: Vec<Vec<f64>>", "m: Vec::new()", """
        if self.m.is_empty() {
            self.m = params.iter().map(|p| vec![0.0; p.len()]).collect();
        }
        for ((p, g), m) in params.iter_mut().zip(grads).zip(self.m.iter_mut()) {
            for ((x, &gj), mj) in p.as_mut_slice().iter_mut().zip(g.as_slice()).zip(m.iter_mut()) {
                let c = *mj + (gj - *mj) * 0.1;
                let s = if c > 0.0 { 1.0 } else if c < 0.0 { -1.0 } else { 0.0 };
                *x -= ctx.lr * s;
                *mj = 0.99 * *mj + 0.01 * gj;
            }
        }"""),
}

# AdaBelief: Adam's second moment replaced by the variance of g around m. Not a baseline.
DIFFERENT = _source("Belief", STATE2, "m: Vec::new(), v: Vec::new()", ALLOC2 + """
        let (b1, b2, eps) = (0.9_f64, 0.999_f64, 1e-8_f64);
        let t = ctx.step as i32;
        for (k, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            for (j, x) in p.as_mut_slice().iter_mut().enumerate() {
                let gj = g.as_slice()[j];
                self.m[k][j] = b1 * self.m[k][j] + (1.0 - b1) * gj;
                let d = gj - self.m[k][j];
                self.v[k][j] = b2 * self.v[k][j] + (1.0 - b2) * d * d + eps;
                let m_hat = self.m[k][j] / (1.0 - b1.powi(t));
                let v_hat = self.v[k][j] / (1.0 - b2.powi(t));
                *x -= ctx.lr * m_hat / (v_hat.sqrt() + eps);
            }
        }""")

# Adam that peeks at the loss through the oracle: its replay is void, so it is never named.
PEEKER = RETYPED["adam"].replace("let t = ctx.step as i32;",
                                 "let t = ctx.step as i32;\n        let _ = ctx.loss_at(params);")


def _harness(home: Path, name: str) -> Harness:
    """As tools/_common.py harness_for builds it: the lab's trusted harness, the experiment's binary."""
    lab = Lab(home)
    trusted = lab.harness()
    assert trusted is not None
    limits = Limits()
    return Harness(binary=trusted, candidate=lab.binary(name), secret=lab.secret(),
                   sandbox=Sandbox(limits=limits), limits=limits, workers=1)


@pytest.mark.slow
@pytest.mark.anyio
async def test_retyped_baselines_are_named_and_other_optimizers_are_not(client: Client, lab_home: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    cases: dict[str, tuple[str, str | None]] = {f"probe_{b}_{tag}": (src, b) for b, src in RETYPED.items()}
    cases[f"probe_example_{tag}"] = (example_source(), None)
    cases[f"probe_belief_{tag}"] = (DIFFERENT, None)
    cases[f"probe_peeker_{tag}"] = (PEEKER, None)
    for name, (source, _) in cases.items():
        await compiled(client, name, source)
    seconds = []
    for name, (_, expected) in cases.items():
        started = time.perf_counter()
        found = await P.probe_rediscovery(_harness(lab_home, name), BASELINES)
        seconds.append(time.perf_counter() - started)
        if expected is None:
            assert found is None, (name, found)
            continue
        assert found is not None, name
        assert (found["baseline"], found["lr_scale"]) == (expected, 1.0), (name, found)
        assert found["max_rel_diff"] <= 1e-10, (name, found)
    # Named with the matching hyperparameters (the defaults these were written with).
    adamw = await P.probe_rediscovery(_harness(lab_home, f"probe_adamw_{tag}"), BASELINES)
    assert adamw is not None and adamw["settings"]["weight_decay"] == 0.01 and adamw["settings"]["beta2"] == 0.999
    # Baseline trajectories are cached per harness binary: after the first probe, a candidate
    # costs its own replay only (`pytest -s` prints the times).
    print("probe seconds per candidate (first one replays the baselines too):", [round(s, 3) for s in seconds])
    assert max(seconds[1:]) < 2.0, seconds
