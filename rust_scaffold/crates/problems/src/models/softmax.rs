//! Multinomial logistic regression.

use super::{accuracy, argmax, axpy, l2_term, log_softmax_inplace, permute_matrix, permute_vector, row_index, rows, uniform_tensor, DataModel};
use super::nn::dot_rows;
use crate::data::{Dataset, Split};
use crate::relabel::Relabel;
use crate::Problem;
use frontier_core::{ParamKind, Rng, Tensor};
use std::sync::Arc;

/// Multinomial logistic regression: mean cross-entropy of z = x W + b, plus L2 on W.
/// Params: W [d, k] (row-major: d inputs by k classes), b [k]. Init U(-1/sqrt(d), 1/sqrt(d)).
pub struct Softmax {
    name: String,
    train: Arc<Dataset>,
    test: Arc<Dataset>,
    batch: usize,
}

impl Softmax {
    pub fn new(name: &str, (train, test): Split, batch: usize) -> Self {
        Softmax { name: name.to_string(), train, test, batch }
    }

    /// W [d, k] -> W^T [k, d], so that each logit is a contiguous dot product.
    fn transpose(w: &[f64], d: usize, k: usize) -> Vec<f64> {
        let mut t = vec![0.0; d * k];
        for j in 0..d {
            for c in 0..k {
                t[c * d + j] = w[j * k + c];
            }
        }
        t
    }

    fn logits(wt: &[f64], b: &[f64], x: &[f64], z: &mut [f64]) {
        dot_rows(wt, x, z);
        for (zc, bc) in z.iter_mut().zip(b) {
            *zc += bc; // b[c] + dot: addition commutes exactly
        }
    }

    fn eval(&self, params: &[Tensor], batch: Option<&[usize]>, mut grads: Option<&mut [Tensor]>) -> f64 {
        let ds = &*self.train;
        let (w, b) = (&params[0].data, &params[1].data);
        let (d, k) = (ds.d, b.len());
        let wt = Softmax::transpose(w, d, k);
        let m = rows(batch, ds.n);
        let mut z = vec![0.0; k];
        let mut gwt = if grads.is_some() { vec![0.0; d * k] } else { Vec::new() };
        let mut f = 0.0;
        if let Some(g) = grads.as_deref_mut() {
            g[1].data.fill(0.0);
        }
        for t in 0..m {
            let i = row_index(batch, t);
            let x = &ds.x[i * d..(i + 1) * d];
            let y = ds.y[i];
            Softmax::logits(&wt, b, x, &mut z);
            let zy = z[y];
            let lse = log_softmax_inplace(&mut z, grads.is_some());
            f += lse - zy;
            if let Some(g) = grads.as_deref_mut() {
                z[y] -= 1.0; // z is now dL/dz
                for (gbc, dz) in g[1].data.iter_mut().zip(&z) {
                    *gbc += dz;
                }
                for (c, &dz) in z.iter().enumerate() {
                    axpy(dz, x, &mut gwt[c * d..(c + 1) * d]);
                }
            }
        }
        let inv = 1.0 / m.max(1) as f64;
        f *= inv;
        match grads {
            Some(g) => {
                for j in 0..d {
                    for c in 0..k {
                        g[0].data[j * k + c] = gwt[c * d + j] * inv;
                    }
                }
                for v in g[1].data.iter_mut() {
                    *v *= inv;
                }
                f + l2_term(w, Some(&mut g[0].data))
            }
            None => f + l2_term(w, None),
        }
    }

    fn acc(&self, params: &[Tensor], ds: &Dataset) -> f64 {
        let (w, b) = (&params[0].data, &params[1].data);
        let wt = Softmax::transpose(w, ds.d, b.len());
        let mut z = vec![0.0; b.len()];
        accuracy(ds, |x| {
            Softmax::logits(&wt, b, x, &mut z);
            argmax(&z)
        })
    }
}

impl Problem for Softmax {
    fn name(&self) -> &str {
        &self.name
    }
    fn shapes(&self) -> Vec<Vec<usize>> {
        vec![vec![self.train.d, self.train.classes], vec![self.train.classes]]
    }
    fn kinds(&self) -> Vec<ParamKind> {
        vec![ParamKind::Head, ParamKind::Vector]
    }
    fn init(&self, rng: &mut Rng) -> Vec<Tensor> {
        let bound = 1.0 / (self.train.d as f64).sqrt();
        let (d, k) = (self.train.d, self.train.classes);
        vec![uniform_tensor(&[d, k], bound, rng), uniform_tensor(&[k], bound, rng)]
    }
    data_model_methods!();
}

impl DataModel for Softmax {
    /// W'[j, class[c]] = W[feature[j], c], b'[class[c]] = b[c].
    fn relabel_params(&self, params: &[Tensor], r: &Relabel) -> Vec<Tensor> {
        vec![permute_matrix(&params[0], &r.feature, &r.class), permute_vector(&params[1], &r.class)]
    }
}
