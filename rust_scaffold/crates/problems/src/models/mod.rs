//! Small models on real data, with hand-written backprop.
//!
//! All losses are means over the rows of the batch (repeats count) plus `L2 / 2 * ||W||^2` on the
//! weight matrices (not the biases), with L2 = 1e-4. `batch = None` means the whole training set.
//! One file per model; the helpers and the shared `Problem` methods live here.

use crate::data::Dataset;
use crate::relabel::Relabel;
use crate::Problem;
use nn::dot;
use frontier_core::{Rng, Tensor};

const L2: f64 = 1e-4;

fn rows(batch: Option<&[usize]>, n: usize) -> usize {
    batch.map_or(n, |b| b.len())
}

#[inline]
fn row_index(batch: Option<&[usize]>, t: usize) -> usize {
    match batch {
        Some(b) => b[t],
        None => t,
    }
}

fn uniform_tensor(shape: &[usize], bound: f64, rng: &mut Rng) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|_| rng.uniform_range(-bound, bound)).collect())
}

fn l2_term(w: &[f64], g: Option<&mut [f64]>) -> f64 {
    let mut s = 0.0;
    for &v in w {
        s += v * v;
    }
    if let Some(g) = g {
        for (gi, &v) in g.iter_mut().zip(w) {
            *gi += L2 * v;
        }
    }
    0.5 * L2 * s
}

/// log-sum-exp of z; with `to_probs`, z is replaced by softmax(z) (one exp per entry).
fn log_softmax_inplace(z: &mut [f64], to_probs: bool) -> f64 {
    let mut m = f64::NEG_INFINITY;
    for &v in z.iter() {
        if v > m {
            m = v;
        }
    }
    let mut s = 0.0;
    if to_probs {
        for v in z.iter_mut() {
            *v = (*v - m).exp();
            s += *v;
        }
        let inv = 1.0 / s;
        for v in z.iter_mut() {
            *v *= inv;
        }
    } else {
        for &v in z.iter() {
            s += (v - m).exp();
        }
    }
    m + s.ln()
}

/// tanh through one `exp` (glibc's `tanh` goes through the slower `expm1`); absolute error
/// ~1e-16, saturates cleanly to +-1.
#[inline]
fn tanh(x: f64) -> f64 {
    1.0 - 2.0 / ((2.0 * x).exp() + 1.0)
}

/// y += alpha * x
#[inline]
fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// `out = bias + sum_j x[j] * w[j, :]` for a row-major `w [x.len(), out.len()]`, every output
/// summed in the order of repeated `axpy(x[j], w[j, :], out)` from `out = bias` (so bit for bit
/// the same), with the outputs held in registers blocks at a time instead of in memory.
#[inline]
fn affine_into(bias: &[f64], x: &[f64], w: &[f64], out: &mut [f64]) {
    let n = out.len();
    assert!(bias.len() == n && w.len() >= x.len() * n);
    let mut c = 0;
    // 32 outputs are 8 vector registers on AVX2: enough independent sums to hide the adds' latency.
    while c + 32 <= n {
        affine_block::<32>(bias, x, w, c, out);
        c += 32;
    }
    if c + 16 <= n {
        affine_block::<16>(bias, x, w, c, out);
        c += 16;
    }
    if c + 8 <= n {
        affine_block::<8>(bias, x, w, c, out);
        c += 8;
    }
    if c + 4 <= n {
        affine_block::<4>(bias, x, w, c, out);
        c += 4;
    }
    for u in c..n {
        let mut acc = bias[u];
        for (j, &xj) in x.iter().enumerate() {
            acc += xj * w[j * n + u];
        }
        out[u] = acc;
    }
}

#[inline(always)]
fn affine_block<const B: usize>(bias: &[f64], x: &[f64], w: &[f64], c: usize, out: &mut [f64]) {
    let n = out.len();
    let mut acc = [0.0f64; B];
    acc.copy_from_slice(&bias[c..c + B]);
    for (j, &xj) in x.iter().enumerate() {
        let row: &[f64; B] = w[j * n + c..j * n + c + B].try_into().expect("B columns");
        for u in 0..B {
            acc[u] += xj * row[u];
        }
    }
    out[c..c + B].copy_from_slice(&acc);
}

/// Samples whose outer products are added to a weight gradient in one pass over it.
const GROUP: usize = 4;

/// `g[j, :] += left_s[j] * right_s` for each sample s in order, `g` row-major
/// `[left_s.len(), right_s.len()]`: as one `axpy(left_s[j], right_s, g[j, :])` per sample and row
/// would add them, so bit for bit the same, but loading and storing each row of `g` once per group.
fn outer_acc(g: &mut [f64], left: &[&[f64]], right: &[&[f64]]) {
    let Some((first_left, first_right)) = left.first().zip(right.first()) else { return };
    let (rows, cols) = (first_left.len(), first_right.len());
    assert!(left.len() == right.len() && g.len() >= rows * cols);
    assert!(left.iter().all(|l| l.len() == rows) && right.iter().all(|r| r.len() == cols));
    for j in 0..rows {
        let row = &mut g[j * cols..(j + 1) * cols];
        for (l, r) in left.iter().zip(right) {
            let lj = l[j];
            for (gv, &rv) in row.iter_mut().zip(r.iter()) {
                *gv += lj * rv;
            }
        }
    }
}

fn argmax(z: &[f64]) -> usize {
    let mut best = 0;
    for (c, &v) in z.iter().enumerate() {
        if v > z[best] {
            best = c;
        }
    }
    best
}

fn accuracy(ds: &Dataset, mut predict: impl FnMut(&[f64]) -> usize) -> f64 {
    let mut hits = 0usize;
    for i in 0..ds.n {
        if predict(&ds.x[i * ds.d..(i + 1) * ds.d]) == ds.y[i] {
            hits += 1;
        }
    }
    hits as f64 / ds.n.max(1) as f64
}

/// The `Problem` methods every model on a dataset shares: it has `eval(params, batch, grads)`,
/// `acc(params, dataset)`, and `train`, `test`, `batch` fields. Version 1 for each.
macro_rules! data_model_methods {
    () => {
        fn loss_grad(&self, params: &[Tensor], batch: Option<&[usize]>, grads: &mut [Tensor]) -> f64 {
            self.eval(params, batch, Some(grads))
        }
        fn loss(&self, params: &[Tensor], batch: Option<&[usize]>) -> f64 {
            self.eval(params, batch, None)
        }
        fn train_size(&self) -> Option<usize> {
            Some(self.train.n)
        }
        fn batch_size(&self) -> usize {
            self.batch
        }
        fn has_data(&self) -> bool {
            true
        }
        fn test_accuracy(&self, params: &[Tensor]) -> Option<f64> {
            Some(self.acc(params, &self.test))
        }
        fn train_accuracy(&self, params: &[Tensor]) -> Option<f64> {
            Some(self.acc(params, &self.train))
        }
        fn version(&self) -> u32 {
            1
        }
    };
}

/// A model on a dataset. An instance trains the same model on a relabelled copy of the data
/// (feature columns permuted, class ids permuted; see `relabel.rs`).
pub(crate) trait DataModel: Problem {
    /// The parameters that make this model, on data relabelled by `r`, compute exactly what it
    /// computes at `params` on the original data (same losses up to rounding, same predictions
    /// up to the relabelling).
    fn relabel_params(&self, params: &[Tensor], r: &Relabel) -> Vec<Tensor>;
}

/// out[i, col[c]] = m[row[i], c] for a row-major [rows, cols] matrix: row i of the result is
/// row `row[i]` of `m`, and column c of `m` goes to column `col[c]`.
fn permute_matrix(m: &Tensor, row: &[usize], col: &[usize]) -> Tensor {
    let k = col.len();
    assert_eq!(m.data.len(), row.len() * k);
    let mut out = vec![0.0; m.data.len()];
    for (i, &ri) in row.iter().enumerate() {
        for (c, &cc) in col.iter().enumerate() {
            out[i * k + cc] = m.data[ri * k + c];
        }
    }
    Tensor::from_vec(&m.shape, out)
}

/// out[perm[c]] = v[c].
fn permute_vector(v: &Tensor, perm: &[usize]) -> Tensor {
    let mut out = vec![0.0; v.data.len()];
    for (c, &pc) in perm.iter().enumerate() {
        out[pc] = v.data[c];
    }
    Tensor::from_vec(&v.shape, out)
}

mod cnn;
mod grammar;
mod grokking;
mod logreg;
mod mlp;
pub(crate) mod nn;
mod softmax;
mod transformer;

pub use cnn::Cnn;
#[cfg(test)]
pub(crate) use cnn::tests as cnn_tests;
pub(crate) use grammar::Grammar;
pub use grokking::{Grokking, ModOp};
pub use logreg::LogReg;
pub use mlp::Mlp;
pub use softmax::Softmax;
pub use transformer::{Transformer, TransformerConfig};
