//! Binary logistic regression.

use super::{accuracy, axpy, dot, l2_term, row_index, rows, uniform_tensor, DataModel};
use crate::data::{Dataset, Split};
use crate::relabel::Relabel;
use crate::Problem;
use frontier_core::{ParamKind, Rng, Tensor};
use std::sync::Arc;

/// Binary logistic regression: mean BCE with logits z = w.x + b, plus L2 on w.
/// Params: w [d], b [1]. Init U(-1/sqrt(d), 1/sqrt(d)) (PyTorch's nn.Linear default).
pub struct LogReg {
    name: String,
    train: Arc<Dataset>,
    test: Arc<Dataset>,
    batch: usize,
}

impl LogReg {
    pub fn new(name: &str, (train, test): Split, batch: usize) -> Self {
        assert_eq!(train.classes, 2);
        LogReg { name: name.to_string(), train, test, batch }
    }

    fn eval(&self, params: &[Tensor], batch: Option<&[usize]>, mut grads: Option<&mut [Tensor]>) -> f64 {
        let ds = &*self.train;
        let (w, b) = (&params[0].data, params[1].data[0]);
        let m = rows(batch, ds.n);
        let mut f = 0.0;
        let mut gb = 0.0;
        if let Some(g) = grads.as_deref_mut() {
            g[0].data.fill(0.0);
        }
        for t in 0..m {
            let i = row_index(batch, t);
            let x = &ds.x[i * ds.d..(i + 1) * ds.d];
            let z = b + dot(w, x);
            let y = ds.y[i] as f64;
            // softplus(z) - y z, stable
            f += z.max(0.0) + (-z.abs()).exp().ln_1p() - y * z;
            if let Some(g) = grads.as_deref_mut() {
                let s = if z >= 0.0 { 1.0 / (1.0 + (-z).exp()) } else { let e = z.exp(); e / (1.0 + e) };
                let dz = s - y;
                axpy(dz, x, &mut g[0].data);
                gb += dz;
            }
        }
        let inv = 1.0 / m.max(1) as f64;
        f *= inv;
        match grads {
            Some(g) => {
                for gj in g[0].data.iter_mut() {
                    *gj *= inv;
                }
                g[1].data[0] = gb * inv;
                f + l2_term(w, Some(&mut g[0].data))
            }
            None => f + l2_term(w, None),
        }
    }

    fn acc(&self, params: &[Tensor], ds: &Dataset) -> f64 {
        let (w, b) = (&params[0].data, params[1].data[0]);
        accuracy(ds, |x| usize::from(b + dot(w, x) > 0.0))
    }
}

impl Problem for LogReg {
    fn name(&self) -> &str {
        &self.name
    }
    fn shapes(&self) -> Vec<Vec<usize>> {
        vec![vec![self.train.d], vec![1]]
    }
    fn kinds(&self) -> Vec<ParamKind> {
        vec![ParamKind::Head, ParamKind::Vector]
    }
    fn init(&self, rng: &mut Rng) -> Vec<Tensor> {
        let bound = 1.0 / (self.train.d as f64).sqrt();
        vec![uniform_tensor(&[self.train.d], bound, rng), uniform_tensor(&[1], bound, rng)]
    }
    data_model_methods!();
}

impl DataModel for LogReg {
    /// w'[j] = w[feature[j]]; if the two classes are swapped, (w', b') = -(w', b') (the logit
    /// changes sign, and softplus(-z) + z = softplus(z)).
    fn relabel_params(&self, params: &[Tensor], r: &Relabel) -> Vec<Tensor> {
        let sign = if r.class[0] == 0 { 1.0 } else { -1.0 };
        let w: Vec<f64> = r.feature.iter().map(|&j| sign * params[0].data[j]).collect();
        vec![Tensor::from_vec(&params[0].shape, w), Tensor::from_vec(&[1], vec![sign * params[1].data[0]])]
    }
}
