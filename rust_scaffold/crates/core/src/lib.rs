//! frontier-core: what a candidate optimizer sees.
//!
//! * [`Tensor`]: a flat `Vec<f64>` with a row-major shape.
//! * [`Optimizer`]: the one trait a candidate implements (only `step` is required).
//! * [`StepContext`]: step number, current loss and learning rate, each tensor's [`ParamKind`],
//!   plus counted access to the objective on the current minibatch (`loss_at`, `grad_at`, `hvp`).
//! * [`Rng`]: xoshiro256** seeded by splitmix64, with named independent streams.
//!
//! A candidate never sees seeds, problem names or data: the objective is reachable only through
//! the private [`Oracle`] held by the context. In a benchmark the candidate runs in a process of
//! its own ([`remote::serve`]): the oracle, the budget and every number it is judged by live in
//! the harness's process, on the other side of a shared-memory channel ([`channel`]; pipes where
//! there is no shared memory). `channel` (mmap and futex) and `zygote` (fork and descriptor
//! passing) are the modules allowed `unsafe`.

#![deny(unsafe_code)]

pub mod channel;
pub mod contract;
pub mod guard;
pub mod remote;
pub mod zygote;

use std::cell::Cell;
use std::fmt;
use std::time::Instant;

// ---------------------------------------------------------------------------------------------
// Tensor
// ---------------------------------------------------------------------------------------------

/// A dense f64 tensor: `data` is row-major, `data.len() == shape.iter().product()`.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub data: Vec<f64>,
    pub shape: Vec<usize>,
}

impl Tensor {
    /// A zero tensor of the given shape (an empty shape is a scalar with one element).
    pub fn new(shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor { data: vec![0.0; n], shape: shape.to_vec() }
    }

    /// A tensor from existing data. Panics if the lengths disagree.
    pub fn from_vec(shape: &[usize], data: Vec<f64>) -> Tensor {
        let n: usize = shape.iter().product();
        assert_eq!(n, data.len(), "Tensor::from_vec: shape {:?} needs {} values, got {}", shape, n, data.len());
        Tensor { data, shape: shape.to_vec() }
    }

    /// A zero tensor with the same shape.
    pub fn zeros_like(&self) -> Tensor {
        Tensor { data: vec![0.0; self.data.len()], shape: self.shape.clone() }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    pub fn as_mut_slice(&mut self) -> &mut [f64] {
        &mut self.data
    }

    /// Sets every element to `value`.
    pub fn fill(&mut self, value: f64) {
        for x in self.data.iter_mut() {
            *x = value;
        }
    }

    /// Copies `other`'s values into `self` (same length required).
    pub fn copy_from(&mut self, other: &Tensor) {
        self.data.copy_from_slice(&other.data);
    }

    /// Sum of squares.
    pub fn norm_sq(&self) -> f64 {
        let mut s = 0.0;
        for &x in &self.data {
            s += x * x;
        }
        s
    }

    /// Dot product with a tensor of the same length.
    pub fn dot(&self, other: &Tensor) -> f64 {
        assert_eq!(self.data.len(), other.data.len(), "Tensor::dot: length mismatch");
        let mut s = 0.0;
        for (a, b) in self.data.iter().zip(&other.data) {
            s += a * b;
        }
        s
    }
}

/// Zero tensors shaped like `ts`.
pub fn zeros_like_all(ts: &[Tensor]) -> Vec<Tensor> {
    ts.iter().map(Tensor::zeros_like).collect()
}

/// What a parameter tensor is in its model, so matrix-aware optimizers (Muon, SOAP, Shampoo) can
/// treat hidden weight matrices differently from the rest, as they are used in practice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamKind {
    /// A hidden weight matrix (rank >= 2) between two hidden representations: where orthogonalised
    /// or Kronecker-factored updates apply.
    Matrix,
    /// A vector or scalar: a bias, a normalisation gain, or the variables of a test function.
    Vector,
    /// An embedding table (rows are looked up, not multiplied).
    Embedding,
    /// The output layer (classifier or language-model head).
    Head,
}

impl ParamKind {
    /// The kind a tensor of this shape has when its model does not say: rank >= 2 is a matrix.
    pub fn from_shape(shape: &[usize]) -> ParamKind {
        if shape.len() >= 2 {
            ParamKind::Matrix
        } else {
            ParamKind::Vector
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ParamKind::Matrix => "matrix",
            ParamKind::Vector => "vector",
            ParamKind::Embedding => "embedding",
            ParamKind::Head => "head",
        }
    }

    /// The wire code of the kind (see [`remote`]).
    pub fn code(self) -> u8 {
        match self {
            ParamKind::Matrix => 0,
            ParamKind::Vector => 1,
            ParamKind::Embedding => 2,
            ParamKind::Head => 3,
        }
    }

    pub fn from_code(code: u8) -> Option<ParamKind> {
        [ParamKind::Matrix, ParamKind::Vector, ParamKind::Embedding, ParamKind::Head].get(code as usize).copied()
    }
}

/// The kinds of tensors of these shapes when their model does not say (see [`ParamKind::from_shape`]).
pub fn kinds_from_shapes(ts: &[Tensor]) -> Vec<ParamKind> {
    ts.iter().map(|t| ParamKind::from_shape(&t.shape)).collect()
}

/// Total number of scalars in a list of tensors.
pub fn numel(ts: &[Tensor]) -> usize {
    ts.iter().map(Tensor::len).sum()
}

// ---------------------------------------------------------------------------------------------
// Oracle and step context
// ---------------------------------------------------------------------------------------------

/// The objective on the current minibatch, as the harness exposes it to a [`StepContext`].
///
/// Implemented by the harness; candidates only reach it through the context's counted methods.
pub trait Oracle {
    /// Loss at `params` on the current minibatch.
    fn loss(&self, params: &[Tensor]) -> f64;
    /// Loss at `params` on the current minibatch; writes the gradient into `grads`
    /// (same shapes as `params`).
    fn loss_grad(&self, params: &[Tensor], grads: &mut [Tensor]) -> f64;
}

/// An oracle with nothing behind it (used by `replay`): every value is NaN.
pub struct NanOracle;

impl Oracle for NanOracle {
    fn loss(&self, _params: &[Tensor]) -> f64 {
        f64::NAN
    }
    fn loss_grad(&self, _params: &[Tensor], grads: &mut [Tensor]) -> f64 {
        for g in grads.iter_mut() {
            g.fill(f64::NAN);
        }
        f64::NAN
    }
}

/// How many extra evaluations a candidate asked for through a [`StepContext`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvalCounts {
    /// `loss_at` calls.
    pub loss_evals: u64,
    /// Gradient evaluations: `grad_at` calls plus two per `hvp`.
    pub grad_evals: u64,
    /// `hvp` calls.
    pub hvp_evals: u64,
    /// Wall time spent inside the oracle on behalf of these calls.
    pub oracle_ns: u64,
}

/// What the harness tells an optimizer at each step.
pub struct StepContext<'a> {
    /// 1-based step number.
    pub step: u64,
    /// Loss at the current parameters on the current minibatch (NaN in `replay`).
    pub loss: f64,
    /// The learning rate chosen by the tuner.
    pub lr: f64,
    oracle: &'a dyn Oracle,
    knobs: &'a [(String, f64)],
    switched_off: &'a [String],
    kinds: &'a [ParamKind],
    loss_evals: Cell<u64>,
    grad_evals: Cell<u64>,
    hvp_evals: Cell<u64>,
    oracle_ns: Cell<u64>,
    budget_left: Cell<u64>,
}

/// Why a counted oracle call was refused: the run's oracle budget is spent.
///
/// Every run has one budget of oracle evaluations (the harness's own gradient each step counts
/// too); a `loss_at` costs 1, a `grad_at` 1, an `hvp` 2. A call that would go past the budget
/// panics with this message, and the harness voids the run (it counts as failed, never as
/// credited). Check [`StepContext::budget_left`] before an extra call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetExceeded {
    pub cost: u64,
    pub left: u64,
}

impl fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "oracle budget exceeded: a call costing {} evaluation(s) with {} left; check ctx.budget_left() \
             before loss_at/grad_at/hvp",
            self.cost, self.left
        )
    }
}

impl<'a> StepContext<'a> {
    /// Built by the harness once per step.
    pub fn new(step: u64, loss: f64, lr: f64, oracle: &'a dyn Oracle) -> StepContext<'a> {
        StepContext {
            step,
            loss,
            lr,
            oracle,
            knobs: &[],
            switched_off: &[],
            kinds: &[],
            loss_evals: Cell::new(0),
            grad_evals: Cell::new(0),
            hvp_evals: Cell::new(0),
            oracle_ns: Cell::new(0),
            budget_left: Cell::new(u64::MAX),
        }
    }

    /// The oracle evaluations this step may still spend (set by the harness; unlimited if unset).
    pub fn with_budget(self, left: u64) -> StepContext<'a> {
        self.budget_left.set(left);
        self
    }

    /// Oracle evaluations the run may still spend inside this step: `loss_at` and `grad_at` cost 1,
    /// `hvp` costs 2. A call past it panics with [`BudgetExceeded`] and voids the run.
    pub fn budget_left(&self) -> u64 {
        self.budget_left.get()
    }

    /// The knob values the harness set for this run, in declaration order.
    pub fn knob_values(&self) -> &[(String, f64)] {
        self.knobs
    }

    /// The mechanisms an ablation switched off for this run.
    pub fn switched_off(&self) -> &[String] {
        self.switched_off
    }

    fn charge(&self, cost: u64) {
        let left = self.budget_left.get();
        if cost > left {
            std::panic::panic_any(BudgetExceeded { cost, left }.to_string());
        }
        if left != u64::MAX {
            self.budget_left.set(left - cost);
        }
    }

    /// The tuned values of the optimizer's declared knobs (set by the harness).
    pub fn with_knobs(mut self, knobs: &'a [(String, f64)]) -> StepContext<'a> {
        self.knobs = knobs;
        self
    }

    /// What each parameter tensor is in its model (set by the harness, one per tensor).
    pub fn with_kinds(mut self, kinds: &'a [ParamKind]) -> StepContext<'a> {
        self.kinds = kinds;
        self
    }

    /// What parameter tensor `i` is in its model: a hidden [`ParamKind::Matrix`], a
    /// [`ParamKind::Vector`] (bias, norm gain, function variables), an [`ParamKind::Embedding`] or
    /// the output [`ParamKind::Head`]. The harness sets it for every problem; where nobody did
    /// (a bare `StepContext::new`), the shape decides: rank >= 2 is a matrix.
    pub fn kind(&self, i: usize, tensor: &Tensor) -> ParamKind {
        self.kinds.get(i).copied().unwrap_or_else(|| ParamKind::from_shape(&tensor.shape))
    }

    /// Every tensor's kind as the harness set them (empty if it set none; see [`StepContext::kind`]).
    pub fn kinds(&self) -> &[ParamKind] {
        self.kinds
    }

    /// The mechanisms an ablation switched off (set by the harness).
    pub fn with_switched_off(mut self, off: &'a [String]) -> StepContext<'a> {
        self.switched_off = off;
        self
    }

    /// Whether a mechanism declared in [`Optimizer::switches`] is on (it is, unless an ablation
    /// switched it off).
    pub fn switch(&self, name: &str) -> bool {
        !self.switched_off.iter().any(|n| n == name)
    }

    /// The tuned value of a knob the optimizer declared in [`Optimizer::knobs`].
    ///
    /// # Panics
    /// If no knob of that name was declared (the harness reports the run as failed).
    pub fn knob(&self, name: &str) -> f64 {
        match self.knobs.iter().find(|(n, _)| n == name) {
            Some((_, v)) => *v,
            None => panic!("knob '{name}' is not declared in knobs()"),
        }
    }

    /// Loss on the current minibatch at other parameters (counted as one loss evaluation).
    pub fn loss_at(&self, params: &[Tensor]) -> f64 {
        self.charge(1);
        self.loss_evals.set(self.loss_evals.get() + 1);
        let t0 = Instant::now();
        let l = self.oracle.loss(params);
        self.add_ns(t0);
        l
    }

    /// Gradient on the current minibatch at other parameters (counted as one gradient evaluation).
    pub fn grad_at(&self, params: &[Tensor]) -> Vec<Tensor> {
        self.charge(1);
        self.grad_evals.set(self.grad_evals.get() + 1);
        let mut g = zeros_like_all(params);
        let t0 = Instant::now();
        self.oracle.loss_grad(params, &mut g);
        self.add_ns(t0);
        g
    }

    /// Hessian-vector product `H(params) v` on the current minibatch, by central finite
    /// differences of the gradient: `(g(x + h v) - g(x - h v)) / 2h` with
    /// `h = 6e-6 (1 + rms(x)) / rms(v)`. Counted as one hvp and two gradient evaluations.
    /// A zero `v` gives zeros (free of charge).
    pub fn hvp(&self, params: &[Tensor], v: &[Tensor]) -> Vec<Tensor> {
        assert_eq!(params.len(), v.len(), "hvp: params and v have different numbers of tensors");
        for (p, d) in params.iter().zip(v) {
            assert_eq!(p.len(), d.len(), "hvp: a tensor of v has the wrong length");
        }
        self.hvp_evals.set(self.hvp_evals.get() + 1);
        let n = numel(params).max(1) as f64;
        let xs: f64 = params.iter().map(Tensor::norm_sq).sum();
        let vs: f64 = v.iter().map(Tensor::norm_sq).sum();
        let mut out = zeros_like_all(params);
        if vs == 0.0 || !vs.is_finite() {
            if !vs.is_finite() {
                for o in out.iter_mut() {
                    o.fill(f64::NAN);
                }
            }
            return out;
        }
        self.charge(2);
        self.grad_evals.set(self.grad_evals.get() + 2);
        let h = 6e-6 * (1.0 + (xs / n).sqrt()) / (vs / n).sqrt();
        let mut x = params.to_vec();
        let mut gm = zeros_like_all(params);
        let t0 = Instant::now();
        for ((xt, pt), vt) in x.iter_mut().zip(params).zip(v) {
            for ((xi, pi), vi) in xt.data.iter_mut().zip(&pt.data).zip(&vt.data) {
                *xi = pi + h * vi;
            }
        }
        self.oracle.loss_grad(&x, &mut out);
        for ((xt, pt), vt) in x.iter_mut().zip(params).zip(v) {
            for ((xi, pi), vi) in xt.data.iter_mut().zip(&pt.data).zip(&vt.data) {
                *xi = pi - h * vi;
            }
        }
        self.oracle.loss_grad(&x, &mut gm);
        self.add_ns(t0);
        let inv = 1.0 / (2.0 * h);
        for (o, m) in out.iter_mut().zip(&gm) {
            for (oi, mi) in o.data.iter_mut().zip(&m.data) {
                *oi = (*oi - mi) * inv;
            }
        }
        out
    }

    /// What this context has counted so far (read by the harness after `step`).
    pub fn counts(&self) -> EvalCounts {
        EvalCounts {
            loss_evals: self.loss_evals.get(),
            grad_evals: self.grad_evals.get(),
            hvp_evals: self.hvp_evals.get(),
            oracle_ns: self.oracle_ns.get(),
        }
    }

    fn add_ns(&self, t0: Instant) {
        let ns = t0.elapsed().as_nanos() as u64;
        self.oracle_ns.set(self.oracle_ns.get() + ns);
    }
}

// ---------------------------------------------------------------------------------------------
// Optimizer
// ---------------------------------------------------------------------------------------------

/// A hyperparameter a candidate hands to the server's tuner: the model owns the structure, the
/// tuner owns the knobs. Read its tuned value with [`StepContext::knob`].
#[derive(Clone, Debug, PartialEq)]
pub struct Knob {
    pub name: &'static str,
    pub low: f64,
    pub high: f64,
    /// Used when the tuner has not set the knob.
    pub default: f64,
    /// Search on a log scale (for scales spanning decades, like an epsilon).
    pub log_scale: bool,
}

/// An optimizer: one required method, [`Optimizer::step`].
///
/// The harness builds a fresh optimizer for every run, in a fresh process: nothing survives from
/// one run to the next. State is allocated lazily on the first `step` (shapes are only known
/// then); after that a step should not allocate.
pub trait Optimizer {
    /// A short display name.
    fn name(&self) -> &str {
        "candidate"
    }
    /// Hyperparameters for the tuner, with their ranges (at most 4). The learning rate is always
    /// tuned and needs no knob. Tuning gets the same number of trials however many knobs there are.
    fn knobs(&self) -> Vec<Knob> {
        Vec::new()
    }
    /// Names of mechanisms an ablation may switch off one at a time (at most 8), each read with
    /// [`StepContext::switch`]; all are on in a normal benchmark.
    fn switches(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// One update. `params` and `grads` are the model's tensors, each with its shape;
    /// `grads` is the gradient of `ctx.loss` at `params` on the current minibatch.
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext);
    /// The point the optimizer hands over for evaluation, when it is not `params` (the point where
    /// gradients are taken): e.g. Schedule-Free's or Polyak's averaged iterate. The harness
    /// computes the loss curve, the final loss and the accuracies at it, free of oracle budget.
    /// `None` (the default) means `params`.
    fn eval_params(&self, _params: &[Tensor]) -> Option<Vec<Tensor>> {
        None
    }
}

impl<T: Optimizer + ?Sized> Optimizer for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn knobs(&self) -> Vec<Knob> {
        (**self).knobs()
    }
    fn switches(&self) -> Vec<&'static str> {
        (**self).switches()
    }
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        (**self).step(params, grads, ctx)
    }
    fn eval_params(&self, params: &[Tensor]) -> Option<Vec<Tensor>> {
        (**self).eval_params(params)
    }
}

// ---------------------------------------------------------------------------------------------
// Rng
// ---------------------------------------------------------------------------------------------

/// xoshiro256** seeded through splitmix64. Deterministic on every platform for `next_u64`,
/// `uniform` and `below`; `normal` uses libm's `ln`, `sin`, `cos`.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
    spare: Option<f64>,
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv1a64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let s = [splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm)];
        Rng { s, spare: None }
    }

    /// An independent stream for `(seed, label)`, e.g. `Rng::derive(seed, "init")`.
    pub fn derive(seed: u64, stream_label: &str) -> Rng {
        let mut sm = seed;
        let mixed = splitmix64(&mut sm);
        Rng::new(mixed ^ fnv1a64(stream_label))
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Uniform in [lo, hi).
    pub fn uniform_range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in [0, n) (multiply-shift; n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Standard normal (Box-Muller; the second value of each pair is kept for the next call).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let th = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some(r * th.sin());
        r * th.cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_streams_differ() {
        let mut a = Rng::derive(7, "init");
        let mut b = Rng::derive(7, "init");
        let mut c = Rng::derive(7, "batch");
        let xa: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..5).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn rng_moments() {
        let mut r = Rng::new(1);
        let n = 200_000;
        let (mut s, mut s2, mut u) = (0.0, 0.0, 0.0);
        for _ in 0..n {
            let z = r.normal();
            s += z;
            s2 += z * z;
            u += r.uniform();
        }
        assert!((s / n as f64).abs() < 0.01);
        assert!((s2 / n as f64 - 1.0).abs() < 0.02);
        assert!((u / n as f64 - 0.5).abs() < 0.01);
        for _ in 0..1000 {
            assert!(r.below(7) < 7);
        }
    }

    struct Quad;
    impl Oracle for Quad {
        // f = sum_i (i+1) x_i^2 / 2 + x0^3, H = diag(i+1) + 6 x0 e0 e0^T
        fn loss(&self, p: &[Tensor]) -> f64 {
            let x = &p[0].data;
            x.iter().enumerate().map(|(i, v)| 0.5 * (i as f64 + 1.0) * v * v).sum::<f64>() + x[0].powi(3)
        }
        fn loss_grad(&self, p: &[Tensor], g: &mut [Tensor]) -> f64 {
            let x = &p[0].data;
            for (i, gi) in g[0].data.iter_mut().enumerate() {
                *gi = (i as f64 + 1.0) * x[i];
            }
            g[0].data[0] += 3.0 * x[0] * x[0];
            self.loss(p)
        }
    }

    #[test]
    fn hvp_and_counts() {
        let q = Quad;
        let ctx = StepContext::new(1, 0.0, 0.1, &q);
        let p = vec![Tensor::from_vec(&[3], vec![0.5, -1.0, 2.0])];
        let v = vec![Tensor::from_vec(&[3], vec![1.0, 1.0, -1.0])];
        let hv = ctx.hvp(&p, &v);
        let want = [1.0 + 6.0 * 0.5, 2.0, -3.0];
        for (a, b) in hv[0].data.iter().zip(want) {
            assert!((a - b).abs() < 1e-7, "{a} vs {b}");
        }
        let _ = ctx.loss_at(&p);
        let _ = ctx.grad_at(&p);
        let c = ctx.counts();
        assert_eq!((c.loss_evals, c.grad_evals, c.hvp_evals), (1, 3, 1));
    }
}
