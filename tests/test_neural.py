"""The neural suite through the real protocol: the lab's harness in the sandbox, one candidate process
per run, the modern baselines, held-out accuracy curves; and a claim that rests on it."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from frontier_mcp.protocol import SUITES, Harness, benchmark
from frontier_mcp.protocol.classes import class_of
from frontier_mcp.protocol.suites import ProblemSpec
from frontier_mcp.sandbox import Sandbox
from frontier_mcp.scaffold import Lab
from frontier_mcp.settings import Limits
from frontier_mcp.tools.record_result import Claim, refusal

from .conftest import compiled

# A candidate that uses the whole contract of a neural problem: sign steps on hidden matrices only
# (read from the tensor kinds), plain momentum elsewhere, and a running average as the point handed
# over for evaluation. It panics if the kinds were not sent, so a run that succeeds proves they were.
KIND_AWARE = """
use frontier_core::{Optimizer, ParamKind, StepContext, Tensor};

pub struct SignOnMatrices { m: Vec<Vec<f64>>, avg: Vec<Tensor>, n: f64 }

pub fn build() -> impl Optimizer + 'static { SignOnMatrices { m: Vec::new(), avg: Vec::new(), n: 0.0 } }

impl Optimizer for SignOnMatrices {
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        if self.m.is_empty() {
            self.m = params.iter().map(|p| vec![0.0; p.len()]).collect();
            self.avg = params.to_vec();
            assert!(ctx.kinds().len() == params.len(), "the harness sent no kinds");
        }
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let matrix = ctx.kind(i, p) == ParamKind::Matrix;
            for ((x, gj), mj) in p.as_mut_slice().iter_mut().zip(g.as_slice()).zip(self.m[i].iter_mut()) {
                *mj = 0.9 * *mj + *gj;
                let d = if matrix { if *mj > 0.0 { 0.1 } else if *mj < 0.0 { -0.1 } else { 0.0 } } else { *mj };
                *x -= ctx.lr * d;
            }
        }
        self.n += 1.0;
        let w = 1.0 / (self.n + 1.0);
        for (a, p) in self.avg.iter_mut().zip(params.iter()) {
            for (aj, xj) in a.as_mut_slice().iter_mut().zip(p.as_slice()) {
                *aj += w * (*xj - *aj);
            }
        }
    }
    fn eval_params(&self, _params: &[Tensor]) -> Option<Vec<Tensor>> {
        Some(self.avg.clone())
    }
}
"""


def _harness(home: Path, name: str) -> Harness:
    lab = Lab(home)
    trusted = lab.harness()
    assert trusted is not None
    limits = Limits()
    return Harness(binary=trusted, candidate=lab.binary(name), secret=lab.secret(),
                   sandbox=Sandbox(limits=limits), limits=limits, workers=2)


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_cut_down_neural_suite_runs_every_kind_of_modern_baseline(client: Client, lab_home: Path,
                                                                         tmp_path: Path) -> None:
    name = f"neural_{uuid.uuid4().hex[:6]}"
    await compiled(client, name, KIND_AWARE)
    neural = SUITES["neural"]
    suite = dataclasses.replace(
        neural, problems=(ProblemSpec("transformer-grammar", 30, accuracy_target=0.15),
                          ProblemSpec("grokking-mod-add-31", 40)),
        lr_grid=(1e-3, 1e-2), tuning_seeds=(0,), tuner_trials=0, eval_seeds=(400, 401, 402, 403),
        baselines=("adamw", "muon", "schedulefree_adamw", "soap"), curve_points=4)
    assert set(suite.baselines) <= set(neural.baselines)
    report, trials = await benchmark(_harness(lab_home, name), suite, cache_dir=tmp_path, toolchain_version="t",
                                     provenance={})
    assert {p.problem_class for p in report.problems} == {"neural"} and set(report.classes) == {"neural"}
    for problem in report.problems:
        for baseline in problem.baselines:
            # every modern rule ran: kinds reached Muon, Schedule-Free handed over its averaged point
            assert baseline.diverged < baseline.runs and baseline.median_final_loss is not None, (problem, baseline)
        assert problem.candidate.median_final_loss is not None and problem.candidate.diverged == 0, problem
        assert not problem.candidate_errors, problem.candidate_errors
    transformer = next(p for p in report.problems if p.problem == "transformer-grammar")
    # tuned baselines pass 15 % next-token accuracy (chance is 1/17) within 30 steps, at a recorded point
    assert transformer.accuracy_target == 0.15 and transformer.best_baseline_steps_to_accuracy is not None
    evals = [row for row in trials if row["phase"] == "eval" and row["problem"] == "transformer-grammar"]
    recorded = {point[0] for row in evals for point in row["accuracy_curve"]}
    assert 0 in recorded and 30 in recorded and len(recorded) >= suite.curve_points
    assert transformer.steps_to_accuracy is None or transformer.steps_to_accuracy in recorded
    assert transformer.candidate.median_test_accuracy is not None
    grokking = next(p for p in report.problems if p.problem == "grokking-mod-add-31")
    assert grokking.accuracy_target is None and grokking.steps_to_accuracy is None


def _claim_run(suite: str, **extra: Any) -> dict[str, Any]:
    classes = {"neural": {"outcome": "win", "geomean_ratio": 0.8, "wins": 2, "ties": 1, "losses": 0,
                          "pooled_p": 1e-5, "pairs": 24}}
    return {"benchmark_run_id": 7, "job_id": "j1", "suite": suite, "outcome": "win", "geomean_ratio": 0.8,
            "wins": 2, "ties": 1, "losses": 0, "rediscovery_of": None, "pooled_p": 1e-5, "pairs": 24,
            "classes": classes, **extra}


def test_a_win_on_the_neural_suite_needs_its_own_hidden_gate() -> None:
    assert SUITES["neural"].holdout == "holdout-neural"
    assert {class_of(p.name) for p in SUITES["neural"].problems} == {"neural"}
    gate = {"benchmark_run_id": 8, "job_id": "j1", "suite": "holdout-neural", "passed": True,
            "classes": {"neural": True}}
    never = lambda _job: False  # noqa: E731
    won = refusal("win", {"benchmarks": [_claim_run("neural"), gate]}, never)
    assert won == Claim(scope="suite:neural", p_value=1e-5, pairs=24)
    scoped = refusal("win", {"benchmarks": [_claim_run("neural"), gate]}, never, ["neural"])
    assert scoped == Claim(scope="neural", p_value=1e-5, pairs=24)
    failed = refusal("win", {"benchmarks": [_claim_run("neural"), {**gate, "passed": False,
                                                                    "classes": {"neural": False}}]}, never)
    assert isinstance(failed, str) and "'neural' did not pass the hidden holdout gate" in failed
    # the standard suite's gate does not vouch for a neural win
    other_job = {**gate, "suite": "holdout", "job_id": "j0"}
    missing = refusal("win", {"benchmarks": [other_job, _claim_run("neural")]}, never)
    assert isinstance(missing, str) and "not consulted after the 'neural' win" in missing
