//! `replay` with many runs per process, and through a candidate's own process (`--candidate`).
#![forbid(unsafe_code)]

use frontier_bench::replay::{replay, NO_ORACLE};
use frontier_core::{Optimizer, StepContext, Tensor};
mod common;

use common::{bin, script};


/// A small deterministic probe: three tensors at very different gradient scales, 30 steps.
fn body(steps: usize) -> String {
    let mut s = String::from("shapes 3 2x2 1\ninit 1.0 -0.5 0.25 0.3 -0.7 0.9 -0.1 2.0\n");
    let mut x: u64 = 12345;
    for t in 0..steps {
        s += &format!("loss {}\ngrad", 1.0 / (t as f64 + 1.0));
        for k in 0..8 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let scale = [1.0, 1.0, 1.0, 1e-6, 1e-6, 1e-6, 1e-6, 100.0][k];
            s += &format!(" {:?}", scale * (u + 0.1 * (t as f64 + 1.0).sin()));
        }
        s.push('\n');
    }
    s + "end\n"
}

fn runs_of(out: &str) -> Vec<(String, Vec<String>)> {
    let mut runs = Vec::new();
    let mut cur = Vec::new();
    for line in out.lines() {
        if let Some(id) = line.strip_prefix("done id=") {
            runs.push((id.to_string(), std::mem::take(&mut cur)));
        } else if line.starts_with("error id=") {
            runs.push((line.to_string(), std::mem::take(&mut cur)));
        } else {
            cur.push(line.to_string());
        }
    }
    assert!(cur.is_empty(), "trailing output: {out}");
    runs
}

#[test]
fn a_served_baseline_replays_bit_for_bit_like_the_baseline_in_process() {
    let served = script("adam", &format!("exec {} serve adam", env!("CARGO_BIN_EXE_frontier-bench")));
    let mut input = String::new();
    for lr in ["0.001", "0.01", "0.1"] {
        input += &format!("optimizer=adam lr={lr} id=base-{lr}\n{}", body(30));
        input += &format!("optimizer=candidate lr={lr} id=cand-{lr}\n{}", body(30));
    }
    let (out, code) = bin(&["replay", "--candidate", &served, "--run-timeout-ms", "20000"], &input);
    assert_eq!(code, 0, "{out}");
    let runs = runs_of(&out);
    assert_eq!(runs.len(), 6, "{out}");
    for pair in runs.chunks(2) {
        assert!(pair[0].0.starts_with("base-") && pair[1].0.starts_with("cand-"), "{:?}", (&pair[0].0, &pair[1].0));
        assert_eq!(pair[0].1.len(), 30);
        assert_eq!(pair[0].1, pair[1].1, "the served Adam differs from the in-process one");
    }
    // Different learning rates are different trajectories.
    assert_ne!(runs[0].1, runs[2].1);

    // Without --candidate there is no candidate; the error ends only that run.
    let input = format!("optimizer=candidate lr=0.1 id=1\n{}optimizer=sgd lr=0.1 id=2\n{}", body(3), body(3));
    let (out, code) = bin(&["replay"], &input);
    assert_eq!(code, 0, "{out}");
    let runs = runs_of(&out);
    assert!(runs[0].0.starts_with("error id=1 this harness was given no candidate"), "{out}");
    assert_eq!((runs[1].0.as_str(), runs[1].1.len()), ("2", 3), "{out}");
}

#[test]
fn a_broken_candidate_fails_only_its_own_replay_and_knobs_are_checked() {
    let quits = script("quits", "exit 0");
    let served = script("sgd", &format!("exec {} serve sgd", env!("CARGO_BIN_EXE_frontier-bench")));
    let input = format!(
        "optimizer=candidate lr=0.1 id=a\n{}optimizer=adam lr=0.1 id=b\n{}",
        body(2),
        body(2)
    );
    let (out, code) = bin(&["replay", "--candidate", &quits], &input);
    assert_eq!(code, 0, "{out}");
    let runs = runs_of(&out);
    assert!(runs[0].0.starts_with("error id=a the candidate process ended"), "{out}");
    assert_eq!(runs[1].0, "b");

    // knob.* is for the candidate, and only for knobs it declares (a served baseline declares none).
    let input = format!(
        "optimizer=adam lr=0.1 knob.beta=0.5 id=1\n{}optimizer=candidate lr=0.1 knob.beta=0.5 id=2\n{}\
         optimizer=candidate lr=0.1 switch.x=0 id=3\n{}optimizer=candidate lr=0.1 id=4\n{}",
        body(2),
        body(2),
        body(2),
        body(2)
    );
    let (out, code) = bin(&["replay", "--candidate", &served], &input);
    assert_eq!(code, 0, "{out}");
    let runs = runs_of(&out);
    assert!(runs[0].0.starts_with("error id=1 knob.* and switch.* are for the candidate"), "{out}");
    assert!(runs[1].0.starts_with("error id=2 knobs: knob 'beta' is not declared"), "{out}");
    assert!(runs[2].0.starts_with("error id=3 switches: switch 'x' is not declared"), "{out}");
    assert_eq!((runs[3].0.as_str(), runs[3].1.len()), ("4", 2), "{out}");

    // A malformed run with an id is skipped to its `end`; the next run is read from its own head.
    let input = format!("optimizer=sgd lr=0.1 id=x\nshapes 2\ninit 1\ngrad 1 1\nend\noptimizer=sgd lr=0.1 id=y\n{}", body(1));
    let (out, _) = bin(&["replay"], &input);
    let runs = runs_of(&out);
    assert!(runs[0].0.starts_with("error id=x init: expected 2 values"), "{out}");
    assert_eq!(runs[1].0, "y");
}

struct Peeker;
impl Optimizer for Peeker {
    fn step(&mut self, params: &mut [Tensor], _grads: &[Tensor], ctx: &StepContext) {
        let loss = ctx.loss_at(params);
        params[0].data[0] = loss;
    }
}

struct Echo;
impl Optimizer for Echo {
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        params[0].data[0] = ctx.loss;
        params[0].data[1] = ctx.budget_left() as f64;
        params[0].data[2] = grads[0].data[0] * ctx.lr;
    }
}

fn replay_with(input: &str, make: fn() -> Box<dyn Optimizer>) -> Result<String, String> {
    let mut out = Vec::new();
    let build = |_: &str, _: &[(String, f64)]| Ok(make());
    replay(&mut input.as_bytes(), &mut out, &build).map(|()| String::from_utf8(out).unwrap())
}

#[test]
fn an_oracle_call_voids_the_replay_and_the_context_is_a_runs() {
    let input = format!("optimizer=candidate lr=0.5 id=1\n{}", body(3));
    let out = replay_with(&input, || Box::new(Peeker)).unwrap();
    assert_eq!(out.trim(), format!("error id=1 panic: {NO_ORACLE}"), "{out}");
    // Without an id the error ends the replay.
    let input = format!("optimizer=candidate lr=0.5\n{}", body(3));
    assert_eq!(replay_with(&input, || Box::new(Peeker)), Err(format!("panic: {NO_ORACLE}")));

    // ctx.loss comes from the `loss` line before the step (NaN without one); the budget left is
    // what a run with eval_budget=steps has left after paying for the step's gradient.
    let input = "optimizer=candidate lr=0.5\nshapes 3\ninit 0 0 0\nloss 2.5\ngrad 4 0 0\ngrad 1 0 0\ngrad 2 0 0\nend\n";
    let out = replay_with(input, || Box::new(Echo)).unwrap();
    assert_eq!(out, "params 2.5 2.0 2.0\nparams NaN 1.0 0.5\nparams NaN 0.0 1.0\n");
}
