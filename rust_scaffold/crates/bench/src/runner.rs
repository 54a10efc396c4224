//! One benchmark run: init, the step loop, divergence, the loss curve, counters and timing.

use frontier_core::guard::guarded;
use crate::json::Obj;
use crate::plan::{curve_steps, RunSpec};
use frontier_core::{Optimizer, Oracle, Rng, StepContext, Tensor};
use frontier_problems::{tensors_from_shapes, Problem};
use std::time::Instant;

/// The objective on the current minibatch, as a candidate sees it through the context.
pub struct BatchOracle<'a> {
    pub problem: &'a dyn Problem,
    pub batch: Option<&'a [usize]>,
    pub lens: &'a [usize],
}

impl BatchOracle<'_> {
    fn check(&self, params: &[Tensor]) {
        let ok = params.len() == self.lens.len() && params.iter().zip(self.lens).all(|(p, &n)| p.len() == n);
        if !ok {
            let got: Vec<usize> = params.iter().map(Tensor::len).collect();
            panic!("oracle call with tensors of lengths {:?}; the problem's are {:?}", got, self.lens);
        }
    }
}

impl Oracle for BatchOracle<'_> {
    fn loss(&self, params: &[Tensor]) -> f64 {
        self.check(params);
        self.problem.loss(params, self.batch)
    }
    fn loss_grad(&self, params: &[Tensor], grads: &mut [Tensor]) -> f64 {
        self.check(params);
        self.check(grads);
        self.problem.loss_grad(params, self.batch, grads)
    }
}

/// The outcome of one run (serialized by [`RunResult::to_json`]).
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    pub steps_done: u64,
    pub diverged: bool,
    pub error: Option<String>,
    pub error_location: Option<String>,
    pub initial_loss: f64,
    pub final_loss: Option<f64>,
    pub best_loss: Option<f64>,
    pub train_accuracy: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub curve: Vec<(u64, f64)>,
    /// Held-out accuracy at the same steps as `curve` (problems with data only).
    pub accuracy_curve: Vec<(u64, f64)>,
    pub grad_evals: u64,
    pub loss_evals: u64,
    pub hvp_evals: u64,
    pub optimizer_ns: u64,
    /// Time of the first `step()` (lazy state allocation), part of `optimizer_ns`.
    pub first_step_ns: u64,
    pub oracle_ns: u64,
    /// Stopped by `time_limit_ms` before `steps` (not a divergence).
    pub time_limited: bool,
    /// Stopped by `eval_budget` before `steps`: its oracle calls used the budget up.
    pub budget_exhausted: bool,
    pub wall_ns: u64,
    /// The final point the optimizer handed over (its `eval_params`, else its parameters); not
    /// serialized, used by tests and tools.
    pub params: Vec<Tensor>,
}

impl RunResult {
    /// Mean time of `step()` excluding the first call (which allocates state), or of the only
    /// call; None before any step.
    pub fn ns_per_step(&self) -> Option<f64> {
        match self.steps_done {
            0 => None,
            1 => Some(self.optimizer_ns as f64),
            n => Some((self.optimizer_ns - self.first_step_ns) as f64 / (n - 1) as f64),
        }
    }

    pub fn to_json(&self, spec: &RunSpec, dim: usize) -> String {
        let mut o = Obj::new();
        o.raw("id", &spec.id_json)
            .str("optimizer", &spec.optimizer)
            .str("problem", &spec.problem)
            .f("lr", spec.lr)
            .u("seed", spec.seed)
            .u("steps", spec.steps)
            .u("steps_done", self.steps_done)
            .b("diverged", self.diverged)
            .b("time_limited", self.time_limited)
            .b("budget_exhausted", self.budget_exhausted)
            .opt_str("error", self.error.as_deref())
            .opt_str("error_location", self.error_location.as_deref())
            .f("initial_loss", self.initial_loss)
            .opt_f("final_loss", self.final_loss)
            .opt_f("best_loss", self.best_loss)
            .opt_f("train_accuracy", self.train_accuracy)
            .opt_f("test_accuracy", self.test_accuracy);
        let mut c = String::with_capacity(self.curve.len() * 24 + 2);
        c.push('[');
        for (i, (s, l)) in self.curve.iter().enumerate() {
            if i > 0 {
                c.push(',');
            }
            c.push('[');
            c.push_str(&s.to_string());
            c.push(',');
            c.push_str(&crate::json::float(*l));
            c.push(']');
        }
        c.push(']');
        o.raw("curve", &c);
        if !self.accuracy_curve.is_empty() {
            o.raw("accuracy_curve", &pairs_json(&self.accuracy_curve));
        }
        o
            .u("grad_evals", self.grad_evals)
            .u("loss_evals", self.loss_evals)
            .u("hvp_evals", self.hvp_evals)
            .u("optimizer_ns", self.optimizer_ns)
            .u("first_step_ns", self.first_step_ns)
            .u("oracle_ns", self.oracle_ns)
            .opt_f("ns_per_step", self.ns_per_step())
            .u("dim", dim as u64)
            .u("wall_ns", self.wall_ns)
            .f("warmup", spec.warmup)
            .str("decay", spec.decay.name());
        o.finish()
    }
}

fn pairs_json(pairs: &[(u64, f64)]) -> String {
    let items: Vec<String> = pairs.iter().map(|(s, v)| format!("[{s},{}]", crate::json::float(*v))).collect();
    format!("[{}]", items.join(","))
}

/// The point the optimizer hands over for evaluation (see `Optimizer::eval_params`), checked: it
/// must have the parameters' tensors and lengths and be finite.
fn eval_point(opt: &dyn Optimizer, params: &[Tensor]) -> Result<Option<Vec<Tensor>>, (String, Option<String>)> {
    match guarded(|| opt.eval_params(params)) {
        Err(c) => Err((c.describe(), c.location)),
        Ok(None) => Ok(None),
        Ok(Some(x)) => {
            let same = x.len() == params.len() && x.iter().zip(params).all(|(a, b)| a.len() == b.len());
            if !same {
                return Err(("eval_params returned other tensors than the parameters".into(), None));
            }
            if !x.iter().all(|t| t.data.iter().all(|v| v.is_finite())) {
                return Err(("eval_params returned a non-finite value".into(), None));
            }
            Ok(Some(x))
        }
    }
}

/// Runs one plan line's optimization. `make` builds the optimizer (its panics are caught too).
pub fn run(problem: &dyn Problem, make: &dyn Fn() -> Box<dyn Optimizer>, spec: &RunSpec) -> RunResult {
    let wall = Instant::now();
    let mut res = RunResult::default();
    let shapes = problem.shapes();
    let kinds = problem.kinds();
    let lens: Vec<usize> = shapes.iter().map(|s| s.iter().product()).collect();
    let mut params = problem.init(&mut Rng::derive(spec.seed, "init"));
    let mut grads = tensors_from_shapes(&shapes);
    let mut batch_rng = Rng::derive(spec.seed, "batch");
    let train_size = problem.train_size();
    let mut batch = vec![0usize; if train_size.is_some() { problem.batch_size().max(1) } else { 0 }];

    let initial = problem.loss(&params, None);
    res.initial_loss = initial;
    let limit = 1e3 * initial.max(1.0);
    let bad = |l: f64| !l.is_finite() || l > limit;
    let mut best = f64::INFINITY;
    if bad(initial) {
        res.diverged = true;
        res.error = Some("non-finite initial loss".into());
        res.wall_ns = wall.elapsed().as_nanos() as u64;
        return res;
    }
    res.curve.push((0, initial));
    // Accuracies are full passes over the data that a tuning run (`accuracy=0`) never reads.
    let accuracy_at = |at: &[Tensor]| if spec.accuracy { problem.test_accuracy(at) } else { None };
    if let Some(a) = accuracy_at(&params) {
        res.accuracy_curve.push((0, a));
    }
    best = best.min(initial);

    let mut opt = match guarded(make) {
        Ok(o) => o,
        Err(c) => {
            res.diverged = true;
            res.error = Some(c.describe());
            res.error_location = c.location;
            res.final_loss = None;
            res.best_loss = Some(best);
            res.wall_ns = wall.elapsed().as_nanos() as u64;
            return res;
        }
    };

    let declared = guarded(|| (opt.knobs(), opt.switches())).map_err(|c| c.describe());
    let knobs = match declared.and_then(|(knobs, switches)| {
        crate::check_switches(&switches, &spec.switched_off).map_err(|e| format!("switches: {e}"))?;
        crate::resolve_knobs(&knobs, &spec.knobs).map_err(|e| format!("knobs: {e}"))
    }) {
        Ok(k) => k,
        Err(e) => {
            res.diverged = true;
            res.error = Some(e);
            res.final_loss = None;
            res.best_loss = Some(best);
            res.wall_ns = wall.elapsed().as_nanos() as u64;
            return res;
        }
    };

    let marks = curve_steps(spec.steps, spec.curve_points);
    let mut next_mark = 1; // marks[0] == 0 is recorded above
    let deadline_ns = spec.time_limit_ms.map(|ms| ms.saturating_mul(1_000_000));

    for t in 1..=spec.steps {
        if let Some(n) = train_size {
            for b in batch.iter_mut() {
                *b = batch_rng.below(n);
            }
        }
        let bref = train_size.map(|_| &batch[..]);
        let loss = problem.loss_grad(&params, bref, &mut grads);
        res.grad_evals += 1;
        if bad(loss) {
            res.diverged = true;
            break;
        }
        if train_size.is_none() {
            best = best.min(loss);
        }
        let oracle = BatchOracle { problem, batch: bref, lens: &lens };
        // The budget lives in this process: a candidate in another one can neither read nor reset it.
        let left = spec.eval_budget.map_or(u64::MAX, |b| b.saturating_sub(res.grad_evals + res.loss_evals));
        // The schedule is the harness's: every optimizer sees lr_t = lr * schedule(evaluations spent).
        let ctx = StepContext::new(t, loss, spec.lr_at(res.grad_evals + res.loss_evals), &oracle)
            .with_knobs(&knobs)
            .with_switched_off(&spec.switched_off)
            .with_kinds(&kinds)
            .with_budget(left);
        let t0 = Instant::now();
        let r = guarded(|| opt.step(&mut params, &grads, &ctx));
        let ns = t0.elapsed().as_nanos() as u64;
        res.optimizer_ns += ns;
        if t == 1 {
            res.first_step_ns = ns;
        }
        let c = ctx.counts();
        res.loss_evals += c.loss_evals;
        res.grad_evals += c.grad_evals;
        res.hvp_evals += c.hvp_evals;
        res.oracle_ns += c.oracle_ns;
        if let Err(c) = r {
            res.diverged = true;
            res.error = Some(c.describe());
            res.error_location = c.location;
            break;
        }
        let same_shapes = params.len() == lens.len() && params.iter().zip(&lens).all(|(p, &n)| p.len() == n);
        if !same_shapes {
            res.diverged = true;
            res.error = Some("the optimizer changed the number or length of the parameter tensors".into());
            break;
        }
        res.steps_done = t;
        if !params.iter().all(|p| p.data.iter().all(|x| x.is_finite())) {
            res.diverged = true;
            break;
        }
        if next_mark < marks.len() && marks[next_mark] == t {
            next_mark += 1;
            let handed = match eval_point(opt.as_ref(), &params) {
                Ok(x) => x,
                Err((e, loc)) => {
                    res.diverged = true;
                    res.error = Some(e);
                    res.error_location = loc;
                    break;
                }
            };
            let at = handed.as_deref().unwrap_or(&params);
            let l = problem.loss(at, None);
            if bad(l) {
                res.diverged = true;
                break;
            }
            best = best.min(l);
            res.curve.push((t, l));
            if let Some(a) = accuracy_at(at) {
                res.accuracy_curve.push((t, a));
            }
        }
        if let Some(budget) = spec.eval_budget {
            if res.grad_evals + res.loss_evals >= budget && t < spec.steps {
                res.budget_exhausted = true;
                break;
            }
        }
        if let Some(d) = deadline_ns {
            if wall.elapsed().as_nanos() as u64 > d && t < spec.steps {
                res.time_limited = true;
                break;
            }
        }
    }
    if !res.diverged {
        match eval_point(opt.as_ref(), &params) {
            Ok(Some(x)) => params = x,
            Ok(None) => {}
            Err((e, loc)) => {
                res.diverged = true;
                res.error = Some(e);
                res.error_location = loc;
            }
        }
    }
    drop(opt);

    if !res.diverged {
        if res.curve.last().map(|c| c.0) != Some(res.steps_done) {
            let l = problem.loss(&params, None);
            if bad(l) {
                res.diverged = true;
            } else {
                best = best.min(l);
                res.curve.push((res.steps_done, l));
                if let Some(a) = accuracy_at(&params) {
                    res.accuracy_curve.push((res.steps_done, a));
                }
            }
        }
    }
    if !res.diverged {
        res.final_loss = res.curve.last().map(|c| c.1);
        if spec.accuracy {
            res.train_accuracy = problem.train_accuracy(&params);
            res.test_accuracy = problem.test_accuracy(&params);
        }
    }
    res.best_loss = best.is_finite().then_some(best);
    res.params = params;
    res.wall_ns = wall.elapsed().as_nanos() as u64;
    res
}
