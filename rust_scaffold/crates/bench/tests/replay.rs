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

fn replay_baselines(input: &str) -> Result<String, String> {
    let mut out = Vec::new();
    replay(&mut input.as_bytes(), &mut out, &frontier_baselines::build).map(|()| String::from_utf8(out).unwrap())
}

fn lines_of<'a>(out: &'a str, tag: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.split_whitespace().next() == Some(tag)).collect()
}

#[test]
fn eval_1_prints_the_point_the_optimizer_hands_over() {
    let body = "shapes 2\ninit 1.0 -1.0\ngrad 0.5 -0.25\ngrad 0.25 0.5\ngrad -0.5 0.125\nend\n";
    // Schedule-Free hands over x = lerp(y, z, 1 - 1/beta1), which leaves y after the first step.
    let out = replay_baselines(&format!("optimizer=schedulefree_adamw lr=0.1 eval=1\n{body}")).unwrap();
    let (params, evals) = (lines_of(&out, "params"), lines_of(&out, "eval"));
    assert_eq!((params.len(), evals.len()), (3, 3), "{out}");
    assert!(out.lines().zip(out.lines().skip(1)).step_by(2).all(|(a, b)| a.starts_with("params") && b.starts_with("eval")));
    assert_ne!(params[2]["params".len()..], evals[2]["eval".len()..], "{out}");
    let mut opt = frontier_baselines::build("schedulefree_adamw", &[]).unwrap();
    let mut p = vec![Tensor::from_vec(&[2], vec![1.0, -1.0])];
    for (i, g) in [[0.5, -0.25], [0.25, 0.5], [-0.5, 0.125]].iter().enumerate() {
        frontier_baselines::step_with(opt.as_mut(), &mut p, &[Tensor::from_vec(&[2], g.to_vec())], 0.1, i as u64 + 1);
    }
    let x = opt.eval_params(&p).unwrap();
    assert_eq!(evals[2], format!("eval {:?} {:?}", x[0].data[0], x[0].data[1]));
    // Without eval_params the point is params itself; without eval=1 nothing changes.
    let out = replay_baselines(&format!("optimizer=adam lr=0.1 eval=1\n{body}")).unwrap();
    for (p, e) in lines_of(&out, "params").iter().zip(lines_of(&out, "eval")) {
        assert_eq!(p["params".len()..], e["eval".len()..]);
    }
    let out = replay_baselines(&format!("optimizer=schedulefree_adamw lr=0.1\n{body}")).unwrap();
    assert!(lines_of(&out, "eval").is_empty() && lines_of(&out, "params").len() == 3, "{out}");
    assert!(replay_baselines(&format!("optimizer=adam lr=0.1 eval=yes\n{body}")).unwrap_err().contains("eval=0 or eval=1"));
}

#[test]
fn basis_lines_overwrite_soaps_eigenbases_after_their_step() {
    use frontier_baselines::rules::soap::Soap;
    let grads = [[1.0, 0.0, 0.5, 0.25], [0.5, -1.0, 0.25, 0.5], [-0.25, 0.5, 1.0, -0.5], [0.75, 0.25, -0.5, 1.0]];
    let mut body = String::from("shapes 2x2\ninit 0.5 -0.5 0.25 1.0\n");
    // A rotation by 0.3 rad replaces the basis of dimension 1 after step 2.
    let (c, s) = (0.3f64.cos(), 0.3f64.sin());
    let q = [c, -s, s, c];
    for (i, g) in grads.iter().enumerate() {
        body += &format!("grad {} {} {} {}\n", g[0], g[1], g[2], g[3]);
        if i == 1 {
            body += &format!("basis 0 1 {:?} {:?} {:?} {:?}\n", q[0], q[1], q[2], q[3]);
        }
    }
    body += "end\n";
    let head = "optimizer=soap lr=0.1 opt.precondition_frequency=10";
    let injected = replay_baselines(&format!("{head}\n{body}")).unwrap();
    let own = replay_baselines(&format!("{head}\n{}", body.lines().filter(|l| !l.starts_with("basis")).collect::<Vec<_>>().join("\n") + "\n")).unwrap();
    let (a, b) = (lines_of(&injected, "params"), lines_of(&own, "params"));
    assert_eq!(a[..2], b[..2], "the basis applies only after its step");
    assert_ne!(a[3], b[3]);
    // The same as setting it on the concrete optimizer in process.
    let opts = [("precondition_frequency".to_string(), 10.0)];
    let mut soap = Soap::with_options(&opts).unwrap();
    let mut p = vec![Tensor::from_vec(&[2, 2], vec![0.5, -0.5, 0.25, 1.0])];
    for (i, g) in grads.iter().enumerate() {
        frontier_baselines::step_with(&mut soap, &mut p, &[Tensor::from_vec(&[2, 2], g.to_vec())], 0.1, i as u64 + 1);
        if i == 1 {
            soap.set_basis(0, 1, &q).unwrap();
        }
    }
    let want: Vec<String> = p[0].data.iter().map(|x| format!("{x:?}")).collect();
    assert_eq!(a[3], format!("params {}", want.join(" ")));
    // Basis lines are for soap, of the right size, after a grad line.
    let err = replay_baselines(&format!("optimizer=adam lr=0.1\n{body}")).unwrap_err();
    assert!(err.contains("basis lines are for optimizer=soap"), "{err}");
    let err = replay_baselines(&format!("{head}\n{}", body.replace("basis 0 1", "basis 0 1 1.0"))).unwrap_err();
    assert!(err.contains("expected 4 values"), "{err}");
    let err = replay_baselines(&format!("{head}\n{}", body.replace("basis 0 1", "basis 0 2"))).unwrap_err();
    assert!(err.contains("no such tensor dimension"), "{err}");
}
