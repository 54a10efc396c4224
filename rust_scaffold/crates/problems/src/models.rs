//! Small models on real data, with hand-written backprop.
//!
//! All losses are means over the rows of the batch (repeats count) plus `L2 / 2 * ||W||^2` on the
//! weight matrices (not the biases), with L2 = 1e-4. `batch = None` means the whole training set.

use crate::data::{Dataset, Split};
use crate::Problem;
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

/// Dot product with four partial sums (fixed order, so deterministic; vectorizes).
#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 4];
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        acc[0] += x[0] * y[0];
        acc[1] += x[1] * y[1];
        acc[2] += x[2] * y[2];
        acc[3] += x[3] * y[3];
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// y += alpha * x
#[inline]
fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
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
            Some(self.acc(params, self.test))
        }
        fn train_accuracy(&self, params: &[Tensor]) -> Option<f64> {
            Some(self.acc(params, self.train))
        }
        fn version(&self) -> u32 {
            1
        }
    };
}

// ---------------------------------------------------------------------------------------------

/// Binary logistic regression: mean BCE with logits z = w.x + b, plus L2 on w.
/// Params: w [d], b [1]. Init U(-1/sqrt(d), 1/sqrt(d)) (PyTorch's nn.Linear default).
pub struct LogReg {
    name: String,
    train: &'static Dataset,
    test: &'static Dataset,
    batch: usize,
}

impl LogReg {
    pub fn new(name: &str, (train, test): Split, batch: usize) -> Self {
        assert_eq!(train.classes, 2);
        LogReg { name: name.to_string(), train, test, batch }
    }

    fn eval(&self, params: &[Tensor], batch: Option<&[usize]>, mut grads: Option<&mut [Tensor]>) -> f64 {
        let ds = self.train;
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
    fn init(&self, rng: &mut Rng) -> Vec<Tensor> {
        let bound = 1.0 / (self.train.d as f64).sqrt();
        vec![uniform_tensor(&[self.train.d], bound, rng), uniform_tensor(&[1], bound, rng)]
    }
    data_model_methods!();
}

// ---------------------------------------------------------------------------------------------

/// Multinomial logistic regression: mean cross-entropy of z = x W + b, plus L2 on W.
/// Params: W [d, k] (row-major: d inputs by k classes), b [k]. Init U(-1/sqrt(d), 1/sqrt(d)).
pub struct Softmax {
    name: String,
    train: &'static Dataset,
    test: &'static Dataset,
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
        let d = x.len();
        for (c, zc) in z.iter_mut().enumerate() {
            *zc = b[c] + dot(&wt[c * d..(c + 1) * d], x);
        }
    }

    fn eval(&self, params: &[Tensor], batch: Option<&[usize]>, mut grads: Option<&mut [Tensor]>) -> f64 {
        let ds = self.train;
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
    fn init(&self, rng: &mut Rng) -> Vec<Tensor> {
        let bound = 1.0 / (self.train.d as f64).sqrt();
        let (d, k) = (self.train.d, self.train.classes);
        vec![uniform_tensor(&[d, k], bound, rng), uniform_tensor(&[k], bound, rng)]
    }
    data_model_methods!();
}

// ---------------------------------------------------------------------------------------------

/// One hidden layer of tanh units, softmax cross-entropy output, L2 on W1 and W2.
/// Params: W1 [d, h], b1 [h], W2 [h, k], b2 [k] (row-major, inputs by outputs).
/// Init: Glorot-uniform weights, zero biases.
pub struct Mlp {
    name: String,
    train: &'static Dataset,
    test: &'static Dataset,
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
        let (h, k) = (self.hidden, b2.len());
        a.copy_from_slice(b1);
        for (j, &xj) in x.iter().enumerate() {
            axpy(xj, &w1[j * h..(j + 1) * h], a);
        }
        for av in a.iter_mut() {
            *av = tanh(*av);
        }
        z.copy_from_slice(b2);
        for (u, &au) in a.iter().enumerate() {
            axpy(au, &w2[u * k..(u + 1) * k], z);
        }
    }

    fn eval(&self, params: &[Tensor], batch: Option<&[usize]>, mut grads: Option<&mut [Tensor]>) -> f64 {
        let ds = self.train;
        let (h, k) = (self.hidden, ds.classes);
        let m = rows(batch, ds.n);
        let mut a = vec![0.0; h];
        let mut da = vec![0.0; h];
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
                for u in 0..h {
                    // dW2[u, :] += a_u dz ; dL/da_u = W2[u, :] . dz, then through tanh
                    axpy(a[u], &z, &mut gw2[0].data[u * k..(u + 1) * k]);
                    da[u] = dot(&w2[u * k..(u + 1) * k], &z) * (1.0 - a[u] * a[u]);
                }
                for (gc, d) in gb1[0].data.iter_mut().zip(&da) {
                    *gc += d;
                }
                for (j, &xj) in x.iter().enumerate() {
                    axpy(xj, &da, &mut gw1[0].data[j * h..(j + 1) * h]);
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
    fn init(&self, rng: &mut Rng) -> Vec<Tensor> {
        let (d, h, k) = (self.train.d, self.hidden, self.train.classes);
        let g1 = (6.0 / (d + h) as f64).sqrt();
        let g2 = (6.0 / (h + k) as f64).sqrt();
        vec![uniform_tensor(&[d, h], g1, rng), Tensor::new(&[h]), uniform_tensor(&[h, k], g2, rng), Tensor::new(&[k])]
    }
    data_model_methods!();
}
