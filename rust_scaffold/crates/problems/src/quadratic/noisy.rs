//! The DeepOBS-style noisy quadratic.

use super::PROBLEM_SEED;
use crate::Problem;
use frontier_core::{Rng, Tensor};

/// DeepOBS-style noisy quadratic. H = diag(h), h log-spaced from 0.1 to 10. A fixed "training
/// set" of 1000 noise vectors z_j ~ N(0, I) (centred so that their mean is exactly 0 up to
/// rounding) defines the per-sample loss 0.5 (x - z_j)^T H (x - z_j) - 0.5 z_j^T H z_j, i.e.
/// a minibatch B has loss 0.5 x^T H x - x^T H zbar_B and an unbiased noisy gradient
/// H (x - zbar_B). The full-set loss (`batch = None`, used for curves) is the noise-free
/// 0.5 x^T H x. Minimum 0 at 0. Init N(0, 1). Minibatch 32 drawn by the harness.
pub struct NoisyQuadratic {
    name: String,
    n: usize,
    h: Vec<f64>,
    z: Vec<f64>, // samples x n
    samples: usize,
}

impl NoisyQuadratic {
    pub fn new(name: &str, n: usize) -> Self {
        let samples = 1000;
        let mut rng = Rng::derive(PROBLEM_SEED, name);
        let h: Vec<f64> = (0..n).map(|i| 0.1 * 100f64.powf(i as f64 / (n - 1).max(1) as f64)).collect();
        let mut z: Vec<f64> = (0..samples * n).map(|_| rng.normal()).collect();
        for i in 0..n {
            let mut m = 0.0;
            for j in 0..samples {
                m += z[j * n + i];
            }
            m /= samples as f64;
            for j in 0..samples {
                z[j * n + i] -= m;
            }
        }
        NoisyQuadratic { name: name.to_string(), n, h, z, samples }
    }

    fn eval(&self, x: &[f64], batch: Option<&[usize]>, mut g: Option<&mut [f64]>) -> f64 {
        let mut f = 0.0;
        match batch {
            None => {
                for i in 0..self.n {
                    f += 0.5 * self.h[i] * x[i] * x[i];
                    if let Some(g) = g.as_deref_mut() {
                        g[i] = self.h[i] * x[i];
                    }
                }
            }
            Some(b) => {
                let inv = 1.0 / b.len().max(1) as f64;
                for i in 0..self.n {
                    let mut zb = 0.0;
                    for &j in b {
                        zb += self.z[j * self.n + i];
                    }
                    zb *= inv;
                    f += self.h[i] * x[i] * (0.5 * x[i] - zb);
                    if let Some(g) = g.as_deref_mut() {
                        g[i] = self.h[i] * (x[i] - zb);
                    }
                }
            }
        }
        f
    }
}

impl Problem for NoisyQuadratic {
    fn name(&self) -> &str {
        &self.name
    }
    fn shapes(&self) -> Vec<Vec<usize>> {
        vec![vec![self.n]]
    }
    fn init(&self, rng: &mut Rng) -> Vec<Tensor> {
        vec![Tensor::from_vec(&[self.n], (0..self.n).map(|_| rng.normal()).collect())]
    }
    fn loss_grad(&self, params: &[Tensor], batch: Option<&[usize]>, grads: &mut [Tensor]) -> f64 {
        self.eval(&params[0].data, batch, Some(&mut grads[0].data))
    }
    fn loss(&self, params: &[Tensor], batch: Option<&[usize]>) -> f64 {
        self.eval(&params[0].data, batch, None)
    }
    fn train_size(&self) -> Option<usize> {
        Some(self.samples)
    }
    fn batch_size(&self) -> usize {
        32
    }
    fn optimum(&self) -> Option<f64> {
        Some(0.0)
    }
    fn minimizer(&self) -> Option<Vec<Tensor>> {
        Some(vec![Tensor::new(&[self.n])])
    }
    fn version(&self) -> u32 {
        1
    }
}
