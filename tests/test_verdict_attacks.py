"""Attacks on the verdict, not the machine: each one tries to get a number into the archive that the
trusted harness did not compute. They go past the source checks (written straight into the archive,
as a bypass of the checks would), are compiled by real cargo and benchmarked through the real tools:
the process boundary alone must hold.

Every run of a candidate is a fresh process that holds only the optimizer; the harness process,
which the candidate cannot read or write, owns the problem instance, the oracle budget and every
loss it reports.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from .conftest import call, call_error
from .test_hostile import (  # noqa: F401  (fixtures)
    _benchmark,
    _forced,
    all_candidate_runs_failed,
    fake_home,
    hostile,
    snapshot,
    trial_errors,
    warm_baselines,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.hostile]

SGD_STEP = """
        for (p, g) in params.iter_mut().zip(grads) {
            for (x, d) in p.data.iter_mut().zip(&g.data) { *x -= ctx.lr * d; }
        }"""

# State across runs: a thread-local and a static count the optimizers this process has built.
# If two runs ever shared a process, the second would panic and say so.
CARRY_STATE = """use frontier_core::{Optimizer, StepContext, Tensor};
use std as s;
thread_local! { static SEEN: s::cell::Cell<u64> = const { s::cell::Cell::new(0) }; }
static BUILDS: s::sync::atomic::AtomicU64 = s::sync::atomic::AtomicU64::new(0);
pub struct Carry;
pub fn build() -> impl Optimizer + 'static {
    let before = BUILDS.fetch_add(1, s::sync::atomic::Ordering::SeqCst);
    let seen = SEEN.with(|c| { let v = c.get(); c.set(v + 1); v });
    if before > 0 || seen > 0 { panic!("STATE-SURVIVED builds={before} seen={seen}"); }
    Carry
}
impl Optimizer for Carry {
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {""" + SGD_STEP + """
    }
}
"""

# Unlimited oracle calls inside one step (an inner L-BFGS loop, say): fifty gradients a step.
GREEDY = """use frontier_core::{Optimizer, StepContext, Tensor};
use std as s;
pub struct Greedy;
pub fn build() -> impl Optimizer + 'static { let _ = s::mem::size_of::<u8>(); Greedy }
impl Optimizer for Greedy {
    fn step(&mut self, params: &mut [Tensor], _grads: &[Tensor], ctx: &StepContext) {
        for _ in 0..50 {
            let g = ctx.grad_at(params);
            for (p, gt) in params.iter_mut().zip(&g) {
                for (x, d) in p.data.iter_mut().zip(&gt.data) { *x -= ctx.lr * d; }
            }
        }
    }
}
"""

# Forged results: a perfect result line for every plausible run id on stdout, from build() on.
FORGER = """use frontier_core::{Optimizer, StepContext, Tensor};
use std as s;
use s::io::Write;
pub struct Forger;
pub fn build() -> impl Optimizer + 'static {
    let mut out = s::io::stdout().lock();
    for id in 0..2000 {
        let _ = writeln!(out, "{{\\"id\\":{id},\\"optimizer\\":\\"candidate\\",\\"final_loss\\":0.0}}");
    }
    let _ = out.flush();
    Forger
}
impl Optimizer for Forger {
    fn step(&mut self, _params: &mut [Tensor], _grads: &[Tensor], _ctx: &StepContext) {}
}
"""

# A look at the harness's own stdin (the plan, with instance keys) and memory through /proc.
PEEKER = """use frontier_core::{Optimizer, StepContext, Tensor};
use std as s;
pub struct Peeker;
pub fn build() -> impl Optimizer + 'static { Peeker }
impl Optimizer for Peeker {
    fn step(&mut self, _params: &mut [Tensor], _grads: &[Tensor], _ctx: &StepContext) {
        let parent = s::os::unix::process::parent_id();
        let plan = s::fs::read(format!("/proc/{parent}/fd/0")).map(|b| b.len()).map_err(|e| e.to_string());
        let mem = s::fs::File::open(format!("/proc/{parent}/mem")).map(|_| ()).map_err(|e| e.to_string());
        panic!("PEEKER plan={plan:?} mem={mem:?}");
    }
}
"""

# Memory corruption from safe code, through a long-open soundness hole of the compiler (lifetime
# expansion through an implied bound, rust-lang/rust#25860): a write through a dangling reference
# every step. Whatever it corrupts is in the candidate's own process.
UNSOUND = """use frontier_core::{Optimizer, StepContext, Tensor};
use std as s;
fn helper<'a, 'b, T: ?Sized>(_: &'a &'b (), v: &'b mut T) -> &'a mut T { v }
fn expand<'a, 'b, T: ?Sized>(x: &'a mut T) -> &'b mut T {
    let f: for<'x> fn(_, &'x mut T) -> &'b mut T = helper;
    f(&&(), x)
}
pub struct Unsound;
pub fn build() -> impl Optimizer + 'static { Unsound }
impl Optimizer for Unsound {
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        let dangling: &'static mut [f64] = { let mut b = vec![0.0f64; 64]; expand(&mut b[..]) };
        let victim = s::hint::black_box(vec![1.0f64; 64]);
        for x in dangling.iter_mut() { *x = 0.0; }
        s::hint::black_box(&victim);""" + SGD_STEP + """
    }
}
"""


async def attacked(client: Client, home: Path, name: str, source: str) -> tuple[int, dict, list[str]]:
    before = snapshot(home)
    exp_id = await _forced(client, home, name, source)
    status = await _benchmark(client, exp_id)
    assert status["status"] == "done", status
    assert snapshot(home)["integrity"] == "ok"
    assert snapshot(home)["benchmark_runs"] == before["benchmark_runs"] + 1
    return exp_id, status, trial_errors(home, exp_id)


async def refuses_a_win(client: Client, exp_id: int) -> None:
    refused = await call_error(client, "record_result", {"experiment_id": exp_id, "verdict": "win"})
    assert "not recorded" in refused


async def test_nothing_a_run_keeps_reaches_the_next_run(hostile: Client, lab_home: Path) -> None:
    _, status, errors = await attacked(hostile, lab_home, "carry_state", CARRY_STATE)
    assert not [e for e in errors if "STATE-SURVIVED" in e], errors[:3]
    assert all(p["candidate"]["diverged"] == 0 for p in status["report"]["problems"]), status["report"]["problems"]


async def test_oracle_calls_past_the_budget_void_every_run(hostile: Client, lab_home: Path) -> None:
    exp_id, status, errors = await attacked(hostile, lab_home, "greedy_oracle", GREEDY)
    # Each run either blew up on its own (large tuning rates) or was voided at the first call past
    # its budget; none finished, none was credited.
    voided = [e for e in errors if "oracle budget exceeded" in e]
    assert len(voided) > len(errors) / 2 and all(e in voided or not e for e in errors), errors[:3]
    all_candidate_runs_failed(status)
    assert status["report"]["outcome"] == "loss"
    await refuses_a_win(hostile, exp_id)


async def test_forged_result_lines_and_a_look_at_the_harness_fail_only_the_forger(hostile: Client,
                                                                                 lab_home: Path) -> None:
    exp_id, status, errors = await attacked(hostile, lab_home, "forger", FORGER)
    all_candidate_runs_failed(status)
    assert all("broke the run protocol" in e for e in errors), errors[:3]
    # Its stdout is a pipe to the harness, which reads frames, not JSON: no forged line counted.
    assert status["report"]["outcome"] == "loss"
    await refuses_a_win(hostile, exp_id)


async def test_the_harness_is_closed_to_its_candidates(hostile: Client, lab_home: Path) -> None:
    _, _, errors = await attacked(hostile, lab_home, "peeker", PEEKER)
    seen = next(e for e in errors if "PEEKER" in e)
    assert "plan=Err(" in seen and "mem=Err(" in seen, seen
    assert "instance=" not in seen


async def test_memory_corruption_from_safe_code_stays_in_the_candidates_process(hostile: Client,
                                                                                lab_home: Path) -> None:
    exp_id, status, _ = await attacked(hostile, lab_home, "unsound", UNSOUND)
    for problem in status["report"]["problems"]:
        # Whatever the candidate's process did to itself, the losses are the harness's own.
        assert problem["candidate"]["runs"] == 8
        assert problem["candidate"]["median_final_loss"] is None or problem["candidate"]["median_final_loss"] > 0
    # The baselines it is judged against are the cached ones, untouched by anything it did.
    assert status["report"]["baseline_cache"] == "hit"
    page = await call(hostile, "history", {"limit": 1})
    assert page["rows"][0]["id"] == exp_id
