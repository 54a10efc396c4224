//! The run loop of `runner::run` pinned rule by rule, on a one-parameter problem whose loss the test
//! chooses and optimizers that move it where the test says: divergence (NaN and ±inf losses at
//! every place the harness evaluates one, and the loss limit), the curve's points, the budget and
//! its schedule, the time limit, the evaluation point, the oracle's checks and the counters.
//! Each test kills mutants of runner.rs that the other tests let through (issue 17; the list is
//! in docs/mutation.md, made by scripts/mutants_rust.sh).
#![forbid(unsafe_code)]

use frontier_bench::plan::{parse_line, schedule, Decay};
use frontier_bench::runner::{run, RunResult};
use frontier_core::{Optimizer, Rng, StepContext, Tensor};
use frontier_problems::Problem;
use std::time::Duration;

/// One parameter x. The loss is x itself, except above `cut`, where it is `bad` on the whole set
/// (`full_bad`) and/or on minibatches (`batch_bad`). With `data`, it is a problem with data (the
/// harness draws minibatches of 2 from 8 rows); without, the loss is exact.
#[derive(Clone, Copy)]
struct Toy {
    init: f64,
    cut: f64,
    bad: f64,
    data: bool,
    full_bad: bool,
    batch_bad: bool,
    /// Every loss call sleeps this long (for the timing counters).
    sleep_ms: u64,
}

const TOY: Toy = Toy { init: 1.0, cut: f64::INFINITY, bad: f64::NAN, data: false, full_bad: true, batch_bad: true, sleep_ms: 0 };

impl Problem for Toy {
    fn name(&self) -> &str {
        "toy"
    }
    fn shapes(&self) -> Vec<Vec<usize>> {
        vec![vec![1]]
    }
    fn init(&self, _rng: &mut Rng) -> Vec<Tensor> {
        vec![Tensor::from_vec(&[1], vec![self.init])]
    }
    fn loss_grad(&self, params: &[Tensor], batch: Option<&[usize]>, grads: &mut [Tensor]) -> f64 {
        grads[0].data[0] = 1.0;
        self.loss(params, batch)
    }
    fn loss(&self, params: &[Tensor], batch: Option<&[usize]>) -> f64 {
        std::thread::sleep(Duration::from_millis(self.sleep_ms));
        let x = params[0].data[0];
        let bad_here = if batch.is_some() { self.batch_bad } else { self.full_bad };
        if x > self.cut && bad_here {
            self.bad
        } else {
            x
        }
    }
    fn train_size(&self) -> Option<usize> {
        self.data.then_some(8)
    }
    fn batch_size(&self) -> usize {
        if self.data {
            2
        } else {
            0
        }
    }
    fn has_data(&self) -> bool {
        self.data
    }
    fn version(&self) -> u32 {
        1
    }
}

/// Sets x to `f(step)` at every step: x is 1 + t after step t with `|t| 1.0 + t as f64`.
struct Walk(fn(u64) -> f64);
impl Optimizer for Walk {
    fn step(&mut self, p: &mut [Tensor], _g: &[Tensor], ctx: &StepContext) {
        p[0].data[0] = (self.0)(ctx.step);
    }
}

fn one_plus_t(t: u64) -> f64 {
    1.0 + t as f64
}

fn run_with(problem: &dyn Problem, make: &dyn Fn() -> Box<dyn Optimizer>, args: &str) -> RunResult {
    let spec = parse_line(&format!("id=1 optimizer=candidate problem=toy lr=0.1 seed=1 {args}")).unwrap();
    run(problem, make, &spec)
}

fn walk(problem: &Toy, args: &str) -> RunResult {
    run_with(problem, &|| Box::new(Walk(one_plus_t)), args)
}

fn json(r: &RunResult, args: &str) -> String {
    let spec = parse_line(&format!("id=1 optimizer=candidate problem=toy lr=0.1 seed=1 {args}")).unwrap();
    r.to_json(&spec, 1)
}

const NON_FINITE: [f64; 3] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];

/// A run whose loss turns NaN (or ±inf) between two curve points, on the loss the harness
/// computes for the step (exact, or on the minibatch), with the parameters still finite: diverged
/// at that step, no final loss, the curve as it was. (A NaN treated as finite would run on and end
/// with a NaN "final loss" and diverged false.)
#[test]
fn a_non_finite_step_loss_between_curve_points_diverges() {
    for bad in NON_FINITE {
        for data in [false, true] {
            // x = 4 after step 3: the loss of step 4 is bad; the curve's points are 0 and 10 only.
            let toy = Toy { cut: 3.5, bad, data, ..TOY };
            let args = "steps=10 curve_points=2";
            let r = walk(&toy, args);
            let what = format!("bad={bad} data={data}: {r:?}");
            assert!(r.diverged && r.error.is_none(), "{what}");
            assert_eq!((r.steps_done, r.grad_evals), (3, 4), "{what}");
            assert_eq!(r.final_loss, None, "{what}");
            assert_eq!(r.curve, vec![(0, 1.0)], "{what}");
            // Without data the steps' losses (1, 2, 3) count for the best loss; with data only the
            // full losses do (the initial 1).
            assert_eq!(r.best_loss, Some(1.0), "{what}");
            assert_eq!((r.train_accuracy, r.test_accuracy), (None, None), "{what}");
            let j = json(&r, args);
            assert!(j.contains(r#""steps_done":3,"diverged":true"#) && j.contains(r#""final_loss":null"#), "{j}");
        }
    }
}

/// x is 1 except after step 4, where it jumps far above the loss limit (1e3 x the initial loss 1).
fn spike_at_4(t: u64) -> f64 {
    if t == 4 {
        1e7
    } else {
        1.0
    }
}

/// x is 1 except after step 4, where it is NaN.
fn nan_at_4(t: u64) -> f64 {
    if t == 4 {
        f64::NAN
    } else {
        1.0
    }
}

/// The server asks tuning runs for two curve points (the start and the end: only their final loss is
/// read), evaluation runs for 40. A tuning run that blows up between those two points and comes back
/// before the end (a finite loss above the limit, or NaN parameters, for one step) is still a
/// divergence, at the same step as with 40 points: the harness checks every step's loss and
/// parameters, not only the curve's points. (Step 4 is no point of `curve_steps(100, 40)`.)
#[test]
fn a_tuning_run_that_diverges_between_its_two_curve_points_is_a_divergence() {
    assert!(!frontier_bench::plan::curve_steps(100, 40).contains(&4));
    for data in [false, true] {
        for (walk_to, name) in [(spike_at_4 as fn(u64) -> f64, "spike"), (nan_at_4, "nan")] {
            let toy = Toy { data, ..TOY };
            let run = |points: usize| {
                run_with(&toy, &move || Box::new(Walk(walk_to)), &format!("steps=100 curve_points={points}"))
            };
            let (tuning, evaluation) = (run(2), run(40));
            let what = format!("{name} data={data}: {tuning:?}");
            assert!(tuning.diverged && tuning.error.is_none(), "{what}");
            assert_eq!(tuning.final_loss, None, "{what}");
            // The spike shows in the loss of step 5 (evaluated at x = 1e7); NaN parameters right after step 4.
            let (steps_done, grad_evals) = if name == "spike" { (4, 5) } else { (4, 4) };
            assert_eq!((tuning.steps_done, tuning.grad_evals), (steps_done, grad_evals), "{what}");
            assert_eq!(tuning.curve, vec![(0, 1.0)], "{what}");
            assert!(json(&tuning, "steps=100 curve_points=2").contains(r#""diverged":true"#), "{what}");
            // What tuning reads is what 40 points would have given.
            let read = |r: &RunResult| (r.diverged, r.final_loss, r.steps_done, r.grad_evals, r.error.clone());
            assert_eq!(read(&tuning), read(&evaluation), "{what} vs 40 points: {evaluation:?}");
            // The same walk without the jump ends cleanly, with its final loss from the last point.
            let calm = run_with(&toy, &|| Box::new(Walk(|_| 1.0)), "steps=100 curve_points=2");
            assert!(!calm.diverged && calm.final_loss == Some(1.0) && calm.curve == vec![(0, 1.0), (100, 1.0)]);
        }
    }
}

/// The full loss at a curve point is NaN (or ±inf) while every minibatch loss is finite: the run
/// diverged at that point (steps_done counts the step), with no final loss.
#[test]
fn a_non_finite_full_loss_at_a_curve_point_diverges_though_the_minibatch_loss_is_finite() {
    for bad in NON_FINITE {
        let toy = Toy { cut: 3.5, bad, data: true, batch_bad: false, ..TOY };
        let args = "steps=10 curve_points=11";
        let r = walk(&toy, args);
        let what = format!("bad={bad}: {r:?}");
        assert!(r.diverged && r.error.is_none(), "{what}");
        assert_eq!(r.steps_done, 3, "{what}");
        assert_eq!(r.curve, vec![(0, 1.0), (1, 2.0), (2, 3.0)], "{what}");
        assert_eq!((r.final_loss, r.best_loss), (None, Some(1.0)), "{what}");
        assert!(json(&r, args).contains(r#""final_loss":null"#), "{what}");
        // The same losses with the bad value on minibatches only: never seen by a full evaluation,
        // but the step's own loss diverges the run at step 4.
        let r = walk(&Toy { full_bad: false, batch_bad: true, ..toy }, args);
        assert!(r.diverged && r.steps_done == 3 && r.final_loss.is_none(), "bad={bad}: {r:?}");
        assert_eq!(r.curve.last(), Some(&(3, 4.0)), "bad={bad}: {r:?}");
    }
}

/// A run stopped by its budget between curve points gets a final point at its last step; a NaN
/// (or ±inf) full loss there diverges it too.
#[test]
fn a_non_finite_full_loss_at_the_final_point_diverges() {
    for bad in NON_FINITE {
        let toy = Toy { cut: 3.5, bad, data: true, batch_bad: false, ..TOY };
        let r = walk(&toy, "steps=10 curve_points=2 eval_budget=3");
        assert!(r.diverged && r.budget_exhausted && r.error.is_none(), "bad={bad}: {r:?}");
        assert_eq!((r.steps_done, r.final_loss), (3, None), "bad={bad}: {r:?}");
        assert_eq!(r.curve, vec![(0, 1.0)], "bad={bad}: {r:?}");
    }
}

#[test]
fn a_non_finite_initial_loss_diverges_before_the_first_step() {
    for bad in NON_FINITE {
        let r = walk(&Toy { cut: 0.0, bad, ..TOY }, "steps=10");
        assert!(r.diverged && r.steps_done == 0 && r.grad_evals == 0, "bad={bad}: {r:?}");
        assert_eq!(r.error.as_deref(), Some("non-finite initial loss"));
        assert!(r.curve.is_empty() && r.final_loss.is_none() && r.best_loss.is_none(), "bad={bad}: {r:?}");
    }
}

/// Sets x to a fixed value at every step.
struct Jump(f64);
impl Optimizer for Jump {
    fn step(&mut self, p: &mut [Tensor], _g: &[Tensor], _ctx: &StepContext) {
        p[0].data[0] = self.0;
    }
}

/// A finite loss above 1e3 × max(initial loss, 1) is a divergence; up to it, included, it is not.
#[test]
fn the_loss_limit_is_a_thousand_times_the_initial_loss() {
    for (init, to, diverged) in [
        (10.0, 5_000.0, false),
        (10.0, 10_000.0, false),
        (10.0, 10_000.001, true),
        (10.0, 20_000.0, true),
        (0.5, 1_000.0, false),
        (0.5, 1_000.001, true),
        (10.0, f64::NEG_INFINITY, true),
    ] {
        let r = run_with(&Toy { init, ..TOY }, &|| Box::new(Jump(to)), "steps=3 curve_points=2");
        let what = format!("x {init} -> {to}: {r:?}");
        assert_eq!(r.diverged, diverged, "{what}");
        if diverged {
            // The loss of step 2 is the first at the new x.
            assert_eq!((r.steps_done, r.final_loss), (1, None), "{what}");
        } else {
            assert_eq!((r.steps_done, r.final_loss), (3, Some(to)), "{what}");
            assert_eq!(r.curve, vec![(0, init), (3, to)], "{what}");
        }
    }
}

/// The curve has a point at each of `curve_steps` and nowhere else (no repeated last point); a
/// run stopped early by its budget ends with a point at its last step, which is its final loss; a
/// run that spends its budget exactly at its last step is not "budget_exhausted".
#[test]
fn the_curve_has_exactly_its_points() {
    let r = walk(&TOY, "steps=10 curve_points=3");
    assert!(!r.diverged && !r.budget_exhausted && !r.time_limited, "{r:?}");
    assert_eq!(r.curve, vec![(0, 1.0), (5, 6.0), (10, 11.0)]);
    assert_eq!((r.final_loss, r.best_loss), (Some(11.0), Some(1.0)));

    let r = walk(&TOY, "steps=10 curve_points=11");
    assert_eq!(r.curve, (0..=10).map(|t| (t, 1.0 + t as f64)).collect::<Vec<_>>());

    let r = walk(&TOY, "steps=10 curve_points=3 eval_budget=7");
    assert!(r.budget_exhausted && !r.diverged && r.steps_done == 7, "{r:?}");
    assert_eq!(r.curve, vec![(0, 1.0), (5, 6.0), (7, 8.0)]);
    assert_eq!(r.final_loss, Some(8.0));

    let r = walk(&TOY, "steps=10 curve_points=3 eval_budget=10");
    assert!(!r.budget_exhausted && !r.diverged && r.steps_done == 10 && r.grad_evals == 10, "{r:?}");
    assert_eq!(r.curve, vec![(0, 1.0), (5, 6.0), (10, 11.0)]);
}

/// Spends one loss evaluation per step and checks, before it, the budget left and the learning
/// rate the harness announced: after step t-1, the run has spent t gradients (this step's
/// included) and t-1 losses, and the schedule runs on that count.
struct Ledger;
impl Optimizer for Ledger {
    fn step(&mut self, p: &mut [Tensor], _g: &[Tensor], ctx: &StepContext) {
        let used = 2 * ctx.step - 1;
        assert_eq!(ctx.budget_left(), 60 - used, "budget left at step {}", ctx.step);
        let lr = 0.001 * schedule(0.2, Decay::Cosine, used, 60);
        assert_eq!(ctx.lr.to_bits(), lr.to_bits(), "lr at step {}: {} != {lr}", ctx.step, ctx.lr);
        let l = ctx.loss_at(p);
        assert_eq!(l.to_bits(), ctx.loss.to_bits());
        p[0].data[0] += 1.0;
    }
}

#[test]
fn the_budget_and_the_schedule_count_every_evaluation() {
    let spec = parse_line("id=1 optimizer=candidate problem=toy lr=0.001 seed=1 steps=30 eval_budget=60 warmup=0.2 decay=cosine")
        .unwrap();
    let r = run(&TOY, &|| Box::new(Ledger), &spec);
    assert!(r.error.is_none() && !r.diverged, "{r:?}");
    assert_eq!((r.steps_done, r.grad_evals, r.loss_evals), (30, 30, 30), "{r:?}");
    assert!(!r.budget_exhausted, "the budget was spent exactly at the last step: {r:?}");
}

/// Sleeps `ms` in every step.
struct Nap(u64);
impl Optimizer for Nap {
    fn step(&mut self, p: &mut [Tensor], _g: &[Tensor], _ctx: &StepContext) {
        std::thread::sleep(Duration::from_millis(self.0));
        p[0].data[0] += 1.0;
    }
}

/// The time limit stops a run that passes it before its last step (not a divergence: the final
/// loss is taken where it stopped), and only such a run.
#[test]
fn the_time_limit_stops_a_run_before_its_last_step_only() {
    // 2 ms a step against 20 ms: stops after about 10 of 200 steps.
    let r = run_with(&TOY, &|| Box::new(Nap(2)), "steps=200 curve_points=3 time_limit_ms=20");
    assert!(r.time_limited && !r.diverged && !r.budget_exhausted, "{r:?}");
    // After step t at least 2t ms have passed: it stops at step 11 at the latest.
    assert!((1..=11).contains(&r.steps_done), "{r:?}");
    let last = 1.0 + r.steps_done as f64;
    assert_eq!((r.curve.last(), r.final_loss), (Some(&(r.steps_done, last)), Some(last)), "{r:?}");
    // Past the limit only during its last step: the run is complete, not limited.
    let r = run_with(&TOY, &|| Box::new(Nap(5)), "steps=1 time_limit_ms=1");
    assert!(!r.time_limited && r.steps_done == 1 && r.final_loss == Some(2.0), "{r:?}");
    // Far within the limit.
    let r = walk(&TOY, "steps=50 time_limit_ms=600000");
    assert!(!r.time_limited && r.steps_done == 50, "{r:?}");
}

/// Steps like SGD and hands over zeros as its evaluation point.
struct ZeroEval;
impl Optimizer for ZeroEval {
    fn step(&mut self, p: &mut [Tensor], g: &[Tensor], ctx: &StepContext) {
        for (pt, gt) in p.iter_mut().zip(g) {
            for (x, d) in pt.data.iter_mut().zip(&gt.data) {
                *x -= ctx.lr * d;
            }
        }
    }
    fn eval_params(&self, p: &[Tensor]) -> Option<Vec<Tensor>> {
        Some(p.iter().map(|t| Tensor::new(&t.shape)).collect())
    }
}

/// The run's final point is the evaluation point: the parameters handed back, the final loss and
/// both accuracies are those of the zeros, not of the SGD iterate.
#[test]
fn the_final_point_is_the_evaluation_point() {
    let problem = frontier_problems::instance("logreg-breast-cancer", 0).unwrap();
    let spec = parse_line("id=1 optimizer=candidate problem=logreg-breast-cancer lr=0.05 seed=2 steps=20 curve_points=3").unwrap();
    let r = run(problem.as_ref(), &|| Box::new(ZeroEval), &spec);
    assert!(r.error.is_none() && !r.diverged, "{r:?}");
    let zeros: Vec<Tensor> = problem.shapes().iter().map(|s| Tensor::new(s)).collect();
    assert!(r.params.iter().all(|t| t.data.iter().all(|&x| x == 0.0)), "{:?}", r.params);
    assert_eq!(r.final_loss, Some(problem.loss(&zeros, None)));
    assert_eq!(r.test_accuracy, problem.test_accuracy(&zeros));
    assert_eq!(r.train_accuracy, problem.train_accuracy(&zeros));
    assert_eq!(r.accuracy_curve.last(), Some(&(20, problem.test_accuracy(&zeros).unwrap())));
}

/// Calls the oracle with tensors of the wrong length (`0`) or number (`1`).
struct WrongOracleCall(u8);
impl Optimizer for WrongOracleCall {
    fn step(&mut self, p: &mut [Tensor], _g: &[Tensor], ctx: &StepContext) {
        match self.0 {
            0 => drop(ctx.loss_at(&[Tensor::new(&[3])])),
            _ => drop(ctx.grad_at(&[p[0].clone(), Tensor::new(&[1])])),
        }
    }
}

#[test]
fn oracle_calls_with_other_tensors_than_the_parameters_fail_the_run() {
    for (mode, lens) in [(0, "[3]"), (1, "[1, 1]")] {
        let r = run_with(&TOY, &move || Box::new(WrongOracleCall(mode)), "steps=5");
        let want = format!("panic: oracle call with tensors of lengths {lens}; the problem's are [1]");
        assert_eq!(r.error.as_deref(), Some(want.as_str()), "{r:?}");
        assert!(r.diverged && r.steps_done == 0 && r.final_loss.is_none(), "{r:?}");
    }
}

/// Hands over an evaluation point of another length (`0`) or number of tensors (`1`).
struct OddEval(u8);
impl Optimizer for OddEval {
    fn step(&mut self, _p: &mut [Tensor], _g: &[Tensor], _ctx: &StepContext) {}
    fn eval_params(&self, p: &[Tensor]) -> Option<Vec<Tensor>> {
        match self.0 {
            0 => Some(vec![Tensor::from_vec(&[2], vec![1.0, 1.0])]),
            _ => Some(vec![p[0].clone(), p[0].clone()]),
        }
    }
}

#[test]
fn an_evaluation_point_of_other_tensors_fails_the_run() {
    for mode in [0, 1] {
        let r = run_with(&TOY, &move || Box::new(OddEval(mode)), "steps=4 curve_points=3");
        assert_eq!(r.error.as_deref(), Some("eval_params returned other tensors than the parameters"), "{r:?}");
        assert!(r.diverged && r.final_loss.is_none(), "{r:?}");
        assert_eq!((r.steps_done, r.curve.len()), (2, 1), "at the first curve point after 0: {r:?}");
    }
}

/// Sleeps 30 ms in its first step, and spends one loss evaluation (1 ms of sleep in the problem)
/// in every step.
struct SlowStart;
impl Optimizer for SlowStart {
    fn step(&mut self, p: &mut [Tensor], _g: &[Tensor], ctx: &StepContext) {
        if ctx.step == 1 {
            std::thread::sleep(Duration::from_millis(30));
        }
        let _ = ctx.loss_at(p);
    }
}

/// optimizer_ns is the time inside step() (the first call included, and kept apart as
/// first_step_ns), oracle_ns the candidate's own oracle calls within it; all within wall_ns.
#[test]
fn the_time_counters_add_up() {
    let ms = 1_000_000;
    let r = run_with(&Toy { sleep_ms: 1, ..TOY }, &|| Box::new(SlowStart), "steps=5");
    assert!(r.error.is_none() && r.steps_done == 5 && r.loss_evals == 5, "{r:?}");
    assert!(r.first_step_ns >= 30 * ms, "{r:?}");
    assert!(r.oracle_ns >= 5 * ms, "{r:?}");
    assert!(r.optimizer_ns >= r.first_step_ns + 4 * ms, "{r:?}");
    // (checked: a counter that wrapped around must not pass by wrapping again)
    assert!(r.optimizer_ns.checked_sub(r.oracle_ns).is_some_and(|d| d >= 30 * ms), "{r:?}");
    assert!(r.wall_ns >= r.optimizer_ns, "{r:?}");
    let per_step = r.ns_per_step().unwrap();
    assert_eq!(per_step, (r.optimizer_ns - r.first_step_ns) as f64 / 4.0);
}

#[test]
fn ns_per_step_leaves_out_the_first_step() {
    let at = |steps_done, optimizer_ns, first_step_ns| {
        RunResult { steps_done, optimizer_ns, first_step_ns, ..Default::default() }.ns_per_step()
    };
    assert_eq!(at(0, 0, 0), None);
    assert_eq!(at(1, 70, 70), Some(70.0));
    assert_eq!(at(4, 100, 40), Some(20.0));
    assert_eq!(at(3, 1_000, 100), Some(450.0));
}
