//! COCO/BBOB-style instances of problems without data: a random shift and a random rotation.
//!
//! For a canonical problem f with known minimizer x*, instance `key` is
//!
//! ```text
//! g(x) = f(x* + R (x - s))        grad g(x) = R^T grad f(x* + R (x - s))
//! ```
//!
//! with `s` uniform in the box `[-SHIFT_BOX, SHIFT_BOX]^n` (stream `Rng::derive(key,
//! "<name>/shift")`) and `R` a Haar-random orthogonal n x n matrix (QR of a Gaussian matrix whose
//! R factor has a positive diagonal, stream `Rng::derive(key, "<name>/rotation")`). So g has its
//! minimum at `s`, with f's minimum value, and nowhere a constant point could name. The init is
//! `x0 = s + R^T (z0 - x*)` for the canonical init z0 (drawn from the run's init stream), so
//! g(x0) = f(z0) and the distance and landscape between start and optimum are exactly the
//! canonical ones, seen in rotated coordinates. Minibatches pass through unchanged (the noisy
//! quadratic's noise is rotated with it).
//!
//! The box: with s uniform in [-5, 5]^n (coordinate variance 25/3) and a start at distance
//! |z0 - x*| (coordinate variance ~1 for the quadratics, ~3 for U[-3, 3] inits), the origin is
//! further from the optimum than the start is, and the best fixed shrink toward the origin that
//! a candidate could tune removes only 1/(1 + 25/(3 v)) of the squared distance (11% for the
//! quadratics, 26% for Rastrigin), once, while a persistent pull to the origin makes the end
//! point worse. (COCO draws its optima in [-4, 4]^n.)

use crate::Problem;
use frontier_core::{Rng, Tensor};

/// Half-width of the box the shift is drawn from.
pub const SHIFT_BOX: f64 = 5.0;

/// Problem `inner` in shifted and rotated coordinates (see the module docs).
pub struct Rotated {
    inner: Box<dyn Problem>,
    shapes: Vec<Vec<usize>>,
    n: usize,
    xstar: Vec<f64>,
    shift: Vec<f64>,
    rot: Vec<f64>, // n x n, row-major, orthogonal
}

/// A Haar-distributed n x n orthogonal matrix, row-major: modified Gram-Schmidt (run twice,
/// for orthogonality to rounding) on the rows of a Gaussian matrix. Gram-Schmidt's triangular
/// factor has a positive diagonal, which is the sign fix that makes the QR factor Haar.
pub fn haar_orthogonal(n: usize, rng: &mut Rng) -> Vec<f64> {
    let mut q: Vec<f64> = (0..n * n).map(|_| rng.normal()).collect();
    for k in 0..n {
        let (done, rest) = q.split_at_mut(k * n);
        let v = &mut rest[..n];
        for _pass in 0..2 {
            for j in 0..k {
                let u = &done[j * n..(j + 1) * n];
                let d = dot(u, v);
                for (vi, ui) in v.iter_mut().zip(u) {
                    *vi -= d * ui;
                }
            }
        }
        let inv = 1.0 / v.iter().map(|a| a * a).sum::<f64>().sqrt();
        for vi in v.iter_mut() {
            *vi *= inv;
        }
    }
    q
}

/// Dot product with four partial sums (fixed order: deterministic, and it vectorizes).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

fn flatten(ts: &[Tensor]) -> Vec<f64> {
    ts.iter().flat_map(|t| t.data.iter().copied()).collect()
}

fn unflatten(shapes: &[Vec<usize>], flat: &[f64]) -> Vec<Tensor> {
    let mut at = 0;
    shapes
        .iter()
        .map(|s| {
            let len: usize = s.iter().product();
            at += len;
            Tensor::from_vec(s, flat[at - len..at].to_vec())
        })
        .collect()
}

fn write_flat(ts: &mut [Tensor], flat: &[f64]) {
    let mut at = 0;
    for t in ts.iter_mut() {
        let len = t.data.len();
        t.data.copy_from_slice(&flat[at..at + len]);
        at += len;
    }
}

impl Rotated {
    /// Instance `key` of `inner`; `None` if `inner` has no known minimizer.
    pub fn new(inner: Box<dyn Problem>, key: u64) -> Option<Rotated> {
        let xstar = flatten(&inner.minimizer()?);
        let shapes = inner.shapes();
        let n = xstar.len();
        assert_eq!(n, inner.dim(), "{}: minimizer has the wrong size", inner.name());
        let mut rs = Rng::derive(key, &format!("{}/shift", inner.name()));
        let shift = (0..n).map(|_| rs.uniform_range(-SHIFT_BOX, SHIFT_BOX)).collect();
        let rot = haar_orthogonal(n, &mut Rng::derive(key, &format!("{}/rotation", inner.name())));
        Some(Rotated { inner, shapes, n, xstar, shift, rot })
    }

    /// x* + R (x - s), as the inner problem's tensors.
    fn to_inner(&self, params: &[Tensor]) -> Vec<Tensor> {
        let x = flatten(params);
        assert_eq!(x.len(), self.n, "{}: wrong number of parameters", self.inner.name());
        let d: Vec<f64> = x.iter().zip(&self.shift).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = (0..self.n)
            .map(|i| {
                let row = &self.rot[i * self.n..(i + 1) * self.n];
                self.xstar[i] + dot(row, &d)
            })
            .collect();
        unflatten(&self.shapes, &y)
    }

    /// R^T v.
    fn rot_t(&self, v: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.n];
        for (i, &vi) in v.iter().enumerate() {
            let row = &self.rot[i * self.n..(i + 1) * self.n];
            for (o, r) in out.iter_mut().zip(row) {
                *o += vi * r;
            }
        }
        out
    }

    pub fn shift(&self) -> &[f64] {
        &self.shift
    }

    /// R, row-major n x n.
    pub fn rotation(&self) -> &[f64] {
        &self.rot
    }
}

impl Problem for Rotated {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn shapes(&self) -> Vec<Vec<usize>> {
        self.shapes.clone()
    }
    fn kinds(&self) -> Vec<frontier_core::ParamKind> {
        self.inner.kinds()
    }
    fn init(&self, rng: &mut Rng) -> Vec<Tensor> {
        let z0 = flatten(&self.inner.init(rng));
        let d: Vec<f64> = z0.iter().zip(&self.xstar).map(|(a, b)| a - b).collect();
        let x0: Vec<f64> = self.rot_t(&d).iter().zip(&self.shift).map(|(a, b)| a + b).collect();
        unflatten(&self.shapes, &x0)
    }
    fn loss_grad(&self, params: &[Tensor], batch: Option<&[usize]>, grads: &mut [Tensor]) -> f64 {
        let y = self.to_inner(params);
        let mut gy: Vec<Tensor> = self.shapes.iter().map(|s| Tensor::new(s)).collect();
        let f = self.inner.loss_grad(&y, batch, &mut gy);
        write_flat(grads, &self.rot_t(&flatten(&gy)));
        f
    }
    fn loss(&self, params: &[Tensor], batch: Option<&[usize]>) -> f64 {
        self.inner.loss(&self.to_inner(params), batch)
    }
    fn train_size(&self) -> Option<usize> {
        self.inner.train_size()
    }
    fn batch_size(&self) -> usize {
        self.inner.batch_size()
    }
    fn has_data(&self) -> bool {
        self.inner.has_data()
    }
    fn test_accuracy(&self, params: &[Tensor]) -> Option<f64> {
        self.inner.test_accuracy(&self.to_inner(params))
    }
    fn train_accuracy(&self, params: &[Tensor]) -> Option<f64> {
        self.inner.train_accuracy(&self.to_inner(params))
    }
    fn optimum(&self) -> Option<f64> {
        self.inner.optimum()
    }
    /// The shift s.
    fn minimizer(&self) -> Option<Vec<Tensor>> {
        Some(unflatten(&self.shapes, &self.shift))
    }
    fn version(&self) -> u32 {
        self.inner.version()
    }
}
