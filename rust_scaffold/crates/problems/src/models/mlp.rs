//! One-hidden-layer tanh MLP.

use super::{
    accuracy, affine_into, argmax, axpy, dot, outer_acc, GROUP, l2_term, log_softmax_inplace, permute_matrix, permute_vector, row_index, rows, tanh,
    uniform_tensor, DataModel,
};
use crate::data::{Dataset, Split};
use crate::relabel::Relabel;
use crate::Problem;
use frontier_core::{ParamKind, Rng, Tensor};
use std::sync::Arc;

/// One hidden layer of tanh units, softmax cross-entropy output, L2 on W1 and W2.
/// Params: W1 [d, h], b1 [h], W2 [h, k], b2 [k] (row-major, inputs by outputs).
/// Init: Glorot-uniform weights, zero biases.
pub struct Mlp {
    name: String,
    train: Arc<Dataset>,
    test: Arc<Dataset>,
    hidden: usize,
    batch: usize,
}

impl Mlp {
    pub fn new(name: &str, (train, test): Split, hidden: usize, batch: usize) -> Self {
        Mlp { name: name.to_string(), train, test, hidden, batch }
    }

    /// a = tanh(x W1 + b1), z = a W2 + b2.
    fn forward(&self, p: &[Tensor], x: &[f64], a: &mut [f64], z: &mut [f64]) {
        let (w1, b1, w2, b2) = (&p[0].data, &p[1].data, &p[2].data, &p[3].data);
        affine_into(b1, x, w1, a);
        for av in a.iter_mut() {
            *av = tanh(*av);
        }
        affine_into(b2, a, w2, z);
    }

    fn eval(&self, params: &[Tensor], batch: Option<&[usize]>, mut grads: Option<&mut [Tensor]>) -> f64 {
        let ds = &*self.train;
        let (h, k) = (self.hidden, ds.classes);
        let m = rows(batch, ds.n);
        let mut a = vec![0.0; h];
        // dL/da of up to GROUP samples, and their rows of x: W1's gradient takes them together.
        let mut da = vec![0.0; GROUP * h];
        let mut xs: [&[f64]; GROUP] = [&[]; GROUP];
        let mut pending = 0;
        let mut z = vec![0.0; k];
        let mut f = 0.0;
        if let Some(g) = grads.as_deref_mut() {
            for t in g.iter_mut() {
                t.data.fill(0.0);
            }
        }
        let w2 = &params[2].data;
        for t in 0..m {
            let i = row_index(batch, t);
            let x = &ds.x[i * ds.d..(i + 1) * ds.d];
            let y = ds.y[i];
            self.forward(params, x, &mut a, &mut z);
            let zy = z[y];
            let lse = log_softmax_inplace(&mut z, grads.is_some());
            f += lse - zy;
            if let Some(g) = grads.as_deref_mut() {
                z[y] -= 1.0; // dL/dz
                let (g1, g2) = g.split_at_mut(2);
                let (gw1, gb1) = g1.split_at_mut(1);
                let (gw2, gb2) = g2.split_at_mut(1);
                for (gc, dz) in gb2[0].data.iter_mut().zip(&z) {
                    *gc += dz;
                }
                let da_t = &mut da[pending * h..(pending + 1) * h];
                for u in 0..h {
                    // dW2[u, :] += a_u dz ; dL/da_u = W2[u, :] . dz, then through tanh
                    axpy(a[u], &z, &mut gw2[0].data[u * k..(u + 1) * k]);
                    da_t[u] = dot(&w2[u * k..(u + 1) * k], &z) * (1.0 - a[u] * a[u]);
                }
                for (gc, d) in gb1[0].data.iter_mut().zip(da_t.iter()) {
                    *gc += d;
                }
                xs[pending] = x;
                pending += 1;
                if pending == GROUP || t + 1 == m {
                    let das: [&[f64]; GROUP] = std::array::from_fn(|s| &da[s * h..(s + 1) * h]);
                    outer_acc(&mut gw1[0].data, &xs[..pending], &das[..pending]);
                    pending = 0;
                }
            }
        }
        let inv = 1.0 / m.max(1) as f64;
        f *= inv;
        match grads {
            Some(g) => {
                for t in g.iter_mut() {
                    for v in t.data.iter_mut() {
                        *v *= inv;
                    }
                }
                let r1 = l2_term(&params[0].data, Some(&mut g[0].data));
                let r2 = l2_term(&params[2].data, Some(&mut g[2].data));
                f + r1 + r2
            }
            None => f + l2_term(&params[0].data, None) + l2_term(&params[2].data, None),
        }
    }

    fn acc(&self, params: &[Tensor], ds: &Dataset) -> f64 {
        let mut a = vec![0.0; self.hidden];
        let mut z = vec![0.0; ds.classes];
        accuracy(ds, |x| {
            self.forward(params, x, &mut a, &mut z);
            argmax(&z)
        })
    }
}

impl Problem for Mlp {
    fn name(&self) -> &str {
        &self.name
    }
    fn shapes(&self) -> Vec<Vec<usize>> {
        let (d, h, k) = (self.train.d, self.hidden, self.train.classes);
        vec![vec![d, h], vec![h], vec![h, k], vec![k]]
    }
    fn kinds(&self) -> Vec<ParamKind> {
        vec![ParamKind::Matrix, ParamKind::Vector, ParamKind::Head, ParamKind::Vector]
    }
    fn init(&self, rng: &mut Rng) -> Vec<Tensor> {
        let (d, h, k) = (self.train.d, self.hidden, self.train.classes);
        let g1 = (6.0 / (d + h) as f64).sqrt();
        let g2 = (6.0 / (h + k) as f64).sqrt();
        vec![uniform_tensor(&[d, h], g1, rng), Tensor::new(&[h]), uniform_tensor(&[h, k], g2, rng), Tensor::new(&[k])]
    }
    data_model_methods!();
}

impl DataModel for Mlp {
    /// W1'[j, :] = W1[feature[j], :]; b1 unchanged; W2'[:, class[c]] = W2[:, c];
    /// b2'[class[c]] = b2[c].
    fn relabel_params(&self, params: &[Tensor], r: &Relabel) -> Vec<Tensor> {
        let hidden: Vec<usize> = (0..self.hidden).collect();
        vec![
            permute_matrix(&params[0], &r.feature, &hidden),
            params[1].clone(),
            permute_matrix(&params[2], &hidden, &r.class),
            permute_vector(&params[3], &r.class),
        ]
    }
}
