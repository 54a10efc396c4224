//! Harness behaviour with hand-made candidates (panics, oracle calls, shape changes) and the
//! pinned version table.
use super::*;
use frontier_core::{Knob, StepContext, Tensor};

fn one(line: &str, cand: Option<Candidate>) -> String {
    run_line(line, &mut ProblemCache::default(), &cand.into())
}

struct Panicky;
impl Optimizer for Panicky {
    fn step(&mut self, _p: &mut [Tensor], _g: &[Tensor], ctx: &StepContext) {
        if ctx.step == 3 {
            panic!("boom at step {}", ctx.step);
        }
    }
}

struct Curious;
impl Optimizer for Curious {
    fn step(&mut self, p: &mut [Tensor], g: &[Tensor], ctx: &StepContext) {
        let l = ctx.loss_at(p);
        assert_eq!(l.to_bits(), ctx.loss.to_bits(), "loss_at(current) must equal ctx.loss");
        let hv = ctx.hvp(p, g);
        let g2 = ctx.grad_at(p);
        assert_eq!(g2[0].data, g[0].data);
        for (x, (gi, hi)) in p[0].data.iter_mut().zip(g[0].data.iter().zip(&hv[0].data)) {
            let _ = hi;
            *x -= ctx.lr * gi;
        }
    }
}

struct Reshaper;
impl Optimizer for Reshaper {
    fn step(&mut self, p: &mut [Tensor], _g: &[Tensor], _ctx: &StepContext) {
        p[0] = Tensor::new(&[1]);
    }
}

#[test]
fn candidate_panic_is_caught() {
    let s = one("id=1 optimizer=candidate problem=rosenbrock-2 lr=0.001 seed=1 steps=10", Some(|| Box::new(Panicky)));
    assert!(s.contains(r#""error":"panic: boom at step 3""#), "{s}");
    assert!(s.contains(r#""diverged":true"#) && s.contains(r#""steps_done":2"#), "{s}");
    assert!(s.contains(r#""error_location":"crates/bench/src/tests.rs:"#), "{s}");
    assert!(s.contains(r#""final_loss":null"#), "{s}");
}

#[test]
fn oracle_calls_are_counted_and_use_the_minibatch() {
    for problem in ["rosenbrock-10", "logreg-breast-cancer"] {
        let s = one(&format!("id=2 optimizer=candidate problem={problem} lr=0.001 seed=1 steps=7"), Some(|| Box::new(Curious)));
        assert!(s.contains(r#""error":null"#), "{s}");
        // 7 harness gradients + 7 grad_at + 2 x 7 for the hvps
        assert!(s.contains(r#""grad_evals":28,"loss_evals":7,"hvp_evals":7"#), "{s}");
    }
}

#[test]
fn reshaping_params_is_an_error() {
    let s = one("id=3 optimizer=candidate problem=rosenbrock-2 lr=0.001 seed=1 steps=5", Some(|| Box::new(Reshaper)));
    assert!(s.contains("changed the number or length"), "{s}");
}

/// SGD whose evaluation point is the running average of its iterates (Polyak averaging).
struct Averaging {
    avg: Vec<Tensor>,
    n: f64,
}
impl Optimizer for Averaging {
    fn step(&mut self, p: &mut [Tensor], g: &[Tensor], ctx: &StepContext) {
        if self.avg.is_empty() {
            self.avg = p.to_vec();
        }
        for (x, gi) in p[0].data.iter_mut().zip(&g[0].data) {
            *x -= ctx.lr * gi;
        }
        self.n += 1.0;
        for (a, x) in self.avg[0].data.iter_mut().zip(&p[0].data) {
            *a += (x - *a) / (self.n + 1.0);
        }
    }
    fn eval_params(&self, _p: &[Tensor]) -> Option<Vec<Tensor>> {
        Some(self.avg.clone())
    }
}

#[test]
fn losses_and_accuracies_are_taken_at_the_evaluation_point() {
    let line = "id=8 optimizer=candidate problem=logreg-breast-cancer lr=0.05 seed=2 steps=40 curve_points=3";
    let averaged = one(line, Some(|| Box::new(Averaging { avg: Vec::new(), n: 0.0 })));
    let plain = one(&line.replace("candidate", "sgd"), None);
    // Same gradient steps (plain SGD), different point handed over: the curve after step 0 and the
    // accuracies differ, and the averaged curve is smoother (its last loss is above SGD's here).
    let final_of = |s: &str| s[s.find("\"final_loss\":").unwrap() + 13..].split(',').next().unwrap().parse::<f64>().unwrap();
    assert!(averaged.contains(r#""error":null"#), "{averaged}");
    assert!(averaged.contains(r#""accuracy_curve":[[0,"#), "{averaged}");
    assert_ne!(final_of(&averaged), final_of(&plain), "{averaged}\n{plain}");
    // The loss the harness reports is the loss at the average it computed itself.
    let problem = frontier_problems::instance("logreg-breast-cancer", 0).unwrap();
    let mut opt = Averaging { avg: Vec::new(), n: 0.0 };
    let mut params = problem.init(&mut frontier_core::Rng::derive(2, "init"));
    let mut grads = frontier_problems::tensors_from_shapes(&problem.shapes());
    let mut rng = frontier_core::Rng::derive(2, "batch");
    let n = problem.train_size().unwrap();
    let mut batch = vec![0usize; problem.batch_size()];
    for t in 1..=40 {
        for b in batch.iter_mut() {
            *b = rng.below(n);
        }
        let loss = problem.loss_grad(&params, Some(&batch), &mut grads);
        let oracle = frontier_core::NanOracle;
        opt.step(&mut params, &grads, &StepContext::new(t, loss, 0.05, &oracle));
    }
    let want = problem.loss(&opt.avg, None);
    assert_eq!(final_of(&averaged).to_bits(), want.to_bits(), "{averaged}");
}

struct BadEvalPoint;
impl Optimizer for BadEvalPoint {
    fn step(&mut self, _p: &mut [Tensor], _g: &[Tensor], _ctx: &StepContext) {}
    fn eval_params(&self, p: &[Tensor]) -> Option<Vec<Tensor>> {
        let mut x = p.to_vec();
        x[0].data[0] = f64::NAN;
        Some(x)
    }
}

#[test]
fn a_non_finite_evaluation_point_fails_the_run() {
    let s = one("id=9 optimizer=candidate problem=rosenbrock-2 lr=0.001 seed=1 steps=5", Some(|| Box::new(BadEvalPoint)));
    assert!(s.contains("eval_params returned a non-finite value") && s.contains(r#""final_loss":null"#), "{s}");
}

/// Fails unless the context tells it the problem's parameter kinds.
struct KindChecker;
impl Optimizer for KindChecker {
    fn step(&mut self, p: &mut [Tensor], _g: &[Tensor], ctx: &StepContext) {
        use frontier_core::ParamKind::*;
        let kinds: Vec<_> = p.iter().enumerate().map(|(i, t)| ctx.kind(i, t)).collect();
        assert_eq!(kinds, [Matrix, Vector, Head, Vector], "kinds seen by the optimizer");
    }
}

#[test]
fn the_context_carries_each_tensors_kind() {
    let s = one("id=10 optimizer=candidate problem=mlp-wine lr=0.001 seed=1 steps=3", Some(|| Box::new(KindChecker)));
    assert!(s.contains(r#""error":null"#), "{s}");
}

#[test]
fn bad_lines_and_unknown_names() {
    assert!(one("id=4 optimizer=adam problem=nope lr=1 seed=1 steps=1", None).contains("unknown problem"));
    assert!(one("id=4 optimizer=candidate problem=rosenbrock-2 lr=1 seed=1 steps=1", None).contains("no candidate"));
    assert!(one("id=4 optimizer=adam problem=rosenbrock-2 lr=1 seed=1 steps=1 opt.foo=1", None).contains("unknown option"));
    let s = one("id=5 optimizer=adam", None);
    assert!(s.starts_with(r#"{"id":5,"error":"bad plan line: "#), "{s}");
}

#[test]
fn divergence_is_detected() {
    let s = one("id=6 optimizer=sgd problem=quadratic-ill-50 lr=10 seed=1 steps=100", None);
    assert!(s.contains(r#""diverged":true"#) && s.contains(r#""final_loss":null"#), "{s}");
}

#[test]
fn runs_are_deterministic_and_seeded() {
    let strip = |s: String| s[..s.find("\"optimizer_ns\"").unwrap()].to_string();
    for p in frontier_problems::all_names() {
        for o in ["adam", "nesterov"] {
            let l = format!("id=7 optimizer={o} problem={p} lr=0.01 seed=4 steps=60 curve_points=7");
            let a = strip(one(&l, None));
            let b = strip(one(&l, None));
            assert_eq!(a, b);
            let c = strip(one(&l.replace("seed=4", "seed=5"), None));
            assert_ne!(a, c, "{p}");
        }
    }
}

/// `accuracy=0` (what tuning runs ask for) leaves out the accuracies and nothing else: every loss, the
/// curve and the counters are those of the same run with them, bit for bit.
#[test]
fn a_run_without_accuracies_has_the_same_losses() {
    let strip_time = |s: &str| -> String {
        s.split(',').filter(|f| !f.contains("_ns\"") && !f.contains("ns_per_step")).collect::<Vec<_>>().join(",")
    };
    for problem in ["logreg-breast-cancer", "softmax-digits", "mlp-mnist1d", "rosenbrock-10"] {
        let line = format!("id=1 optimizer=adam problem={problem} lr=0.01 seed=3 instance=7 steps=40 curve_points=2");
        let with = one(&line, None);
        let without = one(&format!("{line} accuracy=0"), None);
        assert!(!without.contains("accuracy_curve") && without.contains(r#""test_accuracy":null"#), "{without}");
        assert!(without.contains(r#""train_accuracy":null"#), "{without}");
        let data = problem != "rosenbrock-10";
        assert_eq!(with.contains("accuracy_curve"), data, "{with}");
        let drop_accuracy = |s: &str| -> String {
            let s = strip_time(s);
            let s = match (s.find(",\"accuracy_curve\""), s.find(",\"grad_evals\"")) {
                (Some(a), Some(g)) => format!("{}{}", &s[..a], &s[g..]),
                _ => s,
            };
            s.split(',').filter(|f| !f.contains("_accuracy\"")).collect::<Vec<_>>().join(",")
        };
        assert_eq!(drop_accuracy(&with), drop_accuracy(&without), "{problem}");
    }
    assert!(one("id=1 optimizer=adam problem=rosenbrock-10 lr=0.01 seed=3 steps=4 accuracy=2", None)
        .contains("bad plan line: accuracy=2: use 0 or 1"));
}

/// Changing a problem or a baseline must come with a new HARNESS_VERSION (cached baseline
/// results are keyed by it): update this table and the constant together.
#[test]
fn version_table_is_pinned() {
    let mut table: Vec<String> = frontier_problems::all_names()
        .into_iter()
        .map(|n| format!("{n}@{}", frontier_problems::by_name(&n).unwrap().version()))
        .collect();
    table.push(format!("baselines@{}", frontier_baselines::BASELINES_VERSION));
    let pinned = "rosenbrock-2@1 rosenbrock-10@1 rosenbrock-50@1 rastrigin-10@1 ackley-10@1 beale-2@1 \
                  styblinski-tang-10@1 quadratic-ill-50@1 quadratic-ill-50-k1e5@1 noisy-quadratic-50@1 \
                  logreg-breast-cancer@1 softmax-digits@1 mlp-digits@1 mlp-wine@1 softmax-mnist1d@1 \
                  mlp-mnist1d@1 transformer-grammar@1 grokking-mod-add-31@2 cnn-digits@1 rosenbrock-30@1 \
                  rastrigin-20@1 ackley-30@1 styblinski-tang-20@1 quadratic-ill-100-k1e4@1 noisy-quadratic-100@1 \
                  softmax-wine@1 transformer-grammar-d24@1 grokking-mod-sub-37@2 cnn-digits-c4@1 baselines@3";
    assert_eq!(table.join(" "), pinned, "a version changed: bump HARNESS_VERSION and update this pin");
    assert_eq!(HARNESS_VERSION, "2.6.0");
}

/// Curious spends 1 loss + 3 gradient evaluations of its own per step (hvp = 2), on top of the
/// step's gradient: with a budget equal to the baselines' steps it gets a fifth of the steps.
#[test]
fn eval_budget_charges_oracle_calls_against_steps() {
    let line = "id=1 optimizer=candidate problem=rosenbrock-10 lr=0.0001 seed=1 steps=100 eval_budget=100";
    let out = one(line, Some(|| Box::new(Curious)));
    assert!(out.contains(r#""steps_done":20,"#), "{out}");
    assert!(out.contains(r#""budget_exhausted":true"#), "{out}");
    let free = one(&line.replace(" eval_budget=100", ""), Some(|| Box::new(Curious)));
    assert!(free.contains(r#""steps_done":100,"#) && free.contains(r#""budget_exhausted":false"#), "{free}");
}

struct Knobbed;
impl Optimizer for Knobbed {
    fn knobs(&self) -> Vec<Knob> {
        vec![Knob { name: "scale", low: 0.1, high: 10.0, default: 1.0, log_scale: true }]
    }
    fn step(&mut self, p: &mut [Tensor], g: &[Tensor], ctx: &StepContext) {
        let scale = ctx.knob("scale");
        for (x, d) in p[0].data.iter_mut().zip(&g[0].data) {
            *x -= scale * ctx.lr * d;
        }
    }
}

/// A knob's value reaches the step; scale=2 at lr equals scale=1 at 2 lr, bit for bit.
#[test]
fn knobs_reach_the_candidate_and_are_checked() {
    let make: Candidate = || Box::new(Knobbed);
    let strip = |s: String| s.split(r#","optimizer_ns""#).next().unwrap().split(r#""lr""#).nth(1).unwrap().to_string();
    let at = |extra: &str, lr: &str| {
        strip(one(&format!("id=1 optimizer=candidate problem=quadratic-ill-50 lr={lr} seed=1 steps=20{extra}"), Some(make)))
    };
    let doubled = at(" knob.scale=2", "0.001");
    let plain = at("", "0.002");
    assert_eq!(doubled.split_once(',').unwrap().1, plain.split_once(',').unwrap().1);
    assert!(one("id=1 optimizer=candidate problem=quadratic-ill-50 lr=0.1 seed=1 steps=5 knob.scale=50", Some(make))
        .contains("outside [0.1, 10]"));
    assert!(one("id=1 optimizer=candidate problem=quadratic-ill-50 lr=0.1 seed=1 steps=5 knob.other=1", Some(make))
        .contains("knob 'other' is not declared"));
    assert!(one("id=1 optimizer=adam problem=quadratic-ill-50 lr=0.1 seed=1 steps=5 knob.scale=1", None)
        .contains("baselines take opt.*"));
    assert_eq!(
        knobs_json(Some(make)),
        r#"{"knobs":[{"name":"scale","low":0.1,"high":10.0,"default":1.0,"log_scale":true}],"switches":[]}"#
    );
    assert_eq!(knobs_json(Some(|| Box::new(Curious))), r#"{"knobs":[],"switches":[]}"#);
}

struct Switched;
impl Optimizer for Switched {
    fn switches(&self) -> Vec<&'static str> {
        vec!["double"]
    }
    fn step(&mut self, p: &mut [Tensor], g: &[Tensor], ctx: &StepContext) {
        let scale = if ctx.switch("double") { 2.0 } else { 1.0 };
        for (x, d) in p[0].data.iter_mut().zip(&g[0].data) {
            *x -= scale * ctx.lr * d;
        }
    }
}

/// A switched-off mechanism is off in the step (double at lr equals single at 2 lr, bit for bit).
#[test]
fn switches_turn_mechanisms_off_for_ablations() {
    let make: Candidate = || Box::new(Switched);
    let tail = |s: String| s.split(r#","steps""#).nth(1).unwrap().split(r#","optimizer_ns""#).next().unwrap().to_string();
    let on = tail(one("id=1 optimizer=candidate problem=quadratic-ill-50 lr=0.001 seed=1 steps=20", Some(make)));
    let off = tail(one("id=1 optimizer=candidate problem=quadratic-ill-50 lr=0.002 seed=1 steps=20 switch.double=0", Some(make)));
    assert_eq!(on, off);
    assert!(one("id=1 optimizer=candidate problem=quadratic-ill-50 lr=0.1 seed=1 steps=5 switch.other=0", Some(make))
        .contains("switch 'other' is not declared"));
    assert!(one("id=1 optimizer=candidate problem=quadratic-ill-50 lr=0.1 seed=1 steps=5 switch.double=1", Some(make))
        .contains("use switch.<name>=0"));
    assert_eq!(knobs_json(Some(make)), r#"{"knobs":[],"switches":["double"]}"#);
}

/// Runs an inner L-BFGS-like loop of gradient calls inside one step, as many as it likes.
struct Greedy;
impl Optimizer for Greedy {
    fn step(&mut self, p: &mut [Tensor], _g: &[Tensor], ctx: &StepContext) {
        for _ in 0..1000 {
            let g = ctx.grad_at(p);
            for (x, gi) in p[0].data.iter_mut().zip(&g[0].data) {
                *x -= 1e-3 * gi;
            }
        }
    }
}

/// Spends exactly what is left, every step: legal, and the run ends when the budget does.
struct Frugal;
impl Optimizer for Frugal {
    fn step(&mut self, p: &mut [Tensor], g: &[Tensor], ctx: &StepContext) {
        let mut g = g.to_vec();
        for _ in 0..ctx.budget_left().min(3) {
            g = ctx.grad_at(p);
        }
        for (x, gi) in p[0].data.iter_mut().zip(&g[0].data) {
            *x -= ctx.lr * gi;
        }
    }
}

#[test]
fn an_oracle_call_past_the_budget_voids_the_run() {
    let line = "id=1 optimizer=candidate problem=rosenbrock-10 lr=0.0001 seed=1 steps=100 eval_budget=100";
    let out = one(line, Some(|| Box::new(Greedy)));
    assert!(out.contains("oracle budget exceeded"), "{out}");
    assert!(out.contains(r#""diverged":true"#) && out.contains(r#""final_loss":null"#), "{out}");
    assert!(out.contains(r#""steps_done":0,"#), "{out}");
    let out = one(line, Some(|| Box::new(Frugal)));
    assert!(out.contains(r#""error":null"#) && out.contains(r#""budget_exhausted":true"#), "{out}");
    assert!(out.contains(r#""steps_done":25,"#) && out.contains(r#""grad_evals":100,"#), "{out}");
}

/// Checks, at every step, that ctx.lr is the plan's lr times the harness's schedule.
struct ScheduleProbe;
impl Optimizer for ScheduleProbe {
    fn step(&mut self, p: &mut [Tensor], g: &[Tensor], ctx: &StepContext) {
        let want = 0.001 * crate::plan::schedule(0.2, crate::plan::Decay::Cosine, ctx.step, 50);
        assert_eq!(ctx.lr.to_bits(), want.to_bits(), "step {}: lr {} != {}", ctx.step, ctx.lr, want);
        for (x, d) in p[0].data.iter_mut().zip(&g[0].data) {
            *x -= ctx.lr * d;
        }
    }
}

/// The harness applies the schedule to every optimizer alike; the defaults change nothing, bit for bit.
#[test]
fn schedules_reach_the_optimizer_and_default_to_constant() {
    let out = one("id=1 optimizer=candidate problem=quadratic-ill-50 lr=0.001 seed=1 steps=50 warmup=0.2 decay=cosine",
                  Some(|| Box::new(ScheduleProbe)));
    assert!(out.contains(r#""error":null"#) && out.contains(r#""steps_done":50,"#), "{out}");
    assert!(out.contains(r#""warmup":0.2,"decay":"cosine""#), "{out}");
    let strip = |s: String| s.split(r#","optimizer_ns""#).next().unwrap().to_string();
    for o in ["sgd", "adam", "lion"] {
        let echo = one(&format!("id=2 optimizer={o} problem=quadratic-ill-50 lr=0.01 seed=3 steps=4"), None);
        assert!(echo.ends_with(r#""warmup":0.0,"decay":"constant"}"#), "{echo}");
        let line = format!("id=2 optimizer={o} problem=quadratic-ill-50 lr=0.01 seed=3 steps=40");
        let plain = strip(one(&line, None));
        assert_eq!(plain, strip(one(&format!("{line} warmup=0 decay=constant"), None)));
        let decayed = strip(one(&format!("{line} decay=linear"), None));
        assert_ne!(plain, decayed, "{o}");
    }
}
